//! `check`: a gate on what `medallion-profile` already computed for a version (contract
//! re-checks and drift), without a pod.
//!
//! ```yaml
//! plugin:
//!   medallion:
//!     check:
//!       dataset: houses
//!       layer: silver          # default silver
//!       version: "4"           # or latest (default)
//!       quality: true          # fail on any contract violation (default true)
//!       drift: fail            # fail | warn | ignore (default fail)
//!       max_psi: 0.25          # judge drift with this PSI threshold instead of the profile's
//! ```
//!
//! Outputs: `passed`, `violations` (rows breaking a rule, summed), `drift`, `drifted-columns`,
//! `scores` (JSON column → PSI).

use medallion_argo::{ExecuteTemplateReply, NodePhase};
use medallion_lake::{layout, records};
use medallion_quality::profile::Profile;
use serde::Deserialize;

use super::{
    ActionError, Call, VersionArg, check_lake, flexible_bool, flexible_f64, invalid, layer_arg,
    name_arg, node, param,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckArgs {
    dataset: String,
    #[serde(default)]
    layer: Option<String>,
    #[serde(default)]
    version: Option<VersionArg>,
    #[serde(default = "yes", deserialize_with = "flexible_bool")]
    quality: bool,
    #[serde(default)]
    drift: DriftRule,
    #[serde(default, deserialize_with = "flexible_f64")]
    max_psi: Option<f64>,
    #[serde(default)]
    lake: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DriftRule {
    #[default]
    Fail,
    Warn,
    Ignore,
}

pub async fn run(call: &Call<'_>, args: CheckArgs) -> Result<ExecuteTemplateReply, ActionError> {
    check_lake(call, "check", args.lake.as_deref())?;
    let dataset = name_arg("check", "dataset", &args.dataset)?;
    let layer = layer_arg("check", args.layer.as_deref())?;
    if let Some(psi) = args.max_psi
        && !(psi.is_finite() && psi > 0.0)
    {
        return Err(invalid(
            "check",
            "max_psi",
            format!("{psi} is not a positive number"),
        ));
    }
    let lake = &call.state.config.lake;
    let version = match args.version.unwrap_or_default() {
        VersionArg::Number(n) => n,
        VersionArg::Latest => match call.state.registry.latest(layer, &dataset).await? {
            Some(v) => v,
            None => {
                return Ok(node(
                    NodePhase::Failed,
                    format!("{layer} {dataset} has no versions yet in {}", lake.url()),
                    vec![],
                ));
            }
        },
    };
    let rel = format!(
        "{}/profile.json",
        layout::profile_dir(layer, &dataset, version)
    );
    let Some(profile) = records::read_json::<Profile>(lake, &rel).await? else {
        return Ok(node(
            NodePhase::Failed,
            format!(
                "{layer} {dataset} v{version} has no profile ({rel}); run medallion-profile on it first"
            ),
            vec![],
        ));
    };

    let mut violations: Vec<String> = Vec::new();
    let mut violated_rows = 0u64;
    for column in &profile.columns {
        for (rule, rows) in column.violations.iter().filter(|(_, n)| **n > 0) {
            violated_rows += rows;
            violations.push(format!("{} {rule}: {rows} rows", column.name));
        }
    }
    let (drifted, scores) = match &profile.drift {
        Some(report) => {
            let threshold = args.max_psi.unwrap_or(report.threshold);
            let drifted: Vec<String> = report
                .columns
                .iter()
                .filter(|c| c.psi > threshold)
                .map(|c| format!("{} (PSI {:.3})", c.column, c.psi))
                .collect();
            let scores: serde_json::Map<String, serde_json::Value> = report
                .columns
                .iter()
                .map(|c| (c.column.clone(), serde_json::json!(c.psi)))
                .collect();
            (drifted, serde_json::Value::Object(scores).to_string())
        }
        None => (Vec::new(), "{}".to_string()),
    };

    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    if !violations.is_empty() {
        let text = format!("contract violations: {}", violations.join(", "));
        if args.quality {
            failures.push(text);
        } else {
            warnings.push(text);
        }
    }
    if !drifted.is_empty() {
        let text = format!("drift: {}", drifted.join(", "));
        match args.drift {
            DriftRule::Fail => failures.push(text),
            DriftRule::Warn => warnings.push(text),
            DriftRule::Ignore => {}
        }
    }
    let passed = failures.is_empty();
    let what = format!("{layer} {dataset} v{version}");
    let message = if passed {
        let mut m = format!("{what} passes");
        if profile.drift.is_none() && args.drift != DriftRule::Ignore {
            m.push_str(" (its profile has no drift report)");
        }
        if !warnings.is_empty() {
            m.push_str(&format!("; warnings: {}", warnings.join("; ")));
        }
        m
    } else {
        format!("{what} fails: {}", failures.join("; "))
    };
    let outputs = vec![
        param("passed", passed.to_string()),
        param("violations", violated_rows.to_string()),
        param("drift", (!drifted.is_empty()).to_string()),
        param(
            "drifted-columns",
            drifted
                .iter()
                .map(|d| d.split(' ').next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(","),
        ),
        param("scores", scores),
    ];
    let phase = if passed {
        NodePhase::Succeeded
    } else {
        NodePhase::Failed
    };
    Ok(node(phase, message, outputs))
}
