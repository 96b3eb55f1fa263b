//! The DAG engine of `medallion run`: which task runs when (`dependencies`, `depends`,
//! `when`, failFast), the arguments each task passes, and the DAG's own outputs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use medallion_argo::lint::depends_names;
use medallion_argo::model::TemplateRef;
use serde_json::Value;

use super::{
    ARTIFACT_ARG, Engine, NodeRecord, Outcome, Phase, RunError, Scope, items, substitute,
    template_error, value_text,
};

impl Engine {
    /// The template a task calls and the scope its own `template:` references resolve in.
    fn target(&self, task: &Value, scope: &Scope) -> Result<(Value, Scope), RunError> {
        if let Some(name) = task.get("template").and_then(Value::as_str) {
            return scope
                .get(name)
                .cloned()
                .map(|t| (t, scope.clone()))
                .ok_or_else(|| template_error(format!("template {name:?} does not exist")));
        }
        if let Some(r) = TemplateRef::of_call(task) {
            let spec = self
                .library
                .get(&(r.cluster_scope, r.name.to_string()))
                .ok_or_else(|| {
                    template_error(format!(
                        "templateRef {} {:?} is not in the library folders",
                        r.kind(),
                        r.name
                    ))
                })?;
            return spec
                .get(r.template)
                .cloned()
                .map(|t| (t, spec.clone()))
                .ok_or_else(|| {
                    template_error(format!("{} has no template {:?}", r.name, r.template))
                });
        }
        Err(template_error(
            "a task names neither template nor templateRef",
        ))
    }

    pub(super) fn run_dag(
        &self,
        template: &Value,
        scope: &Scope,
        path: &str,
    ) -> Result<Outcome, RunError> {
        let tname = super::name_of(template).to_string();
        if let Some(dag) = template.get("dag").and_then(Value::as_object) {
            for k in dag.keys() {
                if !["tasks", "failFast"].contains(&k.as_str()) {
                    return Err(template_error(format!(
                        "template {tname}: dag.{k} is not implemented by medallion run"
                    )));
                }
            }
        }
        let fail_fast = template
            .pointer("/dag/failFast")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let tasks: Vec<Value> = template
            .pointer("/dag/tasks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        const TASK_FIELDS: &[&str] = &[
            "name",
            "template",
            "templateRef",
            "arguments",
            "dependencies",
            "depends",
            "when",
        ];
        let mut names = Vec::new();
        let mut deps: Vec<Vec<String>> = Vec::new();
        for t in &tasks {
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(map) = t.as_object() {
                for k in map.keys() {
                    if !TASK_FIELDS.contains(&k.as_str()) {
                        return Err(template_error(format!(
                            "template {tname}: task {name}: {k} is not implemented by medallion run"
                        )));
                    }
                }
            }
            let mut d: Vec<String> = items(t, "/dependencies")
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            if let Some(e) = t.get("depends").and_then(Value::as_str) {
                d.extend(depends_names(e).into_iter().map(str::to_string));
            }
            names.push(name);
            deps.push(d);
        }
        for (i, d) in deps.iter().enumerate() {
            for n in d {
                if !names.contains(n) {
                    return Err(template_error(format!(
                        "template {tname}: task {} depends on {n:?}, which is not a task",
                        names[i]
                    )));
                }
            }
        }
        let results: Mutex<BTreeMap<String, Outcome>> = Mutex::new(BTreeMap::new());
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Outcome, RunError>)>();
        let mut state = vec![0u8; tasks.len()]; // 0 waiting, 1 running, 2 done
        let mut failed: Option<String> = None;
        let mut rejected = false;
        let mut error: Option<RunError> = None;
        std::thread::scope(|s| {
            loop {
                // Start every task whose dependencies are done (unless failing fast).
                let mut progressed = true;
                while progressed {
                    progressed = false;
                    for i in 0..tasks.len() {
                        if state[i] != 0
                            || !deps[i].iter().all(|d| {
                                names
                                    .iter()
                                    .position(|n| n == d)
                                    .is_some_and(|j| state[j] == 2)
                            })
                        {
                            continue;
                        }
                        let done = results.lock().map(|r| r.clone()).unwrap_or_default();
                        let task_path = format!("{path}.{}", names[i]);
                        let display = task_path
                            .split_once('.')
                            .map_or(task_path.clone(), |(_, r)| r.to_string());
                        if (failed.is_some() && fail_fast) || error.is_some() {
                            state[i] = 2;
                            progressed = true;
                            self.skip(
                                &names[i],
                                &display,
                                Phase::Omitted,
                                "not started: an earlier task failed",
                                &results,
                            );
                            continue;
                        }
                        match self.decide(&tasks[i], &deps[i], &done, &names[i]) {
                            Err(e) => {
                                error = Some(e);
                                state[i] = 2;
                                progressed = true;
                            }
                            Ok(Some((phase, why))) => {
                                state[i] = 2;
                                progressed = true;
                                self.skip(&names[i], &display, phase, &why, &results);
                            }
                            Ok(None) => {
                                state[i] = 1;
                                let tx = tx.clone();
                                let task = tasks[i].clone();
                                let done = done.clone();
                                s.spawn(move || {
                                    let r =
                                        self.run_task(&task, scope, &done, &task_path, &display);
                                    let _ = tx.send((i, r));
                                });
                            }
                        }
                    }
                }
                if !state.contains(&1) {
                    break;
                }
                let Ok((i, r)) = rx.recv() else { break };
                state[i] = 2;
                match r {
                    Ok(o) => {
                        if o.phase.failed() && failed.is_none() {
                            failed = Some(format!("task {}: {}", names[i], o.message));
                            rejected = o.rejected;
                        }
                        if let Ok(mut m) = results.lock() {
                            m.insert(names[i].clone(), o);
                        }
                    }
                    Err(e) => {
                        if error.is_none() {
                            error = Some(e);
                        }
                    }
                }
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        let done = results.into_inner().unwrap_or_default();
        if let Some(message) = failed {
            return Ok(Outcome {
                phase: Phase::Failed,
                message,
                outputs: BTreeMap::new(),
                rejected,
                artifacts: BTreeMap::new(),
            });
        }
        // DAG outputs: valueFrom.parameter over the tasks' outputs.
        let mut outputs = BTreeMap::new();
        for p in items(template, "/outputs/parameters") {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if let Some(expr) = p.pointer("/valueFrom/parameter").and_then(Value::as_str) {
                // A skipped task has no outputs: the output's default stands in, as in Argo.
                let v = match substitute(expr, &|n| task_variable(n, &done), true) {
                    Ok(v) => v,
                    Err(m) => match p.pointer("/valueFrom/default") {
                        Some(d) => value_text(d),
                        None => {
                            return Err(template_error(format!(
                                "template {tname}: output {name}: {m}"
                            )));
                        }
                    },
                };
                outputs.insert(name.to_string(), v);
            }
        }
        Ok(Outcome {
            phase: Phase::Succeeded,
            message: String::new(),
            outputs,
            rejected: false,
            artifacts: BTreeMap::new(),
        })
    }

    fn skip(
        &self,
        name: &str,
        display: &str,
        phase: Phase,
        why: &str,
        results: &Mutex<BTreeMap<String, Outcome>>,
    ) {
        let record = NodeRecord {
            path: display.to_string(),
            template: String::new(),
            phase,
            message: why.to_string(),
            duration: Duration::ZERO,
            attempts: 0,
            outputs: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            memoized: false,
        };
        self.view.node_done(&record);
        self.push(record);
        if let Ok(mut m) = results.lock() {
            m.insert(
                name.to_string(),
                Outcome {
                    phase,
                    message: why.to_string(),
                    outputs: BTreeMap::new(),
                    rejected: false,
                    artifacts: BTreeMap::new(),
                },
            );
        }
    }

    /// Whether a task whose dependencies are done runs: `None` to run, or the phase it gets
    /// instead (Omitted when its dependencies do not allow it, Skipped when `when` is false).
    fn decide(
        &self,
        task: &Value,
        deps: &[String],
        done: &BTreeMap<String, Outcome>,
        name: &str,
    ) -> Result<Option<(Phase, String)>, RunError> {
        let phase_of = |d: &str| done.get(d).map(|o| o.phase).unwrap_or(Phase::Omitted);
        if let Some(expr) = task.get("depends").and_then(Value::as_str) {
            let mut text = String::new();
            for token in split_keep(expr) {
                let t = token.trim();
                if t.is_empty() || "()!&|".contains(t.chars().next().unwrap_or(' ')) {
                    text.push_str(token);
                    continue;
                }
                let (task_name, result) = t
                    .rsplit_once('.')
                    .filter(|(_, r)| r.chars().next().is_some_and(char::is_uppercase))
                    .unwrap_or((t, ""));
                let p = phase_of(task_name);
                let value = match result {
                    "" => matches!(p, Phase::Succeeded | Phase::Skipped),
                    "Succeeded" => p == Phase::Succeeded,
                    "Failed" | "AllFailed" => p == Phase::Failed,
                    "Errored" => p == Phase::Error,
                    "Skipped" => p == Phase::Skipped,
                    "Omitted" => p == Phase::Omitted,
                    "AnySucceeded" => p == Phase::Succeeded,
                    other => {
                        return Err(template_error(format!(
                            "task {name}: depends result {other:?} is not implemented by medallion run"
                        )));
                    }
                };
                text.push_str(if value { "true" } else { "false" });
            }
            let ok = medallion_argo::expr::when(&text)
                .map_err(|e| template_error(format!("task {name}: depends: {e}")))?;
            if !ok {
                return Ok(Some((Phase::Omitted, format!("depends {expr:?} is false"))));
            }
        } else if let Some(d) = deps
            .iter()
            .find(|d| !matches!(phase_of(d), Phase::Succeeded | Phase::Skipped))
        {
            return Ok(Some((
                Phase::Omitted,
                format!("dependency {d} did not succeed"),
            )));
        }
        if let Some(w) = task.get("when").and_then(Value::as_str) {
            let text = substitute(
                w,
                &|n| task_variable(n, done).or_else(|| self.global(n)),
                true,
            )
            .map_err(|m| template_error(format!("task {name}: when: {m}")))?;
            let go = medallion_argo::expr::when(&text)
                .map_err(|e| template_error(format!("task {name}: when: {e}")))?;
            if !go {
                return Ok(Some((Phase::Skipped, format!("when {text:?} is false"))));
            }
        }
        Ok(None)
    }

    fn run_task(
        &self,
        task: &Value,
        scope: &Scope,
        done: &BTreeMap<String, Outcome>,
        path: &str,
        display: &str,
    ) -> Result<Outcome, RunError> {
        let name = super::name_of(task);
        let (template, target_scope) = self
            .target(task, scope)
            .map_err(|e| template_error(format!("task {name}: {e}")))?;
        let mut arguments = BTreeMap::new();
        for p in items(task, "/arguments/parameters") {
            let pname = p.get("name").and_then(Value::as_str).unwrap_or("");
            let raw = p.get("value").map(value_text).unwrap_or_default();
            let v = substitute(
                &raw,
                &|n| task_variable(n, done).or_else(|| self.global(n)),
                true,
            )
            .map_err(|m| template_error(format!("task {name}: argument {pname}: {m}")))?;
            arguments.insert(pname.to_string(), v);
        }
        for a in items(task, "/arguments/artifacts") {
            let aname = a.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(from) = a.get("from").and_then(Value::as_str) else {
                return Err(template_error(format!(
                    "task {name}: artifact {aname}: only `from` (a task's output artifact) is implemented by medallion run"
                )));
            };
            let local = substitute(from, &|n| task_variable(n, done), true)
                .map_err(|m| template_error(format!("task {name}: artifact {aname}: {m}")))?;
            arguments.insert(format!("{ARTIFACT_ARG}{aname}"), local);
        }
        if let Some(d) = self.deadline
            && Instant::now() > d
        {
            return Ok(Outcome {
                phase: Phase::Failed,
                message: "the workflow's activeDeadlineSeconds passed".into(),
                outputs: BTreeMap::new(),
                rejected: false,
                artifacts: BTreeMap::new(),
            });
        }
        self.invoke(&template, &target_scope, &arguments, path, display)
    }
}

/// `tasks.<t>.outputs.parameters.<p>` and `tasks.<t>.status` from finished tasks.
fn task_variable(name: &str, done: &BTreeMap<String, Outcome>) -> Option<String> {
    let rest = name.strip_prefix("tasks.")?;
    let (task, field) = rest.split_once('.')?;
    let o = done.get(task)?;
    if field == "status" {
        return Some(o.phase.as_str().to_string());
    }
    if let Some(a) = field.strip_prefix("outputs.artifacts.") {
        return o.artifacts.get(a).map(|p| p.display().to_string());
    }
    o.outputs
        .get(field.strip_prefix("outputs.parameters.")?)
        .cloned()
}

/// Splits a depends expression into operator and operand pieces, keeping both.
fn split_keep(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in expr.char_indices() {
        if c.is_whitespace() || "()!&|".contains(c) {
            if start < i {
                out.push(&expr[start..i]);
            }
            out.push(&expr[i..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    if start < expr.len() {
        out.push(&expr[start..]);
    }
    out
}
