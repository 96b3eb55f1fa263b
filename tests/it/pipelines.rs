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

#[test]
fn every_shipped_yaml_passes_lint() {
    let r = repo();
    let dirs: Vec<String> = ["workflow-templates", "event-sources", "executor-plugin"]
        .iter()
        .map(|d| r.join(d).display().to_string())
        .collect();
    let dockerfile = r.join("Dockerfile").display().to_string();
    let mut args = vec!["lint", "--dockerfile", &dockerfile];
    args.extend(dirs.iter().map(String::as_str));
    let out = medallion(&args, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("; 0 problem(s)"), "{}", out.stdout);
    // Every Argo document was schema-checked: the two step libraries, both pipelines, the
    // Sensor, EventSource and EventBus.
    let json = medallion(&[&args[..], &["--format", "json"]].concat(), &[]);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(v["schema_checked"].as_u64().unwrap() >= 7, "{v}");
}

/// A copy of the shipped YAML with one text replaced in one file.
fn broken_copy(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["workflow-templates", "event-sources"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(repo().join(sub)).unwrap().flatten() {
            std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).unwrap();
        }
    }
    std::fs::copy(repo().join("Dockerfile"), dir.path().join("Dockerfile")).unwrap();
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dir
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
            "workflow-templates/house-price-pipeline.yaml",
            "dependencies: [import]",
            "dependencies: [import, train]",
            "spec.templates[0].dag.tasks: dependency cycle:",
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
            "limit: \"3\"",
            "limit: 3",
            "spec.templates[0].retryStrategy.limit: is a number (3), the schema wants string",
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
            "- name: source-etag\n                      value: \"\"\n          parameters:\n            - src:\n                dependencyName: houses-csv",
            "- name: etag\n                      value: \"\"\n          parameters:\n            - src:\n                dependencyName: houses-csv",
            "spec.triggers[0].template.argoWorkflow.source.resource.spec.arguments.parameters[1]: parameter \"etag\" does not exist",
        ),
    ];
    for (file, from, to, expected) in cases {
        let dir = broken_copy(file, from, to);
        let d = dir.path();
        let out = medallion(
            &[
                "lint",
                "--dockerfile",
                d.join("Dockerfile").to_str().unwrap(),
                d.join("workflow-templates").to_str().unwrap(),
                d.join("event-sources").to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(out.code, 2, "{file}: {from} → {to}\n{}", out.stdout);
        assert!(
            out.stdout.contains(expected),
            "{file}: {from} → {to}: expected {expected:?} in\n{}",
            out.stdout
        );
        assert!(out.stderr.contains("problem(s) found"), "{}", out.stderr);
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
    let sensor = repo().join("event-sources/sensor-landing.yaml");
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

    // The same file submitted again by hand under another name: the import is memoized on the
    // ETag, refine and train find their versions, the lake gains nothing.
    let etag = house["parameters"]["source-etag"]
        .as_str()
        .unwrap()
        .to_string();
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
        format!("source-etag={etag}"),
        "-p".into(),
        lake_param,
    ];
    args.extend(run_flags(&runs));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let by_hand = medallion(&argv, &[]);
    assert_eq!(by_hand.code, 0, "{}\n{}", by_hand.stdout, by_hand.stderr);
    let s = status(&runs, "by-hand");
    assert_eq!(node(&s, "import")["memoized"], true, "{s:#}");
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
                - {name: source-etag, value: "{{workflow.uid}}"}
          - name: only-when-auto
            dependencies: [import]
            when: "'{{workflow.parameters.mode}}' == 'auto'"
            template: review
          - name: review
            dependencies: [import]
            when: "'{{workflow.parameters.mode}}' == 'manual' && {{tasks.import.outputs.parameters.rows}} > 0"
            template: review
          - name: after-review
            depends: "review.Succeeded && only-when-auto.Skipped"
            template: review
            arguments:
              parameters: [{name: note, value: "{{tasks.review.outputs.parameters.decision}}"}]
    - name: review
      inputs:
        parameters: [{name: note, value: ""}]
      suspend: {}
      outputs:
        parameters:
          - name: decision
            valueFrom: {supplied: {}}
            enum: [approve, reject]
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

    // A construct the runner does not implement is an error naming it, never a silent skip.
    std::fs::write(
        &file,
        SEMANTICS.replace(
            "      suspend: {}",
            "      resource: {action: create, manifest: x}",
        ),
    )
    .unwrap();
    let refused = run(&["--name", "refused", "--approve"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("template review: resource is not implemented by medallion run"),
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
    let etag = az.blob(&[
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
        format!("source-etag={}", etag.trim()),
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
                - {name: source-etag, value: "{{workflow.uid}}"}
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
