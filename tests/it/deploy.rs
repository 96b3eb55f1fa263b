//! Model releases end to end with the real binaries: medallion-plan (model release against the
//! production alias and the running servers), medallion-approve (policy, manual review),
//! medallion-deploy to the local target (real medallion-serve processes, blue/green, smoke
//! test, rollback on failure) and `medallion rollback`.

use std::path::Path;

use serde_json::Value;

use crate::support::{StepRun, bin, http_request, medallion, repo, silver, step};

/// Stops the endpoint's local servers when the test ends, whatever happened.
struct Endpoint<'a> {
    state: &'a str,
}

impl Drop for Endpoint<'_> {
    fn drop(&mut self) {
        medallion(
            &["endpoint", "stop", "house-price", "--state-dir", self.state],
            &[],
        );
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn plan(lake: &str, state: &str, version: &str) -> StepRun {
    step(
        "medallion-plan",
        lake,
        &[
            "--target",
            "house-price",
            "--model",
            "house-price",
            "--model-version",
            version,
            "--state-dir",
            state,
        ],
        &[],
    )
}

fn approve(lake: &str, id: &str, extra: &[&str]) -> StepRun {
    let mut args = vec!["--target", "house-price", "--plan-id", id];
    args.extend_from_slice(extra);
    step("medallion-approve", lake, &args, &[])
}

fn deploy(lake: &str, state: &str, id: &str, extra: &[&str]) -> StepRun {
    let mut args = vec![
        "--endpoint",
        "house-price",
        "--plan-id",
        id,
        "--state-dir",
        state,
        "--serve-bin",
    ];
    let serve = bin("medallion-serve").display().to_string();
    let serve = extra
        .iter()
        .position(|a| *a == "--serve-bin")
        .map_or(serve, |i| extra[i + 1].to_string());
    args.push(&serve);
    let mut rest: Vec<&str> = Vec::new();
    let mut skip = false;
    for a in extra {
        if skip {
            skip = false;
        } else if *a == "--serve-bin" {
            skip = true;
        } else {
            rest.push(a);
        }
    }
    args.extend(rest);
    step("medallion-deploy", lake, &args, &[])
}

/// Silver houses from the bundled file and `n` (1 or 2) house-price versions trained on it: v1
/// with the shipped spec, v2 with a lower learning rate. Returns the silver version.
pub(crate) fn house_price_versions(dir: &Path, lake: &str, n: usize) -> String {
    let version = silver(
        lake,
        "houses",
        &repo().join("examples/data/houses.csv"),
        "houses.yaml",
    );
    let spec = repo().join("examples/models/house-price.yaml");
    let spec2 = dir.join("house-price-2.yaml");
    std::fs::write(
        &spec2,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("learning_rate: 0.1", "learning_rate: 0.08"),
    )
    .unwrap();
    for s in [&spec, &spec2].into_iter().take(n) {
        let t = step(
            "medallion-train",
            lake,
            &[
                "--dataset",
                "houses",
                "--version",
                &version,
                "--spec",
                s.to_str().unwrap(),
            ],
            &[],
        );
        // v2 may fail its not-worse-than gate (exit 3); the version exists either way.
        assert!(t.code == 0 || t.code == 3, "{}", t.stderr);
    }
    version
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The version a server reports for house-price.
fn served_version(url: &str) -> String {
    let (status, body) = http_request(port_of(url), "GET", "/v2/models/house-price", &[], b"");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["versions"][0].as_str().unwrap().to_string()
}

fn production(lake: &str) -> u64 {
    let alias = json(&Path::new(lake).join("models/house-price/aliases/production.json"));
    alias["version"].as_u64().unwrap()
}

#[test]
fn model_releases_go_blue_green_only_when_approved_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    let state_path = dir.path().join("endpoints");
    let state = state_path.to_str().unwrap();
    let _guard = Endpoint { state };
    let version = house_price_versions(dir.path(), lake, 2);
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "thresholds: [\"r2 >= 0.5\"]\nnot_worse_than: production\ntolerance: 0.05\nno_production: approve\ndestructive: reject\n",
    )
    .unwrap();
    let policy = policy.to_str().unwrap();

    // v1: nothing runs, no production yet.
    let p1 = plan(lake, state, "1");
    assert_eq!(p1.code, 0, "{}", p1.stderr);
    assert_eq!(p1.output("destructive"), "false");
    assert!(
        p1.output("summary").contains("no production version yet"),
        "{}",
        p1.output("summary")
    );
    let id1 = p1.output("plan-id").to_string();
    let stored = json(&lake_path.join(format!("releases/house-price/{id1}/plan.json")));
    assert_eq!(stored["kind"], "model-release");
    assert_eq!(stored["release"]["slot"], "blue");
    assert_eq!(
        stored["release"]["candidate_lineage"]["data"],
        format!("silver houses v{version}")
    );
    assert!(stored["release"]["candidate_lineage"]["spec_sha256"].is_string());
    // Planning again finds the same plan.
    assert_eq!(plan(lake, state, "1").output("plan-id"), id1);

    // No approval: refused, nothing started.
    let refused = deploy(lake, state, &id1, &[]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.error_line().contains("no approval"),
        "{}",
        refused.error_line()
    );
    assert!(!state_path.join("house-price/active.json").exists());

    let a1 = approve(lake, &id1, &["--policy", policy]);
    assert_eq!(a1.code, 0, "{}", a1.stderr);
    assert_eq!(a1.output("verdict"), "approved");
    let d1 = deploy(lake, state, &id1, &[]);
    assert_eq!(d1.code, 0, "{}", d1.stderr);
    assert_eq!(d1.output("status"), "deployed");
    assert_eq!(d1.output("slot"), "blue");
    let url1 = d1.output("url").to_string();
    assert_eq!(served_version(&url1), "1");
    assert_eq!(production(lake), 1);
    let result = json(&lake_path.join(format!("releases/house-price/{id1}/result.json")));
    assert_eq!(result["smoke"]["passed"], true);
    assert_eq!(result["plan_hash"], p1.output("hash"));
    // A retried deploy applies nothing new.
    let again = deploy(lake, state, &id1, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.output("created"), "false");
    assert_eq!(again.output("url"), url1);

    // v2 in manual mode: a person must review; until then deploy refuses.
    let p2 = plan(lake, state, "2");
    assert_eq!(p2.code, 0, "{}", p2.stderr);
    assert!(
        p2.output("summary").contains("against production v1"),
        "{}",
        p2.output("summary")
    );
    let id2 = p2.output("plan-id").to_string();
    let stored2 = json(&lake_path.join(format!("releases/house-price/{id2}/plan.json")));
    assert_eq!(stored2["release"]["slot"], "green");
    assert_eq!(stored2["release"]["running"]["active"]["version"], 1);
    assert!(stored2["release"]["deltas"]["rmse"].is_f64());
    let summary =
        std::fs::read_to_string(lake_path.join(format!("releases/house-price/{id2}/summary.md")))
            .unwrap();
    assert!(
        summary.contains("| metric | candidate v2 | production v1 | delta |"),
        "{summary}"
    );
    let a2 = approve(lake, &id2, &["--policy", policy, "--mode", "manual"]);
    assert_eq!(a2.code, 0, "{}", a2.stderr);
    assert_eq!(a2.output("verdict"), "needs-review");
    let waiting = deploy(lake, state, &id2, &[]);
    assert_eq!(waiting.code, 3, "{}", waiting.stderr);
    assert!(
        waiting.error_line().contains("needs a person's review"),
        "{}",
        waiting.error_line()
    );
    let review = approve(
        lake,
        &id2,
        &[
            "--review",
            "approve",
            "--by",
            "ana",
            "--reason",
            "looked at the card",
        ],
    );
    assert_eq!(review.code, 0, "{}", review.stderr);
    assert_eq!(review.output("verdict"), "approved");
    assert_eq!(review.output("decided-by"), "ana");
    // The review is final.
    let flip = approve(lake, &id2, &["--review", "reject", "--by", "bob"]);
    assert_eq!(flip.code, 3, "{}", flip.stderr);
    let d2 = deploy(lake, state, &id2, &[]);
    assert_eq!(d2.code, 0, "{}", d2.stderr);
    assert_eq!(d2.output("slot"), "green");
    assert_eq!(d2.output("previous-version"), "1");
    let url2 = d2.output("url").to_string();
    assert_eq!(served_version(&url2), "2");
    assert_eq!(
        served_version(&url1),
        "1",
        "the old slot keeps running for rollback"
    );
    assert_eq!(production(lake), 2);
    let active = json(&state_path.join("house-price/active.json"));
    assert_eq!(active["slot"], "green");

    // A release whose server answers wrongly is rolled back: a wrapper serves v2 when asked for v1.
    let p3 = plan(lake, state, "1");
    let id3 = p3.output("plan-id").to_string();
    assert_ne!(id3, id1, "another running state makes another plan");
    assert_eq!(approve(lake, &id3, &["--policy", policy]).code, 0);
    let wrapper = dir.path().join("wrong-serve.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nout=\"\"\nprev=\"\"\nfor a in \"$@\"; do\n  if [ \"$prev\" = \"--version\" ]; then a=2; fi\n  out=\"$out '$a'\"\n  prev=\"$a\"\ndone\neval exec '{}' $out\n",
            bin("medallion-serve").display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let bad = deploy(
        lake,
        state,
        &id3,
        &["--serve-bin", wrapper.to_str().unwrap()],
    );
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(
        bad.error_line().contains("rolled back") && bad.error_line().contains("smoke test"),
        "{}",
        bad.error_line()
    );
    assert_eq!(production(lake), 2, "the alias did not move");
    assert_eq!(
        json(&state_path.join("house-price/active.json"))["slot"],
        "green"
    );
    assert_eq!(served_version(&url2), "2");
    assert!(
        !lake_path
            .join(format!("releases/house-price/{id3}/result.json"))
            .exists()
    );
    let failures: Vec<_> = std::fs::read_dir(lake_path.join(format!("releases/house-price/{id3}")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("failed-"))
        .collect();
    assert_eq!(failures.len(), 1);

    // Rollback returns to v1 (restarted: its slot was reused by the failed attempt), and back.
    let rb = medallion(
        &[
            "rollback",
            "house-price",
            "--lake",
            lake,
            "--state-dir",
            state,
            "--by",
            "ana",
        ],
        &[],
    );
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert!(
        rb.stdout.contains("rolled back to house-price v1") && rb.stdout.contains("(restarted)"),
        "{}",
        rb.stdout
    );
    assert_eq!(production(lake), 1);
    let active = json(&state_path.join("house-price/active.json"));
    assert_eq!(served_version(active["url"].as_str().unwrap()), "1");
    let rb2 = medallion(
        &[
            "rollback",
            "house-price",
            "--lake",
            lake,
            "--state-dir",
            state,
        ],
        &[],
    );
    assert_eq!(rb2.code, 0, "{}", rb2.stderr);
    assert!(
        rb2.stdout.contains("house-price v2") && !rb2.stdout.contains("restarted"),
        "{}",
        rb2.stdout
    );
    assert_eq!(production(lake), 2);
    let status = medallion(
        &[
            "endpoint",
            "status",
            "house-price",
            "--lake",
            lake,
            "--state-dir",
            state,
        ],
        &[],
    );
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("#4 rollback"), "{}", status.stdout);
    assert!(
        status.stdout.contains("local active: green v2 ready"),
        "{}",
        status.stdout
    );

    // A plan changed after approval is refused.
    let plan_file = lake_path.join(format!("releases/house-price/{id2}/plan.json"));
    let text = std::fs::read_to_string(&plan_file).unwrap();
    std::fs::write(&plan_file, text.replace("\"version\": 2", "\"version\": 1")).unwrap();
    std::fs::write(
        &plan_file,
        text.replacen("house-price v2", "house-price v1", 1),
    )
    .unwrap();
    let tampered = deploy(lake, state, &id2, &[]);
    assert_eq!(tampered.code, 3, "{}", tampered.stderr);
    assert!(
        tampered.error_line().contains("changed after planning"),
        "{}",
        tampered.error_line()
    );

    // Back to v1, then v2 released again: planning v2 now is a new plan (made at another
    // position of the release history), not the old plan whose result says "applied before".
    let rb3 = medallion(
        &[
            "rollback",
            "house-price",
            "--lake",
            lake,
            "--state-dir",
            state,
        ],
        &[],
    );
    assert_eq!(rb3.code, 0, "{}", rb3.stderr);
    assert_eq!(production(lake), 1);
    let p4 = plan(lake, state, "2");
    assert_eq!(p4.code, 0, "{}", p4.stderr);
    let id4 = p4.output("plan-id").to_string();
    assert_ne!(id4, id2);
    assert_eq!(
        json(&lake_path.join(format!("releases/house-price/{id4}/plan.json")))["release"]["release_seq"],
        5
    );
    assert_eq!(approve(lake, &id4, &["--policy", policy]).code, 0);
    // The failed plan of v1 was made at release #2: stale now, refused before anything starts.
    let stale = deploy(lake, state, &id3, &[]);
    assert_eq!(stale.code, 3, "{}", stale.stderr);
    assert!(
        stale.error_line().contains("is stale")
            && stale.error_line().contains("made at release #2")
            && stale
                .error_line()
                .contains("now at #5 (rollback of house-price v1"),
        "{}",
        stale.error_line()
    );
    let d4 = deploy(lake, state, &id4, &[]);
    assert_eq!(d4.code, 0, "{}", d4.stderr);
    assert_eq!(d4.output("created"), "true");
    assert_eq!(d4.output("status"), "deployed");
    assert_eq!(served_version(d4.output("url")), "2");
    assert_eq!(production(lake), 2);
    // A deploy pod that died after recording the release but before result.json: the retry
    // finds its own release in the record and writes the result, releasing nothing twice.
    let result4 = lake_path.join(format!("releases/house-price/{id4}/result.json"));
    std::fs::remove_file(&result4).unwrap();
    let retried = deploy(lake, state, &id4, &[]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    assert_eq!(retried.output("status"), "deployed");
    assert_eq!(retried.output("url"), d4.output("url"));
    assert!(
        json(&result4)["detail"]
            .as_str()
            .unwrap()
            .contains("released by an earlier attempt of this plan, release #6"),
        "{}",
        json(&result4)
    );
    let history = std::fs::read_dir(lake_path.join("releases/house-price/history"))
        .unwrap()
        .count();
    assert_eq!(history, 6, "no second release recorded");
}

#[test]
fn bad_release_inputs_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    let state = dir.path().join("endpoints");
    let state = state.to_str().unwrap();
    // No such model version.
    let missing = plan(lake, state, "7");
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.error_line().contains("house-price"),
        "{}",
        missing.error_line()
    );
    // A model without a version, and an unknown target.
    let no_version = step(
        "medallion-plan",
        lake,
        &["--target", "house-price", "--model", "house-price"],
        &[],
    );
    assert_eq!(no_version.code, 2, "{}", no_version.stderr);
    let bad_target = step(
        "medallion-plan",
        lake,
        &[
            "--target",
            "house-price",
            "--model",
            "house-price",
            "--model-version",
            "1",
            "--deploy-target",
            "mainframe",
        ],
        &[],
    );
    assert_eq!(bad_target.code, 2, "{}", bad_target.stderr);
    assert!(
        bad_target.error_line().contains("--deploy-target"),
        "{}",
        bad_target.error_line()
    );
    // A plan id that does not exist; a name that is not a plan id.
    let unknown = deploy(lake, state, "release-0000000000000000", &[]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.error_line().contains("not found"),
        "{}",
        unknown.error_line()
    );
    let bad_id = deploy(lake, state, "../../etc", &[]);
    assert_eq!(bad_id.code, 2, "{}", bad_id.stderr);
    // Rollback of an endpoint that never had a release.
    let rb = medallion(
        &[
            "rollback",
            "house-price",
            "--lake",
            lake,
            "--state-dir",
            state,
        ],
        &[],
    );
    assert_eq!(rb.code, 3, "{}", rb.stderr);
    assert!(rb.stderr.contains("nothing to roll back"), "{}", rb.stderr);
    // An infrastructure plan is not deployed by medallion-deploy.
    let tf = dir.path().join("tf.json");
    std::fs::write(
        &tf,
        r#"{"format_version":"1.2","terraform_version":"1.11.4","planned_values":{},"resource_changes":[{"address":"terraform_data.x","mode":"managed","type":"terraform_data","name":"x","change":{"actions":["create"],"before":null,"after":{"input":"a"},"after_unknown":{"id":true}}}]}"#,
    )
    .unwrap();
    let infra = step(
        "medallion-plan",
        lake,
        &[
            "--target",
            "house-price",
            "--terraform-plan",
            tf.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(infra.code, 0, "{}", infra.stderr);
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "destructive: reject\n").unwrap();
    let id = infra.output("plan-id").to_string();
    assert_eq!(
        approve(lake, &id, &["--policy", policy.to_str().unwrap()]).code,
        0
    );
    let refused = deploy(lake, state, &id, &[]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.error_line().contains("not a model release"),
        "{}",
        refused.error_line()
    );
}

fn run_template(
    file: &str,
    name: &str,
    params: &[String],
    extra: &[&str],
    runs: &Path,
    state: &str,
) -> StepRun {
    let mut args: Vec<String> = vec![
        "run".into(),
        repo().join(file).display().to_string(),
        "--name".into(),
        name.into(),
    ];
    for p in params {
        args.push("-p".into());
        args.push(p.clone());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(crate::pipelines::run_flags(runs));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    medallion(&argv, &[("MEDALLION_STATE_DIR", state)])
}

#[test]
fn the_pipelines_release_a_passing_model_and_a_person_can_refuse_a_release() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    let runs = dir.path().join("runs");
    let state_path = dir.path().join("endpoints");
    let state = state_path.to_str().unwrap();
    let _guard = Endpoint { state };
    let _manual = ManualEndpoint { state };
    let houses = repo().join("examples/data/houses.csv");

    // The house pipeline with the release on: plan, policy approval, deploy; no review asked.
    let run = run_template(
        "workflow-templates/house-price-pipeline.yaml",
        "houses-release",
        &[
            format!("source-url={}", houses.display()),
            format!("lake={lake}"),
            "deploy-target=local".into(),
        ],
        &[],
        &runs,
        state,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let s = crate::pipelines::status(&runs, "houses-release");
    let node = |task: &str| crate::pipelines::node(&s, &format!("release.{task}")).clone();
    assert_eq!(node("approve")["outputs"]["verdict"], "approved", "{s:#}");
    assert_eq!(node("review")["phase"], "Skipped", "{s:#}");
    assert_eq!(node("record-review")["phase"], "Skipped", "{s:#}");
    let deployed = node("deploy");
    assert_eq!(deployed["outputs"]["status"], "deployed", "{s:#}");
    let url = deployed["outputs"]["url"].as_str().unwrap().to_string();
    assert_eq!(served_version(&url), "1");
    assert_eq!(production(lake), 1);

    // The release pipeline on its own, manual mode: the person says no; nothing is deployed.
    let refused = run_template(
        "workflow-templates/release-pipeline.yaml",
        "manual-release",
        &[
            format!("lake={lake}"),
            "model=house-price".into(),
            "version=1".into(),
            "endpoint=hp-manual".into(),
            "approval-mode=manual".into(),
        ],
        &["--supply", "review.decision=reject"],
        &runs,
        state,
    );
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let s = crate::pipelines::status(&runs, "manual-release");
    let node = |task: &str| crate::pipelines::node(&s, &format!("release.{task}")).clone();
    assert_eq!(
        node("approve")["outputs"]["verdict"],
        "needs-review",
        "{s:#}"
    );
    assert_eq!(node("review")["outputs"]["decision"], "reject", "{s:#}");
    assert_eq!(node("record-review")["phase"], "Failed", "{s:#}");
    assert_eq!(node("deploy")["phase"], "Omitted", "{s:#}");
    assert!(!state_path.join("hp-manual/active.json").exists());
    let plan_id = node("plan")["outputs"]["plan-id"]
        .as_str()
        .unwrap()
        .to_string();
    let review = json(&lake_path.join(format!("releases/hp-manual/{plan_id}/review.json")));
    assert_eq!(review["decision"], "rejected");
    assert!(
        review["reviewed_by"]
            .as_str()
            .unwrap()
            .contains("manual-release"),
        "{review}"
    );
    // The refusal is final: deploying that plan by hand is refused too.
    let by_hand = step(
        "medallion-deploy",
        lake,
        &[
            "--endpoint",
            "hp-manual",
            "--plan-id",
            &plan_id,
            "--state-dir",
            state,
        ],
        &[],
    );
    assert_eq!(by_hand.code, 3, "{}", by_hand.stderr);
    assert!(
        by_hand.error_line().contains("rejected it in review"),
        "{}",
        by_hand.error_line()
    );

    // Nobody answers: when the review's 24h pass (scaled to nothing here), Argo gives the
    // supplied outputs their defaults and the node succeeds (operator.go v4.1.2 lines
    // 3998-4012): decision=reject, recorded as a rejection, never an Error, nothing deployed.
    let unanswered = run_template(
        "workflow-templates/release-pipeline.yaml",
        "unanswered-release",
        &[
            format!("lake={lake}"),
            "model=house-price".into(),
            "version=1".into(),
            "endpoint=hp-unanswered".into(),
            "approval-mode=manual".into(),
        ],
        &["--time-scale", "0"],
        &runs,
        state,
    );
    assert_eq!(
        unanswered.code, 1,
        "{}\n{}",
        unanswered.stdout, unanswered.stderr
    );
    let s = crate::pipelines::status(&runs, "unanswered-release");
    let node = |task: &str| crate::pipelines::node(&s, &format!("release.{task}")).clone();
    assert_eq!(node("review")["phase"], "Succeeded", "{s:#}");
    assert_eq!(node("review")["outputs"]["decision"], "reject", "{s:#}");
    assert_eq!(node("record-review")["phase"], "Failed", "{s:#}");
    assert_eq!(node("deploy")["phase"], "Omitted", "{s:#}");
    let plan_id = node("plan")["outputs"]["plan-id"]
        .as_str()
        .unwrap()
        .to_string();
    let review = json(&lake_path.join(format!("releases/hp-unanswered/{plan_id}/review.json")));
    assert_eq!(review["decision"], "rejected");
}

/// Stops the manual test endpoint's servers, if any were started.
struct ManualEndpoint<'a> {
    state: &'a str,
}

impl Drop for ManualEndpoint<'_> {
    fn drop(&mut self) {
        medallion(
            &["endpoint", "stop", "hp-manual", "--state-dir", self.state],
            &[],
        );
    }
}

#[test]
fn manifests_releases_write_kubernetes_objects_valid_against_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    let gitops = dir.path().join("gitops");
    house_price_versions(dir.path(), lake, 2);
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "no_production: approve\ndestructive: reject\nmax_replicas: 10\nallowed_namespaces: [models]\n",
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let plan_k8s = |version: &str, namespace: &str, target: &str| {
        step(
            "medallion-plan",
            lake,
            &[
                "--target",
                "house-price",
                "--model",
                "house-price",
                "--model-version",
                version,
                "--deploy-target",
                target,
                "--namespace",
                namespace,
                "--replicas",
                "2",
                "--max-replicas",
                "4",
                "--image",
                "registry.example/medallion-serve:0.1.0",
            ],
            &[],
        )
    };
    let write = |id: &str| {
        step(
            "medallion-deploy",
            lake,
            &[
                "--endpoint",
                "house-price",
                "--plan-id",
                id,
                "--manifests-dir",
                gitops.to_str().unwrap(),
            ],
            &[],
        )
    };

    let p1 = plan_k8s("1", "models", "manifests");
    assert_eq!(p1.code, 0, "{}", p1.stderr);
    let id1 = p1.output("plan-id").to_string();
    let stored = json(&lake_path.join(format!("releases/house-price/{id1}/plan.json")));
    let kinds: Vec<&str> = stored["release"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Deployment", "HorizontalPodAutoscaler", "Service"]);
    let addresses: Vec<&str> = stored["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert!(
        addresses.contains(&"Deployment/models/house-price-blue"),
        "{addresses:?}"
    );
    assert!(
        addresses.contains(&"HorizontalPodAutoscaler/models/house-price-blue"),
        "{addresses:?}"
    );
    assert_eq!(
        approve(lake, &id1, &["--policy", policy]).output("verdict"),
        "approved"
    );
    let d1 = write(&id1);
    assert_eq!(d1.code, 0, "{}", d1.stderr);
    assert_eq!(d1.output("status"), "written");
    assert_eq!(
        d1.output("url"),
        "http://house-price.models.svc.cluster.local"
    );
    let ep_dir = gitops.join("house-price");
    let files = |d: &Path| {
        let mut f: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        f.sort();
        f
    };
    assert_eq!(
        files(&ep_dir),
        [
            "deployment-house-price-blue.yaml",
            "horizontalpodautoscaler-house-price-blue.yaml",
            "service-house-price.yaml"
        ]
    );
    let service = std::fs::read_to_string(ep_dir.join("service-house-price.yaml")).unwrap();
    assert!(service.contains("medallion.dev/slot: blue"), "{service}");
    let deployment =
        std::fs::read_to_string(ep_dir.join("deployment-house-price-blue.yaml")).unwrap();
    for needle in [
        "image: registry.example/medallion-serve:0.1.0",
        "readOnlyRootFilesystem: true",
        "path: /v2/health/ready",
        "- house-price",
        "runAsUser: 65532",
    ] {
        assert!(
            deployment.contains(needle),
            "{needle} missing:\n{deployment}"
        );
    }
    // The autoscaler owns the replica count (minReplicas 2): the Deployment sets none, so a
    // release never resets what the HPA scaled to.
    assert!(!deployment.contains("  replicas:"), "{deployment}");
    let hpa = std::fs::read_to_string(ep_dir.join("horizontalpodautoscaler-house-price-blue.yaml"))
        .unwrap();
    assert!(hpa.contains("minReplicas: 2"), "{hpa}");
    assert_eq!(production(lake), 1);

    // v2 goes into green; the Service switches; blue's Deployment stays for rollback.
    let p2 = plan_k8s("2", "models", "manifests");
    let id2 = p2.output("plan-id").to_string();
    assert_eq!(
        approve(lake, &id2, &["--policy", policy]).output("verdict"),
        "approved"
    );
    let d2 = write(&id2);
    assert_eq!(d2.code, 0, "{}", d2.stderr);
    assert_eq!(files(&ep_dir).len(), 5, "{:?}", files(&ep_dir));
    let service = std::fs::read_to_string(ep_dir.join("service-house-price.yaml")).unwrap();
    assert!(service.contains("medallion.dev/slot: green"), "{service}");
    assert_eq!(production(lake), 2);

    // Every object is valid Kubernetes 1.33, strictly (unknown fields are errors).
    let mut args = vec!["1.33.0".to_string()];
    args.extend(
        files(&ep_dir)
            .iter()
            .map(|f| ep_dir.join(f).display().to_string()),
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        crate::support::py("k8s_validate.py", &argv).trim(),
        "5 objects valid"
    );

    // Rollback rewrites the previous plan's objects: the Service selects blue again.
    let no_dir = medallion(&["rollback", "house-price", "--lake", lake], &[]);
    assert_eq!(no_dir.code, 3, "{}", no_dir.stderr);
    assert!(
        no_dir.stderr.contains("--manifests-dir"),
        "{}",
        no_dir.stderr
    );
    let rb = medallion(
        &[
            "rollback",
            "house-price",
            "--lake",
            lake,
            "--manifests-dir",
            gitops.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert!(
        rb.stdout.contains("rolled back to house-price v1"),
        "{}",
        rb.stdout
    );
    let service = std::fs::read_to_string(ep_dir.join("service-house-price.yaml")).unwrap();
    assert!(service.contains("medallion.dev/slot: blue"), "{service}");
    assert_eq!(production(lake), 1);
    assert_eq!(files(&ep_dir).len(), 5, "{:?}", files(&ep_dir));

    // The policy's namespaces: a release into another namespace is rejected.
    let other = plan_k8s("1", "sandbox", "manifests");
    assert_eq!(other.code, 0, "{}", other.stderr);
    let rejected = approve(lake, other.output("plan-id"), &["--policy", policy]);
    assert_eq!(rejected.code, 3, "{}", rejected.stderr);
    assert!(
        rejected.output("reasons").contains("sandbox"),
        "{}",
        rejected.output("reasons")
    );
    // After the rollback v1 serves: a kubernetes release of v2 needs an API server; outside a
    // pod, without --kube-api and without a kubeconfig it is refused as bad input
    // (tests/it/kube.rs applies one).
    let k = plan_k8s("2", "models", "kubernetes");
    let kid = k.output("plan-id").to_string();
    assert_eq!(approve(lake, &kid, &["--policy", policy]).code, 0);
    let no_kubeconfig = dir.path().join("no-kubeconfig");
    let refused = step(
        "medallion-deploy",
        lake,
        &["--endpoint", "house-price", "--plan-id", &kid],
        &[("KUBECONFIG", no_kubeconfig.to_str().unwrap())],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.error_line().contains("no cluster: pass --kube-api"),
        "{}",
        refused.error_line()
    );
    assert_eq!(production(lake), 1);
    // Without a namespace a cluster release cannot be planned.
    let no_ns = step(
        "medallion-plan",
        lake,
        &[
            "--target",
            "house-price",
            "--model",
            "house-price",
            "--model-version",
            "1",
            "--deploy-target",
            "manifests",
        ],
        &[],
    );
    assert_eq!(no_ns.code, 2, "{}", no_ns.stderr);
    assert!(
        no_ns.error_line().contains("--namespace"),
        "{}",
        no_ns.error_line()
    );
}
