//! Profiles: numbers equal pandas' describe (1e-9) on the same Parquet, whether quantiles come
//! from the buffer or from extra passes; drift flags a shifted column and not the others; the
//! report loads in a real headless Chromium and shows its charts.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{contract, generate, py, repo, scale_column, silver, step};

#[test]
fn profiles_match_pandas_describe_from_buffers_and_from_passes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    for (dataset, kind, rows, contract_name) in [
        ("houses", "houses", 20_000, "houses.yaml"),
        ("sales", "sales", 30_000, "sales.yaml"),
    ] {
        let src = dir.path().join(format!("{dataset}.csv"));
        generate(kind, rows, 13, &src);
        let v = silver(lake_s, dataset, &src, contract_name);
        let vdir = lake.join(format!("silver/{dataset}/v{v}"));
        for buffer in ["1000000", "500"] {
            let run = step(
                "medallion-profile",
                lake_s,
                &["--dataset", dataset, "--contract", &contract(contract_name)],
                &[("MEDALLION_PROFILE_BUFFER_VALUES", buffer)],
            );
            assert_eq!(run.code, 0, "{}", run.stderr);
            assert_eq!(run.output("rows"), rows.to_string());
            assert_eq!(run.output("violations"), "0", "silver keeps its contract");
            let profile = dir.path().join(format!("{dataset}-{buffer}.json"));
            std::fs::write(&profile, run.output("profile.json")).unwrap();
            let checked: Value = serde_json::from_str(&py(
                "describe_check.py",
                &[profile.to_str().unwrap(), vdir.to_str().unwrap()],
            ))
            .unwrap();
            assert!(
                checked["numeric_columns_checked"].as_array().unwrap().len() >= 3,
                "{checked}"
            );
            // The same profile is stored in the lake.
            let stored = lake.join(format!("profiles/silver/{dataset}/v{v}/profile.json"));
            assert_eq!(
                std::fs::read_to_string(stored).unwrap(),
                run.output("profile.json")
            );
        }
    }
}

#[test]
fn drift_flags_a_shifted_column_only() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    generate("houses", 5000, 1, &a);
    generate("houses", 5000, 2, &b);
    // Shift living_area (column 4) by 60% in the second file; everything else keeps its law.
    scale_column(&b, 4, 1.6);
    silver(lake_s, "houses", &a, "houses.yaml");
    silver(lake_s, "houses", &b, "houses.yaml");
    let run = step(
        "medallion-profile",
        lake_s,
        &["--dataset", "houses", "--version", "2"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.output("drift"), "true");
    assert_eq!(run.output("drift-columns"), "[\"living_area\"]");
    let profile: Value = serde_json::from_str(run.output("profile.json")).unwrap();
    let scores = profile["drift"]["columns"].as_array().unwrap();
    let psi = |c: &str| {
        scores
            .iter()
            .find(|s| s["column"] == c)
            .map(|s| s["psi"].as_f64().unwrap())
    };
    assert!(psi("living_area").unwrap() > 0.5, "{scores:?}");
    for stable in ["price", "bedrooms", "location_kind", "lot_size"] {
        let p = psi(stable).unwrap_or_else(|| panic!("no score for {stable}: {scores:?}"));
        assert!(p < 0.1, "{stable} has PSI {p}");
    }
    // The first version has no reference: no drift section.
    let first = step(
        "medallion-profile",
        lake_s,
        &["--dataset", "houses", "--version", "1"],
        &[],
    );
    assert_eq!(first.output("drift"), "false");
    // An explicit reference works too, and a bad one is a clear error.
    let against = step(
        "medallion-profile",
        lake_s,
        &[
            "--dataset",
            "houses",
            "--version",
            "2",
            "--against",
            "silver/houses/1",
        ],
        &[],
    );
    assert_eq!(against.output("drift"), "true");
    let bad = step(
        "medallion-profile",
        lake_s,
        &["--dataset", "houses", "--against", "houses-1"],
        &[],
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.error_line().contains("layer/dataset/version"),
        "{}",
        bad.error_line()
    );
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    silver(
        lake_s,
        "houses",
        &repo().join("examples/data/houses.csv"),
        "houses.yaml",
    );
    let run = step(
        "medallion-profile",
        lake_s,
        &[
            "--dataset",
            "houses",
            "--contract",
            &contract("houses.yaml"),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = dir.path().join("report.html");
    std::fs::write(&report, run.output("report.html")).unwrap();
    let html = run.output("report.html");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
        "not self-contained"
    );
    let chromium = which_chromium();
    let base = |extra: &[&str]| {
        let profile_dir = dir.path().join("chromium");
        let mut c = Command::new(&chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1200,1800",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.display()))
        .args(extra)
        .arg(format!("file://{}", report.display()));
        c.output().expect("run chromium")
    };
    let dom = base(&["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("Profile of silver/houses v1"), "{dom}");
    assert!(
        dom.matches("<svg").count() >= 10,
        "charts missing from the DOM"
    );
    assert!(dom.contains("every rule holds"));
    let png = dir.path().join("report.png");
    let shot = base(&[&format!("--screenshot={}", png.display())]);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 30_000,
        "the screenshot is empty ({} bytes)",
        bytes.len()
    );
}

fn which_chromium() -> String {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return c.to_string();
        }
    }
    panic!("Chromium is not installed; scripts/test installs it with apt-get install chromium");
}
