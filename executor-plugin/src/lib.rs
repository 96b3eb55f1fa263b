//! # medallion-plugin
//!
//! Medallion's Argo executor plugin: an HTTP server in the workflow's agent pod that runs the
//! light steps of a pipeline without a pod of their own (DESIGN.md §4, ../shared/argo/ARGO.md).
//!
//! - [`server`]: `POST /api/v1/template.execute` as Argo's agent sends it: bearer token,
//!   body limit, `{}` for templates addressed to other plugins, one-line 400s.
//! - [`token`]: the agent's token file, compared in constant time, re-read when it changes.
//! - [`actions`]: `approve` (policy gates, waiting on a person's decision in the lake),
//!   `lookup` (latest versions, model aliases, manifest fields) and `check` (profile verdicts).
//! - [`cache`]: a small time-bounded cache for look-ups.

pub mod actions;
pub mod cache;
pub mod config;
pub mod server;
pub mod token;

pub use config::Config;
