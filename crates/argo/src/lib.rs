//! # medallion-argo
//!
//! Typed Argo objects Medallion reads and writes, and nothing else (no I/O):
//! - [`plugin`]: the executor-plugin protocol (`POST /api/v1/template.execute`): what the agent
//!   sends, what a plugin answers.
//! - [`duration`]: Go duration strings (`30s`, `1h30m`) as Argo writes and reads them.
//! - [`sensor`]: Argo Events Sensor semantics (filters, conditions, parameter mapping) to replay
//!   an event offline; [`event_source`]: what an `azureQueueStorage` EventSource dispatches
//!   (its filter) before a Sensor sees the event.
//! - [`expr`]: the expression languages (govaluate `when`, expr-lang retry and filter
//!   expressions).
//! - [`schema`]: validation against Argo's own JSON schemas (vendored, embedded).
//! - [`lint`]: the rules beyond the schema, each mirroring Argo's or Argo Events' source.

pub mod duration;
pub mod event_source;
pub mod expr;
pub mod lint;
pub mod model;
pub mod plugin;
pub mod schema;
pub mod sensor;

pub use duration::{DurationError, format_go_duration, parse_go_duration};
pub use plugin::{
    ExecuteTemplateArgs, ExecuteTemplateReply, NodePhase, NodeResult, Outputs, Parameter,
};
