//! Argo Events' Sensor semantics for the constructs Medallion's sensors use, so an event can be
//! replayed offline (`medallion events replay`): which triggers fire and the exact Workflow each
//! one would submit.
//!
//! Implemented: data filters (gjson dotted paths; `string` values as unanchored regexes, any one
//! matching; `number` with a comparator; `bool`), `dataLogicalOperator` and/or, trigger
//! `conditions` as `a && b` / `a || b` chains of dependency names, `argoWorkflow` triggers with
//! `dataKey`, `dataTemplate` (Go templates over `.Input` with the sprig functions `replace`,
//! `lower`, `upper`, `trim`, `trimPrefix`, `trimSuffix`, `trunc`) and `value` sources written to
//! `dest` paths. Anything else is an error naming it, never a silent skip.
//!
//! An event from an `azureQueueStorage` source with `jsonBody: true` reaches the Sensor as
//! `{"messageID": ..., "body": <the message's JSON>}`; [`queue_event_data`] builds that.

use base64::Engine;
use regex::Regex;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SensorError {
    /// The Sensor uses something this replay does not implement, or is malformed.
    #[error("{sensor}: {path}: {message}")]
    Sensor {
        sensor: String,
        path: String,
        message: String,
    },
    /// The event is not JSON (raw or base64) Event Grid could have produced.
    #[error("the event is not valid: {0}")]
    Event(String),
}

fn sensor_err(sensor: &str, path: impl Into<String>, message: impl Into<String>) -> SensorError {
    SensorError::Sensor {
        sensor: sensor.to_string(),
        path: path.into(),
        message: message.into(),
    }
}

/// A Sensor as replay understands it.
#[derive(Debug, Clone)]
pub struct Sensor {
    pub name: String,
    pub dependencies: Vec<Dependency>,
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone)]
pub struct Dependency {
    pub name: String,
    pub event_source: String,
    pub event_name: String,
    filters: Vec<DataFilter>,
    any_filter: bool,
}

#[derive(Debug, Clone)]
struct DataFilter {
    path: String,
    kind: FilterKind,
}

#[derive(Debug, Clone)]
enum FilterKind {
    Text(Vec<Regex>),
    Number(Vec<f64>, String),
    Bool(Vec<bool>),
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub name: String,
    conditions: Vec<Vec<String>>,
    resource: Value,
    parameters: Vec<TriggerParameter>,
}

#[derive(Debug, Clone)]
struct TriggerParameter {
    dependency: String,
    source: ParamSource,
    dest: String,
}

#[derive(Debug, Clone)]
enum ParamSource {
    DataKey(String),
    DataTemplate(String),
    Value(String),
}

/// One trigger that fires for an event, with the Workflow it would submit.
#[derive(Debug, Clone, PartialEq)]
pub struct Triggered {
    pub sensor: String,
    pub trigger: String,
    pub workflow: Value,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl Sensor {
    /// Reads a Sensor document (YAML converted to JSON).
    pub fn from_json(doc: &Value) -> Result<Sensor, SensorError> {
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("sensor")
            .to_string();
        if str_at(doc, "kind") != Some("Sensor") {
            return Err(sensor_err(&name, "kind", "is not Sensor"));
        }
        let deps = doc
            .pointer("/spec/dependencies")
            .and_then(Value::as_array)
            .ok_or_else(|| sensor_err(&name, "spec.dependencies", "is missing"))?;
        let mut dependencies = Vec::new();
        for (i, d) in deps.iter().enumerate() {
            dependencies.push(parse_dependency(&name, i, d)?);
        }
        let trigs = doc
            .pointer("/spec/triggers")
            .and_then(Value::as_array)
            .ok_or_else(|| sensor_err(&name, "spec.triggers", "is missing"))?;
        let mut triggers = Vec::new();
        for (i, t) in trigs.iter().enumerate() {
            triggers.push(parse_trigger(&name, i, t, &dependencies)?);
        }
        Ok(Sensor {
            name,
            dependencies,
            triggers,
        })
    }

    /// The triggers `data` (the event as the Sensor sees it) fires, with their Workflows.
    /// `source` is the (EventSource, event name) that dispatched it: only dependencies on that
    /// source see it; `None` lets every dependency see it (no EventSource was replayed).
    pub fn replay(
        &self,
        source: Option<(&str, &str)>,
        data: &Value,
    ) -> Result<Vec<Triggered>, SensorError> {
        let matched: Vec<&str> = self
            .dependencies
            .iter()
            .filter(|d| source.is_none_or(|(es, ev)| d.event_source == es && d.event_name == ev))
            .filter(|d| d.matches(data))
            .map(|d| d.name.as_str())
            .collect();
        let mut out = Vec::new();
        for t in &self.triggers {
            let fires = t
                .conditions
                .iter()
                .any(|all| all.iter().all(|d| matched.contains(&d.as_str())));
            if !fires {
                continue;
            }
            let mut workflow = t.resource.clone();
            for (i, p) in t.parameters.iter().enumerate() {
                let at = format!("triggers[{}].parameters[{i}]", t.name);
                if !matched.contains(&p.dependency.as_str()) {
                    return Err(sensor_err(
                        &self.name,
                        &at,
                        format!(
                            "reads dependency {} which this event did not match",
                            p.dependency
                        ),
                    ));
                }
                let value = match &p.source {
                    ParamSource::DataKey(path) => {
                        lookup(data, path).map(value_text).ok_or_else(|| {
                            sensor_err(
                                &self.name,
                                &at,
                                format!("dataKey {path} is not in the event"),
                            )
                        })?
                    }
                    ParamSource::DataTemplate(tpl) => {
                        go_template(tpl, data).map_err(|m| sensor_err(&self.name, &at, m))?
                    }
                    ParamSource::Value(v) => v.clone(),
                };
                set_path(&mut workflow, &p.dest, value)
                    .map_err(|m| sensor_err(&self.name, format!("{at}.dest"), m))?;
                let _ = &p.dependency;
            }
            out.push(Triggered {
                sensor: self.name.clone(),
                trigger: t.name.clone(),
                workflow,
            });
        }
        Ok(out)
    }
}

impl Dependency {
    fn matches(&self, data: &Value) -> bool {
        let mut results = self.filters.iter().map(|f| f.matches(data));
        if self.any_filter {
            self.filters.is_empty() || results.any(|r| r)
        } else {
            results.all(|r| r)
        }
    }
}

impl DataFilter {
    fn matches(&self, data: &Value) -> bool {
        let Some(v) = lookup(data, &self.path) else {
            return false;
        };
        match &self.kind {
            FilterKind::Text(res) => v
                .as_str()
                .is_some_and(|s| res.iter().any(|r| r.is_match(s))),
            FilterKind::Bool(bs) => v.as_bool().is_some_and(|b| bs.contains(&b)),
            FilterKind::Number(ns, cmp) => {
                let Some(x) = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                else {
                    return false;
                };
                ns.iter().any(|n| match cmp.as_str() {
                    ">" => x > *n,
                    ">=" => x >= *n,
                    "<" => x < *n,
                    "<=" => x <= *n,
                    "!=" => x != *n,
                    _ => x == *n,
                })
            }
        }
    }
}

fn parse_dependency(sensor: &str, i: usize, d: &Value) -> Result<Dependency, SensorError> {
    let at = format!("spec.dependencies[{i}]");
    let field = |k: &str| {
        str_at(d, k)
            .map(str::to_string)
            .ok_or_else(|| sensor_err(sensor, format!("{at}.{k}"), "is missing"))
    };
    let name = field("name")?;
    let mut filters = Vec::new();
    let mut any_filter = false;
    if let Some(f) = d.get("filters") {
        for key in f
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            match key.as_str() {
                "data" => {}
                "dataLogicalOperator" => any_filter = str_at(f, &key) == Some("or"),
                other => {
                    return Err(sensor_err(
                        sensor,
                        format!("{at}.filters.{other}"),
                        "replay implements data filters only",
                    ));
                }
            }
        }
        for (j, df) in f
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let fat = format!("{at}.filters.data[{j}]");
            if df.get("template").is_some() {
                return Err(sensor_err(
                    sensor,
                    format!("{fat}.template"),
                    "is not implemented by replay",
                ));
            }
            let path = str_at(df, "path")
                .ok_or_else(|| sensor_err(sensor, format!("{fat}.path"), "is missing"))?
                .to_string();
            let values: Vec<String> = df
                .get("value")
                .and_then(Value::as_array)
                .ok_or_else(|| sensor_err(sensor, format!("{fat}.value"), "is missing"))?
                .iter()
                .map(value_text)
                .collect();
            let kind = match str_at(df, "type").unwrap_or("string") {
                "string" => FilterKind::Text(
                    values
                        .iter()
                        .map(|v| {
                            Regex::new(v).map_err(|e| {
                                sensor_err(sensor, format!("{fat}.value"), e.to_string())
                            })
                        })
                        .collect::<Result<_, _>>()?,
                ),
                "number" => FilterKind::Number(
                    values
                        .iter()
                        .map(|v| {
                            v.parse().map_err(|_| {
                                sensor_err(
                                    sensor,
                                    format!("{fat}.value"),
                                    format!("{v} is not a number"),
                                )
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    str_at(df, "comparator").unwrap_or("=").to_string(),
                ),
                "bool" => FilterKind::Bool(values.iter().map(|v| v == "true").collect()),
                other => {
                    return Err(sensor_err(
                        sensor,
                        format!("{fat}.type"),
                        format!("{other} is not implemented by replay"),
                    ));
                }
            };
            filters.push(DataFilter { path, kind });
        }
    }
    Ok(Dependency {
        name,
        event_source: field("eventSourceName")?,
        event_name: field("eventName")?,
        filters,
        any_filter,
    })
}

fn parse_trigger(
    sensor: &str,
    i: usize,
    t: &Value,
    deps: &[Dependency],
) -> Result<Trigger, SensorError> {
    let at = format!("spec.triggers[{i}].template");
    let tpl = t
        .get("template")
        .ok_or_else(|| sensor_err(sensor, &at, "is missing"))?;
    let name = str_at(tpl, "name").unwrap_or("trigger").to_string();
    let names: Vec<String> = deps.iter().map(|d| d.name.clone()).collect();
    let conditions = match str_at(tpl, "conditions") {
        None | Some("") => vec![names.clone()],
        Some(expr) => {
            if expr.contains('(') || expr.contains('!') {
                return Err(sensor_err(
                    sensor,
                    format!("{at}.conditions"),
                    "replay implements && and || chains only",
                ));
            }
            let mut ors = Vec::new();
            for part in expr.split("||") {
                let all: Vec<String> = part.split("&&").map(|s| s.trim().to_string()).collect();
                if let Some(bad) = all.iter().find(|n| !names.contains(n)) {
                    return Err(sensor_err(
                        sensor,
                        format!("{at}.conditions"),
                        format!("{bad} is not a dependency"),
                    ));
                }
                ors.push(all);
            }
            ors
        }
    };
    let wf = tpl
        .get("argoWorkflow")
        .ok_or_else(|| sensor_err(sensor, &at, "replay implements argoWorkflow triggers only"))?;
    match str_at(wf, "operation") {
        Some("submit") => {}
        other => {
            return Err(sensor_err(
                sensor,
                format!("{at}.argoWorkflow.operation"),
                format!(
                    "{} is not submit (Argo Events refuses an empty operation)",
                    other.unwrap_or("nothing")
                ),
            ));
        }
    }
    let resource = wf.pointer("/source/resource").cloned().ok_or_else(|| {
        sensor_err(
            sensor,
            format!("{at}.argoWorkflow.source.resource"),
            "is missing (replay needs the Workflow inline)",
        )
    })?;
    let mut parameters = Vec::new();
    for (j, p) in wf
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let pat = format!("{at}.argoWorkflow.parameters[{j}]");
        let src = p
            .get("src")
            .ok_or_else(|| sensor_err(sensor, format!("{pat}.src"), "is missing"))?;
        let dependency = str_at(src, "dependencyName")
            .unwrap_or_default()
            .to_string();
        if !names.contains(&dependency) {
            return Err(sensor_err(
                sensor,
                format!("{pat}.src.dependencyName"),
                format!("'{dependency}' is not a dependency"),
            ));
        }
        let source = if let Some(k) = str_at(src, "dataKey") {
            ParamSource::DataKey(k.to_string())
        } else if let Some(k) = str_at(src, "dataTemplate") {
            ParamSource::DataTemplate(k.to_string())
        } else if let Some(k) = str_at(src, "value") {
            ParamSource::Value(k.to_string())
        } else {
            return Err(sensor_err(
                sensor,
                format!("{pat}.src"),
                "replay implements dataKey, dataTemplate and value",
            ));
        };
        if p.get("operation").is_some_and(|o| o != "overwrite") {
            return Err(sensor_err(
                sensor,
                format!("{pat}.operation"),
                "replay implements overwrite only",
            ));
        }
        let dest = str_at(p, "dest")
            .ok_or_else(|| sensor_err(sensor, format!("{pat}.dest"), "is missing"))?
            .to_string();
        parameters.push(TriggerParameter {
            dependency,
            source,
            dest,
        });
    }
    Ok(Trigger {
        name,
        conditions,
        resource,
        parameters,
    })
}

/// The events in a file: a JSON event, a JSON array of events (Event Grid push), or base64 JSON
/// as Event Grid writes one event to a storage queue (standard or URL-safe alphabet).
pub fn decode_events(text: &str) -> Result<Vec<Value>, SensorError> {
    let trimmed = text.trim();
    let json = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        trimmed.to_string()
    } else {
        let engines = [
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::STANDARD,
        ];
        let bytes = engines
            .iter()
            .find_map(|e| e.decode(trimmed).ok())
            .ok_or_else(|| SensorError::Event("neither JSON nor base64".into()))?;
        String::from_utf8(bytes)
            .map_err(|_| SensorError::Event("base64 of something that is not UTF-8".into()))?
    };
    let value: Value =
        serde_json::from_str(&json).map_err(|e| SensorError::Event(e.to_string()))?;
    let events = match value {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(SensorError::Event(
                "expected a JSON object or an array of them".into(),
            ));
        }
    };
    if events.is_empty() || !events.iter().all(Value::is_object) {
        return Err(SensorError::Event(
            "expected one or more JSON objects".into(),
        ));
    }
    Ok(events)
}

/// The event data an `azureQueueStorage` source with `jsonBody: true` dispatches.
pub fn queue_event_data(event: &Value) -> Value {
    let mut m = Map::new();
    m.insert(
        "messageID".into(),
        event.get("id").cloned().unwrap_or(Value::Null),
    );
    m.insert("body".into(), event.clone());
    Value::Object(m)
}

/// A gjson dotted path (`body.data.url`, `items.0.name`).
fn lookup<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(data, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sets a string at a dotted `dest` path (`spec.arguments.parameters.0.value`, `metadata.name`).
fn set_path(root: &mut Value, path: &str, value: String) -> Result<(), String> {
    let mut cur = root;
    let keys: Vec<&str> = path.split('.').collect();
    for (i, key) in keys.iter().enumerate() {
        let last = i + 1 == keys.len();
        cur = match cur {
            Value::Object(m) => {
                if last {
                    m.insert(key.to_string(), Value::String(value));
                    return Ok(());
                }
                m.entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
            }
            Value::Array(a) => {
                let idx: usize = key
                    .parse()
                    .map_err(|_| format!("{path}: '{key}' indexes a list"))?;
                let len = a.len();
                let slot = a.get_mut(idx).ok_or_else(|| {
                    format!("{path}: index {idx} is past the {len} items declared")
                })?;
                if last {
                    *slot = Value::String(value);
                    return Ok(());
                }
                slot
            }
            _ => return Err(format!("{path}: '{key}' is under a value, not an object")),
        };
    }
    Ok(())
}

/// Go `text/template` over `{"Input": data}` for the constructs Sensors use: actions
/// `{{ .Input.a.b | fn "arg" | fn }}` with string literals and the sprig functions listed in the
/// module docs; other text is copied.
fn go_template(template: &str, data: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = find_action_end(after).ok_or_else(|| {
            format!("dataTemplate '{template}': an action is not closed with }}}}")
        })?;
        let action = after[..end].trim_matches('-').trim();
        out.push_str(
            &eval_pipeline(action, data).map_err(|m| format!("dataTemplate '{template}': {m}"))?,
        );
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn find_action_end(s: &str) -> Option<usize> {
    let mut in_string = false;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn eval_pipeline(action: &str, data: &Value) -> Result<String, String> {
    let commands = split_pipes(action);
    let mut value: Option<String> = None;
    for command in commands {
        let words = tokenize(&command)?;
        let Some((head, args)) = words.split_first() else {
            return Err("an empty command".into());
        };
        let mut args: Vec<String> = args.to_vec();
        if let Some(v) = value.take() {
            args.push(v);
        }
        value = Some(if let Some(path) = head.strip_prefix(".Input") {
            if !args.is_empty() {
                return Err(format!("{head} takes no arguments"));
            }
            let path = path.trim_start_matches('.');
            let root = data;
            let v = if path.is_empty() {
                Some(root)
            } else {
                lookup(root, path)
            };
            v.map(value_text).unwrap_or_else(|| "<no value>".into())
        } else {
            call(head, &args)?
        });
    }
    value.ok_or_else(|| "an empty action".into())
}

fn split_pipes(action: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in action.chars() {
        if in_string {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '|' {
            parts.push(std::mem::take(&mut cur));
        } else {
            if c == '"' {
                in_string = true;
            }
            cur.push(c);
        }
    }
    parts.push(cur);
    parts.into_iter().map(|p| p.trim().to_string()).collect()
}

fn tokenize(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = command.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(other) => s.push(other),
                        None => return Err("an unterminated string".into()),
                    },
                    Some('"') => break,
                    Some(ch) => s.push(ch),
                    None => return Err("an unterminated string".into()),
                }
            }
            words.push(s);
        } else {
            let mut w = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                w.push(ch);
                chars.next();
            }
            words.push(w);
        }
    }
    Ok(words)
}

fn call(name: &str, args: &[String]) -> Result<String, String> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{name} takes {n} arguments, got {}", args.len()))
        }
    };
    match name {
        "lower" => want(1).map(|_| args[0].to_lowercase()),
        "upper" => want(1).map(|_| args[0].to_uppercase()),
        "trim" => want(1).map(|_| args[0].trim().to_string()),
        "replace" => want(3).map(|_| args[2].replace(&args[0], &args[1])),
        "trimPrefix" => want(2).map(|_| {
            args[1]
                .strip_prefix(args[0].as_str())
                .unwrap_or(&args[1])
                .to_string()
        }),
        "trimSuffix" => want(2).map(|_| {
            args[1]
                .strip_suffix(args[0].as_str())
                .unwrap_or(&args[1])
                .to_string()
        }),
        "trunc" => {
            want(2)?;
            let n: i64 = args[0]
                .parse()
                .map_err(|_| format!("trunc: {} is not a number", args[0]))?;
            let chars: Vec<char> = args[1].chars().collect();
            let n = n.unsigned_abs() as usize;
            Ok(chars.iter().take(n).collect())
        }
        other => Err(format!(
            "function {other} is not implemented by replay (it knows lower, upper, trim, replace, trimPrefix, trimSuffix, trunc)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_like_sprig() {
        let data = json!({"body": {"data": {"eTag": "\"0x8D4BCC\"", "n": 3}}});
        assert_eq!(
            go_template(
                "x-{{ .Input.body.data.eTag | replace \"\\\"\" \"\" | lower }}",
                &data
            )
            .unwrap(),
            "x-0x8d4bcc"
        );
        assert_eq!(
            go_template(
                "{{.Input.body.data.n}}/{{ trimPrefix \"0x\" \"0xAB\" }}",
                &data
            )
            .unwrap(),
            "3/AB"
        );
        assert_eq!(
            go_template("{{ .Input.body.nope }}", &data).unwrap(),
            "<no value>"
        );
        assert!(
            go_template("{{ sha1sum .Input.body }}", &data)
                .unwrap_err()
                .contains("function sha1sum is not implemented")
        );
        assert!(
            go_template("{{ .Input.body", &data)
                .unwrap_err()
                .contains("not closed")
        );
    }

    #[test]
    fn dest_paths_and_events() {
        let mut wf = json!({"metadata": {"name": "x"}, "spec": {"arguments": {"parameters": [{"name": "a", "value": ""}]}}});
        set_path(&mut wf, "spec.arguments.parameters.0.value", "v".into()).unwrap();
        set_path(&mut wf, "metadata.name", "n".into()).unwrap();
        assert_eq!(wf["spec"]["arguments"]["parameters"][0]["value"], "v");
        assert!(
            set_path(&mut wf, "spec.arguments.parameters.3.value", "v".into())
                .unwrap_err()
                .contains("past the 1 items")
        );
        assert_eq!(decode_events("[{\"a\":1},{\"b\":2}]").unwrap().len(), 2);
        assert_eq!(
            decode_events("eyJhIjogMX0=").unwrap(),
            vec![json!({"a": 1})]
        );
        assert!(decode_events("not an event").is_err());
        assert!(decode_events("[1]").is_err());
    }
}
