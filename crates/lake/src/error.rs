//! The lake's one error type. Every variant names what failed and where, in one line a person can
//! act on, and never carries a secret: store messages pass through [`crate::redact`].

use std::fmt;

/// How a caller should treat a failure; steps map it to their exit code (see DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying cannot help: the input, a name, a URL or the configuration is wrong (exit 2).
    BadInput,
    /// The input is fine but a condition for going on is not met (exit 3).
    Precondition,
    /// Anything else, including store outages after bounded retries: may be retried (exit 1).
    Transient,
}

impl ErrorClass {
    /// The exit code a step uses for this class (DESIGN.md §3).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Transient => 1,
            ErrorClass::BadInput => 2,
            ErrorClass::Precondition => 3,
        }
    }
}

/// An error that knows how a caller should treat it; steps map the class to their exit code.
pub trait Classified: fmt::Display {
    fn class(&self) -> ErrorClass;
}

impl Classified for Error {
    fn class(&self) -> ErrorClass {
        Error::class(self)
    }
}

/// Where in a source a problem sits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// 1-based data row (the header is row 0).
    pub row: Option<u64>,
    /// Column name.
    pub column: Option<String>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.row, &self.column) {
            (Some(r), Some(c)) => write!(f, " at row {r}, column '{c}'"),
            (Some(r), None) => write!(f, " at row {r}"),
            (None, Some(c)) => write!(f, " in column '{c}'"),
            (None, None) => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} '{url}' is not usable: {reason}")]
    InvalidUrl {
        what: &'static str,
        url: String,
        reason: String,
    },

    #[error("{what} name '{name}' is not allowed: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },

    #[error("source {url} does not exist; check the path or blob name")]
    SourceNotFound { url: String },

    #[error("cannot {op} {path}: {message}")]
    LocalIo {
        op: &'static str,
        path: String,
        message: String,
        class: ErrorClass,
    },

    #[error("store {op} failed for {location}: {message}")]
    Store {
        op: &'static str,
        location: String,
        message: String,
        class: ErrorClass,
    },

    /// The source's bytes are not what its format promises (bad gzip, bad UTF-8, no header...).
    #[error("{url}{position}: {message}")]
    BadSource {
        url: String,
        position: Position,
        message: String,
    },

    #[error(
        "{url}: more bad rows than --max-bad-rows {limit} allows (the first{first_position}: {first_reason}); fix the file or raise --max-bad-rows"
    )]
    TooManyBadRows {
        url: String,
        limit: u64,
        first_position: Position,
        first_reason: String,
    },

    #[error("{path}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    BadSpecFile {
        path: String,
        line: Option<usize>,
        message: String,
    },

    #[error("manifest {location} is unreadable: {message}; the lake may have been edited by hand")]
    CorruptManifest { location: String, message: String },

    #[error("{location} is unreadable: {message}; it may have been edited by hand")]
    CorruptDocument { location: String, message: String },

    #[error(
        "{what} {dataset} v{version} does not exist in {lake}; list versions with `medallion lake list`"
    )]
    VersionNotFound {
        what: &'static str,
        dataset: String,
        version: u64,
        lake: String,
    },

    #[error(
        "could not commit {dataset}: {attempts} other writers committed first each time; retry the step"
    )]
    CommitContention { dataset: String, attempts: u32 },

    #[error("parquet {op} failed for {location}: {message}")]
    Parquet {
        op: &'static str,
        location: String,
        message: String,
        class: ErrorClass,
    },

    /// A query source (a database connection) failed while it was read.
    #[error("{url}: {message}")]
    SourceQuery {
        url: String,
        message: String,
        class: ErrorClass,
    },

    #[error("{context}: {message}")]
    Internal {
        context: &'static str,
        message: String,
    },
}

impl Error {
    /// How a caller should treat this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidUrl { .. }
            | Error::InvalidName { .. }
            | Error::SourceNotFound { .. }
            | Error::BadSource { .. }
            | Error::TooManyBadRows { .. }
            | Error::BadSpecFile { .. }
            | Error::VersionNotFound { .. } => ErrorClass::BadInput,
            Error::LocalIo { class, .. }
            | Error::Store { class, .. }
            | Error::Parquet { class, .. }
            | Error::SourceQuery { class, .. } => *class,
            Error::CorruptManifest { .. }
            | Error::CorruptDocument { .. }
            | Error::CommitContention { .. }
            | Error::Internal { .. } => ErrorClass::Transient,
        }
    }

    /// The exit code a step should use for this error.
    pub fn exit_code(&self) -> u8 {
        self.class().exit_code()
    }

    /// A store failure, classified (not found, auth: bad input; the rest transient) and redacted.
    pub fn store(op: &'static str, location: impl Into<String>, err: object_store::Error) -> Self {
        use object_store::Error as E;
        let raw = crate::redact::text(&one_line(&err.to_string()));
        let azure = azure_error(&raw);
        let code = azure.as_ref().map(|(c, _)| c.as_str()).unwrap_or("");
        let auth_code = code.starts_with("Authentication") || code.starts_with("Authorization");
        let auth_error =
            auth_code || matches!(err, E::PermissionDenied { .. } | E::Unauthenticated { .. });
        let class = match (&err, code) {
            (_, "ContainerNotFound" | "BlobNotFound" | "InvalidResourceName" | "InvalidUri") => {
                ErrorClass::BadInput
            }
            _ if auth_error => ErrorClass::BadInput,
            (E::NotFound { .. } | E::InvalidPath { .. } | E::NotSupported { .. }, _) => {
                ErrorClass::BadInput
            }
            (E::UnknownConfigurationKey { .. }, _) => ErrorClass::BadInput,
            _ => ErrorClass::Transient,
        };
        let hint = if code == "ContainerNotFound" {
            "; create the container or fix the URL"
        } else if auth_error {
            "; check the Azure credentials in the environment (workload identity, AZURE_STORAGE_* variables) and the role assignment"
        } else if class == ErrorClass::Transient {
            "; the store may be unreachable, retry later"
        } else {
            ""
        };
        let message = match azure {
            Some((code, text)) => format!("{code}: {text}"),
            None => raw,
        };
        Error::Store {
            op,
            location: location.into(),
            message: format!("{message}{hint}"),
            class,
        }
    }

    pub(crate) fn local_io(op: &'static str, path: &std::path::Path, err: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let class = match err.kind() {
            K::NotFound
            | K::PermissionDenied
            | K::IsADirectory
            | K::InvalidInput
            | K::InvalidData => ErrorClass::BadInput,
            _ => ErrorClass::Transient,
        };
        Error::LocalIo {
            op,
            path: path.display().to_string(),
            message: one_line(&err.to_string()),
            class,
        }
    }

    pub(crate) fn bad_source(url: &str, position: Position, message: impl Into<String>) -> Self {
        Error::BadSource {
            url: url.to_string(),
            position,
            message: message.into(),
        }
    }

    /// Anything unexpected (retryable), with its context.
    pub fn internal(context: &'static str, message: impl fmt::Display) -> Self {
        Error::Internal {
            context,
            message: crate::redact::text(&one_line(&message.to_string())),
        }
    }
}

/// The error code and message of an Azure Storage error body (`<Code>..</Code><Message>..`),
/// without the request id and time that follow the message.
fn azure_error(text: &str) -> Option<(String, String)> {
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let len = text[start..].find(close)?;
        Some(text[start..start + len].trim().to_string())
    };
    let code = between("<Code>", "</Code>")?;
    let message = between("<Message>", "</Message>").unwrap_or_default();
    let message = message
        .split(" RequestId:")
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    Some((code, message))
}

/// Folds a multi-line message into one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_error_bodies_become_short_messages() {
        let body = "Error performing GET http://x/devstoreaccount1/nolake?[redacted] in 4ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?> <Error> <Code>ContainerNotFound</Code> <Message>The specified container does not exist. RequestId:bb44 Time:2026</Message> </Error>";
        assert_eq!(
            azure_error(body),
            Some((
                "ContainerNotFound".to_string(),
                "The specified container does not exist.".to_string()
            ))
        );
        let err = Error::store(
            "list",
            "az://nolake/x",
            object_store::Error::Generic {
                store: "MicrosoftAzure",
                source: body.into(),
            },
        );
        assert_eq!(err.class(), ErrorClass::BadInput);
        assert_eq!(
            err.to_string(),
            "store list failed for az://nolake/x: ContainerNotFound: The specified container does not exist.; create the container or fix the URL"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(ErrorClass::Transient.exit_code(), 1);
        assert_eq!(ErrorClass::BadInput.exit_code(), 2);
        assert_eq!(ErrorClass::Precondition.exit_code(), 3);
    }
}
