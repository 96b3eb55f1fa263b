//! `medallion events replay`: what the event path would do with an Event Grid event, offline:
//! each EventSource among the files dispatches or drops it (its filter), then every Sensor's
//! dependencies on that source see it and its triggers fire.

use std::path::{Path, PathBuf};

use medallion_argo::event_source::{self, Dispatch, QueueSource};
use medallion_argo::sensor::{self, Sensor, SensorError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::runner::{self, RunOptions};

/// The given files and folders, as one text for messages.
fn shown(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The EventSources' queue entries and the Sensors of the given files and folders.
fn event_path(paths: &[PathBuf]) -> Result<(Vec<QueueSource>, Vec<Sensor>), SensorError> {
    let fail = |message: String| SensorError::Sensor {
        sensor: shown(paths),
        path: "file".into(),
        message,
    };
    let docs = crate::lint::load(paths).map_err(|e| fail(e.to_string()))?;
    let mut sources = Vec::new();
    let mut sensors = Vec::new();
    for d in &docs {
        match d.kind() {
            "EventSource" => sources.extend(event_source::queue_sources(&d.value)?),
            "Sensor" => sensors.push(Sensor::from_json(&d.value)?),
            _ => {}
        }
    }
    if sensors.is_empty() {
        return Err(fail(
            "holds no Sensor; pass the event-sources folder or a Sensor file".into(),
        ));
    }
    Ok((sources, sensors))
}

/// What fires for these events: (event file, event id, trigger).
type Fired = Vec<(String, Option<Value>, sensor::Triggered)>;

/// Prints what fires (and what the EventSources drop) and returns the Workflows the triggers
/// would submit.
pub fn replay(
    events: &[PathBuf],
    paths: &[PathBuf],
    json_format: bool,
) -> Result<Vec<Value>, SensorError> {
    let triggered = fire(events, paths)?;
    print_fired(&triggered, json_format);
    Ok(triggered.into_iter().map(|(_, _, t)| t.workflow).collect())
}

/// Applies the event path (EventSources, then Sensors) to the events. Without an EventSource
/// among the files, the events reach every Sensor dependency unfiltered (said on stderr).
pub fn fire(events: &[PathBuf], paths: &[PathBuf]) -> Result<Fired, SensorError> {
    let (sources, sensors) = event_path(paths)?;
    if sources.is_empty() {
        eprintln!(
            "note: no EventSource among {}: the events reach the Sensors without the EventSource's filter",
            shown(paths)
        );
    }
    let mut triggered = Vec::new();
    for file in events {
        let text = std::fs::read_to_string(file)
            .map_err(|e| SensorError::Event(format!("{}: {e}", file.display())))?;
        let decoded = sensor::decode_events(&text).map_err(|e| match e {
            SensorError::Event(m) => SensorError::Event(format!("{}: {m}", file.display())),
            other => other,
        })?;
        for event in decoded {
            let mut dispatched: Vec<(Option<(&str, &str)>, Value)> = Vec::new();
            if sources.is_empty() {
                dispatched.push((None, sensor::queue_event_data(&event)));
            }
            for source in &sources {
                match source.dispatch(&event) {
                    Dispatch::Event(data) => dispatched.push((
                        Some((source.event_source.as_str(), source.event_name.as_str())),
                        data,
                    )),
                    Dispatch::Dropped(why) => eprintln!(
                        "# {} (event {}) dropped: {why}",
                        file.display(),
                        event.get("id").and_then(Value::as_str).unwrap_or("?")
                    ),
                }
            }
            for (source, data) in dispatched {
                for s in &sensors {
                    for t in s.replay(source, &data)? {
                        triggered.push((file.display().to_string(), event.get("id").cloned(), t));
                    }
                }
            }
        }
    }
    Ok(triggered)
}

fn print_fired(triggered: &Fired, json_format: bool) {
    if json_format {
        let list: Vec<Value> = triggered
            .iter()
            .map(|(_, _, t)| json!({"sensor": t.sensor, "trigger": t.trigger, "workflow": t.workflow}))
            .collect();
        println!("{}", json!({"triggered": list}));
        return;
    }
    if triggered.is_empty() {
        println!("no trigger fires for these events");
    }
    for (file, id, t) in triggered {
        let name = t
            .workflow
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        println!(
            "# {file} (event {}) → sensor {} trigger {} submits Workflow {name}",
            id.as_ref().and_then(Value::as_str).unwrap_or("?"),
            t.sensor,
            t.trigger
        );
        println!(
            "{}",
            serde_yaml_ng::to_string(&t.workflow).unwrap_or_default()
        );
    }
}

/// Runs each triggered Workflow locally. A Workflow whose name ran before is what Kubernetes
/// refuses for a repeated event: it is reported and not run again.
pub fn run_triggered(workflows: &[Value], options: RunOptions) -> anyhow::Result<()> {
    for wf in workflows {
        let name = wf
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("workflow");
        if options.runs_dir.join(name).exists() {
            println!(
                "Workflow {name} exists already (a repeated event): not run again, as Kubernetes would refuse it"
            );
            continue;
        }
        std::fs::create_dir_all(&options.runs_dir)?;
        let file = options.runs_dir.join(format!("{name}.workflow.json"));
        std::fs::write(&file, serde_json::to_string_pretty(wf)?)?;
        let mut o = options.clone();
        o.file = file;
        runner::run(o)?;
    }
    Ok(())
}

/// The Event Grid BlobCreated event for a file in a local landing folder: `data.url` is the
/// file's `file://` URL, the subject puts it under `container`, the ETag comes from the
/// content (so a changed file is a new upload, the same file the same one).
pub fn blob_created(file: &Path, landing: &Path, container: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let abs = std::fs::canonicalize(file)?;
    let root = std::fs::canonicalize(landing)
        .map_err(|e| anyhow::anyhow!("landing folder {}: {e}", landing.display()))?;
    let relative = abs.strip_prefix(&root).map_err(|_| {
        anyhow::anyhow!(
            "{} is not inside the landing folder {}; put it there or pass --landing",
            file.display(),
            landing.display()
        )
    })?;
    let blob = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let digest = Sha256::digest(&bytes);
    let etag = format!("0x{}", hex::encode_upper(&digest[..8]));
    let id = uuid::Uuid::new_v4().to_string();
    let event = json!([{
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/local",
        "subject": format!("/blobServices/default/containers/{container}/blobs/{blob}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "id": id,
        "data": {
            "api": "PutBlob",
            "eTag": etag,
            "contentType": if blob.ends_with(".csv") { "text/csv" } else { "application/octet-stream" },
            "contentLength": bytes.len(),
            "blobType": "BlockBlob",
            "url": format!("file://{}", abs.display()),
            "sequencer": format!("{:032x}", u128::from_be_bytes(digest[..16].try_into().unwrap_or_default())),
        },
        "dataVersion": "",
        "metadataVersion": "1"
    }]);
    Ok(format!("{}\n", serde_json::to_string_pretty(&event)?))
}
