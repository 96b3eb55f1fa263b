//! # medallion-release
//!
//! What decides whether a change may go out, shared by every front end (the `medallion-approve`
//! step, the executor plugin's pod-less `approve`, the `medallion approve` CLI):
//! - [`policy`]: a YAML policy (metric thresholds, "not worse than production", destructive
//!   changes, protected addresses, replicas, namespaces, human review) and its evaluation.
//! - [`plan`]: a release plan (the changes to make, metrics side by side) with its content hash.
//! - [`approval`]: approval requests and decisions in the lake, created once, bound to a
//!   workflow uid and a gate.
//! - [`live_diff`]: what a Kubernetes release changes in the cluster, from a server-side dry run.
//! - [`models`]: reads of the model registry (aliases, a version's metrics and manifest).

pub mod approval;
pub mod deployments;
pub mod error;
pub mod k8s_objects;
pub mod live_diff;
pub mod model_release;
pub mod models;
pub mod plan;
pub mod plan_approval;
pub mod policy;
pub mod terraform;

pub use error::{Error, Result};
