//! The release crate's errors, each one line naming what and where.

use medallion_lake::{Classified, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] medallion_lake::Error),

    /// A policy, plan or argument is malformed; `field` names where.
    #[error("{source_name}: {field}: {message}")]
    Invalid {
        source_name: String,
        field: String,
        message: String,
    },

    /// Something the decision needs is not in the lake.
    #[error("{what} not found in {lake}: {hint}")]
    Missing {
        what: String,
        lake: String,
        hint: String,
    },

    /// A decision was already recorded and decisions never change.
    #[error(
        "{gate} of workflow {workflow} was already {decision} by {by} at {at}; decisions are final"
    )]
    AlreadyDecided {
        workflow: String,
        gate: String,
        decision: String,
        by: String,
        at: String,
    },

    /// An alias did not name what the mover expected, or moved concurrently.
    #[error("alias {alias} of model {model}: {message}")]
    AliasMoved {
        model: String,
        alias: String,
        message: String,
    },

    /// A plan may not be applied: no approval, a rejection, a missing review, another hash.
    #[error("plan {plan} of {target} may not be applied: {message}")]
    NotAuthorized {
        plan: String,
        target: String,
        message: String,
    },

    /// A plan's content does not match its recorded hash.
    #[error(
        "plan {location} has hash {recorded} but its content hashes to {actual}; it was changed after planning, plan again"
    )]
    PlanTampered {
        location: String,
        recorded: String,
        actual: String,
    },
}

impl Error {
    pub fn invalid(
        source: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            source_name: source.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Classified for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Lake(e) => e.class(),
            Error::Invalid { .. } | Error::Missing { .. } => ErrorClass::BadInput,
            Error::AlreadyDecided { .. }
            | Error::PlanTampered { .. }
            | Error::NotAuthorized { .. }
            | Error::AliasMoved { .. } => ErrorClass::Precondition,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
