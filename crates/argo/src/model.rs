//! Typed views of the Argo fields both `medallion lint` and `medallion run` read, so that each
//! is read in one place with one meaning.

use serde_json::Value;

/// A `templateRef` of a task or step, or a Workflow's `workflowTemplateRef`: which
/// WorkflowTemplate (or ClusterWorkflowTemplate, with `clusterScope: true`) and, for a
/// templateRef, which of its templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateRef<'a> {
    pub name: &'a str,
    /// Empty for a `workflowTemplateRef`.
    pub template: &'a str,
    pub cluster_scope: bool,
}

impl<'a> TemplateRef<'a> {
    fn read(r: &'a Value) -> TemplateRef<'a> {
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        TemplateRef {
            name: text("name"),
            template: text("template"),
            cluster_scope: r
                .get("clusterScope")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// The `templateRef` of a DAG task or a step, if it has one.
    pub fn of_call(call: &'a Value) -> Option<TemplateRef<'a>> {
        call.get("templateRef").map(TemplateRef::read)
    }

    /// The `workflowTemplateRef` of a workflow spec, if it has one.
    pub fn of_spec(spec: &'a Value) -> Option<TemplateRef<'a>> {
        spec.get("workflowTemplateRef").map(TemplateRef::read)
    }

    /// The kind of the document it names.
    pub fn kind(&self) -> &'static str {
        if self.cluster_scope {
            "ClusterWorkflowTemplate"
        } else {
            "WorkflowTemplate"
        }
    }

    /// The library key: (cluster scope, name).
    pub fn key(&self) -> (bool, &'a str) {
        (self.cluster_scope, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_read_their_scope() {
        let task = json!({"templateRef": {"name": "medallion-steps", "template": "import", "clusterScope": true}});
        let r = TemplateRef::of_call(&task).unwrap();
        assert_eq!(
            (r.name, r.template, r.kind()),
            ("medallion-steps", "import", "ClusterWorkflowTemplate")
        );
        let spec = json!({"workflowTemplateRef": {"name": "house-price-pipeline"}});
        assert_eq!(
            TemplateRef::of_spec(&spec).unwrap().key(),
            (false, "house-price-pipeline")
        );
        assert!(TemplateRef::of_call(&json!({"template": "x"})).is_none());
    }
}
