//! Imports into a local lake, read back with pyarrow.

use serde_json::Value;

use crate::support::{generate, import, manifests, medallion, py, repo};

fn dump(version_dir: &std::path::Path) -> Value {
    serde_json::from_str(&py("dump.py", &[version_dir.to_str().unwrap()])).unwrap()
}

#[test]
fn generated_houses_round_trip_through_pyarrow() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("houses.csv");
    generate("houses", 5000, 3, &src);
    let lake = dir.path().join("lake");
    let run = import(
        lake.to_str().unwrap(),
        &["--dataset", "houses", "--source", src.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.output("version"), "1");
    assert_eq!(run.output("rows"), "5000");
    assert_eq!(run.output("created"), "true");
    assert_eq!(
        run.output("uri"),
        format!(
            "file://{}/bronze/houses/v1",
            lake.canonicalize().unwrap().display()
        )
    );
    // The last stdout line is the same outputs as one JSON object.
    let last: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["version"], 1);
    assert_eq!(last["created"], true);
    // Logs are JSON lines on stderr.
    for line in run.stderr.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    let summary = py(
        "check_bronze.py",
        &[
            src.to_str().unwrap(),
            lake.join("bronze/houses/v1").to_str().unwrap(),
        ],
    );
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["rows"], 5000);
    assert_eq!(summary["codecs"], serde_json::json!(["ZSTD"]));
}

#[test]
fn tricky_csv_values_arrive_exactly() {
    let lake = tempfile::tempdir().unwrap();
    for (file, delimiter) in [
        ("quotes_newlines.csv", ","),
        ("bom_crlf.csv", ","),
        ("semicolon.csv", ";"),
    ] {
        let src = repo().join("tests/corpus").join(file);
        let run = import(
            lake.path().to_str().unwrap(),
            &["--dataset", "t", "--source", src.to_str().unwrap()],
            &[],
        );
        assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        let vdir = lake
            .path()
            .join(format!("bronze/t/v{}", run.output("version")));
        py(
            "check_bronze.py",
            &[
                src.to_str().unwrap(),
                vdir.to_str().unwrap(),
                "--delimiter",
                delimiter,
            ],
        );
    }
}

#[test]
fn reimport_returns_the_same_version_and_new_content_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    generate("sales", 300, 1, &a);
    generate("sales", 300, 2, &b);
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let first = import(
        lake_s,
        &["--dataset", "sales", "--source", a.to_str().unwrap()],
        &[],
    );
    let again = import(
        lake_s,
        &["--dataset", "sales", "--source", a.to_str().unwrap()],
        &[],
    );
    let other = import(
        lake_s,
        &["--dataset", "sales", "--source", b.to_str().unwrap()],
        &[],
    );
    // The same bytes under another name are the same source (identity is the content's SHA-256).
    let copy = dir.path().join("copy.csv");
    std::fs::copy(&a, &copy).unwrap();
    let copied = import(
        lake_s,
        &["--dataset", "sales", "--source", copy.to_str().unwrap()],
        &[],
    );
    let got: Vec<(&str, &str)> = [&first, &again, &other, &copied]
        .iter()
        .map(|r| (r.output("version"), r.output("created")))
        .collect();
    assert_eq!(
        got,
        vec![("1", "true"), ("1", "false"), ("2", "true"), ("1", "false")]
    );
    assert_eq!(manifests(&lake).len(), 2);
}

#[test]
fn gzip_zstd_json_lines_and_parquet_sources() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sales.csv");
    generate("sales", 2000, 5, &src);
    let gz = dir.path().join("sales.csv.gz");
    let out = std::process::Command::new("gzip")
        .arg("-kc")
        .arg(&src)
        .output()
        .unwrap();
    std::fs::write(&gz, out.stdout).unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();

    let plain = import(
        lake_s,
        &["--dataset", "plain", "--source", src.to_str().unwrap()],
        &[],
    );
    let zipped = import(
        lake_s,
        &["--dataset", "zipped", "--source", gz.to_str().unwrap()],
        &[],
    );
    assert_eq!((plain.code, zipped.code), (0, 0), "{}", zipped.stderr);
    let (p, z) = (
        dump(&lake.join("bronze/plain/v1")),
        dump(&lake.join("bronze/zipped/v1")),
    );
    let strip = |v: &Value| -> Vec<Value> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                let o = r.as_object_mut().unwrap();
                for k in ["_ingested_at", "_source_url", "_source_sha256"] {
                    o.remove(k);
                }
                r
            })
            .collect()
    };
    assert_eq!(strip(&p), strip(&z));

    // The bronze Parquet itself as a source: types kept, lineage of the new import.
    let part = manifest_file(&lake.join("bronze/plain/v1"));
    let from_parquet = import(
        lake_s,
        &["--dataset", "again", "--source", part.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        from_parquet.code, 2,
        "lineage names clash, so this must be refused: {}",
        from_parquet.stderr
    );
    assert!(
        from_parquet.error_line().contains("reserved for lineage"),
        "{}",
        from_parquet.error_line()
    );

    // JSON lines: strings unescaped, numbers and objects as their JSON text, nulls null.
    let jl = repo().join("tests/corpus/lines.jsonl");
    let run = import(
        lake_s,
        &["--dataset", "json", "--source", jl.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = dump(&lake.join("bronze/json/v1"));
    assert_eq!(j["rows"][0]["id"], "1");
    assert_eq!(j["rows"][0]["tags"], "[\"x\"]");
    assert_eq!(j["rows"][1]["name"], Value::Null);
    assert_eq!(j["rows"][1]["tags"], Value::Null);
}

fn manifest_file(vdir: &std::path::Path) -> std::path::PathBuf {
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(vdir.join("_manifest.json")).unwrap())
            .unwrap();
    vdir.join(m["files"][0]["name"].as_str().unwrap())
}

#[test]
fn parquet_sources_keep_their_types() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("typed.parquet");
    py("make_parquet.py", &[pq.to_str().unwrap()]);
    let lake = dir.path().join("lake");
    let run = import(
        lake.to_str().unwrap(),
        &["--dataset", "typed", "--source", pq.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.output("rows"), "3");
    let d = dump(&lake.join("bronze/typed/v1"));
    assert_eq!(d["types"][0], "int64");
    assert_eq!(d["types"][1], "double");
    assert_eq!(d["types"][2], "string");
    assert_eq!(d["rows"][2]["price"], 3.25);
    assert_eq!(d["rows"][2]["_row_number"], 3);
}

#[test]
fn bad_rows_within_the_allowance_are_quarantined_with_reasons() {
    let lake = tempfile::tempdir().unwrap();
    let src = repo().join("tests/corpus/ragged.csv");
    let run = import(
        lake.path().to_str().unwrap(),
        &[
            "--dataset",
            "r",
            "--source",
            src.to_str().unwrap(),
            "--max-bad-rows",
            "2",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!((run.output("rows"), run.output("bad-rows")), ("2", "2"));
    let data = dump(&lake.path().join("bronze/r/v1"));
    let good: Vec<i64> = data["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["_row_number"].as_i64().unwrap())
        .collect();
    assert_eq!(good, vec![1, 4]);
    let qdir = lake.path().join("quarantine/bronze/r/v1");
    let files: Vec<String> = std::fs::read_dir(&qdir)
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .collect();
    assert_eq!(files.len(), 1);
    let mut args = vec!["--files"];
    args.extend(files.iter().map(String::as_str));
    let q: Value = serde_json::from_str(&py("dump.py", &args)).unwrap();
    let rows = q["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["_row_number"], 2);
    assert_eq!(rows[0]["reason"], "has 3 fields, the header has 2");
    assert_eq!(rows[0]["raw"], "2,b,EXTRA");
    assert_eq!(rows[1]["_row_number"], 3);
}

#[test]
fn typed_bronze_with_a_schema_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("h.csv");
    std::fs::write(
        &src,
        "id,price,sold_on,ok\n1,100.5,2026-11-22,yes\n2,abc,2026-11-23,no\n3,,2026-11-24,\n",
    )
    .unwrap();
    let schema = dir.path().join("schema.yaml");
    std::fs::write(
        &schema,
        "columns:\n  id: int\n  price: float\n  sold_on: date\n  ok: bool\n",
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let base = [
        "--dataset",
        "h",
        "--source",
        src.to_str().unwrap(),
        "--schema",
        schema.to_str().unwrap(),
    ];
    let strict = import(lake_s, &base, &[]);
    assert_eq!(strict.code, 2);
    assert!(
        strict
            .error_line()
            .contains("at row 2, column 'price': value 'abc' is not a valid float"),
        "{}",
        strict.error_line()
    );
    let mut tolerant = base.to_vec();
    tolerant.extend(["--max-bad-rows", "1"]);
    let run = import(lake_s, &tolerant, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let d = dump(&lake.join("bronze/h/v1"));
    assert_eq!(
        &d["types"].as_array().unwrap()[..4],
        &["int64", "double", "date32[day]", "bool"].map(Value::from)
    );
    assert_eq!(d["rows"][0]["price"], 100.5);
    assert_eq!(d["rows"][1]["price"], Value::Null);
    assert_eq!(d["rows"][1]["_row_number"], 3);

    std::fs::write(&schema, "columns:\n  id: int\n  price: money\n").unwrap();
    let bad = import(lake_s, &base, &[]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.error_line()
            .contains("schema.yaml line 3: column 'price': unknown type 'money'"),
        "{}",
        bad.error_line()
    );
}

#[test]
fn lake_list_and_show_tell_what_the_lake_holds() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let src = repo().join("examples/data/houses.csv");
    let run = import(
        lake_s,
        &["--dataset", "houses", "--source", src.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list = medallion(&["lake", "list", "--lake", lake_s], &[]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("bronze"))
        .expect(&list.stdout);
    assert!(
        line.contains("houses") && line.contains("v1") && line.contains("546"),
        "{line}"
    );
    assert!(line.contains("examples/data/houses.csv"), "{line}");
    let show = medallion(&["lake", "show", "houses", "--lake", lake_s], &[]);
    let m: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(m["rows"], 546);
    assert_eq!(m["version"], 1);
    assert_eq!(m["schema"].as_array().unwrap().len(), 18);
    let missing = medallion(&["lake", "show", "houses", "9", "--lake", lake_s], &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("houses v9 does not exist"),
        "{}",
        missing.stderr
    );
}

#[test]
fn demo_runs_the_main_job_on_bundled_data() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let landing = dir.path().join("landing");
    let runs = dir.path().join("runs");
    let endpoints = dir.path().join("endpoints");
    let checkout = repo();
    // The demo leaves the released models serving; stop them when the test ends.
    struct StopEndpoints<'a>(&'a std::path::Path);
    impl Drop for StopEndpoints<'_> {
        fn drop(&mut self) {
            for ep in ["house-price", "customer-segments"] {
                medallion(
                    &[
                        "endpoint",
                        "stop",
                        ep,
                        "--state-dir",
                        self.0.to_str().unwrap(),
                    ],
                    &[],
                );
            }
        }
    }
    let _stop = StopEndpoints(&endpoints);
    let args = [
        "demo",
        "--state-dir",
        endpoints.to_str().unwrap(),
        "--lake",
        lake.to_str().unwrap(),
        "--landing",
        landing.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--repo",
        checkout.to_str().unwrap(),
    ];
    let run = medallion(&args, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for wf in ["house-price-0x", "sales-segmentation-0x"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("workflow {wf}")) && l.contains("Succeeded in"))
            .unwrap_or_else(|| panic!("no succeeded {wf} run in\n{}", run.stdout));
        assert!(line.contains("status.json"), "{line}");
    }
    for version in [
        "bronze/houses/v1",
        "silver/houses/v1",
        "bronze/sales/v1",
        "silver/sales/v1",
        "models/house-price/v1",
        "models/customer-segments/v1",
    ] {
        assert!(
            lake.join(version).join("_manifest.json").is_file(),
            "{version} missing"
        );
    }
    assert!(lake.join("models/house-price/v1/card.html").is_file());
    // Both models passed their gates and policies and serve on local endpoints.
    for (endpoint, model) in [
        ("house-price", "house-price"),
        ("customer-segments", "customer-segments"),
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "endpoint {endpoint}: {model} v1 serves at http://127.0.0.1:"
                ))
            })
            .unwrap_or_else(|| panic!("no endpoint {endpoint} in\n{}", run.stdout));
        let url = line
            .split(" serves at ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        let (status, body) =
            crate::support::http_request(port, "GET", &format!("/v2/models/{model}"), &[], b"");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"versions\":[\"1\"]"), "{body}");
        assert!(
            lake.join(format!("releases/{endpoint}/current.json"))
                .is_file()
        );
    }
    // The lake listing closes the run.
    assert!(run.stdout.contains("houses"), "{}", run.stdout);
    // A second run is the same uploads again: the Workflows exist, nothing runs.
    let again = medallion(&args, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again
            .stdout
            .matches("exists already (a repeated event)")
            .count(),
        2,
        "{}",
        again.stdout
    );
    // Without the step binaries the demo says how to build them.
    let mut no_bins = args.to_vec();
    no_bins.extend(["--bin-dir", "/nonexistent"]);
    let missing = medallion(&no_bins, &[]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains(
            "is not built; build the step binaries first: cargo build --release --workspace --bins"
        ),
        "{}",
        missing.stderr
    );
}
