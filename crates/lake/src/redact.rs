//! Keeps secrets out of logs, errors and manifests.
//!
//! Credentials only ever come from the environment, but lower layers (HTTP clients, SDKs) may echo
//! a request URL that carries a SAS token, or a header value, in their error text. Every message
//! that leaves the lake library passes through [`text`], which removes URL query strings,
//! signature parameters and the literal values of secret-looking `AZURE_*` variables.

const HIDDEN: &str = "[redacted]";

/// Names of environment variables whose values are secrets.
pub fn is_secret_variable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if !(upper.starts_with("AZURE_") || upper.starts_with("MEDALLION_")) || upper.ends_with("_FILE")
    {
        return false;
    }
    [
        "KEY",
        "SECRET",
        "SAS",
        "TOKEN",
        "PASSWORD",
        "CONNECTION_STRING",
    ]
    .iter()
    .any(|word| upper.contains(word))
}

/// Returns `message` with URL query strings, `sig=` values and secret environment values removed.
pub fn text(message: &str) -> String {
    let mut out = strip_url_queries(message);
    out = hide_parameter(&out, "sig=");
    out = hide_parameter(&out, "SharedKey ");
    out = hide_parameter(&out, "Bearer ");
    for (name, value) in std::env::vars() {
        if value.len() >= 8 && is_secret_variable(&name) && out.contains(&value) {
            out = out.replace(&value, HIDDEN);
        }
    }
    out
}

/// Cuts `?query` off every `scheme://...` token in `message`.
fn strip_url_queries(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("://") {
        // Copy up to and including the scheme separator, then the URL up to its end.
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ','))
            .unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push('?');
                out.push_str(HIDDEN);
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Replaces the value that follows `marker` (up to `&`, whitespace or a quote).
fn hide_parameter(message: &str, marker: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(marker) {
        let (head, tail) = rest.split_at(start + marker.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | ')' | ','))
            .unwrap_or(tail.len());
        if end > 0 {
            out.push_str(HIDDEN);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_sas_query_from_urls() {
        let m = "error sending request for url (https://acct.blob.core.windows.net/c/x.csv?sv=2022-11-02&sig=abc%2Fdef): refused";
        let r = text(m);
        assert!(!r.contains("sig=abc"), "{r}");
        assert!(!r.contains("sv=2022"), "{r}");
        assert!(
            r.contains("https://acct.blob.core.windows.net/c/x.csv?[redacted]): refused"),
            "{r}"
        );
    }

    #[test]
    fn hides_signatures_and_auth_headers_outside_urls() {
        let r = text("header Authorization: SharedKey devstoreaccount1:Zm9vYmFy and sig=XYZ&se=1");
        assert!(!r.contains("Zm9vYmFy"), "{r}");
        assert!(!r.contains("XYZ"), "{r}");
        assert!(r.contains("se=1"));
    }

    #[test]
    fn leaves_plain_messages_alone() {
        let m = "row 3 has 4 fields, the header has 5";
        assert_eq!(text(m), m);
        assert_eq!(text("file:///tmp/a.csv"), "file:///tmp/a.csv");
    }

    #[test]
    fn secret_variable_names() {
        assert!(is_secret_variable("AZURE_STORAGE_ACCOUNT_KEY"));
        assert!(is_secret_variable("AZURE_STORAGE_SAS_TOKEN"));
        assert!(is_secret_variable("AZURE_CLIENT_SECRET"));
        assert!(!is_secret_variable("AZURE_FEDERATED_TOKEN_FILE"));
        assert!(!is_secret_variable("AZURE_STORAGE_ACCOUNT_NAME"));
        assert!(!is_secret_variable("HOME"));
    }
}
