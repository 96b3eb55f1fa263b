//! `retryStrategy` as the Argo controller applies it (workflow/controller/operator.go v4.1.2
//! `processNodeRetries`, lines 1030-1207; v3.7.18 lines 972-1149), for the runner's nodes:
//!
//! - `limit: N` is N retries after the first attempt (N+1 attempts); no limit, no cap on the
//!   count (lines 1184-1191, workflow_types.go 2373-2375).
//! - `retryPolicy` decides which phases are retried: `OnFailure` by default, `Always` when an
//!   `expression` is set (workflow_types.go 2391-2404); the expression then decides, over
//!   `lastRetry.exitCode` ("-1" when the pod reported none), `.status`, `.duration`, `.message`
//!   (lines 2149-2171), all strings.
//! - Backoff: `duration × factor^(attempts-1)`, capped by `cap`, counted from the last
//!   attempt's end (lines 1106-1131); Argo waits only when `limit` is set (lines 1139-1144).
//!   `maxDuration` counts from the first attempt's start: past it, or when the next wait would
//!   end past it, no more retries (lines 1079-1094, 1133-1137), and it is every later attempt's
//!   deadline (lines 1146-1147, `ARGO_DEADLINE`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use medallion_argo::expr::Val;
use medallion_argo::parse_go_duration;
use serde_json::Value;

use super::{Phase, value_text};

/// Which failed phases a strategy retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    Always,
    OnFailure,
    OnError,
    /// Argo matches the node's message against transient error texts (util/errors/errors.go).
    OnTransientError,
}

#[derive(Debug, Clone)]
pub struct Backoff {
    duration: Duration,
    factor: f64,
    cap: Option<Duration>,
    max_duration: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct RetryStrategy {
    limit: Option<u32>,
    policy: RetryPolicy,
    expression: Option<String>,
    backoff: Option<Backoff>,
}

/// What happened to the last attempt, as `lastRetry.*` sees it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub phase: Phase,
    /// The main container's exit code; `None` when it reported none (Argo's "-1").
    pub exit_code: Option<i32>,
    pub message: String,
    pub started: Instant,
    pub finished: Instant,
}

/// The decision after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Retry after this wait.
    Retry(Duration),
    /// No retry; the reason Argo writes on the retry node.
    Stop(String),
}

/// Transient error texts Argo's `OnTransientError` recognises in a node's message
/// (util/errors/errors.go v4.1.2 lines 91-175).
const TRANSIENT: &[&str] = &[
    "connection reset by peer",
    "i/o timeout",
    "connect: connection refused",
    "etcdserver: leader changed",
    "etcdserver: request timed out",
    "TLS handshake timeout",
    "http2: client connection lost",
    "upper: no more rows in",
];

impl RetryStrategy {
    /// The template's strategy, or `None` without one.
    pub fn of(template: &Value) -> Result<Option<RetryStrategy>, String> {
        let Some(r) = template.get("retryStrategy") else {
            return Ok(None);
        };
        let tname = super::name_of(template);
        let limit = match r.get("limit") {
            // intstr.Int32 (util/intstr/parametrizable.go lines 12-43).
            Some(v) => Some(value_text(v).parse::<u32>().map_err(|_| {
                format!(
                    "template {tname}: retryStrategy.limit: value '{}' cannot be resolved to an int",
                    value_text(v)
                )
            })?),
            None => None,
        };
        let expression = r
            .get("expression")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(str::to_string);
        let policy = match r.get("retryPolicy").and_then(Value::as_str).unwrap_or("") {
            "" if expression.is_some() => RetryPolicy::Always,
            "" | "OnFailure" => RetryPolicy::OnFailure,
            "Always" => RetryPolicy::Always,
            "OnError" => RetryPolicy::OnError,
            "OnTransientError" => RetryPolicy::OnTransientError,
            other => {
                return Err(format!(
                    "template {tname}: {other} is not a valid RetryPolicy"
                ));
            }
        };
        // Durations: a bare integer is seconds, else a Go duration (utils.go lines 9-20).
        let duration = |key: &str| -> Result<Option<Duration>, String> {
            r.pointer(&format!("/backoff/{key}"))
                .map(|d| {
                    let text = value_text(d);
                    match text.parse::<u64>() {
                        Ok(s) => Ok(Duration::from_secs(s)),
                        Err(_) => parse_go_duration(&text).map_err(|e| {
                            format!("template {tname}: retryStrategy.backoff.{key}: {e}")
                        }),
                    }
                })
                .transpose()
        };
        let backoff = match r.get("backoff") {
            None => None,
            Some(b) => Some(Backoff {
                duration: duration("duration")?.ok_or_else(|| {
                    format!("template {tname}: no base duration specified for retryStrategy")
                })?,
                factor: match b.get("factor") {
                    Some(f) => value_text(f).parse::<f64>().map_err(|_| {
                        format!(
                            "template {tname}: retryStrategy.backoff.factor {} is not a number",
                            value_text(f)
                        )
                    })?,
                    None => 1.0,
                },
                cap: duration("cap")?,
                max_duration: duration("maxDuration")?,
            }),
        };
        Ok(Some(RetryStrategy {
            limit,
            policy,
            expression,
            backoff,
        }))
    }

    /// The deadline of attempt `n` (1-based) set by `maxDuration`: attempts after the first run
    /// until the first attempt's start plus maxDuration (scaled like every wait).
    pub fn attempt_deadline(&self, n: u32, first_start: Instant, scale: f64) -> Option<Instant> {
        let max = self.backoff.as_ref()?.max_duration?;
        (n > 1).then(|| first_start + max.mul_f64(scale))
    }

    /// Whether to retry after `attempts` attempts, the last of which failed or errored;
    /// `scale` shrinks every duration (tests run the backoff at 0).
    pub fn next(
        &self,
        attempts: u32,
        first_start: Instant,
        last: &Attempt,
        scale: f64,
    ) -> Result<Next, String> {
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        if let Some(b) = &self.backoff {
            let max_deadline = b.max_duration.map(|m| first_start + m.mul_f64(scale));
            if max_deadline.is_some_and(|d| now > d) {
                return Ok(Next::Stop("Max duration limit exceeded".into()));
            }
            let exponent = i32::try_from(attempts.saturating_sub(1)).unwrap_or(i32::MAX);
            let factor = if b.factor > 0.0 {
                b.factor.powi(exponent)
            } else {
                1.0
            };
            let mut w = b.duration.as_secs_f64() * factor;
            if let Some(cap) = b.cap {
                w = w.min(cap.as_secs_f64());
            }
            let w = Duration::from_secs_f64(w.min(1e9)).mul_f64(scale);
            if max_deadline.is_some_and(|d| last.finished + w > d) {
                return Ok(Next::Stop("Backoff would exceed max duration limit".into()));
            }
            // Argo waits only with a limit (operator.go lines 1139-1144).
            if self.limit.is_some_and(|l| attempts <= l) {
                wait = (last.finished + w).saturating_duration_since(now);
            }
        }
        let (on_failed, on_error) = match self.policy {
            RetryPolicy::Always => (true, true),
            RetryPolicy::OnFailure => (true, false),
            RetryPolicy::OnError => (false, true),
            RetryPolicy::OnTransientError => {
                let transient = TRANSIENT.iter().any(|t| last.message.contains(t));
                (transient, transient)
            }
        };
        let allowed = match last.phase {
            Phase::Failed => on_failed,
            Phase::Error => on_error,
            _ => false,
        };
        if !allowed {
            return Ok(Next::Stop(last.message.clone()));
        }
        if self.limit.is_some_and(|l| attempts > l) {
            return Ok(Next::Stop("No more retries left".into()));
        }
        if let Some(e) = &self.expression {
            let vars = BTreeMap::from([
                (
                    "lastRetry.exitCode".to_string(),
                    Val::Str(last.exit_code.map_or("-1".into(), |c| c.to_string())),
                ),
                (
                    "lastRetry.status".to_string(),
                    Val::Str(last.phase.as_str().into()),
                ),
                (
                    "lastRetry.duration".to_string(),
                    Val::Str(
                        last.finished
                            .duration_since(last.started)
                            .as_secs_f64()
                            .to_string(),
                    ),
                ),
                (
                    "lastRetry.message".to_string(),
                    Val::Str(last.message.clone()),
                ),
                (
                    "retries".to_string(),
                    Val::Str(attempts.saturating_sub(1).to_string()),
                ),
            ]);
            let retry = medallion_argo::expr::retry(e, &vars)
                .map_err(|e| format!("retryStrategy.expression: {e}"))?;
            if !retry {
                return Ok(Next::Stop(
                    "retryStrategy.expression evaluated to false".into(),
                ));
            }
        }
        Ok(Next::Retry(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed(code: Option<i32>, at: Instant) -> Attempt {
        Attempt {
            phase: Phase::Failed,
            exit_code: code,
            message: "failed".into(),
            started: at,
            finished: at,
        }
    }

    /// limit 2 = three attempts; the expression decides which failures are retried
    /// (operator.go v4.1.2 lines 1184-1203).
    #[test]
    fn limit_counts_retries_after_the_first_attempt() {
        let t = json!({"name": "t", "retryStrategy": {"limit": 2, "expression": "asInt(lastRetry.exitCode) == 1"}});
        let r = RetryStrategy::of(&t).unwrap().unwrap();
        let now = Instant::now();
        assert_eq!(
            r.next(1, now, &failed(Some(1), now), 1.0).unwrap(),
            Next::Retry(Duration::ZERO)
        );
        assert_eq!(
            r.next(2, now, &failed(Some(1), now), 1.0).unwrap(),
            Next::Retry(Duration::ZERO)
        );
        assert_eq!(
            r.next(3, now, &failed(Some(1), now), 1.0).unwrap(),
            Next::Stop("No more retries left".into())
        );
        assert_eq!(
            r.next(1, now, &failed(Some(2), now), 1.0).unwrap(),
            Next::Stop("retryStrategy.expression evaluated to false".into())
        );
    }

    /// Without an expression the default policy is OnFailure: an Error is not retried
    /// (workflow_types.go v4.1.2 lines 2391-2404).
    #[test]
    fn the_default_policy_retries_failures_only() {
        let r = RetryStrategy::of(&json!({"retryStrategy": {"limit": "3"}}))
            .unwrap()
            .unwrap();
        let now = Instant::now();
        let mut error = failed(None, now);
        error.phase = Phase::Error;
        assert!(matches!(
            r.next(1, now, &error, 1.0).unwrap(),
            Next::Stop(_)
        ));
        assert!(matches!(
            r.next(1, now, &failed(None, now), 1.0).unwrap(),
            Next::Retry(_)
        ));
    }

    /// The wait grows by the factor and stops at cap; maxDuration counts from the first start
    /// and ends the retries once a wait would pass it (operator.go v4.1.2 lines 1079-1137).
    #[test]
    fn backoff_grows_caps_and_respects_max_duration() {
        let t = json!({"retryStrategy": {"limit": "5", "backoff": {"duration": "10s", "factor": "2", "cap": "25s"}}});
        let r = RetryStrategy::of(&t).unwrap().unwrap();
        let now = Instant::now();
        let wait = |n| match r.next(n, now, &failed(Some(1), now), 1.0).unwrap() {
            Next::Retry(w) => w,
            Next::Stop(m) => panic!("{m}"),
        };
        assert!(wait(1) > Duration::from_secs(9) && wait(1) <= Duration::from_secs(10));
        assert!(wait(2) > Duration::from_secs(19));
        assert!(wait(3) <= Duration::from_secs(25));
        let t = json!({"retryStrategy": {"limit": "5", "backoff": {"duration": "10s", "maxDuration": "15s"}}});
        let r = RetryStrategy::of(&t).unwrap().unwrap();
        let start = Instant::now();
        let late = start + Duration::from_secs(8);
        assert_eq!(
            r.next(1, start, &failed(Some(1), late), 1.0).unwrap(),
            Next::Stop("Backoff would exceed max duration limit".into())
        );
        assert_eq!(r.attempt_deadline(1, start, 1.0), None);
        assert_eq!(
            r.attempt_deadline(2, start, 1.0),
            Some(start + Duration::from_secs(15))
        );
    }

    /// No limit: Argo never waits between attempts (operator.go v4.1.2 line 1140).
    #[test]
    fn without_a_limit_the_backoff_never_waits() {
        let t = json!({"retryStrategy": {"expression": "true", "backoff": {"duration": "10s"}}});
        let r = RetryStrategy::of(&t).unwrap().unwrap();
        let now = Instant::now();
        assert_eq!(
            r.next(1, now, &failed(Some(1), now), 1.0).unwrap(),
            Next::Retry(Duration::ZERO)
        );
    }
}
