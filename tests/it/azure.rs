//! Against a real Azurite: blob sources, an az:// lake, conditional commits on Azure, an outage
//! mid-import, and no secret in any output.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Azurite, env_refs, generate, import, import_cmd, medallion, py};

const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn azurite_with_containers() -> Azurite {
    let az = Azurite::start();
    az.blob(&["mkcontainer", "landing"]);
    az.blob(&["mkcontainer", "lake"]);
    az
}

/// Downloads a version folder of the Azure lake and checks it against the source with pyarrow.
fn check_against_source(az: &Azurite, prefix: &str, src: &std::path::Path) -> Value {
    let dir = tempfile::tempdir().unwrap();
    az.blob(&["download", "lake", prefix, dir.path().to_str().unwrap()]);
    let out = py(
        "check_bronze.py",
        &[src.to_str().unwrap(), dir.path().to_str().unwrap()],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn blob_and_local_sources_into_an_azure_lake_read_back_by_pyarrow() {
    let az = azurite_with_containers();
    let mut env = az.env();
    // An explicit account key in the environment, as from a mounted secret: it must never show.
    env.push(("AZURE_STORAGE_ACCOUNT_KEY", EMULATOR_KEY.to_string()));
    let env = env_refs(&env);
    let dir = tempfile::tempdir().unwrap();
    let houses = dir.path().join("windsor.csv");
    generate("houses", 3000, 21, &houses);
    let etag = az.blob(&[
        "upload",
        "landing",
        "houses/2026/11/22/windsor.csv",
        houses.to_str().unwrap(),
    ]);

    // The form Event Grid puts in data.url (path-style for the emulator).
    let url = format!(
        "{}/devstoreaccount1/landing/houses/2026/11/22/windsor.csv",
        az.endpoint()
    );
    let run = import(
        "az://lake/prod",
        &["--dataset", "houses", "--source", &url],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (
            run.output("version"),
            run.output("created"),
            run.output("rows")
        ),
        ("1", "true", "3000")
    );
    assert_eq!(
        run.output("uri"),
        format!(
            "{}/devstoreaccount1/lake/prod/bronze/houses/v1",
            az.endpoint()
        )
    );
    let summary = check_against_source(&az, "prod/bronze/houses/v1/", &houses);
    assert_eq!(summary["rows"], 3000);

    // The same blob named the az:// way is the same source (URL + ETag): no new version.
    let again = import(
        "az://lake/prod",
        &[
            "--dataset",
            "houses",
            "--source",
            "az://landing/houses/2026/11/22/windsor.csv",
        ],
        &env,
    );
    assert_eq!(
        (again.code, again.output("version"), again.output("created")),
        (0, "1", "false"),
        "{}",
        again.stderr
    );

    // Overwriting the blob gives a new ETag, hence a new version.
    let houses2 = dir.path().join("windsor2.csv");
    generate("houses", 100, 22, &houses2);
    let etag2 = az.blob(&[
        "upload",
        "landing",
        "houses/2026/11/22/windsor.csv",
        houses2.to_str().unwrap(),
    ]);
    assert_ne!(etag, etag2);
    let third = import(
        "az://lake/prod",
        &["--dataset", "houses", "--source", &url],
        &env,
    );
    assert_eq!(
        (third.code, third.output("version"), third.output("rows")),
        (0, "2", "100"),
        "{}",
        third.stderr
    );

    // A local file into the Azure lake.
    let sales = dir.path().join("sales.csv");
    generate("sales", 4000, 23, &sales);
    let local = import(
        "az://lake/prod",
        &["--dataset", "sales", "--source", sales.to_str().unwrap()],
        &env,
    );
    assert_eq!(local.code, 0, "{}", local.stderr);
    check_against_source(&az, "prod/bronze/sales/v1/", &sales);

    // The CLI lists the Azure lake.
    let list = medallion(&["lake", "list", "--lake", "az://lake/prod"], &env);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(
        list.stdout
            .lines()
            .filter(|l| l.starts_with("bronze"))
            .count(),
        3,
        "{}",
        list.stdout
    );

    // No secret anywhere: logs, outputs, manifests.
    let dl = tempfile::tempdir().unwrap();
    az.blob(&[
        "download",
        "lake",
        "prod/bronze/houses/v1/_manifest.json",
        dl.path().to_str().unwrap(),
    ]);
    let manifest = std::fs::read_to_string(dl.path().join("_manifest.json")).unwrap();
    for text in [
        &run.stderr,
        &run.stdout,
        &local.stderr,
        &list.stdout,
        &manifest,
    ] {
        assert!(
            !text.contains(EMULATOR_KEY) && !text.contains(&EMULATOR_KEY[..20]),
            "the account key leaked: {text}"
        );
    }
}

#[test]
fn ten_concurrent_imports_into_azure_make_one_version() {
    let az = azurite_with_containers();
    let env = az.env();
    let env = env_refs(&env);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sales.csv");
    generate("sales", 5000, 31, &src);
    az.blob(&[
        "upload",
        "landing",
        "sales/mx/2026-11-22.csv",
        src.to_str().unwrap(),
    ]);
    let not_created = crate::support::import_concurrently(
        10,
        "az://lake/prod",
        &[
            "--dataset",
            "sales",
            "--source",
            "az://landing/sales/mx/2026-11-22.csv",
        ],
        &env,
    );
    assert_eq!(not_created, 9);
    let blobs = az.blob(&["list", "lake", "prod/bronze/sales/"]);
    assert_eq!(
        blobs
            .lines()
            .filter(|b| b.ends_with("_manifest.json"))
            .count(),
        1,
        "{blobs}"
    );
    assert_eq!(
        blobs.lines().filter(|b| b.ends_with(".parquet")).count(),
        1,
        "losers left parts: {blobs}"
    );
}

#[test]
fn an_azure_outage_mid_import_exits_1_and_leaves_no_version() {
    let mut az = azurite_with_containers();
    let env = az.env();
    let env = env_refs(&env);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sales.csv");
    generate("sales", 2_000_000, 41, &src);
    let (mut cmd, out) = import_cmd(
        "az://lake/prod",
        &["--dataset", "sales", "--source", src.to_str().unwrap()],
        &env,
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // Wait until the import is under way (it logs "importing" once it has a target version).
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the import ended early: {seen}"
        );
        seen.push_str(&line);
        if line.contains("\"importing\"") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    az.stop();
    let started = Instant::now();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "expected a retryable failure:\n{seen}{rest}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "retries are not bounded"
    );
    let error = rest
        .lines()
        .rev()
        .find(|l| l.contains("error:"))
        .unwrap_or("");
    assert!(
        error.starts_with("medallion-import: error: store"),
        "{error}"
    );
    assert!(error.contains("retry later"), "{error}");
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "outputs written after a failure"
    );

    az.restart();
    let blobs = az.blob(&["list", "lake", "prod/"]);
    assert!(
        !blobs.contains("_manifest.json"),
        "a version became visible: {blobs}"
    );
    let list = medallion(&["lake", "list", "--lake", "az://lake/prod"], &env);
    assert!(list.stdout.contains("(no versions yet)"), "{}", list.stdout);
    // The store is back: the rerun succeeds.
    let rerun = import(
        "az://lake/prod",
        &["--dataset", "sales", "--source", src.to_str().unwrap()],
        &env,
    );
    assert_eq!(
        (rerun.code, rerun.output("created")),
        (0, "true"),
        "{}",
        rerun.stderr
    );
}

#[test]
fn a_sas_token_from_the_environment_works_and_never_shows() {
    let az = azurite_with_containers();
    let sas = az.blob(&["sas", "lake"]).trim().to_string();
    let sig = sas
        .split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .expect("a signature in the SAS")
        .to_string();
    let mut env = az.env();
    env.push(("AZURE_STORAGE_SAS_TOKEN", sas.clone()));
    let env = env_refs(&env);
    let src = crate::support::repo().join("examples/data/houses.csv");
    let run = import(
        "az://lake/prod",
        &["--dataset", "houses", "--source", src.to_str().unwrap()],
        &env,
    );
    assert_eq!((run.code, run.output("rows")), (0, "546"), "{}", run.stderr);
    // A failure with the same credentials: the lake's SAS does not grant the landing container.
    let denied = import(
        "az://lake/prod",
        &["--dataset", "other", "--source", "az://landing/none.csv"],
        &env,
    );
    assert_ne!(denied.code, 0);
    for text in [&run.stdout, &run.stderr, &denied.stdout, &denied.stderr] {
        assert!(!text.contains(&sig), "the SAS signature leaked: {text}");
        assert!(!text.contains(&sas), "the SAS leaked: {text}");
    }
}

#[test]
fn a_missing_container_is_a_clear_bad_input() {
    let az = azurite_with_containers();
    let env = az.env();
    let env = env_refs(&env);
    let src = crate::support::repo().join("examples/data/houses.csv");
    let run = import(
        "az://nolake/prod",
        &["--dataset", "houses", "--source", src.to_str().unwrap()],
        &env,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.error_line().contains("nolake"), "{}", run.error_line());
    let missing = import(
        "az://lake/prod",
        &["--dataset", "houses", "--source", "az://landing/nope.csv"],
        &env,
    );
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.error_line().contains("does not exist"),
        "{}",
        missing.error_line()
    );
}
