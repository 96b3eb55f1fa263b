//! Argo Events' `azureQueueStorage` EventSource (v1.9.11,
//! pkg/eventsources/sources/azurequeuestorage/start.go), for replaying an event offline: what
//! it dispatches to the bus for one queue message, or why it drops it.
//!
//! - The message text is the event's JSON (`decodeMessage` base64-decodes it first, lines
//!   128-160; Event Grid writes base64); with `jsonBody: true` the event data is
//!   `{"body": <that JSON>, "messageID", "insertionTime", "metadata"}` (lines 161-165,
//!   pkg/eventsources/events/event-data.go lines 106-115).
//! - `filter.expression` (expr-lang) is evaluated over that data before dispatch; an event it
//!   rejects, or on which it errors, is dropped at the source and its message deleted
//!   (pkg/eventsources/eventing.go lines 550-560, 648-661).

use serde_json::{Map, Value};

use crate::expr;
use crate::sensor::SensorError;

/// One `azureQueueStorage` entry of an EventSource.
#[derive(Debug, Clone)]
pub struct QueueSource {
    /// The EventSource's name (a Sensor dependency's `eventSourceName`).
    pub event_source: String,
    /// The entry's key (a dependency's `eventName`).
    pub event_name: String,
    json_body: bool,
    filter: Option<String>,
}

/// What the EventSource does with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Dispatch {
    /// Dispatched to the bus with this event data.
    Event(Value),
    /// Dropped at the source (and deleted from the queue): the reason.
    Dropped(String),
}

/// The `azureQueueStorage` entries of an EventSource document.
pub fn queue_sources(doc: &Value) -> Result<Vec<QueueSource>, SensorError> {
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let fail = |path: &str, m: &str| SensorError::Sensor {
        sensor: format!("EventSource {name}"),
        path: path.into(),
        message: m.into(),
    };
    let mut out = Vec::new();
    let entries = doc
        .pointer("/spec/azureQueueStorage")
        .and_then(Value::as_object);
    for (event_name, entry) in entries.into_iter().flatten() {
        let at = format!("spec.azureQueueStorage.{event_name}");
        if entry.get("queueName").and_then(Value::as_str).is_none() {
            return Err(fail(&at, "must specify queue name"));
        }
        out.push(QueueSource {
            event_source: name.clone(),
            event_name: event_name.clone(),
            json_body: entry.get("jsonBody").and_then(Value::as_bool) == Some(true),
            filter: entry
                .pointer("/filter/expression")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    Ok(out)
}

impl QueueSource {
    /// What this source dispatches for a queue message holding `event` (decoded).
    pub fn dispatch(&self, event: &Value) -> Dispatch {
        let mut data = Map::new();
        data.insert(
            "messageID".into(),
            event.get("id").cloned().unwrap_or(Value::Null),
        );
        data.insert("insertionTime".into(), Value::Null);
        data.insert("metadata".into(), Value::Null);
        // Without jsonBody the body is the message bytes, which reach a filter as base64 text.
        let body = if self.json_body {
            event.clone()
        } else {
            Value::String(event.to_string())
        };
        data.insert("body".into(), body);
        let data = Value::Object(data);
        match &self.filter {
            None => Dispatch::Event(data),
            Some(f) => match expr::over_json(f, &data) {
                Ok(true) => Dispatch::Event(data),
                Ok(false) => Dispatch::Dropped(format!(
                    "EventSource {} ({}): the filter {f:?} is false",
                    self.event_source, self.event_name
                )),
                Err(e) => Dispatch::Dropped(format!(
                    "EventSource {} ({}): unable to evaluate expression: {}",
                    self.event_source, self.event_name, e.message
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn landing() -> QueueSource {
        let doc = json!({"kind": "EventSource", "metadata": {"name": "landing"},
            "spec": {"azureQueueStorage": {"blob-created": {"queueName": "q", "jsonBody": true,
                "filter": {"expression": "(body.eventType == \"Microsoft.Storage.BlobCreated\" || body.type == \"Microsoft.Storage.BlobCreated\") && body.subject startsWith \"/blobServices/default/containers/landing/blobs/\""}}}}});
        queue_sources(&doc).unwrap().remove(0)
    }

    #[test]
    fn the_filter_drops_events_of_other_containers_and_types() {
        let grid = json!({"id": "1", "eventType": "Microsoft.Storage.BlobCreated",
            "subject": "/blobServices/default/containers/landing/blobs/sales/a.csv"});
        let Dispatch::Event(data) = landing().dispatch(&grid) else {
            panic!("dropped")
        };
        assert_eq!(data["body"]["subject"], grid["subject"]);
        assert_eq!(data["messageID"], "1");
        let cloud = json!({"id": "2", "type": "Microsoft.Storage.BlobCreated", "specversion": "1.0",
            "subject": "/blobServices/default/containers/landing/blobs/sales/a.csv"});
        assert!(matches!(landing().dispatch(&cloud), Dispatch::Event(_)));
        let other = json!({"id": "3", "eventType": "Microsoft.Storage.BlobCreated",
            "subject": "/blobServices/default/containers/archive/blobs/sales/a.csv"});
        assert!(
            matches!(landing().dispatch(&other), Dispatch::Dropped(m) if m.contains("is false"))
        );
        let deleted = json!({"id": "4", "eventType": "Microsoft.Storage.BlobDeleted",
            "subject": "/blobServices/default/containers/landing/blobs/sales/a.csv"});
        assert!(matches!(landing().dispatch(&deleted), Dispatch::Dropped(_)));
    }
}
