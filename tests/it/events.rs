//! The event path as shipped in event-sources/: every document valid against Argo Events' own
//! JSON schema (vendored in schemas/argo/), a broken copy rejected, kustomize builds both
//! folders, and the event path routes the samples: the EventSource's filter drops events of
//! other types and containers (argo-events v1.9.11 pkg/eventsources/eventing.go lines 550-560),
//! then the Sensor's filters send a houses upload to the house pipeline and a sales upload to
//! the segmentation pipeline, in the Event Grid schema and in CloudEvents 1.0 alike.

use std::process::Command;

use serde_json::Value;

use crate::support::{argo_schema, medallion, py, python, repo};

#[test]
fn event_sources_are_valid_and_route_the_samples() {
    let dir = repo().join("event-sources");
    let schema = argo_schema("events-schema.json");
    let docs: Vec<String> = [
        "eventbus.yaml",
        "eventsource-landing.yaml",
        "sensor-landing.yaml",
    ]
    .iter()
    .map(|f| format!("={}", dir.join(f).display()))
    .collect();
    let mut args = vec![schema.to_str().unwrap()];
    args.extend(docs.iter().map(String::as_str));
    assert_eq!(py("argo_schema.py", &args).trim(), "3 documents valid");

    // A dependency without eventName is refused by the schema.
    let broken = tempfile::NamedTempFile::new().unwrap();
    let sensor = std::fs::read_to_string(dir.join("sensor-landing.yaml")).unwrap();
    std::fs::write(
        broken.path(),
        sensor.replacen("      eventName: blob-created\n", "", 1),
    )
    .unwrap();
    let out = Command::new(python())
        .arg(repo().join("tests/py/argo_schema.py"))
        .arg(&schema)
        .arg(format!("={}", broken.path().display()))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a sensor without eventName passed the schema"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("'eventName' is a required property"));

    // kubectl kustomize (offline) builds what `kubectl apply -k` would apply.
    for folder in ["event-sources", "executor-plugin"] {
        let out = Command::new("kubectl")
            .args(["kustomize", repo().join(folder).to_str().unwrap()])
            .output()
            .expect("kubectl (installed on this machine) runs");
        assert!(
            out.status.success(),
            "kustomize {folder}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Routing of the samples in examples/events/ (queue message = base64 JSON, as Event Grid writes it).
    let events = repo().join("examples/events");
    let files = [
        "blob-created.eventgrid.json",
        "blob-created.queue-message.txt",
        "sales-blob-created.eventgrid.json",
        "storagequeue-message.eventgrid-blobdeleted.base64.txt",
        "blob-created.cloudevent.json",
    ];
    let mut args = vec![dir.join("sensor-landing.yaml").display().to_string()];
    args.extend(files.iter().map(|f| events.join(f).display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let routed: Vec<(String, Vec<String>)> = py("sensor_filters.py", &refs)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let matches = v["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().to_string())
                .collect();
            (v["file"].as_str().unwrap().to_string(), matches)
        })
        .collect();
    let expect = |file: &str, deps: &[&str]| {
        let got = &routed.iter().find(|(f, _)| f == file).unwrap().1;
        assert_eq!(
            got,
            &deps.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "{file}"
        );
    };
    expect("blob-created.eventgrid.json", &["houses-csv"]);
    expect("blob-created.queue-message.txt", &["houses-csv"]);
    expect("sales-blob-created.eventgrid.json", &["sales-csv"]);
    // The Sensor alone routes by path; event types and containers are the EventSource's filter.
    expect("storagequeue-message.eventgrid-blobdeleted.base64.txt", &[]);
    expect("blob-created.cloudevent.json", &["sales-csv"]);

    // Each trigger maps the URL into the parameter its Workflow declares, names the Workflow
    // after the ETag and submits it into the WorkflowTemplates' namespace, acknowledged only
    // after the submission ran (atLeastOnce).
    let sensor: Value = serde_json::from_str(&py(
        "yaml_to_json.py",
        &[dir.join("sensor-landing.yaml").to_str().unwrap()],
    ))
    .unwrap();
    for trigger in sensor[0]["spec"]["triggers"].as_array().unwrap() {
        let wf = &trigger["template"]["argoWorkflow"];
        assert_eq!(wf["operation"], "submit");
        assert_eq!(wf["source"]["resource"]["metadata"]["namespace"], "argo");
        assert_eq!(trigger["atLeastOnce"], true);
        let declared = wf["source"]["resource"]["spec"]["arguments"]["parameters"]
            .as_array()
            .unwrap();
        let dests: Vec<&str> = wf["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["dest"].as_str().unwrap())
            .collect();
        for (i, name) in ["source-url"].iter().enumerate() {
            assert_eq!(declared[i]["name"], *name);
            assert!(dests.contains(&format!("spec.arguments.parameters.{i}.value").as_str()));
        }
        assert!(dests.contains(&"metadata.name"));
    }
}

#[test]
fn replay_prints_the_workflows_the_sensor_would_submit() {
    let events = repo().join("examples/events");
    let replay = |files: &[&str]| {
        let mut args = vec![
            "events".to_string(),
            "replay".into(),
            "--format".into(),
            "json".into(),
        ];
        args.extend(files.iter().map(|f| events.join(f).display().to_string()));
        args.push("--sensor".into());
        args.push(repo().join("event-sources").display().to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = medallion(&refs, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        (
            serde_json::from_str::<Value>(&run.stdout).unwrap(),
            run.stderr,
        )
    };
    // The queue message (base64) of the houses upload: one Workflow, named after the ETag.
    let (houses, _) = replay(&["blob-created.queue-message.txt"]);
    assert_eq!(
        houses,
        serde_json::json!({"triggered": [{
            "sensor": "landing",
            "trigger": "house-price-pipeline",
            "workflow": {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Workflow",
                "metadata": {"name": "house-price-0x8d4bcc2e4835cd0", "namespace": "argo"},
                "spec": {
                    "workflowTemplateRef": {"name": "house-price-pipeline"},
                    "arguments": {"parameters": [
                        {"name": "source-url", "value": "https://globorealtylanding.blob.core.windows.net/landing/houses/2026/11/22/windsor.csv"}
                    ]}
                }
            }
        }]})
    );
    // The same upload pushed as an array: the same Workflow (a redelivery cannot start a second run).
    assert_eq!(replay(&["blob-created.eventgrid.json"]).0, houses);
    let (sales, _) = replay(&["sales-blob-created.eventgrid.json"]);
    assert_eq!(
        sales["triggered"][0]["trigger"],
        "sales-segmentation-pipeline"
    );
    assert_eq!(
        sales["triggered"][0]["workflow"]["metadata"]["name"],
        "sales-segmentation-0x8daf1a7a2b5d1c0"
    );
    // A CloudEvents 1.0 delivery of a sales upload routes like the Event Grid schema
    // (`type` instead of `eventType`; the EventSource's filter accepts either).
    let (cloud, _) = replay(&["blob-created.cloudevent.json"]);
    assert_eq!(
        cloud["triggered"][0]["trigger"],
        "sales-segmentation-pipeline"
    );
    // A BlobDeleted event stops at the EventSource: nothing fires, exit 0, the reason on stderr.
    let (none, why) = replay(&["storagequeue-message.eventgrid-blobdeleted.base64.txt"]);
    assert_eq!(none, serde_json::json!({"triggered": []}));
    assert!(
        why.contains("dropped: EventSource landing (blob-created): the filter"),
        "{why}"
    );
    // A sample with one text replaced, replayed (JSON output).
    let dir = tempfile::tempdir().unwrap();
    let replay_edited = |sample: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(events.join(sample)).unwrap();
        assert!(text.contains(from), "{sample} lacks {from}");
        let edited = dir.path().join(format!("edited-{sample}"));
        std::fs::write(&edited, text.replace(from, to)).unwrap();
        let run = medallion(
            &[
                "events",
                "replay",
                "--format",
                "json",
                edited.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        run
    };
    // An upload to another container fires nothing either (the Sensor alone would route it:
    // its filters look at the path inside the container only).
    let run = replay_edited(
        "sales-blob-created.eventgrid.json",
        "/containers/landing/",
        "/containers/archive/",
    );
    assert_eq!(run.stdout.trim(), r#"{"triggered":[]}"#);

    // An ETag with literal quotes (as Azure sometimes sends it) gives the same name.
    let run = replay_edited(
        "blob-created.eventgrid.json",
        "\"0x8D4BCC2E4835CD0\"",
        "\"\\\"0x8D4BCC2E4835CD0\\\"\"",
    );
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        v["triggered"][0]["workflow"]["metadata"]["name"],
        "house-price-0x8d4bcc2e4835cd0"
    );

    // A malformed event: exit 2 with one line naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"id\": ").unwrap();
    let run = medallion(&["events", "replay", bad.to_str().unwrap()], &[]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.error_line(),
        format!(
            "medallion: error: the event is not valid: {}: EOF while parsing a value at line 1 column 6",
            bad.display()
        )
    );
    // A sensor construct replay does not implement is named, not skipped.
    let sensor = dir.path().join("sensor.yaml");
    let text = std::fs::read_to_string(repo().join("event-sources/sensor-landing.yaml")).unwrap();
    std::fs::write(
        &sensor,
        text.replacen("dataKey: body.data.url", "contextKey: id", 1),
    )
    .unwrap();
    let run = medallion(
        &[
            "events",
            "replay",
            events.join("blob-created.eventgrid.json").to_str().unwrap(),
            "--sensor",
            sensor.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.error_line()
            .contains("replay implements dataKey, dataTemplate and value"),
        "{}",
        run.stderr
    );
}
