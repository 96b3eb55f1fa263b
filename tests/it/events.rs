//! The event path as shipped in event-sources/: every document valid against Argo Events' own
//! JSON schema (vendored in schemas/argo/), a broken copy rejected, kustomize builds both
//! folders, and the Sensor's filters route the Event Grid samples: a houses upload to the house
//! pipeline, a sales upload to the segmentation pipeline, BlobDeleted and CloudEvents-schema
//! events nowhere.

use std::process::Command;

use serde_json::Value;

use crate::support::{argo_schema, py, python, repo};

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
    expect("storagequeue-message.eventgrid-blobdeleted.base64.txt", &[]);
    expect("blob-created.cloudevent.json", &[]);

    // Each trigger maps the URL and ETag into the parameters its Workflow declares, and names
    // the Workflow after the ETag.
    let sensor: Value = serde_json::from_str(&py(
        "yaml_to_json.py",
        &[dir.join("sensor-landing.yaml").to_str().unwrap()],
    ))
    .unwrap();
    for trigger in sensor[0]["spec"]["triggers"].as_array().unwrap() {
        let wf = &trigger["template"]["argoWorkflow"];
        assert_eq!(wf["operation"], "submit");
        let declared = wf["source"]["resource"]["spec"]["arguments"]["parameters"]
            .as_array()
            .unwrap();
        let dests: Vec<&str> = wf["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["dest"].as_str().unwrap())
            .collect();
        for (i, name) in ["source-url", "source-etag"].iter().enumerate() {
            assert_eq!(declared[i]["name"], *name);
            assert!(dests.contains(&format!("spec.arguments.parameters.{i}.value").as_str()));
        }
        assert!(dests.contains(&"metadata.name"));
    }
}
