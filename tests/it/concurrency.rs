//! Ten imports of one source at once, and an import killed mid-write (local lake; the Azure
//! variants are in azure.rs).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{generate, import, import_cmd, manifests, medallion, py};

#[test]
fn ten_concurrent_imports_of_one_source_make_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sales.csv");
    generate("sales", 20_000, 11, &src);
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let not_created = crate::support::import_concurrently(
        10,
        lake_s,
        &["--dataset", "sales", "--source", src.to_str().unwrap()],
        &[],
    );
    assert_eq!(not_created, 9);
    assert_eq!(manifests(&lake).len(), 1);
    // The losers removed their parts: v1 holds exactly the files its manifest lists.
    let listed: Vec<String> = std::fs::read_dir(lake.join("bronze/sales/v1"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[test]
fn an_import_killed_mid_write_leaves_no_version_and_the_rerun_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sales.csv");
    generate("sales", 1_500_000, 12, &src);
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let (mut cmd, _out) = import_cmd(
        lake_s,
        &["--dataset", "sales", "--source", src.to_str().unwrap()],
        &[],
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the writer has started a part file under v1, then kill -9.
    let v1 = lake.join("bronze/sales/v1");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = std::fs::read_dir(&v1)
            .map(|d| d.count() > 0)
            .unwrap_or(false);
        if started {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed; use a bigger file"
        );
        assert!(Instant::now() < deadline, "no part file appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        manifests(&lake).is_empty(),
        "a killed import left a visible version"
    );

    let rerun = import(
        lake_s,
        &["--dataset", "sales", "--source", src.to_str().unwrap()],
        &[],
    );
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_eq!(
        (
            rerun.output("version"),
            rerun.output("created"),
            rerun.output("rows")
        ),
        ("1", "true", "1500000")
    );
    assert_eq!(manifests(&lake).len(), 1);
    // Two row groups, each with the file's digest filled in (it is computed during the write).
    let check = py(
        "lineage_check.py",
        &[
            lake.join("bronze/sales/v1").to_str().unwrap(),
            src.to_str().unwrap(),
        ],
    );
    let check: serde_json::Value = serde_json::from_str(&check).unwrap();
    assert_eq!(check["rows"], 1_500_000);
    assert!(check["row_groups"].as_u64().unwrap() >= 2, "{check}");
    // gc removes the dead attempt's files and leaves the committed version alone.
    let gc = medallion(
        &[
            "lake",
            "gc",
            "--lake",
            lake_s,
            "--older-than-secs",
            "0",
            "--delete",
        ],
        &[],
    );
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    let after = medallion(
        &["lake", "gc", "--lake", lake_s, "--older-than-secs", "0"],
        &[],
    );
    assert!(
        after.stdout.starts_with("0 unreferenced files"),
        "{}",
        after.stdout
    );
    py(
        "lineage_check.py",
        &[
            lake.join("bronze/sales/v1").to_str().unwrap(),
            src.to_str().unwrap(),
        ],
    );
}
