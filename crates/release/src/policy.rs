//! The approval policy: one implementation behind every front end (the `medallion-approve` step,
//! the executor plugin's pod-less `approve`, the CLI).
//!
//! ```yaml
//! thresholds: ["r2 >= 0.75", "mape <= 0.25"]   # on the candidate's metrics
//! not_worse_than: production                    # alias whose metrics it must match or beat
//! tolerance: 0.01                               # relative slack for not_worse_than
//! no_production: approve                        # approve | review | reject when that alias is missing
//! destructive: reject                           # reject | review | allow plans that delete or replace
//! protected: ["azurerm_storage_account.*"]      # never deleted or replaced, whatever `destructive` says
//! max_replicas: 10
//! allowed_namespaces: [models]
//! review: never                                 # never | always (a person approves after the rules pass)
//! ```
//!
//! Every rule yields a [`Check`]; one failed check rejects, otherwise one check asking for review
//! makes the verdict `needs-review`, otherwise it is `approved`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::Metrics;
use crate::plan::Plan;

/// Metrics where a larger value is better; those in [`LOWER_IS_BETTER`] are the opposite. Others
/// need `higher_is_better` / `lower_is_better` in the policy to take part in `not_worse_than`.
pub const HIGHER_IS_BETTER: &[&str] = &[
    "r2",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "auc",
    "roc_auc",
    "silhouette",
    "explained_variance",
];
pub const LOWER_IS_BETTER: &[&str] = &[
    "rmse",
    "mae",
    "mape",
    "mse",
    "inertia",
    "log_loss",
    "davies_bouldin",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    #[serde(default)]
    pub not_worse_than: Option<String>,
    #[serde(default)]
    pub tolerance: f64,
    #[serde(default)]
    pub no_production: MissingBaseline,
    #[serde(default)]
    pub higher_is_better: Vec<String>,
    #[serde(default)]
    pub lower_is_better: Vec<String>,
    #[serde(default)]
    pub destructive: DestructiveRule,
    #[serde(default)]
    pub protected: Vec<String>,
    #[serde(default)]
    pub max_replicas: Option<u32>,
    #[serde(default)]
    pub allowed_namespaces: Vec<String>,
    #[serde(default)]
    pub review: Review,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissingBaseline {
    /// The first release has nothing to compare with: allowed.
    #[default]
    Approve,
    Review,
    Reject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestructiveRule {
    #[default]
    Reject,
    Review,
    Allow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Review {
    #[default]
    Never,
    Always,
}

/// `<metric> <op> <number>`, e.g. `r2 >= 0.75`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Threshold {
    pub metric: String,
    pub op: Comparison,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Ge => ">=",
            Comparison::Gt => ">",
            Comparison::Le => "<=",
            Comparison::Lt => "<",
            Comparison::Eq => "==",
        }
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Comparison::Ge => left >= right,
            Comparison::Gt => left > right,
            Comparison::Le => left <= right,
            Comparison::Lt => left < right,
            Comparison::Eq => left == right,
        }
    }
}

impl FromStr for Threshold {
    type Err = String;
    fn from_str(text: &str) -> Result<Threshold, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [metric, op, value] = parts[..] else {
            return Err(format!(
                "'{text}' is not '<metric> <op> <number>' (e.g. 'r2 >= 0.75')"
            ));
        };
        let op = match op {
            ">=" => Comparison::Ge,
            ">" => Comparison::Gt,
            "<=" => Comparison::Le,
            "<" => Comparison::Lt,
            "==" => Comparison::Eq,
            other => return Err(format!("'{other}' in '{text}' is not one of >= > <= < ==")),
        };
        let value: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("'{value}' in '{text}' is not a number"))?;
        Ok(Threshold {
            metric: metric.to_string(),
            op,
            value,
        })
    }
}

impl TryFrom<String> for Threshold {
    type Error = String;
    fn try_from(s: String) -> Result<Threshold, String> {
        s.parse()
    }
}

impl From<Threshold> for String {
    fn from(t: Threshold) -> String {
        t.to_string()
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op.symbol(), self.value)
    }
}

/// The production model a candidate is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Baseline {
    /// The policy has no `not_worse_than`, or the caller did not look it up.
    None,
    /// The alias does not exist (yet).
    Missing { alias: String },
    Found {
        alias: String,
        version: u64,
        metrics: Metrics,
    },
}

/// What a policy is evaluated over.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub metrics: Option<&'a Metrics>,
    pub baseline: &'a Baseline,
    pub plan: Option<&'a Plan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Review,
    Fail,
}

/// One rule's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub rule: String,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Approved,
    Rejected,
    NeedsReview,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
            Decision::NeedsReview => "needs-review",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    pub checks: Vec<Check>,
}

impl Verdict {
    /// The checks that decided the verdict, one line: failures for a rejection, review requests
    /// for needs-review, every passed rule for an approval.
    pub fn reasons(&self) -> String {
        let wanted = match self.decision {
            Decision::Rejected => Outcome::Fail,
            Decision::NeedsReview => Outcome::Review,
            Decision::Approved => Outcome::Pass,
        };
        let parts: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.outcome == wanted)
            .map(|c| c.detail.as_str())
            .collect();
        if parts.is_empty() {
            "no rule applies".into()
        } else {
            parts.join("; ")
        }
    }
}

impl Policy {
    /// Parses a policy from YAML (a file's contents); `source` names it in errors.
    pub fn from_yaml(source: &str, text: &str) -> Result<Policy> {
        let policy: Policy = serde_yaml_ng::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}", l.line()))
                .unwrap_or_else(|| "policy".into());
            Error::invalid(source, at, e.to_string())
        })?;
        policy.validate(source)?;
        Ok(policy)
    }

    /// Parses a policy from JSON (plugin arguments); `source` names it in errors.
    pub fn from_json(source: &str, value: &serde_json::Value) -> Result<Policy> {
        let policy: Policy = serde_json::from_value(value.clone())
            .map_err(|e| Error::invalid(source, "policy", e.to_string()))?;
        policy.validate(source)?;
        Ok(policy)
    }

    fn validate(&self, source: &str) -> Result<()> {
        if !(0.0..1.0).contains(&self.tolerance) {
            return Err(Error::invalid(
                source,
                "policy.tolerance",
                format!("{} is not a fraction in [0, 1)", self.tolerance),
            ));
        }
        if let Some(m) = self
            .higher_is_better
            .iter()
            .find(|m| self.lower_is_better.contains(m))
        {
            return Err(Error::invalid(
                source,
                "policy.higher_is_better",
                format!("{m} is also in lower_is_better"),
            ));
        }
        if self.max_replicas == Some(0) {
            return Err(Error::invalid(
                source,
                "policy.max_replicas",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Whether larger values of `metric` are better (`None`: unknown direction).
    pub fn higher_is_better(&self, metric: &str) -> Option<bool> {
        if self.higher_is_better.iter().any(|m| m == metric) {
            Some(true)
        } else if self.lower_is_better.iter().any(|m| m == metric) {
            Some(false)
        } else if HIGHER_IS_BETTER.contains(&metric) {
            Some(true)
        } else if LOWER_IS_BETTER.contains(&metric) {
            Some(false)
        } else {
            None
        }
    }

    /// Evaluates every rule over `subject`.
    pub fn evaluate(&self, subject: Subject<'_>) -> Verdict {
        let mut checks = Vec::new();
        self.check_thresholds(subject.metrics, &mut checks);
        self.check_baseline(subject.metrics, subject.baseline, &mut checks);
        if let Some(plan) = subject.plan {
            self.check_plan(plan, &mut checks);
        }
        if self.review == Review::Always {
            checks.push(Check {
                rule: "review".into(),
                outcome: Outcome::Review,
                detail: "the policy asks a person to approve every release".into(),
            });
        }
        let decision = if checks.iter().any(|c| c.outcome == Outcome::Fail) {
            Decision::Rejected
        } else if checks.iter().any(|c| c.outcome == Outcome::Review) {
            Decision::NeedsReview
        } else {
            Decision::Approved
        };
        Verdict { decision, checks }
    }

    fn check_thresholds(&self, metrics: Option<&Metrics>, checks: &mut Vec<Check>) {
        for t in &self.thresholds {
            let rule = format!("threshold {t}");
            let (outcome, detail) = match metrics.and_then(|m| m.get(&t.metric)) {
                None => (
                    Outcome::Fail,
                    format!(
                        "{t}: the candidate has no metric {} (has: {})",
                        t.metric,
                        metrics
                            .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                            .unwrap_or_else(|| "no metrics".into())
                    ),
                ),
                Some(&v) if t.op.holds(v, t.value) => (
                    Outcome::Pass,
                    format!("{} = {v} {} {}", t.metric, t.op.symbol(), t.value),
                ),
                Some(&v) => (Outcome::Fail, format!("{} = {v} breaks {t}", t.metric)),
            };
            checks.push(Check {
                rule,
                outcome,
                detail,
            });
        }
    }

    fn check_baseline(
        &self,
        metrics: Option<&Metrics>,
        baseline: &Baseline,
        checks: &mut Vec<Check>,
    ) {
        let Some(alias) = &self.not_worse_than else {
            return;
        };
        let rule = format!("not worse than {alias}");
        let (outcome, detail) = match (baseline, metrics) {
            (_, None) => (
                Outcome::Fail,
                format!("{rule}: the candidate has no metrics"),
            ),
            (Baseline::None, _) => (
                Outcome::Fail,
                format!("{rule}: the {alias} model was not looked up"),
            ),
            (Baseline::Missing { .. }, _) => {
                let outcome = match self.no_production {
                    MissingBaseline::Approve => Outcome::Pass,
                    MissingBaseline::Review => Outcome::Review,
                    MissingBaseline::Reject => Outcome::Fail,
                };
                (
                    outcome,
                    format!("no {alias} model yet, nothing to compare with"),
                )
            }
            (
                Baseline::Found {
                    version,
                    metrics: prod,
                    ..
                },
                Some(cand),
            ) => self.compare(alias, *version, cand, prod),
        };
        checks.push(Check {
            rule,
            outcome,
            detail,
        });
    }

    fn compare(
        &self,
        alias: &str,
        version: u64,
        cand: &Metrics,
        prod: &Metrics,
    ) -> (Outcome, String) {
        let mut worse = Vec::new();
        let mut compared = Vec::new();
        for (name, &c) in cand {
            let (Some(&p), Some(higher)) = (prod.get(name), self.higher_is_better(name)) else {
                continue;
            };
            let slack = self.tolerance * p.abs();
            let ok = if higher {
                c >= p - slack
            } else {
                c <= p + slack
            };
            let line = format!("{name} {c} vs {p}");
            if ok {
                compared.push(line);
            } else {
                worse.push(line);
            }
        }
        if !worse.is_empty() {
            (
                Outcome::Fail,
                format!("worse than {alias} (v{version}): {}", worse.join(", ")),
            )
        } else if compared.is_empty() {
            (
                Outcome::Fail,
                format!(
                    "no metric to compare with {alias} (v{version}): name shared metrics in higher_is_better or lower_is_better"
                ),
            )
        } else {
            (
                Outcome::Pass,
                format!(
                    "not worse than {alias} (v{version}): {}",
                    compared.join(", ")
                ),
            )
        }
    }

    fn check_plan(&self, plan: &Plan, checks: &mut Vec<Check>) {
        for change in &plan.changes {
            let what = format!("{} {}", change.action.as_str(), change.address);
            if change.action.is_destructive() {
                if self
                    .protected
                    .iter()
                    .any(|p| glob_match(p, &change.address))
                {
                    checks.push(Check {
                        rule: "protected".into(),
                        outcome: Outcome::Fail,
                        detail: format!("the plan would {what}, a protected address"),
                    });
                } else {
                    let outcome = match self.destructive {
                        DestructiveRule::Reject => Outcome::Fail,
                        DestructiveRule::Review => Outcome::Review,
                        DestructiveRule::Allow => Outcome::Pass,
                    };
                    checks.push(Check {
                        rule: "destructive".into(),
                        outcome,
                        detail: format!("the plan would {what}"),
                    });
                }
            }
            if let (Some(max), Some(replicas)) = (self.max_replicas, change.replicas)
                && replicas > max
            {
                checks.push(Check {
                    rule: "max_replicas".into(),
                    outcome: Outcome::Fail,
                    detail: format!(
                        "{} asks for {replicas} replicas, more than {max}",
                        change.address
                    ),
                });
            }
            if let Some(ns) = &change.namespace
                && !self.allowed_namespaces.is_empty()
                && !self.allowed_namespaces.contains(ns)
            {
                checks.push(Check {
                    rule: "allowed_namespaces".into(),
                    outcome: Outcome::Fail,
                    detail: format!(
                        "{} is in namespace {ns}, not one of {}",
                        change.address,
                        self.allowed_namespaces.join(", ")
                    ),
                });
            }
        }
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Change, sample};

    fn metrics(pairs: &[(&str, f64)]) -> Metrics {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn policy(yaml: &str) -> Policy {
        Policy::from_yaml("p.yaml", yaml).unwrap()
    }

    fn eval(p: &Policy, m: Option<&Metrics>, b: &Baseline, plan: Option<&Plan>) -> Verdict {
        p.evaluate(Subject {
            metrics: m,
            baseline: b,
            plan,
        })
    }

    #[test]
    fn thresholds_pass_fail_and_missing() {
        let p = policy("thresholds: ['r2 >= 0.75', 'rmse < 50000']");
        let good = metrics(&[("r2", 0.8), ("rmse", 40000.0)]);
        assert_eq!(
            eval(&p, Some(&good), &Baseline::None, None).decision,
            Decision::Approved
        );
        let bad = metrics(&[("r2", 0.7), ("rmse", 40000.0)]);
        let v = eval(&p, Some(&bad), &Baseline::None, None);
        assert_eq!(v.decision, Decision::Rejected);
        assert_eq!(v.reasons(), "r2 = 0.7 breaks r2 >= 0.75");
        let missing = metrics(&[("mae", 1.0)]);
        let v = eval(&p, Some(&missing), &Baseline::None, None);
        assert!(
            v.reasons().contains("has no metric r2 (has: mae)"),
            "{}",
            v.reasons()
        );
    }

    #[test]
    fn not_worse_than_production_uses_each_metric_direction() {
        let p = policy("not_worse_than: production\ntolerance: 0.01");
        let prod = Baseline::Found {
            alias: "production".into(),
            version: 3,
            metrics: metrics(&[("r2", 0.80), ("rmse", 100.0), ("custom", 5.0)]),
        };
        // Within 1%: r2 0.795 >= 0.792, rmse 100.5 <= 101.
        let close = metrics(&[("r2", 0.795), ("rmse", 100.5), ("custom", 1.0)]);
        assert_eq!(
            eval(&p, Some(&close), &prod, None).decision,
            Decision::Approved
        );
        let worse = metrics(&[("r2", 0.85), ("rmse", 102.0)]);
        let v = eval(&p, Some(&worse), &prod, None);
        assert_eq!(v.decision, Decision::Rejected);
        assert_eq!(v.reasons(), "worse than production (v3): rmse 102 vs 100");
        // No production yet: the default approves, review and reject are honoured.
        let none = Baseline::Missing {
            alias: "production".into(),
        };
        assert_eq!(
            eval(&p, Some(&close), &none, None).decision,
            Decision::Approved
        );
        let p2 = policy("not_worse_than: production\nno_production: review");
        assert_eq!(
            eval(&p2, Some(&close), &none, None).decision,
            Decision::NeedsReview
        );
        // Nothing comparable is a failure, not a silent pass.
        let odd = metrics(&[("custom", 9.0)]);
        assert_eq!(
            eval(&p, Some(&odd), &prod, None).decision,
            Decision::Rejected
        );
        let p3 = policy("not_worse_than: production\nhigher_is_better: [custom]");
        assert_eq!(
            eval(&p3, Some(&odd), &prod, None).decision,
            Decision::Approved
        );
    }

    #[test]
    fn plan_rules() {
        let change = |address: &str, action, ns: Option<&str>, replicas| Change {
            address: address.into(),
            action,
            namespace: ns.map(str::to_string),
            replicas,
            attributes: Default::default(),
        };
        let plan = sample(vec![
            change(
                "Deployment/models/hp",
                Action::Update,
                Some("models"),
                Some(3),
            ),
            change(
                "Service/models/hp-old",
                Action::Delete,
                Some("models"),
                None,
            ),
        ]);
        let none = Baseline::None;
        let v = eval(&policy("{}"), None, &none, Some(&plan));
        assert_eq!(v.decision, Decision::Rejected);
        assert_eq!(v.reasons(), "the plan would delete Service/models/hp-old");
        let v = eval(&policy("destructive: review"), None, &none, Some(&plan));
        assert_eq!(v.decision, Decision::NeedsReview);
        let p = policy("destructive: allow\nprotected: ['Service/*/hp-*']");
        assert_eq!(
            eval(&p, None, &none, Some(&plan)).decision,
            Decision::Rejected
        );
        let p = policy("destructive: allow\nmax_replicas: 2\nallowed_namespaces: [prod]");
        let v = eval(&p, None, &none, Some(&plan));
        assert_eq!(
            v.reasons(),
            "Deployment/models/hp asks for 3 replicas, more than 2; Deployment/models/hp is in namespace models, not one of prod; Service/models/hp-old is in namespace models, not one of prod"
        );
        let v = eval(
            &policy("destructive: allow\nreview: always"),
            None,
            &none,
            Some(&plan),
        );
        assert_eq!(v.decision, Decision::NeedsReview);
    }

    #[test]
    fn bad_policies_name_the_field() {
        for (yaml, needle) in [
            (
                "thresholds: ['r2 => 0.7']",
                "'=>' in 'r2 => 0.7' is not one of",
            ),
            (
                "thresholds: ['r2 >= high']",
                "'high' in 'r2 >= high' is not a number",
            ),
            ("treshold: []", "unknown field `treshold`"),
            ("destructive: maybe", "unknown variant `maybe`"),
            ("tolerance: 2", "policy.tolerance: 2 is not a fraction"),
            (
                "higher_is_better: [a]\nlower_is_better: [a]",
                "a is also in lower_is_better",
            ),
        ] {
            let e = Policy::from_yaml("p.yaml", yaml).unwrap_err().to_string();
            assert!(e.starts_with("p.yaml: "), "{e}");
            assert!(e.contains(needle), "{yaml}: {e}");
        }
        let e =
            Policy::from_json("plugin", &serde_json::json!({"review": "sometimes"})).unwrap_err();
        assert!(e.to_string().contains("unknown variant `sometimes`"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("a*", "abc"));
        assert!(glob_match("*c", "abc"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("a*d", "abc"));
        assert!(!glob_match("ab*bc", "abc"));
    }
}
