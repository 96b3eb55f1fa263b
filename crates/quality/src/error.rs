//! The quality crate's errors: contract files, data that does not fit its contract, and lake errors.

use medallion_lake::{Classified, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] medallion_lake::Error),

    #[error("{path}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    ContractFile {
        path: String,
        line: Option<usize>,
        message: String,
    },

    /// The bronze version cannot be refined under this contract at all.
    #[error("{version}: {message}")]
    Mismatch { version: String, message: String },

    /// Too many rows broke the contract: nothing was committed.
    #[error(
        "{version}: {rejected} of {rows} rows break the contract, more than its max_rejected_fraction {fraction} allows (first: row {first_row}, column '{first_column}': {first_reason}); nothing was committed to silver. Fix the upload or the contract"
    )]
    TooManyRejected {
        version: String,
        rejected: u64,
        rows: u64,
        fraction: f64,
        first_row: i64,
        first_column: String,
        first_reason: String,
    },
}

impl Classified for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Lake(e) => e.class(),
            Error::ContractFile { .. } | Error::Mismatch { .. } => ErrorClass::BadInput,
            Error::TooManyRejected { .. } => ErrorClass::Precondition,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
