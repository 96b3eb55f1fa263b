//! The pipelines as a user runs them: `medallion lint` over every shipped YAML (and broken
//! copies), `medallion run` and `medallion events replay --run` executing the templates with the
//! real step binaries, on a local lake and on Azurite.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Azurite, env_refs, medallion, repo};

/// `medallion run` flags that make a run independent of the current folder.
pub(crate) fn run_flags(runs: &Path) -> Vec<String> {
    let r = repo();
    vec![
        "--library".into(),
        r.join("workflow-templates").display().to_string(),
        "--config-map".into(),
        format!(
            "medallion-contracts={}",
            r.join("examples/contracts").display()
        ),
        "--config-map".into(),
        format!(
            "medallion-model-specs={}",
            r.join("examples/models").display()
        ),
        "--config-map".into(),
        format!(
            "medallion-policies={}",
            r.join("examples/policies").display()
        ),
        "--runs-dir".into(),
        runs.display().to_string(),
    ]
}

pub(crate) fn status(runs: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(runs.join(name).join("status.json"))
        .unwrap_or_else(|e| panic!("status.json of {name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub(crate) fn node<'a>(status: &'a Value, task: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["task"] == task)
        .unwrap_or_else(|| panic!("no node {task} in {status:#}"))
}

fn run_names(runs: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(runs)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("status.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn versions(lake: &Path, layer: &str, dataset: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(lake.join(layer).join(dataset))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("_manifest.json").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The folders `medallion lint` checks by default: everything that goes on a cluster.
const SHIPPED: &[&str] = &[
    "workflow-templates",
    "event-sources",
    "executor-plugin",
    "install",
];

#[test]
fn every_shipped_yaml_passes_lint_for_both_argo_versions() {
    let r = repo();
    let dirs: Vec<String> = SHIPPED
        .iter()
        .map(|d| r.join(d).display().to_string())
        .collect();
    let dockerfile = r.join("Dockerfile").display().to_string();
    for version in ["4.1", "3.7"] {
        let mut args = vec![
            "lint",
            "--dockerfile",
            &dockerfile,
            "--argo-version",
            version,
        ];
        args.extend(dirs.iter().map(String::as_str));
        let out = medallion(&args, &[]);
        assert_eq!(out.code, 0, "{version}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stdout
                .contains(&format!("checked against Argo {version}'s schemas")),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("; 0 problem(s)"), "{}", out.stdout);
        // Every Argo document was schema-checked: the two step libraries, the pipelines, the
        // Sensor, EventSource and EventBus.
        let json = medallion(&[&args[..], &["--format", "json"]].concat(), &[]);
        let v: Value = serde_json::from_str(&json.stdout).unwrap();
        assert!(v["schema_checked"].as_u64().unwrap() >= 7, "{v}");
        assert_eq!(v["argo_version"], version);
    }
}

/// A copy of the shipped YAML with one text replaced in one file.
fn broken_copy(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            if e.path().is_dir() {
                copy_tree(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for sub in SHIPPED {
        copy_tree(&repo().join(sub), &dir.path().join(sub));
    }
    std::fs::copy(repo().join("Dockerfile"), dir.path().join("Dockerfile")).unwrap();
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dir
}

/// Lints a broken copy: exit 2, and the expected finding (and the Argo source it cites).
fn assert_lint_finds(file: &str, from: &str, to: &str, expected: &str, cites: &str) {
    let dir = broken_copy(file, from, to);
    let d = dir.path();
    let mut args = vec![
        "lint".to_string(),
        "--dockerfile".into(),
        d.join("Dockerfile").display().to_string(),
    ];
    args.extend(SHIPPED.iter().map(|s| d.join(s).display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = medallion(&refs, &[]);
    assert_eq!(out.code, 2, "{file}: {from} → {to}\n{}", out.stdout);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(expected))
        .unwrap_or_else(|| {
            panic!(
                "{file}: {from} → {to}: expected {expected:?} in\n{}",
                out.stdout
            )
        });
    assert!(line.contains(cites), "{line} cites {cites}");
    assert!(out.stderr.contains("problem(s) found"), "{}", out.stderr);
}

#[test]
fn broken_copies_of_the_templates_fail_lint_naming_file_and_path() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "workflow-templates/house-price-pipeline.yaml",
            "template: refine}",
            "template: refin}",
            "house-price-pipeline.yaml: document 1 (WorkflowTemplate house-price-pipeline): spec.templates[0].dag.tasks[1]: template of WorkflowTemplate medallion-steps \"refin\" does not exist (did you mean \"refine\"?)",
        ),
        (
            "workflow-templates/house-price-pipeline.yaml",
            "{{tasks.import.outputs.parameters.version}}",
            "{{tasks.import.outputs.parameters.versoin}}",
            "spec.templates[0].dag.tasks[1].arguments.parameters[2].value: {{tasks.import.outputs.parameters.versoin}}: output parameter of task import \"versoin\" does not exist (did you mean \"version\"?)",
        ),
        (
            "workflow-templates/sales-segmentation-pipeline.yaml",
            "{{workflow.parameters.model-spec}}",
            "{{workflow.parameters.model_spec}}",
            "{{workflow.parameters.model_spec}}: workflow parameter \"model_spec\" does not exist (did you mean \"model-spec\"?)",
        ),
        (
            "workflow-templates/medallion-steps.yaml",
            "ghcr.io/medallion-dev/medallion-refine:0.1.0",
            "python:3.12-slim",
            "spec.templates[1].container.image: image \"python:3.12-slim\" is not one this repository builds",
        ),
        (
            "workflow-templates/medallion-steps.yaml",
            "activeDeadlineSeconds: \"3600\"",
            "activeDeadlineSecond: \"3600\"",
            "spec.templates[0].activeDeadlineSecond: unknown field \"activeDeadlineSecond\" (did you mean \"activeDeadlineSeconds\"?)",
        ),
        (
            "workflow-templates/medallion-steps.yaml",
            "\"--dataset\", \"{{inputs.parameters.dataset}}\",\n               \"--source\"",
            "\"--dataset\", \"{{inputs.parameters.datset}}\",\n               \"--source\"",
            "{{inputs.parameters.datset}}: input parameter \"datset\" does not exist (did you mean \"dataset\"?)",
        ),
        (
            "event-sources/sensor-landing.yaml",
            "workflowTemplateRef:\n                  name: sales-segmentation-pipeline",
            "workflowTemplateRef:\n                  name: sales-pipeline",
            "sensor-landing.yaml: document 1 (Sensor landing): spec.triggers[1].template.argoWorkflow.source.resource.spec.workflowTemplateRef.name: WorkflowTemplate \"sales-pipeline\" does not exist",
        ),
        (
            "event-sources/sensor-landing.yaml",
            "- name: source-url\n                      value: \"\"\n          parameters:\n            - src:\n                dependencyName: houses-csv",
            "- name: source-url\n                      value: \"\"\n                    - name: etag\n                      value: \"\"\n          parameters:\n            - src:\n                dependencyName: houses-csv",
            "spec.triggers[0].template.argoWorkflow.source.resource.spec.arguments.parameters[1]: parameter \"etag\" does not exist",
        ),
    ];
    for (file, from, to, expected) in cases {
        assert_lint_finds(file, from, to, expected, "");
    }
}

/// Each defect issue 17 found in the shipped YAML, put back into a copy of today's files, is
/// found by `medallion lint`, citing the Argo (or Argo Events) source that makes it a defect.
#[test]
fn the_defects_argo_would_hit_on_a_cluster_fail_lint_citing_argo() {
    let steps = "workflow-templates/medallion-steps.yaml";
    let sensor = "event-sources/sensor-landing.yaml";
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // A1: the Workflow goes to the Sensor's namespace.
        (
            sensor,
            "                name: house-price-from-event\n                namespace: argo\n",
            "                name: house-price-from-event\n",
            "the Workflow names no metadata.namespace, so Argo Events submits it into the Sensor's own namespace",
            "argo-events v1.9.11 pkg/sensors/triggers/argo-workflow/argo-workflow.go:127-130",
        ),
        // A2: the review the UI cannot resume, and its expiry without a default.
        (
            steps,
            "          - name: decision\n            default: reject\n            enum: [reject, approve]\n            description: approve or reject the release\n      suspend:",
            "      suspend:",
            "the Argo UI's Resume dialog shows only the suspend node's input parameters, so a person cannot supply \"decision\"",
            "workflow-details.tsx:137-148,456-482",
        ),
        (
            steps,
            "              supplied: {}\n              default: \"\"\n",
            "              supplied: {}\n",
            "when the suspend's duration passes unanswered, Argo ends the node in Error (\"raw output parameter 'summary'",
            "workflow/util/util.go:503-517",
        ),
        // A3: a lake URL a pod cannot open.
        (
            "workflow-templates/house-price-pipeline.yaml",
            "value: abfss://lake@medallionlake.dfs.core.windows.net/medallion",
            "value: az://lake/medallion",
            "\"az://lake/medallion\" takes the storage account from AZURE_STORAGE_ACCOUNT_NAME",
            "crates/lake/src/store.rs",
        ),
        // A4: output artifacts without an artifact repository.
        (
            "install/settings.yaml",
            "  name: artifact-repositories\n",
            "  name: artifact-repository\n",
            "output artifact \"report\" needs an artifact repository",
            "artifactrepositories.go:38-113",
        ),
        // A5: the plugin serving another lake, and an agent pod without identity.
        (
            "executor-plugin/medallion-executor-plugin-configmap.yaml",
            "      valueFrom:\n        configMapKeyRef:\n          name: medallion-settings\n          key: lake\n",
            "      value: az://lake\n",
            "the executor plugin serves lake \"az://lake\"",
            "workflow/controller/agent.go:340-359",
        ),
        (
            "workflow-templates/drift-watch.yaml",
            "    podMetadata:\n      labels:\n        azure.workload.identity/use: \"true\"\n",
            "",
            "this workflow runs executor-plugin templates, whose agent pod takes only spec.podMetadata",
            "workflow/controller/agent.go:155-159,233-236",
        ),
        // B6: fire-and-forget triggers.
        (
            sensor,
            "      atLeastOnce: true\n",
            "",
            "without atLeastOnce: true the trigger is fire-and-forget",
            "argo-events v1.9.11 pkg/sensors/listener.go:372-393",
        ),
        // B7: a retry budget that ends before the step does.
        (
            steps,
            "backoff: {duration: 10s, factor: \"2\", cap: 5m}",
            "backoff: {duration: 10s, factor: \"2\", maxDuration: 5m}",
            "Argo counts maxDuration (300s) from the first attempt's start",
            "workflow/controller/operator.go:1079-1094,1146-1147",
        ),
        // B8: the workflow deadline kills the review.
        (
            "workflow-templates/sales-segmentation-pipeline.yaml",
            "activeDeadlineSeconds: 172800",
            "activeDeadlineSeconds: 21600",
            "the workflow deadline (21600s) passes before suspend review (duration 86400s) can be answered",
            "workflow/controller/operator.go:1390-1433",
        ),
        // B9: a memo key Argo refuses at run time.
        (
            steps,
            "      synchronization:\n        mutexes:\n          - name: \"medallion-bronze-{{inputs.parameters.dataset}}\"\n      retryStrategy: &retry",
            "      memoize:\n        key: \"import_{{inputs.parameters.dataset}}\"\n        cache: {configMap: {name: medallion-import-memo}}\n      synchronization:\n        mutexes:\n          - name: \"medallion-bronze-{{inputs.parameters.dataset}}\"\n      retryStrategy: &retry",
            "invalid cache key: import_{{inputs.parameters.dataset}}",
            "workflow/controller/cache/cache.go:15",
        ),
        // B10: retries that skip evicted and OOM-killed pods.
        (
            steps,
            "expression: 'lastRetry.status == \"Error\" || asInt(lastRetry.exitCode) == 1 || asInt(lastRetry.exitCode) == -1 || asInt(lastRetry.exitCode) >= 128'",
            "expression: \"asInt(lastRetry.exitCode) == 1\"",
            "does not retry an OOMKilled pod (exit code 137)",
            "workflow/controller/operator.go:1786-1891",
        ),
        // B11: a queue message that comes back forever.
        (
            "event-sources/eventsource-landing.yaml",
            "dlq: false",
            "dlq: true",
            "an Azure storage queue has no dead-letter queue behind dlq",
            "azurequeuestorage/start.go",
        ),
        // B12: an entrypoint looked up in the registry.
        (
            steps,
            "        command: [\"/medallion-refine\"]\n",
            "",
            "without a command the controller looks up the entrypoint of \"ghcr.io/medallion-dev/medallion-refine:0.1.0\"",
            "workflow/controller/workflowpod.go:753-769",
        ),
        // B14: a workflow service account without its Azure client id.
        (
            "executor-plugin/rbac.yaml",
            "    azure.workload.identity/client-id: 00000000-0000-0000-0000-000000000000\n",
            "",
            "pods of workflows running as medallion-workflow use workload identity, but the account has no azure.workload.identity/client-id annotation",
            "Azure Workload Identity",
        ),
        // C: rules of Argo's validate.go.
        (
            "workflow-templates/house-price-pipeline.yaml",
            "dependencies: [import]",
            "dependencies: [import, train]",
            "templates.main sorting failed: graph with cycle",
            "util/sorting/topological_sorting.go",
        ),
        (
            "workflow-templates/release-pipeline.yaml",
            "          - name: approve\n            depends: plan",
            "          - name: approve\n            dependencies: [plan]",
            "templates.release cannot use both 'depends' and 'dependencies' in the same DAG template",
            "workflow/validate/validate.go:1472-1474",
        ),
        (
            "workflow-templates/release-pipeline.yaml",
            "- {name: approval-mode, value: auto, enum: [auto, manual], description: auto or manual}",
            "- {name: approval-mode, value: auto, enum: [auto, manual], description: auto or manual}\n          - {name: approval-mode, value: auto}",
            "[6].name 'approval-mode' is not unique",
            "workflow/validate/validate.go:1350-1396",
        ),
        (
            "workflow-templates/sales-segmentation-pipeline.yaml",
            "        value: auto\n        enum: [auto, manual]",
            "        value: sometimes\n        enum: [auto, manual]",
            "spec.arguments.approval-mode.value should be present in spec.arguments.approval-mode.enum list",
            "workflow/validate/validate.go:1016-1060",
        ),
        (
            steps,
            "          - {name: verdict, valueFrom: {path: /tmp/outputs/verdict}}\n          - {name: reasons",
            "          - {name: verdict, valueFrom: {supplied: {}}}\n          - {name: reasons",
            "templates.approve-plan.outputs.parameters.verdict.path must be specified for Container templates",
            "workflow/validate/validate.go:1280-1343",
        ),
        (
            "workflow-templates/release-pipeline.yaml",
            "    - name: release\n      inputs:",
            "    - name: release\n      activeDeadlineSeconds: 600\n      inputs:",
            "templates.release.activeDeadlineSeconds is only valid for leaf templates",
            "workflow/validate/validate.go:848-853",
        ),
        (
            "workflow-templates/release-pipeline.yaml",
            "when: \"'{{tasks.approve.outputs.parameters.verdict}}' == 'needs-review'\"",
            "when: \"'{{tasks.approve.outputs.parameters.verdict}}' = 'needs-review'\"",
            "Invalid 'when' expression",
            "workflow/controller/steps.go:384-420",
        ),
        (
            steps,
            "      plugin:\n        medallion:\n          lookup:",
            "      plugin:\n        other: {}\n        medallion:\n          lookup:",
            "expected exactly one key, got 2",
            "pkg/apis/workflow/v1alpha1/plugin_types.go:15-29",
        ),
        (
            sensor,
            "          operation: submit\n",
            "",
            "template house-price-pipeline is invalid, unknown operation type ",
            "argo-events v1.9.11 pkg/reconciler/sensor/validate.go:138-141,220-224",
        ),
    ];
    for (file, from, to, expected, cites) in cases {
        assert_lint_finds(file, from, to, expected, cites);
    }
}

/// The install bundle as kubectl would apply it: `kubectl kustomize install/` builds, the
/// result lints clean for both Argo versions, every namespace is set where Argo reads it, and
/// the settings reach the templates, the plugin and the service accounts.
#[test]
fn the_install_bundle_builds_and_lints_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", repo().join("install").to_str().unwrap()])
        .output()
        .expect("kubectl (installed on this machine) runs");
    assert!(
        out.status.success(),
        "kubectl kustomize install/: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = dir.path().join("bundle.yaml");
    std::fs::write(&bundle, &out.stdout).unwrap();
    let dockerfile = repo().join("Dockerfile").display().to_string();
    for version in ["4.1", "3.7"] {
        let lint = medallion(
            &[
                "lint",
                "--dockerfile",
                &dockerfile,
                "--argo-version",
                version,
                bundle.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(lint.code, 0, "{version}: {}{}", lint.stdout, lint.stderr);
    }
    let docs: Vec<Value> = serde_yaml_documents(&String::from_utf8_lossy(&out.stdout));
    let find = |kind: &str, name: &str| -> &Value {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} is not in the bundle"))
    };
    let ns = |kind: &str, name: &str| find(kind, name)["metadata"]["namespace"].clone();
    assert_eq!(ns("WorkflowTemplate", "house-price-pipeline"), "argo");
    assert_eq!(ns("Sensor", "landing"), "argo-events");
    assert_eq!(ns("ConfigMap", "artifact-repositories"), "argo");
    assert_eq!(ns("ConfigMap", "medallion-executor-plugin"), "argo");
    assert_eq!(ns("ConfigMap", "medallion-contracts"), "argo");
    // The Sensor's Role is where it submits (argo), bound to its account in argo-events.
    assert_eq!(ns("Role", "medallion-sensor"), "argo");
    let binding = find("RoleBinding", "medallion-sensor");
    assert_eq!(binding["metadata"]["namespace"], "argo");
    assert_eq!(binding["subjects"][0]["namespace"], "argo-events");
    // The release Role is in the models namespace, bound to the workflows' account in argo.
    assert_eq!(ns("Role", "medallion-release"), "models");
    assert_eq!(
        find("RoleBinding", "medallion-release")["subjects"][0]["namespace"],
        "argo"
    );
    // The service account the serving Deployments use is shipped, in their namespace.
    let serve = medallion_release::k8s_objects::SERVE_SERVICE_ACCOUNT;
    assert_eq!(ns("ServiceAccount", serve), "models");
    // The settings reach the templates' lake default.
    let lake = find("ConfigMap", "medallion-settings")["data"]["lake"].clone();
    for t in [
        "house-price-pipeline",
        "sales-segmentation-pipeline",
        "release-pipeline",
    ] {
        let params = find("WorkflowTemplate", t)["spec"]["arguments"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        let value = params.iter().find(|p| p["name"] == "lake").unwrap()["value"].clone();
        assert_eq!(value, lake, "{t}");
    }
}

fn serde_yaml_documents(text: &str) -> Vec<Value> {
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), text).unwrap();
    let json = crate::support::py("yaml_to_json.py", &[path.path().to_str().unwrap()]);
    match serde_json::from_str::<Value>(&json).unwrap() {
        Value::Array(docs) => docs,
        one => vec![one],
    }
}

#[test]
fn both_pipelines_run_locally_from_replayed_events_then_repeat_without_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let landing = d.join("landing");
    std::fs::create_dir_all(landing.join("houses/2026/11")).unwrap();
    std::fs::create_dir_all(landing.join("sales/mx")).unwrap();
    let houses = landing.join("houses/2026/11/windsor.csv");
    let sales = landing.join("sales/mx/2026-11-23.csv");
    std::fs::copy(repo().join("examples/data/houses.csv"), &houses).unwrap();
    std::fs::copy(repo().join("examples/data/sales.csv"), &sales).unwrap();
    let mut events = Vec::new();
    for (f, name) in [(&houses, "houses.json"), (&sales, "sales.json")] {
        let e = d.join(name);
        let out = medallion(
            &[
                "events",
                "blob-created",
                f.to_str().unwrap(),
                "--landing",
                landing.to_str().unwrap(),
                "-o",
                e.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        events.push(e);
    }
    let lake = d.join("lake");
    let runs = d.join("runs");
    let sensor = repo().join("event-sources");
    let lake_param = format!("lake={}", lake.display());
    let mut args: Vec<String> = vec!["events".into(), "replay".into()];
    args.extend(events.iter().map(|e| e.display().to_string()));
    args.extend([
        "--sensor".into(),
        sensor.display().to_string(),
        "--run".into(),
        "-p".into(),
        lake_param.clone(),
    ]);
    args.extend(run_flags(&runs));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = medallion(&argv, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let names = run_names(&runs);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].starts_with("house-price-0x") && names[1].starts_with("sales-segmentation-0x"),
        "{names:?}"
    );
    for name in &names {
        let s = status(&runs, name);
        assert_eq!(s["phase"], "Succeeded", "{s:#}");
        for task in ["import", "refine", "profile", "train"] {
            assert_eq!(node(&s, task)["phase"], "Succeeded", "{task} in {s:#}");
        }
        assert_eq!(node(&s, "import")["outputs"]["created"], "true");
        assert_eq!(node(&s, "train")["outputs"]["created"], "true");
        // The profile report is an artifact of the run.
        let report = node(&s, "profile")["artifacts"]["report"].as_str().unwrap();
        assert!(
            std::fs::read_to_string(report).unwrap().contains("<html"),
            "{report}"
        );
    }
    let house = status(&runs, &names[0]);
    assert_eq!(
        house["parameters"]["source-url"],
        format!(
            "file://{}",
            std::fs::canonicalize(&houses).unwrap().display()
        )
    );
    assert_eq!(node(&house, "train")["outputs"]["passed"], "true");
    let segments = status(&runs, &names[1]);
    assert!(
        node(&segments, "train")["outputs"]["model-uri"]
            .as_str()
            .unwrap()
            .contains("models/customer-segments/v1")
    );
    assert!(
        first.stdout.contains("TASK"),
        "summary table missing:\n{}",
        first.stdout
    );

    // The same events again: the Workflows exist (Kubernetes refuses the names), nothing runs.
    let again = medallion(&argv, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again
            .stdout
            .matches("exists already (a repeated event)")
            .count(),
        2,
        "{}",
        again.stdout
    );
    assert_eq!(run_names(&runs).len(), 2);

    // The same file submitted again by hand under another name: import finds the source's
    // identity already imported (created=false, no memo cache involved), refine and train find
    // their versions, the lake gains nothing.
    let mut args: Vec<String> = vec![
        "run".into(),
        repo()
            .join("workflow-templates/house-price-pipeline.yaml")
            .display()
            .to_string(),
        "--name".into(),
        "by-hand".into(),
        "-p".into(),
        format!("source-url={}", houses.display()),
        "-p".into(),
        lake_param,
    ];
    args.extend(run_flags(&runs));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let by_hand = medallion(&argv, &[]);
    assert_eq!(by_hand.code, 0, "{}\n{}", by_hand.stdout, by_hand.stderr);
    let s = status(&runs, "by-hand");
    assert_eq!(node(&s, "import")["memoized"], false, "{s:#}");
    assert_eq!(node(&s, "import")["outputs"]["created"], "false", "{s:#}");
    assert_eq!(node(&s, "train")["outputs"]["created"], "false", "{s:#}");
    assert_eq!(versions(&lake, "bronze", "houses"), vec!["v1"]);
    assert_eq!(versions(&lake, "silver", "houses"), vec!["v1"]);
    assert_eq!(versions(&lake, "silver", "sales"), vec!["v1"]);
    assert_eq!(versions(&lake, "models", "house-price"), vec!["v1"]);
    assert_eq!(versions(&lake, "models", "customer-segments"), vec!["v1"]);
}

/// A small template exercising the runner's semantics with the real import binary.
const SEMANTICS: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: semantics
spec:
  entrypoint: main
  arguments:
    parameters:
      - {name: lake}
      - {name: source}
      - {name: mode, value: manual, enum: [auto, manual]}
  templates:
    - name: main
      dag:
        tasks:
          - name: import
            templateRef: {name: medallion-steps, template: import}
            arguments:
              parameters:
                - {name: lake, value: "{{workflow.parameters.lake}}"}
                - {name: dataset, value: houses}
                - {name: source, value: "{{workflow.parameters.source}}"}
          - name: only-when-auto
            depends: import
            when: "'{{workflow.parameters.mode}}' == 'auto'"
            template: review
          - name: review
            depends: import
            when: "'{{workflow.parameters.mode}}' == 'manual' && {{tasks.import.outputs.parameters.rows}} > 0"
            template: review
          - name: after-review
            depends: "review.Succeeded && only-when-auto.Skipped"
            template: review
            arguments:
              parameters: [{name: note, value: "{{tasks.review.outputs.parameters.decision}}"}]
    - name: review
      inputs:
        parameters:
          - {name: decision, default: reject, enum: [reject, approve]}
          - {name: note, value: ""}
      suspend: {}
      outputs:
        parameters:
          - {name: decision, valueFrom: {supplied: {}}, enum: [reject, approve]}
          - {name: note, valueFrom: {supplied: {}}}
"#;

#[test]
fn the_runner_honours_when_depends_suspend_and_refuses_what_it_does_not_implement() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("semantics.yaml");
    std::fs::write(&file, SEMANTICS).unwrap();
    let runs = d.join("runs");
    let source = format!(
        "source={}",
        repo().join("examples/data/houses.csv").display()
    );
    let lake = format!("lake={}", d.join("lake").display());
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "run".into(),
            file.display().to_string(),
            "-p".into(),
            lake.clone(),
            "-p".into(),
            source.clone(),
        ];
        args.extend(run_flags(&runs));
        args.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        medallion(&argv, &[])
    };

    // Approved: the manual branch runs, the auto branch is skipped, depends sees both.
    let ok = run(&["--name", "approved", "--approve"]);
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    let s = status(&runs, "approved");
    assert_eq!(node(&s, "only-when-auto")["phase"], "Skipped");
    assert_eq!(node(&s, "review")["outputs"]["decision"], "approve");
    assert_eq!(node(&s, "after-review")["phase"], "Succeeded");

    // Rejected through the supplied parameter: the gate answers reject, after-review still runs
    // (the decision is data); --reject on a gate without that choice would stop the run.
    let rejected = run(&[
        "--name",
        "supplied",
        "--supply",
        "review.decision=reject",
        "--supply",
        "after-review.decision=approve",
    ]);
    assert_eq!(rejected.code, 0, "{}", rejected.stderr);
    assert_eq!(
        node(&status(&runs, "supplied"), "review")["outputs"]["decision"],
        "reject"
    );

    // Nobody answers and there is no terminal: a clear error, exit 2.
    let waiting = run(&["--name", "unanswered"]);
    assert_eq!(waiting.code, 2, "{}", waiting.stderr);
    assert!(waiting.stderr.contains("suspend review (template review) waits for a person: pass --approve, --reject or --supply review.decision=<value>"), "{}", waiting.stderr);

    // A value outside the enum, an unknown parameter, a missing one.
    let bad = run(&["--name", "bad-enum", "-p", "mode=sometimes"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("workflow parameter mode is \"sometimes\", which is not one of auto, manual"),
        "{}",
        bad.stderr
    );
    let unknown = run(&["--name", "unknown", "-p", "colour=blue"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("declares no parameter \"colour\""),
        "{}",
        unknown.stderr
    );

    // A failing step: exit 2 from import is not retried (the expression retries exit 1 only),
    // dependants are omitted, the run fails with the step's own message.
    let failing = run(&[
        "--name",
        "failing",
        "-p",
        "source=/nonexistent/houses.csv",
        "--approve",
    ]);
    assert_eq!(failing.code, 1, "{}", failing.stderr);
    let s = status(&runs, "failing");
    assert_eq!(node(&s, "import")["phase"], "Failed");
    assert_eq!(node(&s, "import")["attempts"], 1);
    assert!(
        node(&s, "import")["message"]
            .as_str()
            .unwrap()
            .contains("medallion-import exited with 2"),
        "{s:#}"
    );
    assert_eq!(node(&s, "review")["phase"], "Omitted");

    // The Argo UI can only send the suspend node's inputs back (workflow-details.tsx v4.1.2
    // lines 137-148, 456-482): a value for anything else cannot be given.
    let not_an_input = run(&["--name", "not-an-input", "--supply", "review.verdict=ok"]);
    assert_eq!(not_an_input.code, 2, "{}", not_an_input.stderr);
    assert!(
        not_an_input.stderr.contains("the Argo UI's Resume dialog offers only the suspend node's input parameters (decision, note)"),
        "{}",
        not_an_input.stderr
    );

    // What Argo refuses at submission is refused before anything runs, with Argo's message
    // (validate.go v4.1.2 lines 1280-1343: a resource template's outputs need jqFilter/jsonPath).
    std::fs::write(
        &file,
        SEMANTICS.replace(
            "      suspend: {}",
            "      resource: {action: create, manifest: x}",
        ),
    )
    .unwrap();
    let invalid = run(&["--name", "invalid", "--approve"]);
    assert_eq!(invalid.code, 2, "{}", invalid.stderr);
    assert!(
        invalid
            .stderr
            .contains("Argo 4.1 would refuse this workflow")
            && invalid
                .stderr
                .contains(".jqFilter or jsonPath must be specified for Resource templates"),
        "{}",
        invalid.stderr
    );
    assert!(!runs.join("invalid").exists());

    // A construct the runner does not implement is an error naming it, never a silent skip.
    std::fs::write(
        &file,
        SEMANTICS.replace(
            "      suspend: {}",
            "      http: {url: \"http://127.0.0.1:9\"}",
        ),
    )
    .unwrap();
    let refused = run(&["--name", "refused", "--approve"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("template review: http is not implemented by medallion run"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_house_pipeline_runs_with_azurite_as_landing_store_and_lake() {
    let az = Azurite::start();
    az.blob(&["mkcontainer", "landing"]);
    az.blob(&["mkcontainer", "lake"]);
    let env = az.env();
    let env = env_refs(&env);
    let houses = repo().join("examples/data/houses.csv");
    az.blob(&[
        "upload",
        "landing",
        "houses/2026/11/23/windsor.csv",
        houses.to_str().unwrap(),
    ]);
    let url = format!(
        "{}/devstoreaccount1/landing/houses/2026/11/23/windsor.csv",
        az.endpoint()
    );
    let dir = tempfile::tempdir().unwrap();
    let runs: PathBuf = dir.path().join("runs");
    let mut args: Vec<String> = vec![
        "run".into(),
        repo()
            .join("workflow-templates/house-price-pipeline.yaml")
            .display()
            .to_string(),
        "--name".into(),
        "on-azurite".into(),
        "-p".into(),
        format!("source-url={url}"),
        "-p".into(),
        "lake=az://lake/medallion".into(),
    ];
    args.extend(run_flags(&runs));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = medallion(&argv, &env);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let s = status(&runs, "on-azurite");
    assert_eq!(s["phase"], "Succeeded");
    let uri = node(&s, "import")["outputs"]["uri"].as_str().unwrap();
    assert!(uri.ends_with("/lake/medallion/bronze/houses/v1"), "{uri}");
    let model = node(&s, "train")["outputs"]["model-uri"].as_str().unwrap();
    assert!(
        model.ends_with("medallion/models/house-price/v1/model.json"),
        "{model}"
    );
    // What landed in Azure: the manifests of every layer and the model.
    let listing = az.blob(&["list", "lake", "medallion/"]);
    for must in [
        "medallion/bronze/houses/v1/_manifest.json",
        "medallion/silver/houses/v1/_manifest.json",
        "medallion/models/house-price/v1/model.json",
        "medallion/models/house-price/v1/card.html",
    ] {
        assert!(listing.contains(must), "{must} not in\n{listing}");
    }
}

/// Plugin templates run through a real medallion-plugin the runner starts for the run's lake.
const WITH_PLUGIN: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: with-plugin
spec:
  entrypoint: main
  arguments:
    parameters:
      - {name: lake}
      - {name: source}
  templates:
    - name: main
      dag:
        tasks:
          - name: import
            templateRef: {name: medallion-steps, template: import}
            arguments:
              parameters:
                - {name: lake, value: "{{workflow.parameters.lake}}"}
                - {name: dataset, value: houses}
                - {name: source, value: "{{workflow.parameters.source}}"}
          - name: latest
            dependencies: [import]
            templateRef: {name: medallion-steps, template: lookup-latest}
            arguments:
              parameters:
                - {name: dataset, value: houses}
                - {name: layer, value: bronze}
"#;

#[test]
fn plugin_templates_run_through_a_real_plugin_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("with-plugin.yaml");
    std::fs::write(&file, WITH_PLUGIN).unwrap();
    let runs = d.join("runs");
    let mut args: Vec<String> = vec![
        "run".into(),
        file.display().to_string(),
        "--name".into(),
        "plugged".into(),
        "-p".into(),
        format!("lake={}", d.join("lake").display()),
        "-p".into(),
        format!(
            "source={}",
            repo().join("examples/data/houses.csv").display()
        ),
    ];
    args.extend(run_flags(&runs));
    // The plugin serves the lake configured for it (the ConfigMap its sidecar reads), not the
    // run's `lake` parameter, which on a cluster it never sees: without that, a clear error.
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let unconfigured = medallion(&argv, &[]);
    assert_eq!(unconfigured.code, 2, "{}", unconfigured.stderr);
    assert!(
        unconfigured.stderr.contains("the executor plugin serves the lake configured for it (ConfigMap medallion-settings, key lake), not this run's"),
        "{}",
        unconfigured.stderr
    );
    let settings = d.join("medallion-settings");
    std::fs::create_dir_all(&settings).unwrap();
    std::fs::write(settings.join("lake"), d.join("lake").display().to_string()).unwrap();
    args[3] = "plugged".into();
    args.extend([
        "--config-map".into(),
        format!("medallion-settings={}", settings.display()),
    ]);
    std::fs::remove_dir_all(runs.join("plugged")).unwrap();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = medallion(&argv, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let s = status(&runs, "plugged");
    let latest = node(&s, "latest");
    assert_eq!(latest["phase"], "Succeeded", "{s:#}");
    assert_eq!(latest["outputs"]["version"], "1");
    assert_eq!(latest["outputs"]["rows"], "546");
    assert_eq!(
        latest["outputs"]["uri"],
        node(&s, "import")["outputs"]["uri"],
        "{s:#}"
    );
}
