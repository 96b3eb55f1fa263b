//! The executor-plugin protocol (../shared/argo/executor-plugin-swagger.yml, `ExecuteTemplateArgs`
//! and `ExecuteTemplateReply`). Only the fields a plugin reads are typed; the rest of the
//! template is ignored when parsing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /api/v1/template.execute`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ExecuteTemplateArgs {
    pub workflow: Workflow,
    pub template: Template,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Workflow {
    #[serde(default)]
    pub metadata: ObjectMeta,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub uid: String,
}

/// The parts of an Argo `Template` a plugin reads.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Template {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    /// `plugin: {<plugin-name>: <any JSON>}`; absent for non-plugin templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Inputs {
    #[serde(default)]
    pub parameters: Vec<InputParameter>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct InputParameter {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Template {
    /// This template's arguments for plugin `name`, if it is addressed to that plugin.
    pub fn plugin_args(&self, name: &str) -> Option<&Value> {
        self.plugin.as_ref()?.get(name)
    }
}

/// A node's phase as a plugin reports it.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum NodePhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Error,
}

impl NodePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            NodePhase::Pending => "Pending",
            NodePhase::Running => "Running",
            NodePhase::Succeeded => "Succeeded",
            NodePhase::Failed => "Failed",
            NodePhase::Error => "Error",
        }
    }
}

/// The body of a 200 reply. `ExecuteTemplateReply::default()` (`{}`) means "not mine".
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ExecuteTemplateReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeResult>,
    /// A Go duration: call again after this long (only meaningful for a non-final phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct NodeResult {
    pub phase: NodePhase,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Outputs {
    #[serde(default)]
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub value: String,
}

impl ExecuteTemplateReply {
    /// A node in `phase` with `message` and output parameters (name, value).
    pub fn node(phase: NodePhase, message: impl Into<String>, outputs: Vec<Parameter>) -> Self {
        ExecuteTemplateReply {
            node: Some(NodeResult {
                phase,
                message: message.into(),
                outputs: (!outputs.is_empty()).then_some(Outputs {
                    parameters: outputs,
                }),
            }),
            requeue: None,
        }
    }

    /// Asks the agent to call again after `requeue` (a Go duration string).
    pub fn with_requeue(mut self, requeue: String) -> Self {
        self.requeue = Some(requeue);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_agent_sends() {
        let body = r#"{"workflow":{"metadata":{"name":"wf-1","namespace":"argo","uid":"u-1"}},
            "template":{"name":"gate","inputs":{"parameters":[{"name":"r2","value":"0.9"}]},
            "plugin":{"medallion":{"lookup":{"dataset":"houses"}}},"metadata":{},"outputs":{}}}"#;
        let args: ExecuteTemplateArgs = serde_json::from_str(body).unwrap();
        assert_eq!(args.workflow.metadata.uid, "u-1");
        assert_eq!(args.template.name, "gate");
        assert_eq!(
            args.template.plugin_args("medallion").unwrap()["lookup"]["dataset"],
            "houses"
        );
        assert!(args.template.plugin_args("hello").is_none());
    }

    #[test]
    fn writes_what_the_agent_reads() {
        assert_eq!(
            serde_json::to_string(&ExecuteTemplateReply::default()).unwrap(),
            "{}"
        );
        let reply = ExecuteTemplateReply::node(
            NodePhase::Running,
            "waiting",
            vec![Parameter {
                name: "verdict".into(),
                value: "needs-review".into(),
            }],
        )
        .with_requeue("30s".into());
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            serde_json::json!({"node":{"phase":"Running","message":"waiting",
                "outputs":{"parameters":[{"name":"verdict","value":"needs-review"}]}},"requeue":"30s"})
        );
    }
}
