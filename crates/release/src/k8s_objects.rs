//! The Kubernetes objects of a model release, built with k8s-openapi's types: a Deployment per
//! slot (`<endpoint>-blue`, `<endpoint>-green`) running `medallion-serve`, the Service that
//! selects the serving slot, and an optional HorizontalPodAutoscaler for the slot.
//!
//! The plan stores them (so the approved plan holds the exact objects); the `manifests` target
//! writes them as YAML for GitOps and the `kubernetes` target would apply them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model_release::Slot;

/// The service account every serving Deployment runs as; install/models/serve-account.yaml
/// ships it (with its workload identity client id).
pub const SERVE_SERVICE_ACCOUNT: &str = "medallion-serve";

/// The image used when the plan names none (the tag is this build's version).
pub fn default_image() -> String {
    format!(
        "ghcr.io/medallion-dev/medallion-serve:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// What the objects are built from.
#[derive(Debug, Clone)]
pub struct ServeSpec<'a> {
    pub endpoint: &'a str,
    pub namespace: &'a str,
    pub model: &'a str,
    pub version: u64,
    pub slot: Slot,
    pub lake: &'a str,
    pub image: &'a str,
    pub replicas: u32,
    /// Autoscale between `replicas` and this when set.
    pub max_replicas: Option<u32>,
}

fn labels(s: &ServeSpec<'_>, with_slot: bool) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "medallion-serve".to_string(),
        ),
        (
            "app.kubernetes.io/instance".to_string(),
            s.endpoint.to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "medallion-deploy".to_string(),
        ),
    ]);
    if with_slot {
        l.insert("medallion.dev/slot".into(), s.slot.to_string());
    }
    l
}

fn quantity(s: &str) -> Quantity {
    Quantity(s.to_string())
}

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

fn deployment(s: &ServeSpec<'_>) -> Deployment {
    let name = format!("{}-{}", s.endpoint, s.slot);
    let mut pod_labels = labels(s, true);
    pod_labels.insert("azure.workload.identity/use".into(), "true".into());
    let container = Container {
        name: "server".into(),
        image: Some(s.image.to_string()),
        args: Some(vec![
            "--lake".into(),
            s.lake.to_string(),
            "--model".into(),
            s.model.to_string(),
            "--version".into(),
            s.version.to_string(),
            "--endpoint".into(),
            s.endpoint.to_string(),
            "--port".into(),
            "8080".into(),
        ]),
        env: Some(vec![EnvVar {
            name: "TMPDIR".into(),
            value: Some("/tmp".into()),
            ..Default::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..Default::default()
        }]),
        readiness_probe: Some(probe("/v2/health/ready", 5)),
        liveness_probe: Some(probe("/v2/health/live", 10)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), quantity("100m")),
                ("memory".to_string(), quantity("32Mi")),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), quantity("1")),
                ("memory".to_string(), quantity("256Mi")),
            ])),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(s.namespace.to_string()),
            labels: Some(labels(s, true)),
            annotations: Some(BTreeMap::from([(
                "medallion.dev/model".to_string(),
                format!("{} v{}", s.model, s.version),
            )])),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            // With an autoscaler the count is its business: a replicas field here would be
            // re-applied (force) at every release and fight the HPA.
            replicas: match s.max_replicas {
                Some(_) => None,
                None => Some(i32::try_from(s.replicas).unwrap_or(i32::MAX)),
            },
            selector: LabelSelector {
                match_labels: Some(labels(s, true)),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(SERVE_SERVICE_ACCOUNT.into()),
                    // SIGTERM: finish in-flight requests and flush the capture.
                    termination_grace_period_seconds: Some(30),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "tmp".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn service(s: &ServeSpec<'_>) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(s.endpoint.to_string()),
            namespace: Some(s.namespace.to_string()),
            labels: Some(labels(s, false)),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            // Blue/green: the selector names the serving slot; switching it is the release.
            selector: Some(labels(s, true)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn autoscaler(s: &ServeSpec<'_>, max: u32) -> HorizontalPodAutoscaler {
    let name = format!("{}-{}", s.endpoint, s.slot);
    HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(s.namespace.to_string()),
            labels: Some(labels(s, true)),
            ..Default::default()
        },
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name,
            },
            min_replicas: Some(i32::try_from(s.replicas).unwrap_or(i32::MAX)),
            max_replicas: i32::try_from(max).unwrap_or(i32::MAX),
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(70),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn to_value<T: serde::Serialize + k8s_openapi::Resource>(object: &T) -> Result<Value> {
    let mut v = serde_json::to_value(object)
        .map_err(|e| Error::invalid("kubernetes objects", T::KIND, e.to_string()))?;
    if let Some(map) = v.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(T::API_VERSION.into()));
        map.insert("kind".into(), Value::String(T::KIND.into()));
    }
    Ok(v)
}

/// The release's objects, as JSON values with apiVersion and kind, in apply order:
/// the slot's Deployment, its autoscaler (if any), then the Service.
pub fn objects(s: &ServeSpec<'_>) -> Result<Vec<Value>> {
    if s.replicas == 0 {
        return Err(Error::invalid(
            "arguments",
            "--replicas",
            "must be at least 1",
        ));
    }
    let mut out = vec![to_value(&deployment(s))?];
    if let Some(max) = s.max_replicas {
        if max < s.replicas {
            return Err(Error::invalid(
                "arguments",
                "--max-replicas",
                format!("{max} is below --replicas {}", s.replicas),
            ));
        }
        out.push(to_value(&autoscaler(s, max))?);
    }
    out.push(to_value(&service(s))?);
    Ok(out)
}

/// `Kind/namespace/name` of an object.
pub fn address(object: &Value) -> String {
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("?");
    format!(
        "{}/{}/{}",
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(max: Option<u32>) -> ServeSpec<'static> {
        ServeSpec {
            endpoint: "hp",
            namespace: "models",
            model: "house-price",
            version: 7,
            slot: Slot::Green,
            lake: "az://lake/medallion",
            image: "ghcr.io/medallion-dev/medallion-serve:0.1.0",
            replicas: 2,
            max_replicas: max,
        }
    }

    #[test]
    fn objects_select_the_slot_and_run_the_version_non_root() {
        let objects = objects(&spec(Some(5))).unwrap();
        let addresses: Vec<String> = objects.iter().map(address).collect();
        assert_eq!(
            addresses,
            [
                "Deployment/models/hp-green",
                "HorizontalPodAutoscaler/models/hp-green",
                "Service/models/hp"
            ]
        );
        let d = &objects[0];
        assert_eq!(d["apiVersion"], "apps/v1");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.windows(2).any(|w| w == ["--version", "7"]), "{args:?}");
        assert_eq!(c["securityContext"]["runAsUser"], 65532);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
        // The Deployment's selector matches its pods, and the Service selects the same slot.
        let selector = &d["spec"]["selector"]["matchLabels"];
        let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
        for (k, v) in selector.as_object().unwrap() {
            assert_eq!(&pod_labels[k], v, "{k}");
        }
        assert_eq!(&objects[2]["spec"]["selector"], selector);
        assert_eq!(objects[1]["spec"]["maxReplicas"], 5);
        // The autoscaler owns the count: the Deployment sets none (min comes from the HPA).
        assert!(d["spec"].get("replicas").is_none(), "{d:#}");
        assert_eq!(objects[1]["spec"]["minReplicas"], 2);
        assert_eq!(objects_of_fixed_size()[0]["spec"]["replicas"], 2);
        assert_eq!(objects[1]["apiVersion"], "autoscaling/v2");
    }

    fn objects_of_fixed_size() -> Vec<Value> {
        objects(&spec(None)).unwrap()
    }

    #[test]
    fn bad_replica_counts_are_refused() {
        assert_eq!(objects(&spec(None)).unwrap().len(), 2);
        let mut zero = spec(None);
        zero.replicas = 0;
        assert!(objects(&zero).is_err());
        assert!(objects(&spec(Some(1))).is_err());
    }
}
