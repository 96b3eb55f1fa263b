//! `medallion-plan` over real Terraform plans (built-in `terraform_data` resources only, so no
//! provider download) and `medallion-approve`'s verdicts bound to the plan's hash.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{StepRun, step};

const SECRET: &str = "hunter2-very-secret-value";

fn terraform(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap_or_else(|e| panic!("terraform is needed for this test and did not start: {e}"));
    assert!(
        out.status.success(),
        "terraform {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config(dir: &Path, bucket: &str, generation: &str, keep: bool) {
    let mut tf = format!(
        r#"
variable "secret" {{
  type      = string
  sensitive = true
  default   = "{SECRET}"
}}
resource "terraform_data" "bucket" {{
  input            = "{bucket}"
  triggers_replace = ["{generation}"]
}}
resource "terraform_data" "queue" {{
  input = "landing-events"
}}
"#
    );
    if keep {
        tf.push_str("resource \"terraform_data\" \"credentials\" {\n  input = var.secret\n}\n");
    }
    std::fs::write(dir.join("main.tf"), tf).unwrap();
}

/// `terraform plan -out` then `terraform show -json`, into `<name>.json`.
fn plan_json(dir: &Path, name: &str) -> String {
    terraform(
        dir,
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-out",
            &format!("{name}.bin"),
        ],
    );
    let json = terraform(dir, &["show", "-json", &format!("{name}.bin")]);
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json).unwrap();
    path.display().to_string()
}

fn all_text_under(dir: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            text.push_str(&all_text_under(&p));
        } else {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    text
}

fn plan(lake: &str, target: &str, json: &str) -> StepRun {
    step(
        "medallion-plan",
        lake,
        &["--target", target, "--terraform-plan", json],
        &[],
    )
}

fn approve(lake: &str, target: &str, id: &str, policy: &Path) -> StepRun {
    step(
        "medallion-approve",
        lake,
        &[
            "--target",
            target,
            "--plan-id",
            id,
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    )
}

#[test]
fn terraform_plans_become_sealed_plans_and_policies_decide_them_once() {
    let tf = tempfile::tempdir().unwrap();
    let t = tf.path();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    config(t, "lake-v1", "1", true);
    terraform(t, &["init", "-input=false", "-no-color"]);
    let first = plan_json(t, "first");

    let planned = plan(lake, "platform", &first);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    assert_eq!(planned.output("destructive"), "false");
    assert_eq!(planned.output("created"), "true");
    assert!(
        planned
            .output("summary")
            .contains("3 to create, 0 to update, 0 to replace, 0 to delete"),
        "{}",
        planned.output("summary")
    );
    let id = planned.output("plan-id").to_string();
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(
            lake_dir
                .path()
                .join(format!("releases/platform/{id}/plan.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(stored["hash"], planned.output("hash"));
    let creds = stored["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "terraform_data.credentials")
        .unwrap();
    assert_eq!(creds["attributes"]["input"], "(sensitive)");
    let bucket = stored["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "terraform_data.bucket")
        .unwrap();
    assert_eq!(bucket["attributes"]["input"], "\"lake-v1\"");
    assert!(
        std::fs::read_to_string(
            lake_dir
                .path()
                .join(format!("releases/platform/{id}/summary.md"))
        )
        .unwrap()
        .contains("terraform_data.bucket")
    );

    // Planning the same change again finds the same plan.
    let again = plan(lake, "platform", &first);
    assert_eq!(again.output("plan-id"), id);
    assert_eq!(again.output("created"), "false");
    assert_eq!(again.output("hash"), planned.output("hash"));

    let strict = t.join("strict.yaml");
    std::fs::write(
        &strict,
        "destructive: reject\nprotected: [\"terraform_data.queue\"]\n",
    )
    .unwrap();
    let approved = approve(lake, "platform", &id, &strict);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert_eq!(approved.output("verdict"), "approved");
    assert_eq!(approved.output("hash"), planned.output("hash"));
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(
            lake_dir
                .path()
                .join(format!("releases/platform/{id}/approval.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["plan_hash"], planned.output("hash"));
    assert_eq!(record["decided_by"], format!("policy {}", strict.display()));

    // Apply, then a change that replaces the bucket, updates nothing else and deletes the
    // credentials: destructive, so the strict policy rejects it (exit 3, outputs written).
    terraform(t, &["apply", "-input=false", "-no-color", "first.bin"]);
    config(t, "lake-v1", "2", false);
    let second = plan_json(t, "second");
    let replanned = plan(lake, "platform", &second);
    assert_eq!(replanned.code, 0, "{}", replanned.stderr);
    assert_eq!(replanned.output("destructive"), "true");
    assert!(
        replanned
            .output("summary")
            .contains("0 to create, 0 to update, 1 to replace, 1 to delete"),
        "{}",
        replanned.output("summary")
    );
    let id2 = replanned.output("plan-id").to_string();
    assert_ne!(id2, id);
    let rejected = approve(lake, "platform", &id2, &strict);
    assert_eq!(rejected.code, 3, "{}", rejected.stderr);
    assert_eq!(rejected.output("verdict"), "rejected");
    assert!(
        rejected
            .output("reasons")
            .contains("terraform_data.credentials"),
        "{}",
        rejected.output("reasons")
    );
    assert!(
        rejected
            .error_line()
            .contains(&format!("plan {id2} of platform is rejected")),
        "{}",
        rejected.stderr
    );
    // Decisions are final: a laxer policy later does not change it.
    let lax = t.join("lax.yaml");
    std::fs::write(&lax, "destructive: allow\n").unwrap();
    let still = approve(lake, "platform", &id2, &lax);
    assert_eq!(still.code, 3);
    assert_eq!(still.output("created"), "false");
    // Review instead of reject routes to a person (exit 0, verdict needs-review).
    let third = plan(lake, "platform-review", &second);
    let review = t.join("review.yaml");
    std::fs::write(&review, "destructive: review\n").unwrap();
    let needs = approve(lake, "platform-review", third.output("plan-id"), &review);
    assert_eq!(needs.code, 0, "{}", needs.stderr);
    assert_eq!(needs.output("verdict"), "needs-review");

    // A plan edited after planning is refused.
    let tampered_target = plan(lake, "platform-tampered", &second);
    let tid = tampered_target.output("plan-id").to_string();
    let path = lake_dir
        .path()
        .join(format!("releases/platform-tampered/{tid}/plan.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("1 to delete", "0 to delete");
    std::fs::write(&path, text).unwrap();
    let refused = approve(lake, "platform-tampered", &tid, &lax);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused
            .error_line()
            .contains("it was changed after planning, plan again"),
        "{}",
        refused.stderr
    );

    // The sensitive variable is nowhere Medallion wrote.
    for run in [&planned, &again, &approved, &replanned, &rejected, &needs] {
        assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
    }
    assert!(
        !all_text_under(lake_dir.path()).contains(SECRET),
        "the secret reached the lake"
    );
}

#[test]
fn what_is_not_a_terraform_plan_is_refused_with_exit_2() {
    let tf = tempfile::tempdir().unwrap();
    let t = tf.path();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    config(t, "lake-v1", "1", false);
    terraform(t, &["init", "-input=false", "-no-color"]);
    let p = plan_json(t, "p");
    terraform(t, &["apply", "-input=false", "-no-color", "p.bin"]);
    // `terraform show -json` without a plan file prints the state.
    let state = t.join("state.json");
    std::fs::write(&state, terraform(t, &["show", "-json"])).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--target".into(),
                "platform".into(),
                "--terraform-plan".into(),
                state.display().to_string(),
            ],
            "looks like state, not a plan",
        ),
        (
            vec![
                "--target".into(),
                "platform".into(),
                "--terraform-plan".into(),
                t.join("missing.json").display().to_string(),
            ],
            "cannot be read",
        ),
        (
            vec![
                "--target".into(),
                "platform".into(),
                "--terraform-plan".into(),
                t.join("main.tf").display().to_string(),
            ],
            "not JSON",
        ),
        (
            vec![
                "--target".into(),
                "Not A Name".into(),
                "--terraform-plan".into(),
                p.clone(),
            ],
            "Not A Name",
        ),
        (
            vec!["--target".into(), "platform".into()],
            "--terraform-plan / --model: missing",
        ),
    ];
    for (args, expected) in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = step("medallion-plan", lake, &argv, &[]);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.error_line().contains(expected),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(
        !lake_dir.path().join("releases").exists(),
        "a refused plan stored something"
    );
    // Approving a plan that does not exist.
    let policy = t.join("p.yaml");
    std::fs::write(&policy, "destructive: reject\n").unwrap();
    let missing = approve(lake, "platform", "infra-0000", &policy);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.error_line().contains("run medallion-plan first"),
        "{}",
        missing.stderr
    );
}
