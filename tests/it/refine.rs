//! Refine under the shipped contracts: planted faults give exact reject counts and reasons; the
//! real Windsor house sales pass with zero rejects; too many rejects commit nothing (exit 3).

use std::path::Path;

use serde_json::Value;

use crate::support::{StepRun, contract, generate, import, py, refine, repo};

/// `medallion-refine` of `dataset` v`version` under examples/contracts/`contract_name`.
fn refine_with(lake: &str, dataset: &str, version: &str, contract_name: &str) -> StepRun {
    refine(
        lake,
        &[
            "--dataset",
            dataset,
            "--version",
            version,
            "--contract",
            &contract(contract_name),
        ],
    )
}

fn dump_files(dir: &Path) -> Value {
    let files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    let mut args = vec!["--files"];
    args.extend(files.iter().map(String::as_str));
    serde_json::from_str(&py("dump.py", &args)).unwrap()
}

/// Writes a generated sales file with faults planted in given data rows (1-based): field
/// index → new value.
fn sales_with_faults(path: &Path, rows: u64, faults: &[(usize, usize, &str)], extra_column: bool) {
    let clean = path.with_extension("clean.csv");
    generate("sales", rows, 77, &clean);
    let text = std::fs::read_to_string(&clean).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for &(row, field, value) in faults {
        let mut fields: Vec<String> = lines[row].split(',').map(str::to_string).collect();
        fields[field] = value.to_string();
        lines[row] = fields.join(",");
    }
    if extra_column {
        for (i, l) in lines.iter_mut().enumerate() {
            l.push_str(if i == 0 { ",loyalty_tier" } else { ",gold" });
        }
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn planted_faults_give_exact_rejects_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sales.csv");
    // Fields: 0 sale_id, 1 store_id, 2 region, 3 sold_at, 4 customer_id, 7 quantity, 8 unit_price.
    let faults = [
        (10, 7, "abc"),         // type
        (20, 2, "BR"),          // allowed
        (30, 7, "0"),           // range
        (40, 4, ""),            // required
        (50, 0, "S0000000051"), // duplicate of row 51's sale_id (row 50 comes first: row 51 is dropped)
        (60, 8, "2.999"),       // decimal places
        (70, 1, "shop-1"),      // regex
    ];
    sales_with_faults(&src, 1000, &faults, true);
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let imported = import(
        lake_s,
        &["--dataset", "sales", "--source", src.to_str().unwrap()],
        &[],
    );
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let run = refine_with(lake_s, "sales", "1", "sales.yaml");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (
            run.output("rows"),
            run.output("rejected"),
            run.output("duplicates"),
            run.output("version")
        ),
        ("993", "6", "1", "1")
    );
    let q = dump_files(&lake.join("quarantine/silver/sales/v1"));
    let got: Vec<(i64, String, String)> = q["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["_row_number"].as_i64().unwrap(),
                r["column"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(i64, String, String)> = [
        (10, "quantity", "type"),
        (20, "region", "allowed"),
        (30, "quantity", "range"),
        (40, "customer_id", "required"),
        (51, "sale_id", "duplicate"),
        (60, "unit_price", "type"),
        (70, "store_id", "regex"),
    ]
    .iter()
    .map(|(r, c, k)| (*r, c.to_string(), k.to_string()))
    .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want);
    let reasons: Vec<&str> = q["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"'abc' is not a valid int"), "{reasons:?}");
    assert!(
        reasons.contains(&"'0' is below the minimum 1"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"'2.999' has more than 2 decimal places"),
        "{reasons:?}"
    );

    // Silver is typed, keeps the unknown column (unknown_columns: keep) and the lineage.
    let silver = py("dump.py", &[lake.join("silver/sales/v1").to_str().unwrap()]);
    let silver: Value = serde_json::from_str(&silver).unwrap();
    let cols: Vec<&str> = silver["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        cols.contains(&"loyalty_tier") && cols.contains(&"_row_number"),
        "{cols:?}"
    );
    let types: Vec<&str> = silver["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        &types[..4],
        &["string", "string", "string", "timestamp[us, tz=UTC]"]
    );
    assert_eq!(types[8], "decimal128(10, 2)");

    // The manifest records the bronze parent and the contract's hash.
    let show = crate::support::medallion(
        &[
            "lake", "show", "sales", "--layer", "silver", "--lake", lake_s,
        ],
        &[],
    );
    let m: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(m["parents"][0]["layer"], "bronze");
    assert_eq!(m["parents"][0]["version"], 1);
    assert_eq!(m["details"]["contract_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(m["details"]["rules_broken"]["duplicate"], 1);

    // Refining the same bronze version under the same contract is idempotent.
    let again = refine_with(lake_s, "sales", "1", "sales.yaml");
    assert_eq!(
        (again.code, again.output("version"), again.output("created")),
        (0, "1", "false")
    );
    assert_eq!(again.output("rejected"), "6");
}

#[test]
fn too_many_rejects_commit_nothing_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sales.csv");
    let faults: Vec<(usize, usize, &str)> = (1..=30).map(|r| (r * 10, 2, "XX")).collect();
    sales_with_faults(&src, 1000, &faults, false);
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    assert_eq!(
        import(
            lake_s,
            &["--dataset", "sales", "--source", src.to_str().unwrap()],
            &[]
        )
        .code,
        0
    );
    let run = refine_with(lake_s, "sales", "1", "sales.yaml");
    assert_eq!(run.code, 3, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("bronze/sales v1: 30 of 1000 rows break the contract, more than its max_rejected_fraction 0.01 allows (first: row 10, column 'region': 'XX' is not one of US, CA, MX); nothing was committed"),
        "{line}"
    );
    assert!(!lake.join("silver/sales/v1/_manifest.json").exists());
    assert!(run.outputs.is_empty());
}

#[test]
fn incremental_sales_drop_keys_already_in_silver() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    generate("sales", 500, 5, &a);
    generate("sales", 800, 5, &b); // the same seed: its first 500 sales are a's
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    for src in [&a, &b] {
        assert_eq!(
            import(
                lake_s,
                &["--dataset", "sales", "--source", src.to_str().unwrap()],
                &[]
            )
            .code,
            0
        );
    }
    let first = refine_with(lake_s, "sales", "1", "sales.yaml");
    assert_eq!(
        (first.code, first.output("rows")),
        (0, "500"),
        "{}",
        first.stderr
    );
    let second = refine_with(lake_s, "sales", "2", "sales.yaml");
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        (
            second.output("version"),
            second.output("rows"),
            second.output("duplicates")
        ),
        ("2", "300", "500")
    );
}

#[test]
fn real_windsor_house_sales_pass_the_houses_contract() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("windsor.csv");
    py("windsor.py", &[src.to_str().unwrap()]);
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let imported = import(
        lake_s,
        &["--dataset", "houses", "--source", src.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        (imported.code, imported.output("rows")),
        (0, "546"),
        "{}",
        imported.stderr
    );
    let run = refine_with(lake_s, "houses", "1", "houses.yaml");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (
            run.output("rows"),
            run.output("rejected"),
            run.output("duplicates")
        ),
        ("546", "0", "0")
    );
    let silver: Value = serde_json::from_str(&py(
        "dump.py",
        &[lake.join("silver/houses/v1").to_str().unwrap()],
    ))
    .unwrap();
    let first = &silver["rows"][0];
    assert_eq!(first["house_id"], "1");
    assert_eq!(first["price"], 42000.0);
    assert_eq!(first["lot_size"], 5850.0);
    assert_eq!(first["bathrooms"], 1.0);
    assert_eq!(first["basement"], true);
    assert_eq!(first["air_conditioning"], false);
}

#[test]
fn contract_and_version_mismatches_are_clear_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let src = repo().join("examples/data/sales.csv");
    assert_eq!(
        import(
            lake_s,
            &["--dataset", "sales", "--source", src.to_str().unwrap()],
            &[]
        )
        .code,
        0
    );
    // The houses contract on sales data: required columns missing.
    let wrong = refine_with(lake_s, "sales", "1", "houses.yaml");
    assert_eq!(wrong.code, 2);
    assert!(
        wrong
            .error_line()
            .contains("required contract columns are missing: house_id, price, bedrooms"),
        "{}",
        wrong.error_line()
    );
    // A broken contract file: file, line and field.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "columns:\n  sale_id: {type: string}\n  quantity: {type: integer, min: 5, max: 1}\n",
    )
    .unwrap();
    let run = refine(
        lake_s,
        &[
            "--dataset",
            "sales",
            "--version",
            "1",
            "--contract",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.error_line()
            .ends_with("bad.yaml line 3: column 'quantity': min is above max"),
        "{}",
        run.error_line()
    );
    // A version that does not exist.
    let missing = refine_with(lake_s, "sales", "9", "sales.yaml");
    assert_eq!(missing.code, 2);
    assert!(
        missing.error_line().contains("sales v9 does not exist"),
        "{}",
        missing.error_line()
    );
    // unknown_columns: reject.
    let strict = dir.path().join("strict.yaml");
    let text = std::fs::read_to_string(contract("sales.yaml"))
        .unwrap()
        .replace("unknown_columns: keep", "unknown_columns: reject");
    std::fs::write(&strict, text.replace("  holiday: bool\n", "")).unwrap();
    let run = refine(
        lake_s,
        &[
            "--dataset",
            "sales",
            "--version",
            "1",
            "--contract",
            strict.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.error_line()
            .contains("has columns the contract does not declare (holiday)"),
        "{}",
        run.error_line()
    );
}
