//! `medallion doctor`: is this cluster ready for Medallion? Against the cluster of the
//! kubeconfig (or in-cluster, or `--kube-api`), read-only: Argo Workflows' and Argo Events' CRDs
//! and versions, executor plugins enabled on the controller, the plugin's ConfigMap, the
//! artifact repository, every ConfigMap the installed WorkflowTemplates mount, the service
//! accounts with their workload identity, and whether each service account may do what the
//! templates need (SubjectAccessReview, as the API server's authorizer answers it). Each failed
//! check says what to apply.

use medallion_steps::kube_apply::{KubeClient, KubeConn};
use serde_json::{Value, json};

/// Why doctor could not judge the cluster (not: what it found wrong, which is a check).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
    #[error("{0}")]
    BadInput(String),
    #[error(
        "{0} check(s) failed (listed above); apply what each says, then run `medallion doctor` again"
    )]
    Failed(usize),
}

impl DoctorError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DoctorError::Unreachable(_) => 1,
            DoctorError::BadInput(_) => 2,
            DoctorError::Failed(_) => 3,
        }
    }
}

/// Where Medallion is installed.
#[derive(Debug, Clone)]
pub struct Namespaces {
    pub workflows: String,
    pub events: String,
    pub models: String,
}

/// One check: what, whether it passed, what was found, and what to apply when it did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub fix: String,
}

fn pass(name: &str, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        detail: detail.into(),
        fix: String::new(),
    }
}

fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: false,
        detail: detail.into(),
        fix: fix.into(),
    }
}

const INSTALL: &str = "kubectl apply -k install/ (after editing install/settings.yaml)";

/// The release lines Medallion supports, and the ones it checks the image tag of.
const WORKFLOWS_VERSIONS: &[&str] = &["v4.1.", "v3.7."];
const EVENTS_VERSIONS: &[&str] = &["v1.9."];

struct Doctor {
    kube: KubeClient,
    ns: Namespaces,
}

impl Doctor {
    async fn get(&self, path: &str) -> Result<Option<Value>, DoctorError> {
        self.kube
            .get(path)
            .await
            .map_err(|(m, _)| DoctorError::Unreachable(m))
    }

    async fn crds(&self, name: &str, plurals: &[&str], fix: &str) -> Result<Check, DoctorError> {
        let mut missing = Vec::new();
        for p in plurals {
            let path =
                format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{p}.argoproj.io");
            if self.get(&path).await?.is_none() {
                missing.push(format!("{p}.argoproj.io"));
            }
        }
        Ok(if missing.is_empty() {
            pass(name, format!("{} CRDs installed", plurals.len()))
        } else {
            fail(name, format!("missing CRDs: {}", missing.join(", ")), fix)
        })
    }

    /// The image tag of a controller Deployment's first container, and that container.
    async fn controller(&self, namespace: &str, name: &str) -> Result<Option<Value>, DoctorError> {
        self.get(&format!(
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        ))
        .await
        .map(|d| d.and_then(|d| d.pointer("/spec/template/spec/containers/0").cloned()))
    }

    async fn workflows_controller(&self) -> Result<Vec<Check>, DoctorError> {
        let ns = &self.ns.workflows;
        let Some(container) = self.controller(ns, "workflow-controller").await? else {
            return Ok(vec![fail(
                "Argo Workflows controller",
                format!("no Deployment workflow-controller in namespace {ns}"),
                format!("install Argo Workflows 4.1 or 3.7 into {ns} (its release's install.yaml)"),
            )]);
        };
        let image = container.get("image").and_then(Value::as_str).unwrap_or("");
        let tag = image.rsplit(':').next().unwrap_or("");
        let version = if WORKFLOWS_VERSIONS.iter().any(|v| tag.starts_with(v)) {
            pass("Argo Workflows version", image)
        } else {
            fail(
                "Argo Workflows version",
                format!("{image}: Medallion supports Argo Workflows 4.1 and 3.7"),
                "upgrade (or downgrade) Argo Workflows to 4.1 or 3.7",
            )
        };
        let plugins = container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|e| {
                e.get("name").and_then(Value::as_str) == Some("ARGO_EXECUTOR_PLUGINS")
                    && e.get("value").and_then(Value::as_str) == Some("true")
            });
        let plugins = if plugins {
            pass(
                "Executor plugins enabled",
                "ARGO_EXECUTOR_PLUGINS=true on the controller",
            )
        } else {
            fail(
                "Executor plugins enabled",
                "the controller lacks ARGO_EXECUTOR_PLUGINS=true: lookup-latest, check and approve would never run",
                format!(
                    "kubectl -n {ns} set env deployment/workflow-controller ARGO_EXECUTOR_PLUGINS=true"
                ),
            )
        };
        Ok(vec![version, plugins])
    }

    async fn events_controller(&self) -> Result<Check, DoctorError> {
        let ns = &self.ns.events;
        let Some(container) = self.controller(ns, "controller-manager").await? else {
            return Ok(fail(
                "Argo Events version",
                format!("no Deployment controller-manager in namespace {ns}"),
                format!("install Argo Events 1.9 into {ns}"),
            ));
        };
        let image = container.get("image").and_then(Value::as_str).unwrap_or("");
        let tag = image.rsplit(':').next().unwrap_or("");
        Ok(if EVENTS_VERSIONS.iter().any(|v| tag.starts_with(v)) {
            pass("Argo Events version", image)
        } else {
            fail(
                "Argo Events version",
                format!("{image}: Medallion supports Argo Events 1.9"),
                "install Argo Events 1.9",
            )
        })
    }

    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<Value>, DoctorError> {
        self.get(&format!("/api/v1/namespaces/{namespace}/configmaps/{name}"))
            .await
    }

    async fn plugin(&self) -> Result<Check, DoctorError> {
        let ns = &self.ns.workflows;
        let name = "Executor plugin ConfigMap";
        Ok(
            match self.config_map(ns, "medallion-executor-plugin").await? {
                Some(cm)
                    if cm
                        .pointer("/metadata/labels/workflows.argoproj.io~1configmap-type")
                        .and_then(Value::as_str)
                        == Some("ExecutorPlugin") =>
                {
                    pass(name, format!("{ns}/medallion-executor-plugin"))
                }
                Some(_) => fail(
                    name,
                    format!(
                        "{ns}/medallion-executor-plugin lacks the label workflows.argoproj.io/configmap-type: ExecutorPlugin, so the controller ignores it"
                    ),
                    INSTALL,
                ),
                None => fail(
                    name,
                    format!("no ConfigMap {ns}/medallion-executor-plugin"),
                    INSTALL,
                ),
            },
        )
    }

    async fn artifact_repository(&self) -> Result<Check, DoctorError> {
        let ns = &self.ns.workflows;
        let name = "Artifact repository";
        if let Some(cm) = self.config_map(ns, "artifact-repositories").await? {
            let key = cm
                .pointer("/metadata/annotations/workflows.argoproj.io~1default-artifact-repository")
                .and_then(Value::as_str);
            return Ok(match key {
                Some(k) if cm.pointer(&format!("/data/{k}")).is_some() => {
                    pass(name, format!("{ns}/artifact-repositories, key {k}"))
                }
                Some(k) => fail(
                    name,
                    format!("{ns}/artifact-repositories names key {k}, which it does not hold"),
                    INSTALL,
                ),
                None => fail(
                    name,
                    format!(
                        "{ns}/artifact-repositories has no workflows.argoproj.io/default-artifact-repository annotation"
                    ),
                    INSTALL,
                ),
            });
        }
        if let Some(cm) = self.config_map(ns, "workflow-controller-configmap").await?
            && cm.pointer("/data/artifactRepository").is_some()
        {
            return Ok(pass(name, "the controller's artifactRepository"));
        }
        Ok(fail(
            name,
            "none: profile's report and the platform pipeline's saved plan fail with \"artifact storage is not configured\"",
            INSTALL,
        ))
    }

    /// Every ConfigMap the installed WorkflowTemplates mount or read values from.
    async fn mounted_config_maps(&self) -> Result<Check, DoctorError> {
        let ns = &self.ns.workflows;
        let name = "ConfigMaps the templates mount";
        let list = self
            .get(&format!(
                "/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflowtemplates"
            ))
            .await?
            .unwrap_or(Value::Null);
        let mut wanted: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for wt in list
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let owner = wt
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            collect_config_maps(wt, &mut |cm| {
                wanted
                    .entry(cm.to_string())
                    .or_default()
                    .push(owner.clone());
            });
        }
        if wanted.is_empty() {
            return Ok(fail(name, format!("no WorkflowTemplates in {ns}"), INSTALL));
        }
        let mut missing = Vec::new();
        for (cm, owners) in &wanted {
            if self.config_map(ns, cm).await?.is_none() {
                let mut owners = owners.clone();
                owners.dedup();
                missing.push(format!("{cm} (used by {})", owners.join(", ")));
            }
        }
        Ok(if missing.is_empty() {
            pass(name, format!("{} present", wanted.len()))
        } else {
            // Medallion's own ConfigMaps come with the bundle; the platform pipeline's Terraform
            // configuration is the team's own.
            let fix = if missing
                .iter()
                .any(|m| m.starts_with("medallion-terraform "))
            {
                format!(
                    "{INSTALL}; medallion-terraform holds your Terraform configuration: kubectl create configmap medallion-terraform -n {ns} --from-file=<your .tf folder>"
                )
            } else {
                INSTALL.to_string()
            };
            fail(
                name,
                format!("missing in {ns}: {}", missing.join("; ")),
                fix,
            )
        })
    }

    async fn service_accounts(&self) -> Result<Vec<Check>, DoctorError> {
        let mut out = Vec::new();
        let accounts = [
            (&self.ns.workflows, "medallion-workflow", true),
            (&self.ns.models, "medallion-serve", true),
            (&self.ns.events, "medallion-eventsource", true),
            (&self.ns.events, "medallion-sensor", false),
        ];
        for (ns, sa, identity) in accounts {
            let name = format!("ServiceAccount {ns}/{sa}");
            let got = self
                .get(&format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}"))
                .await?;
            out.push(match got {
                None => fail(&name, "missing", INSTALL),
                Some(a)
                    if identity
                        && a.pointer("/metadata/annotations/azure.workload.identity~1client-id")
                            .and_then(Value::as_str)
                            .is_none_or(|c| c.is_empty() || c.starts_with("00000000-")) =>
                {
                    fail(
                        &name,
                        "no azure.workload.identity/client-id (or the placeholder): its pods get no Azure token",
                        "set the client id in install/settings.yaml, then kubectl apply -k install/",
                    )
                }
                Some(_) => pass(&name, if identity { "with its Azure client id" } else { "present" }),
            });
        }
        let ns = &self.ns.workflows;
        let secret = "medallion-workflow.service-account-token";
        out.push(
            if self
                .get(&format!("/api/v1/namespaces/{ns}/secrets/{secret}"))
                .await?
                .is_some()
            {
                pass("Agent token Secret", format!("{ns}/{secret}"))
            } else {
                fail(
                    "Agent token Secret",
                    format!(
                        "no Secret {ns}/{secret}: the executor plugin's agent pod cannot start"
                    ),
                    INSTALL,
                )
            },
        );
        Ok(out)
    }

    /// Whether a service account may do something, as the API server's authorizer answers.
    async fn may(
        &self,
        account: (&str, &str),
        verb: &str,
        namespace: &str,
        group: &str,
        resource: &str,
    ) -> Result<bool, DoctorError> {
        let (sa_ns, sa) = account;
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": format!("system:serviceaccount:{sa_ns}:{sa}"),
                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{sa_ns}"), "system:authenticated"],
                "resourceAttributes": {"namespace": namespace, "verb": verb, "group": group,
                                       "resource": resource, "subresource": subresource}
            }
        });
        let answer = self
            .kube
            .create(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                &review,
            )
            .await
            .map_err(|(m, _)| DoctorError::Unreachable(m))?;
        Ok(answer.pointer("/status/allowed").and_then(Value::as_bool) == Some(true))
    }

    async fn permissions(&self) -> Result<Vec<Check>, DoctorError> {
        let wf = (self.ns.workflows.as_str(), "medallion-workflow");
        let sensor = (self.ns.events.as_str(), "medallion-sensor");
        let (w, m) = (self.ns.workflows.as_str(), self.ns.models.as_str());
        let needs: [Need<'_>; 3] = [
            (
                wf,
                "step pods report results, the plugin's agent reads its tasks",
                vec![
                    ("create", w, "argoproj.io", "workflowtaskresults"),
                    ("patch", w, "argoproj.io", "workflowtaskresults"),
                    ("list", w, "argoproj.io", "workflowtasksets"),
                    ("watch", w, "argoproj.io", "workflowtasksets"),
                    ("patch", w, "argoproj.io", "workflowtasksets/status"),
                ],
            ),
            (
                wf,
                "deploy releases models (kubernetes target)",
                vec![
                    ("get", m, "apps", "deployments"),
                    ("patch", m, "apps", "deployments"),
                    ("get", m, "autoscaling", "horizontalpodautoscalers"),
                    ("patch", m, "autoscaling", "horizontalpodautoscalers"),
                    ("get", m, "", "services"),
                    ("patch", m, "", "services"),
                    ("delete", m, "", "services"),
                    ("create", m, "", "services/proxy"),
                ],
            ),
            (
                sensor,
                "the Sensor submits Workflows",
                vec![
                    ("create", w, "argoproj.io", "workflows"),
                    ("list", w, "argoproj.io", "workflows"),
                    ("get", w, "argoproj.io", "workflowtemplates"),
                ],
            ),
        ];
        let mut out = Vec::new();
        for (account, purpose, rules) in needs {
            let name = format!("{}/{} may: {purpose}", account.0, account.1);
            let mut denied = Vec::new();
            for (verb, namespace, group, resource) in rules {
                if !self.may(account, verb, namespace, group, resource).await? {
                    denied.push(format!("{verb} {resource} in {namespace}"));
                }
            }
            out.push(if denied.is_empty() {
                pass(&name, "allowed")
            } else {
                fail(&name, format!("denied: {}", denied.join(", ")), INSTALL)
            });
        }
        Ok(out)
    }
}

/// The ConfigMaps a WorkflowTemplate names: volumes, env and envFrom, parameters' valueFrom.
fn collect_config_maps(value: &Value, add: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let name = v.get("name").and_then(Value::as_str);
                match (k.as_str(), name) {
                    ("configMap" | "configMapKeyRef" | "configMapRef", Some(n))
                        if !n.contains("{{") =>
                    {
                        add(n)
                    }
                    _ => collect_config_maps(v, add),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| collect_config_maps(v, add)),
        _ => {}
    }
}

/// A service account, what its permissions are for, and (verb, namespace, API group,
/// resource or resource/subresource) it must be allowed.
type Need<'a> = (
    (&'a str, &'a str),
    &'a str,
    Vec<(&'a str, &'a str, &'a str, &'a str)>,
);

/// Runs every check (read-only) and returns them.
pub async fn checks(conn: &KubeConn, ns: Namespaces) -> Result<Vec<Check>, DoctorError> {
    let kube = KubeClient::new(conn).map_err(|(m, _)| DoctorError::BadInput(m))?;
    let d = Doctor { kube, ns };
    let mut out = Vec::new();
    let version = d
        .get("/version")
        .await?
        .and_then(|v| {
            v.get("gitVersion")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    out.push(pass(
        "Kubernetes API",
        format!("{} ({version})", d.kube.server()),
    ));
    out.push(
        d.crds(
            "Argo Workflows CRDs",
            &[
                "workflows",
                "workflowtemplates",
                "clusterworkflowtemplates",
                "cronworkflows",
                "workflowtaskresults",
                "workflowtasksets",
            ],
            "install Argo Workflows 4.1 or 3.7 (its release's install.yaml)",
        )
        .await?,
    );
    out.extend(d.workflows_controller().await?);
    out.push(
        d.crds(
            "Argo Events CRDs",
            &["eventbus", "eventsources", "sensors"],
            "install Argo Events 1.9",
        )
        .await?,
    );
    out.push(d.events_controller().await?);
    out.push(d.plugin().await?);
    out.push(d.artifact_repository().await?);
    out.push(d.mounted_config_maps().await?);
    out.extend(d.service_accounts().await?);
    out.extend(d.permissions().await?);
    Ok(out)
}

/// Prints the checks (a table, or JSON) and fails when one did not pass.
pub fn report(checks: &[Check], json_format: bool) -> Result<(), DoctorError> {
    if json_format {
        let list: Vec<Value> = checks
            .iter()
            .map(|c| json!({"check": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix}))
            .collect();
        println!("{}", json!({"checks": list}));
    } else {
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
        for c in checks {
            println!(
                "{} {:width$}  {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
            if !c.ok {
                println!("     {:width$}  fix: {}", "", c.fix);
            }
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(DoctorError::Failed(failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_maps_are_found_wherever_a_template_names_them() {
        let wt = json!({"spec": {"templates": [
            {"volumes": [{"name": "c", "configMap": {"name": "medallion-contracts"}}]},
            {"container": {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "k"}}}],
                           "envFrom": [{"configMapRef": {"name": "from-env"}}]}},
            {"volumes": [{"name": "p", "configMap": {"name": "{{inputs.parameters.cm}}"}}]}]}});
        let mut found = Vec::new();
        collect_config_maps(&wt, &mut |n| found.push(n.to_string()));
        assert_eq!(found, ["medallion-contracts", "settings", "from-env"]);
    }
}
