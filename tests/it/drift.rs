//! The monitoring → retraining loop: `drift-watch` (a CronWorkflow) run with `medallion run`
//! over a real medallion-serve's captured requests: a day of capture parts imported as one
//! bronze version, profiled against the production model's training data, and a retrain on drift.

use std::path::Path;

use serde_json::Value;

use crate::support::{ModelServer, medallion, repo};

/// One house as a V2 request: every input of the house-price model.
fn house(lot_size: f64, living_area: f64, year_built: f64) -> String {
    let n = |name: &str, v: f64| {
        format!("{{\"name\":\"{name}\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":[{v}]}}")
    };
    let b = |name: &str| {
        format!("{{\"name\":\"{name}\",\"shape\":[1],\"datatype\":\"BOOL\",\"data\":[true]}}")
    };
    let t = |name: &str, v: &str| {
        format!("{{\"name\":\"{name}\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"{v}\"]}}")
    };
    let inputs = [
        n("lot_size", lot_size),
        n("living_area", living_area),
        n("bedrooms", 9.0),
        n("bathrooms", 5.0),
        n("stories", 4.0),
        n("garage_places", 3.0),
        b("air_conditioning"),
        b("basement"),
        b("driveway"),
        t("location_kind", "urban"),
        t("sale_date", "2026-11-01"),
        n("year_built", year_built),
    ];
    format!("{{\"inputs\":[{}]}}", inputs.join(","))
}

fn run_drift_watch(lake: &str, runs: &Path, name: &str, extra: &[&str]) -> crate::support::StepRun {
    let mut args: Vec<String> = vec![
        "run".into(),
        repo()
            .join("workflow-templates/drift-watch.yaml")
            .display()
            .to_string(),
        "--name".into(),
        name.into(),
        "-p".into(),
        format!("lake={lake}"),
        // The executor plugin (latest-data) serves the lake configured for it: the same one.
        "--plugin-lake".into(),
        lake.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(crate::pipelines::run_flags(runs));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    medallion(&argv, &[])
}

#[test]
fn drift_watch_profiles_a_day_of_captured_requests_and_retrains_on_drift() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    let runs = dir.path().join("runs");
    let version = crate::deploy::house_price_versions(dir.path(), lake, 1);

    // v1 is in production: drift-watch compares the traffic with the data v1 learnt from.
    let moved = medallion(
        &[
            "model",
            "alias",
            "house-price",
            "production",
            "--version",
            "1",
            "--lake",
            lake,
            "--by",
            "test",
        ],
        &[],
    );
    assert_eq!(moved.code, 0, "{}", moved.stderr);

    // No capture today: the snapshot fails with what to check.
    let empty = run_drift_watch(lake, &runs, "no-capture", &[]);
    assert_eq!(empty.code, 1, "{}\n{}", empty.stdout, empty.stderr);
    let s = crate::pipelines::status(&runs, "no-capture");
    let snap = crate::pipelines::node(&s, "snapshot");
    assert_eq!(snap["phase"], "Failed", "{s:#}");
    assert!(
        snap["message"]
            .as_str()
            .unwrap()
            .contains("holds no .parquet files"),
        "{s:#}"
    );

    // A day of traffic far from the training data (mansions), captured in several parts.
    let mut server = ModelServer::start(
        lake,
        "house-price",
        &[
            "--alias",
            "production",
            "--capture-fraction",
            "1",
            "--capture-batch-rows",
            "5",
        ],
    );
    for i in 0..23 {
        let (status, body) = server.request(
            "POST",
            "/v2/models/house-price/infer",
            &[("content-type", "application/json")],
            house(40_000.0 + 100.0 * i as f64, 9_000.0 + i as f64, 2024.0).as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(server.terminate(), 0, "{}", server.logs());
    let capture_days: Vec<_> = std::fs::read_dir(lake_path.join("inference/house-price"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(capture_days.len(), 1);
    let parts = std::fs::read_dir(capture_days[0].path()).unwrap().count();
    assert!(parts >= 4, "{parts} capture parts");

    let run = run_drift_watch(lake, &runs, "watch", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let s = crate::pipelines::status(&runs, "watch");
    let node = |t: &str| crate::pipelines::node(&s, t).clone();
    assert_eq!(node("snapshot")["outputs"]["rows"], "23", "{s:#}");
    let traffic =
        std::fs::read_to_string(lake_path.join("bronze/house-price-traffic/v1/_manifest.json"))
            .unwrap();
    let traffic: Value = serde_json::from_str(&traffic).unwrap();
    assert_eq!(
        traffic["files"].as_array().unwrap().len(),
        parts,
        "every part, copied as it is"
    );
    assert_eq!(node("profile")["outputs"]["drift"], "true", "{s:#}");
    let drifted: Vec<String> = serde_json::from_str(
        node("profile")["outputs"]["drift-columns"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(drifted.contains(&"lot_size".to_string()), "{drifted:?}");
    let scores: Value =
        serde_json::from_str(node("profile")["outputs"]["drift-scores"].as_str().unwrap()).unwrap();
    assert!(scores["lot_size"].as_f64().unwrap() > 0.2, "{scores}");
    // The reference was the production model's training data.
    let profile = std::fs::read_to_string(
        lake_path.join("profiles/bronze/house-price-traffic/v1/profile.json"),
    )
    .unwrap();
    assert!(
        profile.contains(&format!("silver/houses v{version}")),
        "{}",
        &profile[..400.min(profile.len())]
    );
    // Drift → retrain on the newest silver version: the same data and spec find v1 again.
    assert_eq!(node("latest-data")["outputs"]["version"], version, "{s:#}");
    assert_eq!(node("retrain")["phase"], "Succeeded", "{s:#}");
    assert_eq!(node("retrain")["outputs"]["created"], "false", "{s:#}");
    assert_eq!(
        node("release")["phase"],
        "Skipped",
        "deploy-target none: {s:#}"
    );
    assert_eq!(s["outputs"]["drift"], "true", "{s:#}");
    assert_eq!(s["outputs"]["retrained-version"], "1", "{s:#}");
    assert!(
        run.stdout.contains("workflow outputs: drift=true"),
        "{}",
        run.stdout
    );

    // Running again the same day: the same parts give the same traffic version.
    let again = run_drift_watch(lake, &runs, "watch-again", &[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    let s2 = crate::pipelines::status(&runs, "watch-again");
    assert_eq!(
        crate::pipelines::node(&s2, "snapshot")["outputs"]["created"],
        "false",
        "{s2:#}"
    );
}
