//! Store URLs: one string names a place in a store, whatever the backend.
//!
//! Accepted forms (for a lake root and for a source object alike):
//!
//! | form | backend |
//! |---|---|
//! | `./lake`, `/data/lake`, `file:///data/lake` | local files (the embedded default) |
//! | `az://<container>/<path>`, `azure://…` | Azure Blob, account from `AZURE_STORAGE_ACCOUNT_NAME` |
//! | `abfss://<container>@<account>.dfs.core.windows.net/<path>` (also `abfs://`) | Azure Blob / ADLS Gen2 |
//! | `https://<account>.blob.core.windows.net/<container>/<path>` (also `.dfs.`) | Azure Blob, the form Event Grid puts in `data.url` |
//! | `http://127.0.0.1:10000/devstoreaccount1/<container>/<path>` | Azurite, only with `AZURE_STORAGE_USE_EMULATOR=true` |
//!
//! Credentials never come from the URL: a query string (a SAS token) or user info is refused with
//! a message naming the environment variable to use instead. Azure credentials come from the
//! environment through object_store's `MicrosoftAzureBuilder::from_env` (workload identity,
//! managed identity, Azure CLI with `AZURE_USE_AZURE_CLI=true`, account key, SAS, or the emulator).
//! A URL whose path tries to leave its container (`..`, `.`, empty segments) is refused.

use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::error::{Error, Result};

/// Which backend a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local path (absolute after parsing).
    Local(PathBuf),
    /// A container (and optional path inside it) in an Azure storage account.
    Azure {
        /// `None` when the URL did not say (`az://`): taken from `AZURE_STORAGE_ACCOUNT_NAME`.
        account: Option<String>,
        container: String,
        /// Path inside the container, without leading or trailing `/`.
        path: Vec<String>,
    },
}

impl StoreUrl {
    /// Parses a lake or source URL. `what` names it in errors ("lake", "source").
    pub fn parse(what: &'static str, raw: &str) -> Result<StoreUrl> {
        let invalid = |reason: &str| Error::InvalidUrl {
            what,
            url: crate::redact::text(raw),
            reason: reason.to_string(),
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(invalid(
                "it is empty; pass a local path or an az://, abfss:// or https:// URL",
            ));
        }
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Ok(StoreUrl::Local(absolute(FsPath::new(raw))));
        };
        if rest.contains('?') || rest.contains('#') {
            return Err(invalid(
                "URLs may not carry a query string (a SAS token belongs in AZURE_STORAGE_SAS_TOKEN, never in a URL)",
            ));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains(':') && authority.contains('@') {
            return Err(invalid(
                "URLs may not carry credentials; use the AZURE_* environment variables",
            ));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !authority.is_empty() && authority != "localhost" {
                    return Err(invalid("file:// URLs must be file:///absolute/path"));
                }
                let segments = decode_segments(path).map_err(&invalid)?;
                let mut p = PathBuf::from("/");
                p.extend(segments);
                Ok(StoreUrl::Local(p))
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let (container, account) = match authority.split_once('@') {
                    Some((container, host)) => {
                        (container, Some(account_from_host(host).map_err(&invalid)?))
                    }
                    None => (authority, None),
                };
                check_container(container).map_err(&invalid)?;
                Ok(StoreUrl::Azure {
                    account,
                    container: container.to_string(),
                    path: decode_segments(path).map_err(&invalid)?,
                })
            }
            "https" | "http" => {
                let mut segments = decode_segments(path).map_err(&invalid)?;
                let account = if let Ok(account) = account_from_host(authority) {
                    if scheme.eq_ignore_ascii_case("http") {
                        return Err(invalid("Azure Blob URLs must use https"));
                    }
                    account
                } else if emulator_enabled() {
                    // Path-style emulator URL: http://host:port/<account>/<container>/<path>.
                    if segments.is_empty() {
                        return Err(invalid(
                            "an emulator URL needs /<account>/<container>/<path>",
                        ));
                    }
                    segments.remove(0)
                } else {
                    return Err(invalid(
                        "only https://<account>.blob.core.windows.net/<container>/<path> is supported (set AZURE_STORAGE_USE_EMULATOR=true for Azurite)",
                    ));
                };
                if segments.is_empty() {
                    return Err(invalid("the URL names no container"));
                }
                let container = segments.remove(0);
                check_container(&container).map_err(&invalid)?;
                Ok(StoreUrl::Azure {
                    account: Some(account),
                    container,
                    path: segments,
                })
            }
            "s3" | "gs" | "gcs" => Err(invalid(
                "S3 and GCS lakes are not built into this release; use a local path or Azure",
            )),
            other => Err(invalid(&format!(
                "unknown scheme '{other}'; use a local path, file://, az://, abfss:// or https://<account>.blob.core.windows.net/"
            ))),
        }
    }

    /// The credential-free URL a person and a manifest see.
    pub fn canonical(&self) -> String {
        match self {
            StoreUrl::Local(p) => format!("file://{}", p.display()),
            StoreUrl::Azure {
                account,
                container,
                path,
            } => {
                let tail = if path.is_empty() {
                    String::new()
                } else {
                    format!(
                        "/{}",
                        path.iter()
                            .map(|s| encode_segment(s))
                            .collect::<Vec<_>>()
                            .join("/")
                    )
                };
                let account = account.clone().or_else(env_account);
                match (emulator_enabled(), account) {
                    (true, account) => format!(
                        "{}/{}/{container}{tail}",
                        emulator_endpoint().trim_end_matches('/'),
                        account.unwrap_or_else(|| "devstoreaccount1".to_string())
                    ),
                    (false, Some(account)) => {
                        format!("https://{account}.blob.core.windows.net/{container}{tail}")
                    }
                    (false, None) => format!("az://{container}{tail}"),
                }
            }
        }
    }
}

/// A place in a store: an object store, a path prefix in it, and the URL it was named by.
#[derive(Clone)]
pub struct StoreLocation {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
    local_dir: Option<PathBuf>,
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLocation")
            .field("url", &self.url)
            .finish()
    }
}

impl StoreLocation {
    /// Opens the store a URL names, rooted at its path. A local directory is created if missing.
    pub fn open(what: &'static str, raw: &str) -> Result<StoreLocation> {
        let url = StoreUrl::parse(what, raw)?;
        Self::from_url(&url)
    }

    /// Opens a parsed URL.
    pub fn from_url(url: &StoreUrl) -> Result<StoreLocation> {
        match url {
            StoreUrl::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::local_io("create directory", dir, &e))?;
                let dir = dir
                    .canonicalize()
                    .map_err(|e| Error::local_io("resolve", dir, &e))?;
                let store = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| Error::store("open", dir.display().to_string(), e))?;
                Ok(StoreLocation {
                    store: Arc::new(store),
                    root: Path::default(),
                    url: StoreUrl::Local(dir.clone()).canonical(),
                    local_dir: Some(dir),
                })
            }
            StoreUrl::Azure { .. } => Self::open_azure(url, AzureCredential::Environment),
        }
    }

    /// Opens an Azure URL with an explicit credential (a data connection's) instead of the
    /// environment's account key. The credential is used, never stored or shown.
    pub fn open_azure(url: &StoreUrl, credential: AzureCredential) -> Result<StoreLocation> {
        match url {
            StoreUrl::Local(_) => Err(Error::internal("open azure", "not an Azure URL")),
            StoreUrl::Azure {
                container, path, ..
            } => {
                let store = azure_store(url, container, credential)?;
                Ok(StoreLocation {
                    store,
                    root: Path::from_iter(path.iter().map(String::as_str)),
                    url: url.canonical(),
                    local_dir: None,
                })
            }
        }
    }

    /// An empty in-memory store (for tests and dry runs).
    pub fn in_memory() -> StoreLocation {
        StoreLocation {
            store: Arc::new(InMemory::new()),
            root: Path::default(),
            url: "memory:///".to_string(),
            local_dir: None,
        }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The location's own path inside its store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The credential-free URL of the root.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local directory behind the root, for local stores.
    pub fn local_dir(&self) -> Option<&FsPath> {
        self.local_dir.as_deref()
    }

    /// The store path of `relative` (a `/`-separated path under the root).
    pub fn path(&self, relative: &str) -> Path {
        let mut parts: Vec<_> = self.root.parts().collect();
        parts.extend(
            relative
                .split('/')
                .filter(|s| !s.is_empty())
                .map(object_store::path::PathPart::from),
        );
        Path::from_iter(parts)
    }

    /// The URL of a store path under this root.
    pub fn url_of(&self, path: &Path) -> String {
        let root = self.root.as_ref();
        let rel = path.as_ref().strip_prefix(root).unwrap_or(path.as_ref());
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            self.url.clone()
        } else {
            format!("{}/{}", self.url.trim_end_matches('/'), rel)
        }
    }
}

/// Retry and timeout policy for remote stores, overridable from the environment so tests (and
/// impatient operators) can shorten it: `MEDALLION_STORE_MAX_RETRIES` (default 5),
/// `MEDALLION_STORE_RETRY_TIMEOUT_SECS` (default 120), `MEDALLION_STORE_TIMEOUT_SECS` (per
/// request, default 120).
fn retry_policy() -> (RetryConfig, ClientOptions) {
    let secs = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: secs("MEDALLION_STORE_MAX_RETRIES", 5) as usize,
        retry_timeout: Duration::from_secs(secs("MEDALLION_STORE_RETRY_TIMEOUT_SECS", 120)),
    };
    let client = ClientOptions::new()
        .with_timeout(Duration::from_secs(secs(
            "MEDALLION_STORE_TIMEOUT_SECS",
            120,
        )))
        .with_connect_timeout(Duration::from_secs(10));
    (retry, client)
}

/// How an Azure store authenticates.
pub enum AzureCredential {
    /// Whatever the environment provides: account key, SAS, workload identity, the emulator.
    Environment,
    /// A storage account key.
    AccessKey(String),
    /// A SAS token (query string without the leading `?`).
    Sas(String),
}

impl std::fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AzureCredential::Environment => "Environment",
            AzureCredential::AccessKey(_) => "AccessKey(***)",
            AzureCredential::Sas(_) => "Sas(***)",
        })
    }
}

fn azure_store(
    url: &StoreUrl,
    container: &str,
    credential: AzureCredential,
) -> Result<Arc<dyn ObjectStore>> {
    install_tls_provider();
    let StoreUrl::Azure { account, .. } = url else {
        return Err(Error::internal("azure store", "not an Azure URL"));
    };
    let (retry, client) = retry_policy();
    let mut builder = MicrosoftAzureBuilder::from_env()
        .with_container_name(container)
        .with_retry(retry)
        .with_client_options(client);
    if let Some(account) = account {
        builder = builder.with_account(account);
    }
    match credential {
        AzureCredential::Environment => {}
        AzureCredential::AccessKey(key) => builder = builder.with_access_key(key),
        AzureCredential::Sas(sas) => {
            builder = builder.with_config(object_store::azure::AzureConfigKey::SasKey, sas)
        }
    }
    let store = builder.build().map_err(|e| Error::InvalidUrl {
        what: "store",
        url: url.canonical(),
        reason: format!(
            "{}; set AZURE_STORAGE_ACCOUNT_NAME and credentials in the environment",
            crate::redact::text(&crate::error::one_line(&e.to_string()))
        ),
    })?;
    Ok(Arc::new(store))
}

/// rustls needs one process-wide crypto provider; we ship ring (no C toolchain needed).
pub fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error only means another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub(crate) fn emulator_enabled() -> bool {
    std::env::var("AZURE_STORAGE_USE_EMULATOR")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

fn emulator_endpoint() -> String {
    std::env::var("AZURITE_BLOB_STORAGE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:10000".to_string())
}

fn env_account() -> Option<String> {
    ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

fn account_from_host(host: &str) -> std::result::Result<String, &'static str> {
    for suffix in [
        ".blob.core.windows.net",
        ".dfs.core.windows.net",
        ".blob.fabric.microsoft.com",
        ".dfs.fabric.microsoft.com",
    ] {
        if let Some(account) = host.to_ascii_lowercase().strip_suffix(suffix) {
            if !account.is_empty()
                && account.len() <= 24
                && account
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Ok(account.to_string());
            }
            return Err("the storage account name must be 3-24 lowercase letters and digits");
        }
    }
    Err("the host must be <account>.blob.core.windows.net or <account>.dfs.core.windows.net")
}

fn check_container(name: &str) -> std::result::Result<(), &'static str> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err("the container name must be 3-63 lowercase letters, digits and single hyphens")
    }
}

/// Splits a URL path into decoded segments, refusing anything that could leave the container.
fn decode_segments(path: &str) -> std::result::Result<Vec<String>, &'static str> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for raw in trimmed.split('/') {
        let seg = percent_decode(raw).ok_or("the path has a malformed %-escape or is not UTF-8")?;
        if seg.is_empty() {
            return Err("the path has an empty segment (//)");
        }
        if seg == "." || seg == ".." {
            return Err(
                "the path may not contain '.' or '..' segments: it must stay inside its container",
            );
        }
        if seg.contains('/') || seg.contains('\\') || seg.chars().any(char::is_control) {
            return Err("a path segment holds an encoded slash, backslash or control character");
        }
        out.push(seg);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~' | b'=' | b'+' | b'@' | b',')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn absolute(p: &FsPath) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure(account: Option<&str>, container: &str, path: &[&str]) -> StoreUrl {
        StoreUrl::Azure {
            account: account.map(str::to_string),
            container: container.to_string(),
            path: path.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn parses_every_azure_form() {
        assert_eq!(
            StoreUrl::parse("lake", "az://lake/prod").unwrap(),
            azure(None, "lake", &["prod"])
        );
        assert_eq!(
            StoreUrl::parse("lake", "abfss://lake@acct.dfs.core.windows.net/prod/x").unwrap(),
            azure(Some("acct"), "lake", &["prod", "x"])
        );
        assert_eq!(
            StoreUrl::parse(
                "source",
                "https://acct.blob.core.windows.net/landing/sales/mx/2026-11-22.csv"
            )
            .unwrap(),
            azure(Some("acct"), "landing", &["sales", "mx", "2026-11-22.csv"])
        );
        assert_eq!(
            StoreUrl::parse(
                "source",
                "https://acct.blob.core.windows.net/landing/a%20b.csv"
            )
            .unwrap(),
            azure(Some("acct"), "landing", &["a b.csv"])
        );
    }

    #[test]
    fn parses_local_forms() {
        assert_eq!(
            StoreUrl::parse("lake", "file:///tmp/lake").unwrap(),
            StoreUrl::Local(PathBuf::from("/tmp/lake"))
        );
        match StoreUrl::parse("lake", "./lake").unwrap() {
            StoreUrl::Local(p) => assert!(p.is_absolute() && p.ends_with("lake")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_escapes_and_credentials() {
        for bad in [
            "az://landing/../other/x.csv",
            "https://acct.blob.core.windows.net/landing/%2e%2e/x.csv",
            "https://acct.blob.core.windows.net/landing/a//b.csv",
            "https://acct.blob.core.windows.net/landing/x.csv?sv=1&sig=secret",
            "https://user:pw@acct.blob.core.windows.net/landing/x.csv",
            "file:///tmp/../etc/passwd",
            "ftp://host/x",
            "az://Bad_Container/x",
            "https://evil.example.com/landing/x.csv",
        ] {
            let err = StoreUrl::parse("source", bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn canonical_urls_are_stable() {
        assert_eq!(
            azure(Some("acct"), "landing", &["houses", "a b.csv"]).canonical(),
            "https://acct.blob.core.windows.net/landing/houses/a%20b.csv"
        );
        assert_eq!(
            StoreUrl::Local(PathBuf::from("/x/y")).canonical(),
            "file:///x/y"
        );
    }

    #[test]
    fn paths_and_urls_under_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let loc = StoreLocation::open("lake", dir.path().to_str().unwrap()).unwrap();
        let p = loc.path("bronze/houses/v1/_manifest.json");
        assert_eq!(p.as_ref(), "bronze/houses/v1/_manifest.json");
        assert!(loc.url_of(&p).ends_with("/bronze/houses/v1/_manifest.json"));
        assert!(loc.url_of(&p).starts_with("file:///"));
    }
}
