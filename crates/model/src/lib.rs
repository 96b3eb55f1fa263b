//! # medallion-model
//!
//! Models from lake versions: a YAML [`spec::ModelSpec`], feature encoding fitted on the
//! training rows ([`features`]), ridge / least squares ([`linear`]), gradient-boosted trees
//! ([`gbt`], scikit-learn's HistGradientBoosting algorithm), k-means ([`kmeans`]) on customer
//! RFM features, holdout metrics, the documented model file ([`model_file`]), the model card
//! ([`card`]), and [`train::train`]: data version + spec → a committed model version whose
//! identity makes retraining the same inputs a no-op.

pub mod card;
pub mod error;
pub mod example;
pub mod expr;
pub mod features;
pub mod fit;
pub mod frame;
pub mod gbt;
pub mod kmeans;
pub mod linear;
pub mod metrics;
pub mod mlflow;
pub mod model_file;
pub mod rng;
pub mod spec;
pub mod train;

pub use error::{Error, Result};
pub use model_file::ModelFile;
pub use spec::ModelSpec;
