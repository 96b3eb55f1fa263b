//! The model crate's errors: one line each, naming what, where and what to do.

use medallion_lake::{Classified, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] medallion_lake::Error),

    #[error(transparent)]
    Release(#[from] medallion_release::Error),

    /// The model spec is malformed; `field` names where.
    #[error("{file}: {field}: {message}")]
    Spec {
        file: String,
        field: String,
        message: String,
    },

    /// The data cannot train this spec (a missing or mistyped column, too few rows...).
    #[error("{dataset}: {message}")]
    Data { dataset: String, message: String },

    /// A model file cannot be read or does not describe a usable model.
    #[error("model file {location}: {message}")]
    ModelFile { location: String, message: String },

    /// The MLflow tracking server refused or failed a call.
    #[error("MLflow {endpoint}: {message}")]
    Mlflow {
        endpoint: String,
        message: String,
        class: ErrorClass,
    },
}

impl Error {
    pub fn spec(file: &str, field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Spec {
            file: file.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn data(dataset: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Data {
            dataset: dataset.into(),
            message: message.into(),
        }
    }
}

impl Classified for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Lake(e) => e.class(),
            Error::Release(e) => e.class(),
            Error::Spec { .. } | Error::Data { .. } => ErrorClass::BadInput,
            Error::ModelFile { .. } => ErrorClass::BadInput,
            Error::Mlflow { class, .. } => *class,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
