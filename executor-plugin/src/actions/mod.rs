//! The actions a template can ask for: `plugin: {medallion: {<action>: {...}}}`.
//!
//! Arguments arrive after Argo's substitution, so numbers and booleans may come as strings
//! (`version: "{{tasks.refine.outputs.parameters.version}}"` becomes `"4"`); both are accepted.
//! An invalid argument fails the node with a message naming the field; a lake that cannot be
//! reached answers 503 so the agent retries.

use std::fmt;
use std::sync::Arc;

use medallion_argo::plugin::{ObjectMeta, Template};
use medallion_argo::{ExecuteTemplateReply, NodePhase, Parameter};
use medallion_lake::{Classified, DatasetName, ErrorClass, Layer, StoreUrl};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde_json::Value;

use crate::server::AppState;

pub mod approve;
pub mod check;
pub mod lookup;

/// The actions this plugin serves.
pub const ACTIONS: [&str; 3] = ["approve", "lookup", "check"];

/// Why an action did not produce a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// The template is wrong (a field, a name, a missing record): the node fails with this.
    Invalid(String),
    /// The lake could not be reached or answered with an error that may pass: 503, retried.
    Unavailable(String),
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::Invalid(m) | ActionError::Unavailable(m) => f.write_str(m),
        }
    }
}

impl ActionError {
    fn classified(e: &dyn Classified) -> ActionError {
        match e.class() {
            ErrorClass::Transient => ActionError::Unavailable(e.to_string()),
            ErrorClass::BadInput | ErrorClass::Precondition => ActionError::Invalid(e.to_string()),
        }
    }
}

impl From<medallion_lake::Error> for ActionError {
    fn from(e: medallion_lake::Error) -> Self {
        ActionError::classified(&e)
    }
}

impl From<medallion_release::Error> for ActionError {
    fn from(e: medallion_release::Error) -> Self {
        ActionError::classified(&e)
    }
}

/// What every action sees.
pub struct Call<'a> {
    pub state: &'a Arc<AppState>,
    pub workflow: &'a ObjectMeta,
    pub template: &'a Template,
}

/// Runs the action `value` (the template's `plugin.medallion`) names.
pub async fn run(call: Call<'_>, value: &Value) -> Result<ExecuteTemplateReply, ActionError> {
    let (action, args) = match value.as_object() {
        Some(map) if map.len() == 1 => map.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
    .ok_or_else(|| {
        ActionError::Invalid(format!(
            "plugin.medallion must hold exactly one action ({}), found {}",
            ACTIONS.join(", "),
            describe(value)
        ))
    })?;
    match action {
        "approve" => approve::run(&call, parse_args("approve", args)?).await,
        "lookup" => lookup::run(&call, parse_args("lookup", args)?).await,
        "check" => check::run(&call, parse_args("check", args)?).await,
        other => Err(ActionError::Invalid(format!(
            "plugin.medallion.{other} is not an action of this plugin; use one of {}",
            ACTIONS.join(", ")
        ))),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Object(m) if m.is_empty() => "an empty object".into(),
        Value::Object(m) => format!("keys {}", m.keys().cloned().collect::<Vec<_>>().join(", ")),
        Value::Null => "null".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        _ => "a scalar".into(),
    }
}

fn parse_args<T: DeserializeOwned>(action: &str, args: &Value) -> Result<T, ActionError> {
    let args = if args.is_null() {
        &Value::Object(Default::default())
    } else {
        args
    };
    serde_json::from_value(args.clone())
        .map_err(|e| ActionError::Invalid(format!("plugin.medallion.{action}: {e}")))
}

/// A field error, named as it sits in the template.
pub fn invalid(action: &str, field: &str, message: impl fmt::Display) -> ActionError {
    ActionError::Invalid(format!("plugin.medallion.{action}.{field}: {message}"))
}

/// `latest` or a version number (a JSON number or a string of digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionArg {
    #[default]
    Latest,
    Number(u64),
}

impl<'de> Deserialize<'de> for VersionArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::Number(n) => n.as_u64().filter(|n| *n > 0).map(VersionArg::Number),
            Value::String(s) if s == "latest" => Some(VersionArg::Latest),
            Value::String(s) => s
                .trim()
                .trim_start_matches('v')
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(VersionArg::Number),
            _ => None,
        }
        .ok_or_else(|| {
            de::Error::custom(format!(
                "version {v} is not a version (a number from 1, or latest)"
            ))
        })
    }
}

/// A boolean that may arrive as `true`/`false` or as the strings `"true"`/`"false"`.
pub fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(de::Error::custom(format!("{other} is not true or false"))),
    }
}

/// A number that may arrive as a JSON number or a string.
pub fn flexible_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("'{s}' is not a number"))),
        other => Err(de::Error::custom(format!("{other} is not a number"))),
    }
}

/// A dataset, model, alias or gate name from the arguments.
pub fn name_arg(action: &str, field: &str, raw: &str) -> Result<DatasetName, ActionError> {
    DatasetName::new(raw).map_err(|e| invalid(action, field, e))
}

/// `bronze`, `silver` or `models`.
pub fn layer_arg(action: &str, raw: Option<&str>) -> Result<Layer, ActionError> {
    raw.unwrap_or("silver")
        .parse()
        .map_err(|e| invalid(action, "layer", e))
}

/// The plugin serves one lake; a template that names another is refused rather than served with
/// this plugin's credentials.
pub fn check_lake(call: &Call<'_>, action: &str, lake: Option<&str>) -> Result<(), ActionError> {
    let Some(raw) = lake.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let url = StoreUrl::parse("lake", raw).map_err(|e| invalid(action, "lake", e))?;
    let canonical = match &url {
        StoreUrl::Local(p) => p
            .canonicalize()
            .map(|p| StoreUrl::Local(p).canonical())
            .unwrap_or_else(|_| url.canonical()),
        _ => url.canonical(),
    };
    if canonical == call.state.config.lake.url() {
        Ok(())
    } else {
        Err(invalid(
            action,
            "lake",
            format!(
                "{canonical} is not the lake this plugin serves ({}); leave lake out or run a plugin for that lake",
                call.state.config.lake.url()
            ),
        ))
    }
}

pub fn param(name: &str, value: impl Into<String>) -> Parameter {
    Parameter {
        name: name.to_string(),
        value: value.into(),
    }
}

pub fn node(
    phase: NodePhase,
    message: impl Into<String>,
    outputs: Vec<Parameter>,
) -> ExecuteTemplateReply {
    ExecuteTemplateReply::node(phase, message, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_flexible_values() {
        let v = |j: Value| serde_json::from_value::<VersionArg>(j);
        assert_eq!(v(serde_json::json!(3)).unwrap(), VersionArg::Number(3));
        assert_eq!(v(serde_json::json!("4")).unwrap(), VersionArg::Number(4));
        assert_eq!(v(serde_json::json!("v5")).unwrap(), VersionArg::Number(5));
        assert_eq!(v(serde_json::json!("latest")).unwrap(), VersionArg::Latest);
        for bad in [
            serde_json::json!(0),
            serde_json::json!(""),
            serde_json::json!("x"),
            serde_json::json!(true),
        ] {
            assert!(
                v(bad.clone())
                    .unwrap_err()
                    .to_string()
                    .contains("is not a version"),
                "{bad}"
            );
        }
    }
}
