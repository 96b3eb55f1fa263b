//! Suspend nodes, answered as a person answers them in the Argo UI, or left to expire:
//!
//! - The UI's Resume dialog lists the suspend node's *input* parameters (an enum as a dropdown
//!   starting at the input's value) and sends every one of them back as an output value, then
//!   resumes the node (ui/src/workflows/components/workflow-details/workflow-details.tsx
//!   v4.1.2 lines 137-148, 456-482). The server accepts only names that are outputs with
//!   `valueFrom.supplied` ("node is not expecting output parameter", workflow/util/util.go
//!   lines 680-702) and, resuming one node, applies no defaults (util.go lines 527-529).
//!   Here `--supply <task>.<input>=<value>` and `--approve`/`--reject` (the input whose enum
//!   has approve/reject) are the person's edits; every other input is sent as it is.
//! - Unanswered with a `duration`: when it passes, every supplied output takes its default
//!   (or the default of the input of the same name) and the node succeeds; an output with
//!   neither errors the node (operator.go lines 3998-4012, 4068-4077; util.go lines 503-517).
//! - The workflow's deadline fails a waiting suspend node ("Step exceeded its deadline",
//!   operator.go lines 1390-1433).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use medallion_argo::parse_go_duration;
use serde_json::Value;

use super::{Decision, Engine, Outcome, Phase, RunError, items, template_error, value_text};

struct Parameter<'a> {
    name: &'a str,
    declared: &'a Value,
}

fn parameters<'a>(template: &'a Value, pointer: &str) -> Vec<Parameter<'a>> {
    items(template, pointer)
        .map(|p| Parameter {
            name: p.get("name").and_then(Value::as_str).unwrap_or(""),
            declared: p,
        })
        .collect()
}

fn options(p: &Value) -> Vec<String> {
    p.get("enum")
        .and_then(Value::as_array)
        .map(|l| l.iter().map(value_text).collect())
        .unwrap_or_default()
}

fn outcome(phase: Phase, message: String, outputs: BTreeMap<String, String>) -> Outcome {
    Outcome {
        phase,
        message,
        outputs,
        rejected: false,
        artifacts: BTreeMap::new(),
    }
}

/// Runs a suspend node; `inputs` are its input parameters' values.
pub fn suspend(
    engine: &Engine,
    template: &Value,
    inputs: &BTreeMap<String, String>,
    path: &str,
) -> Result<Outcome, RunError> {
    let tname = super::name_of(template);
    let task = path.rsplit('.').next().unwrap_or(path);
    let declared_inputs = parameters(template, "/inputs/parameters");
    let supplied_outputs: Vec<Parameter<'_>> = parameters(template, "/outputs/parameters")
        .into_iter()
        .filter(|p| p.declared.pointer("/valueFrom/supplied").is_some())
        .collect();
    let given: BTreeMap<&str, &String> = engine
        .options
        .supplied
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&format!("{task}.")).map(|n| (n, v)))
        .collect();
    for name in given.keys() {
        if !declared_inputs.iter().any(|p| p.name == *name) {
            return Err(template_error(format!(
                "suspend {task}: --supply {task}.{name}: the Argo UI's Resume dialog offers only the suspend node's input parameters ({}), so a person cannot give {name:?}",
                declared_inputs
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let answered = engine.options.decision.is_some() || !given.is_empty();
    let sent: Option<BTreeMap<String, String>> = if answered {
        let mut sent = BTreeMap::new();
        for p in &declared_inputs {
            let allowed = options(p.declared);
            let current = inputs.get(p.name).cloned().unwrap_or_default();
            let value = match (given.get(p.name), engine.options.decision) {
                (Some(v), _) => (*v).clone(),
                (None, Some(Decision::Approve)) if allowed.iter().any(|a| a == "approve") => {
                    "approve".into()
                }
                (None, Some(Decision::Reject)) if allowed.iter().any(|a| a == "reject") => {
                    "reject".into()
                }
                _ => current,
            };
            if !allowed.is_empty() && !allowed.contains(&value) {
                return Err(template_error(format!(
                    "suspend {task}: {}={value:?} is not one of {}",
                    p.name,
                    allowed.join(", ")
                )));
            }
            sent.insert(p.name.to_string(), value);
        }
        Some(sent)
    } else if std::io::stdin().is_terminal() && template.pointer("/suspend/duration").is_none() {
        let mut sent = BTreeMap::new();
        for p in &declared_inputs {
            let allowed = options(p.declared);
            let current = inputs.get(p.name).cloned().unwrap_or_default();
            let answer = engine.view.ask(&format!(
                "{task} waits for a person: {}{} [{current}]? ",
                p.name,
                if allowed.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", allowed.join("/"))
                }
            ));
            sent.insert(
                p.name.to_string(),
                if answer.is_empty() { current } else { answer },
            );
        }
        if declared_inputs.is_empty() {
            let a = engine
                .view
                .ask(&format!("{task} waits for a person: resume? [y/n] "));
            if !a.starts_with('y') {
                let mut o = outcome(
                    Phase::Failed,
                    format!("suspend {task} was stopped"),
                    BTreeMap::new(),
                );
                o.rejected = true;
                return Ok(o);
            }
        }
        Some(sent)
    } else {
        None
    };
    if let Some(sent) = sent {
        if declared_inputs.is_empty() && engine.options.decision == Some(Decision::Reject) {
            let mut o = outcome(
                Phase::Failed,
                format!("suspend {task} was stopped by --reject"),
                BTreeMap::new(),
            );
            o.rejected = true;
            return Ok(o);
        }
        let mut outputs = BTreeMap::new();
        for (name, value) in sent {
            if !supplied_outputs.iter().any(|o| o.name == name) {
                return Err(template_error(format!(
                    "suspend {task} (template {tname}): node is not expecting output parameter '{name}': the Argo UI sends every input of a suspend node back as an output, so declare output {name} with valueFrom.supplied"
                )));
            }
            outputs.insert(name, value);
        }
        return Ok(outcome(Phase::Succeeded, String::new(), outputs));
    }
    let Some(duration) = template.pointer("/suspend/duration") else {
        let hint = declared_inputs
            .first()
            .map(|p| format!(" or --supply {task}.{}=<value>", p.name))
            .unwrap_or_default();
        return Err(template_error(format!(
            "suspend {task} (template {tname}) waits for a person: pass --approve, --reject{hint}"
        )));
    };
    // A bare number is seconds (ParseStringToDuration, utils.go lines 9-20).
    let text = value_text(duration);
    let wait = match text.parse::<u64>() {
        Ok(s) => Duration::from_secs(s),
        Err(_) => parse_go_duration(&text)
            .map_err(|e| template_error(format!("suspend {task}: duration: {e}")))?,
    }
    .mul_f64(engine.options.time_scale);
    let ends = Instant::now() + wait;
    if let Some(deadline) = engine.deadline
        && deadline < ends
    {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        return Ok(outcome(
            Phase::Failed,
            "Step exceeded its deadline".into(),
            BTreeMap::new(),
        ));
    }
    std::thread::sleep(wait);
    let mut outputs = BTreeMap::new();
    for o in &supplied_outputs {
        let own = o.declared.pointer("/valueFrom/default");
        let borrowed = declared_inputs
            .iter()
            .find(|i| i.name == o.name)
            .and_then(|i| i.declared.get("default"));
        match own.or(borrowed) {
            Some(d) => {
                outputs.insert(o.name.to_string(), value_text(d));
            }
            None => {
                return Ok(outcome(
                    Phase::Error,
                    format!(
                        "raw output parameter '{}' has not been set and does not have a default value",
                        o.name
                    ),
                    BTreeMap::new(),
                ));
            }
        }
    }
    Ok(outcome(Phase::Succeeded, String::new(), outputs))
}
