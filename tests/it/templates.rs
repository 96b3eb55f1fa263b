//! The step library in workflow-templates/: the ClusterWorkflowTemplate is generated from the
//! WorkflowTemplate, both validate against Argo's schema, kustomize sets images in one place,
//! every image is a Dockerfile target with the workspace's tag, every pod runs as its image's
//! user with a read-only root filesystem and /tmp as an emptyDir, every input a template uses
//! is declared.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::support::{argo_schema, medallion, py, repo};

#[test]
fn the_step_library_is_consistent_with_the_images_and_argos_schema() {
    let dir = repo().join("workflow-templates");
    let regenerated = medallion(
        &[
            "templates",
            "cluster",
            dir.join("medallion-steps.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(regenerated.code, 0, "{}", regenerated.stderr);
    assert_eq!(
        regenerated.stdout,
        std::fs::read_to_string(dir.join("medallion-steps-cluster.yaml")).unwrap(),
        "medallion-steps-cluster.yaml drifted; regenerate: medallion templates cluster -o workflow-templates/medallion-steps-cluster.yaml"
    );
    let schema = argo_schema("workflows-schema.json");
    let report = py(
        "argo_schema.py",
        &[
            schema.to_str().unwrap(),
            &format!("={}", dir.join("medallion-steps.yaml").display()),
            &format!("={}", dir.join("medallion-steps-cluster.yaml").display()),
            &format!("={}", dir.join("house-price-pipeline.yaml").display()),
            &format!(
                "={}",
                dir.join("sales-segmentation-pipeline.yaml").display()
            ),
            &format!("={}", dir.join("release-pipeline.yaml").display()),
            &format!("={}", dir.join("drift-watch.yaml").display()),
        ],
    );
    // Python's jsonschema agrees with `medallion lint`'s own validator on the shipped files.
    assert_eq!(report.trim(), "6 documents valid");

    // What `kubectl apply -k` would apply.
    let built = Command::new("kubectl")
        .args(["kustomize", dir.to_str().unwrap()])
        .output()
        .expect("kubectl runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let built_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(built_file.path(), &built.stdout).unwrap();
    let docs: Value = serde_json::from_str(&py(
        "yaml_to_json.py",
        &[built_file.path().to_str().unwrap()],
    ))
    .unwrap();
    let kinds: Vec<&str> = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    // The step library twice (namespaced and cluster-wide), the two data pipelines, the
    // release and platform pipelines, drift-watch and sales-db-nightly.
    assert_eq!(
        kinds,
        vec![
            "ClusterWorkflowTemplate",
            "CronWorkflow",
            "CronWorkflow",
            "WorkflowTemplate",
            "WorkflowTemplate",
            "WorkflowTemplate",
            "WorkflowTemplate",
            "WorkflowTemplate"
        ]
    );

    // Dockerfile targets and their users.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let mut users: BTreeMap<String, String> = BTreeMap::new();
    let mut current = None;
    for line in dockerfile.lines() {
        if let Some(t) = line.strip_prefix("FROM scratch AS ") {
            current = Some(t.trim().to_string());
        } else if let (Some(t), Some(u)) = (&current, line.strip_prefix("USER ")) {
            users.insert(t.clone(), u.trim().to_string());
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    let mut containers = 0;
    for doc in docs.as_array().unwrap() {
        let spec = doc["spec"].get("workflowSpec").unwrap_or(&doc["spec"]);
        for t in spec["templates"].as_array().unwrap() {
            let name = t["name"].as_str().unwrap();
            // Every {{inputs.parameters.x}} is declared.
            let declared: Vec<&str> = t["inputs"]["parameters"]
                .as_array()
                .map(|ps| ps.iter().map(|p| p["name"].as_str().unwrap()).collect())
                .unwrap_or_default();
            let text = t.to_string();
            for used in text.split("{{inputs.parameters.").skip(1) {
                let param = used.split("}}").next().unwrap();
                assert!(
                    declared.contains(&param),
                    "{name} uses {param}, not declared in {declared:?}"
                );
            }
            if t.get("dag").is_some() {
                continue; // pipelines: checked by `medallion lint` (tests/it/pipelines.rs)
            }
            if let Some(sc) = t.get("script") {
                // The platform pipeline's upstream terraform image: pod-hardened like ours, not
                // retried (a half-applied change needs a person).
                let image = sc["image"].as_str().unwrap();
                assert!(
                    image.starts_with("docker.io/hashicorp/terraform:"),
                    "{name}: {image}"
                );
                let sec = &sc["securityContext"];
                assert_eq!(sec["runAsUser"], 65532, "{name}");
                assert_eq!(sec["readOnlyRootFilesystem"], true, "{name}");
                assert_eq!(sec["capabilities"]["drop"][0], "ALL", "{name}");
                assert!(sc["resources"]["limits"].is_object(), "{name}");
                assert!(t.get("retryStrategy").is_none(), "{name}");
                continue;
            }
            let Some(c) = t.get("container") else {
                assert!(
                    t.get("plugin").is_some() || t.get("suspend").is_some(),
                    "{name} is neither a container, a script, a plugin nor a suspend template"
                );
                continue;
            };
            containers += 1;
            let image = c["image"].as_str().unwrap();
            let (repo_name, tag) = image.rsplit_once(':').unwrap();
            let target = repo_name.rsplit('/').next().unwrap();
            assert_eq!(
                tag, version,
                "{name}: image tag {tag} is not the workspace version"
            );
            let user = users.get(target).unwrap_or_else(|| {
                panic!("{name}: {target} is not a Dockerfile target ({users:?})")
            });
            let sc = &c["securityContext"];
            assert_eq!(
                format!("{}:{}", sc["runAsUser"], sc["runAsGroup"]),
                *user,
                "{name}: pod user differs from the image's"
            );
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
            let tmp = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == "/tmp")
                .expect("a /tmp mount");
            let volume = t["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == tmp["name"])
                .unwrap();
            assert!(
                volume.get("emptyDir").is_some(),
                "{name}: /tmp is not an emptyDir"
            );
            let args: Vec<&str> = c["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert!(
                args.windows(2)
                    .any(|w| w == ["--outputs-dir", "/tmp/outputs"]),
                "{name}: {args:?}"
            );
            for p in t["outputs"]["parameters"].as_array().unwrap() {
                let path = p["valueFrom"]["path"].as_str().unwrap();
                assert!(path.starts_with("/tmp/outputs/"), "{name}: output {path}");
            }
            assert!(
                c["resources"]["requests"].is_object() && c["resources"]["limits"].is_object(),
                "{name}"
            );
            assert_eq!(
                t["retryStrategy"]["expression"],
                r#"lastRetry.status == "Error" || asInt(lastRetry.exitCode) == 1 || asInt(lastRetry.exitCode) == -1 || asInt(lastRetry.exitCode) >= 128"#,
                "{name}"
            );
            // The image's one binary is named, so no registry look-up is needed.
            let image = c["image"].as_str().unwrap();
            let binary = image.rsplit('/').next().unwrap().split(':').next().unwrap();
            assert_eq!(
                c["command"],
                serde_json::json!([format!("/{binary}")]),
                "{name}"
            );
        }
    }
    assert_eq!(
        containers, 22,
        "import, refine, profile, train, plan, approve-plan, record-review, deploy, connect, import-query in both copies; the platform pipeline's plan-infrastructure and authorize-apply"
    );
}
