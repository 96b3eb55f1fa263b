//! `medallion events replay`: what a Sensor would do with an Event Grid event, offline.

use std::path::{Path, PathBuf};

use medallion_argo::sensor::{self, Sensor, SensorError};
use serde::Deserialize;
use serde_json::{Value, json};

/// The Sensors in a YAML file (other kinds are skipped; none at all is an error).
fn sensors(path: &Path) -> Result<Vec<Sensor>, SensorError> {
    let fail = |m: String| SensorError::Sensor {
        sensor: path.display().to_string(),
        path: "file".into(),
        message: m,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = Value::deserialize(doc).map_err(|e| fail(e.to_string()))?;
        if value.get("kind").and_then(Value::as_str) == Some("Sensor") {
            out.push(Sensor::from_json(&value)?);
        }
    }
    if out.is_empty() {
        return Err(fail("holds no Sensor".into()));
    }
    Ok(out)
}

pub fn replay(
    events: &[PathBuf],
    sensor_files: &[PathBuf],
    json_format: bool,
) -> Result<(), SensorError> {
    let mut all_sensors = Vec::new();
    for f in sensor_files {
        all_sensors.extend(sensors(f)?);
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
            let data = sensor::queue_event_data(&event);
            for s in &all_sensors {
                for t in s.replay(&data)? {
                    triggered.push((file.display().to_string(), event.get("id").cloned(), t));
                }
            }
        }
    }
    if json_format {
        let list: Vec<Value> = triggered
            .iter()
            .map(|(_, _, t)| json!({"sensor": t.sensor, "trigger": t.trigger, "workflow": t.workflow}))
            .collect();
        println!("{}", json!({"triggered": list}));
        return Ok(());
    }
    if triggered.is_empty() {
        println!("no trigger fires for these events");
    }
    for (file, id, t) in &triggered {
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
    Ok(())
}
