//! The platform pipeline with real Terraform (built-in `terraform_data` only, so no provider is
//! downloaded): terraform plan → medallion-plan → approve → [review] → authorize → terraform
//! apply of exactly the approved saved plan, run by `medallion run`.

use std::path::Path;

use serde_json::Value;

use crate::support::{medallion, repo, step};

fn run_platform(
    lake: &str,
    runs: &Path,
    name: &str,
    params: &[&str],
    extra: &[&str],
) -> crate::support::StepRun {
    let r = repo();
    let mut args: Vec<String> = vec![
        "run".into(),
        r.join("workflow-templates/platform-pipeline.yaml")
            .display()
            .to_string(),
        "--name".into(),
        name.into(),
        "-p".into(),
        format!("lake={lake}"),
        "--library".into(),
        r.join("workflow-templates").display().to_string(),
        "--config-map".into(),
        format!(
            "medallion-policies={}",
            r.join("examples/policies").display()
        ),
        "--config-map".into(),
        format!(
            "medallion-terraform={}",
            r.join("examples/terraform/platform").display()
        ),
        "--runs-dir".into(),
        runs.display().to_string(),
    ];
    for p in params {
        args.push("-p".into());
        args.push(p.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    medallion(&argv, &[])
}

fn json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn platform_pipeline_applies_exactly_the_approved_terraform_plan() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    let runs = dir.path().join("runs");

    // Auto mode: creates only, the policy approves; the saved plan is applied.
    let run = run_platform(lake, &runs, "apply-1", &[], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let s = crate::pipelines::status(&runs, "apply-1");
    let node = |t: &str| crate::pipelines::node(&s, t).clone();
    let plan_id = node("plan")["outputs"]["plan-id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(plan_id.starts_with("infra-"), "{s:#}");
    assert_eq!(node("approve")["outputs"]["verdict"], "approved", "{s:#}");
    assert_eq!(node("review")["phase"], "Skipped", "{s:#}");
    let applied: Value = serde_json::from_str(
        node("terraform-apply")["outputs"]["outputs"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(applied["lake_container"]["value"]["name"], "lake-dev");

    // The plan pins the saved plan file; the gate recorded that this very file was applied.
    let release_dir = lake_path.join(format!("releases/platform/{plan_id}"));
    let plan = json(&release_dir.join("plan.json"));
    assert_eq!(plan["kind"], "infrastructure");
    let tfplan = Path::new(
        node("terraform-plan")["artifacts"]["tfplan"]
            .as_str()
            .unwrap(),
    )
    .to_path_buf();
    assert_eq!(plan["terraform_planfile_sha256"], sha256_hex(&tfplan));
    let actions: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "create"], "{plan:#}");
    let gate = json(&release_dir.join("apply-authorized.json"));
    assert_eq!(gate["planfile_sha256"], plan["terraform_planfile_sha256"]);
    assert_eq!(gate["plan_hash"], plan["hash"]);

    // Another saved plan file is not the approved one: the gate refuses (exit 3).
    let other = dir.path().join("other.tfplan");
    std::fs::write(&other, b"not the approved plan").unwrap();
    let tampered = step(
        "medallion-deploy",
        lake,
        &[
            "--target",
            "platform",
            "--plan-id",
            &plan_id,
            "--terraform-planfile",
            other.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(tampered.code, 3, "{}", tampered.stderr);
    assert!(
        tampered.error_line().contains("is not the one approved"),
        "{}",
        tampered.stderr
    );

    // Manual mode: a person rejects in the review; nothing is authorized or applied.
    let refused = run_platform(
        lake,
        &runs,
        "manual-1",
        // Each run plans another workspace: two plans made within the same second can be the
        // same saved plan, hence the same plan, whose decision is final.
        &["approval-mode=manual", "workspace=platform-reject"],
        &["--supply", "review.decision=reject"],
    );
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let s = crate::pipelines::status(&runs, "manual-1");
    let node = |t: &str| crate::pipelines::node(&s, t).clone();
    assert_eq!(
        node("approve")["outputs"]["verdict"],
        "needs-review",
        "{s:#}"
    );
    assert_eq!(node("record-review")["phase"], "Failed", "{s:#}");
    assert_eq!(node("authorize")["phase"], "Omitted", "{s:#}");
    assert_eq!(node("terraform-apply")["phase"], "Omitted", "{s:#}");
    let manual_plan = node("plan")["outputs"]["plan-id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !lake_path
            .join(format!(
                "releases/platform-reject/{manual_plan}/apply-authorized.json"
            ))
            .exists()
    );

    // Manual mode, approved: applied.
    let approved = run_platform(
        lake,
        &runs,
        "manual-2",
        &["approval-mode=manual", "workspace=platform-review"],
        &["--supply", "review.decision=approve"],
    );
    assert_eq!(approved.code, 0, "{}\n{}", approved.stdout, approved.stderr);
    let s = crate::pipelines::status(&runs, "manual-2");
    assert_eq!(
        crate::pipelines::node(&s, "terraform-apply")["phase"],
        "Succeeded",
        "{s:#}"
    );
}
