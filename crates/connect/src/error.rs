//! The connect crate's errors, each one line naming what failed, where, and what to do. None
//! carries a secret value: secrets are only ever read from the environment into a client.

use medallion_lake::{Classified, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] medallion_lake::Error),

    /// An argument or a stored record is malformed.
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },

    /// No connection of that name is registered.
    #[error(
        "connection '{name}' is not registered in {lake}; register it with `medallion-connect register --name {name} ...`"
    )]
    NotRegistered { name: String, lake: String },

    /// The environment variable a secret reference names is not set.
    #[error(
        "connection '{connection}': the secret for {field} is read from ${env}, which is not set{hint}"
    )]
    SecretMissing {
        connection: String,
        field: &'static str,
        env: String,
        hint: String,
    },

    /// The other side refused: wrong credentials, no such database, table or container, a bad
    /// query. Retrying cannot help.
    #[error("connection '{connection}' ({kind}): {message}")]
    Refused {
        connection: String,
        kind: &'static str,
        message: String,
    },

    /// The other side could not be reached or failed midway; a retry may help.
    #[error(
        "connection '{connection}' ({kind}) is unreachable: {message}; retry, or check the network and the host"
    )]
    Unreachable {
        connection: String,
        kind: &'static str,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Lake(e) => e.class(),
            Error::Invalid { .. }
            | Error::NotRegistered { .. }
            | Error::SecretMissing { .. }
            | Error::Refused { .. } => ErrorClass::BadInput,
            Error::Unreachable { .. } => ErrorClass::Transient,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.class().exit_code()
    }

    /// As a lake error (what a row source returns while an import runs).
    pub fn into_lake(self, url: &str) -> medallion_lake::Error {
        match self {
            Error::Lake(e) => e,
            other => medallion_lake::Error::SourceQuery {
                url: url.to_string(),
                class: other.class(),
                message: other.to_string(),
            },
        }
    }
}

impl Classified for Error {
    fn class(&self) -> ErrorClass {
        Error::class(self)
    }
}
