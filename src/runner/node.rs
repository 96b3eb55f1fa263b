//! One leaf node of `medallion run` as the Argo controller runs it: its mutexes, its memo
//! cache, and its attempts under the retry strategy (retry.rs).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    Engine, Leaf, NodeRecord, Outcome, Phase, RunError, exec, memo, retry, sanitize, suspend,
    template_error,
};

impl Engine {
    /// A container, suspend or plugin node with retries, deadline, mutexes and memoization, in
    /// the controller's order: the mutexes are taken first, then the memo cache is read
    /// (operator.go v4.1.2 lines 2324-2420), then the attempts run.
    pub(super) fn run_leaf(
        &self,
        template: &Value,
        raw: &Leaf<'_>,
        path: &str,
        display: &str,
    ) -> Result<Outcome, RunError> {
        let tname = super::name_of(template).to_string();
        let started = Instant::now();
        let mut record = NodeRecord {
            path: display.to_string(),
            template: tname.clone(),
            phase: Phase::Failed,
            message: String::new(),
            duration: Duration::ZERO,
            attempts: 0,
            outputs: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            memoized: false,
        };
        let locks = exec::mutex_names(template).map_err(template_error)?;
        self.acquire(&locks);
        self.view.node_started(display, &tname);
        let result = match memo::memo_slot(template, &self.options.runs_dir) {
            // An invalid key errors the node (operator.go lines 2374-2377, 2993-3000).
            Err(memo::MemoError(message)) => Ok((
                Outcome {
                    phase: Phase::Error,
                    message,
                    outputs: BTreeMap::new(),
                    rejected: false,
                    artifacts: BTreeMap::new(),
                },
                None,
            )),
            Ok(Some(slot)) if let Some(outputs) = slot.lookup() => {
                record.memoized = true;
                Ok((
                    Outcome {
                        phase: Phase::Succeeded,
                        message: format!("memoized (key {})", slot.key),
                        outputs,
                        rejected: false,
                        artifacts: BTreeMap::new(),
                    },
                    None,
                ))
            }
            Ok(slot) => self
                .attempts(template, raw, path, &mut record)
                .map(|o| (o, slot)),
        };
        self.release(&locks);
        let (outcome, slot) = result?;
        record.phase = outcome.phase;
        record.message = outcome.message.clone();
        record.outputs = outcome.outputs.clone();
        record.duration = started.elapsed();
        if outcome.phase == Phase::Succeeded
            && let Some(slot) = &slot
        {
            slot.store(&outcome.outputs);
        }
        self.view.node_done(&record);
        self.push(record);
        Ok(outcome)
    }

    /// The attempts of a leaf node under its retryStrategy (retry.rs).
    fn attempts(
        &self,
        template: &Value,
        raw: &Leaf<'_>,
        path: &str,
        record: &mut NodeRecord,
    ) -> Result<Outcome, RunError> {
        let retry = retry::RetryStrategy::of(template).map_err(template_error)?;
        let first_start = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            record.attempts = attempt;
            let started = Instant::now();
            let node_dir = self.run_dir.join(format!("{}-{attempt}", sanitize(path)));
            let deadline = retry
                .as_ref()
                .and_then(|r| r.attempt_deadline(attempt, first_start, self.options.time_scale));
            let (outcome, exit_code) = if template.get("container").is_some()
                || template.get("script").is_some()
            {
                let mut r = exec::run_container(self, template, raw, &node_dir, deadline)?;
                record.artifacts = r.artifacts.clone();
                r.outcome.artifacts = r.artifacts;
                (r.outcome, r.exit_code)
            } else if template.get("suspend").is_some() {
                (suspend::suspend(self, template, raw.inputs, path)?, None)
            } else if template.get("plugin").is_some() {
                (exec::plugin(self, template, path)?, None)
            } else {
                return Err(template_error(format!(
                    "template {}: has no dag, container, script, suspend or plugin; only those are implemented by medallion run",
                    super::name_of(template)
                )));
            };
            if !outcome.phase.failed() || outcome.rejected {
                return Ok(outcome);
            }
            let Some(r) = &retry else {
                return Ok(outcome);
            };
            // The workflow's deadline ends the retries (operator.go lines 1066-1075).
            if self.deadline.is_some_and(|d| Instant::now() > d) {
                return Ok(outcome);
            }
            let last = retry::Attempt {
                phase: outcome.phase,
                exit_code,
                message: outcome.message.clone(),
                started,
                finished: Instant::now(),
            };
            match r
                .next(attempt, first_start, &last, self.options.time_scale)
                .map_err(template_error)?
            {
                retry::Next::Retry(wait) => {
                    self.view.note(&format!(
                        "{}: attempt {attempt} failed ({}); retrying in {}",
                        record.path,
                        outcome.message,
                        medallion_argo::format_go_duration(wait)
                    ));
                    std::thread::sleep(wait);
                }
                retry::Next::Stop(why) => {
                    let mut o = outcome;
                    if why != o.message {
                        o.message = format!("{} ({why})", o.message);
                    }
                    return Ok(o);
                }
            }
        }
    }

    fn acquire(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let (lock, cv) = &self.mutexes;
        let Ok(mut held) = lock.lock() else { return };
        while names.iter().any(|n| held.contains(n)) {
            held = match cv.wait(held) {
                Ok(h) => h,
                Err(_) => return,
            };
        }
        held.extend(names.iter().cloned());
    }

    fn release(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let (lock, cv) = &self.mutexes;
        if let Ok(mut held) = lock.lock() {
            for n in names {
                held.remove(n);
            }
        }
        cv.notify_all();
    }

    pub(super) fn push(&self, record: NodeRecord) {
        if let Ok(mut r) = self.records.lock() {
            r.push(record);
        }
    }
}
