//! Data connections against real services: PostgreSQL (initdb + postgres, started here) and
//! Azurite; Snowflake against recorded SQL API responses (no Snowflake account can run here).
//! Every test also checks that the secret never shows up in outputs, logs or the lake.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Postgres, import, py};

const PW_ENV: &str = "SALES_DB_PASSWORD";

fn dump(version_uri: &str) -> Value {
    let dir = version_uri.trim_start_matches("file://");
    serde_json::from_str(&py("dump.py", &[dir])).unwrap()
}

/// `medallion-import --connection --query --snapshot` into `dataset`.
fn import_query(
    lake: &str,
    dataset: &str,
    connection: &str,
    query: &str,
    snapshot: &str,
    env: &[(&str, &str)],
) -> crate::support::StepRun {
    import(
        lake,
        &[
            "--dataset",
            dataset,
            "--connection",
            connection,
            "--query",
            query,
            "--snapshot",
            snapshot,
        ],
        env,
    )
}

/// Every file under `dir`, as text (lossy), for secret scans.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn register_pg(
    lake: &str,
    pg: &Postgres,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> crate::support::StepRun {
    let port = pg.port.to_string();
    let mut args = vec![
        "register",
        "--name",
        name,
        "--kind",
        "postgres",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--database",
        "sales",
        "--user",
        &pg.user,
        "--sslmode",
        "disable",
        "--password-env",
        "SALES_DB_PASSWORD=sales-db/password",
    ];
    args.extend_from_slice(extra);
    connect(lake, &args, env)
}

/// `medallion-connect <subcommand> --lake L --outputs-dir O <args>`.
fn connect(lake: &str, args: &[&str], env: &[(&str, &str)]) -> crate::support::StepRun {
    // The subcommand comes first; support::step puts --lake first, so pass through a shim order.
    let (sub, rest) = args.split_first().unwrap();
    let outputs = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(crate::support::bin("medallion-connect"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .arg(sub)
        .args(["--lake", lake, "--outputs-dir"])
        .arg(outputs.path())
        .args(rest)
        .env_remove("MEDALLION_LAKE")
        .output()
        .unwrap();
    let mut outputs_map = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(outputs.path()).unwrap().flatten() {
        outputs_map.insert(
            e.file_name().to_string_lossy().to_string(),
            std::fs::read_to_string(e.path()).unwrap_or_default(),
        );
    }
    crate::support::StepRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: outputs_map,
    }
}

#[test]
fn postgres_connection_checks_and_imports_typed_rows_without_leaking_the_password() {
    let pg = Postgres::start();
    pg.sql("CREATE DATABASE sales");
    let setup = "
        CREATE TYPE region AS ENUM ('north', 'south');
        CREATE TABLE sales (
            id int8 PRIMARY KEY, flag boolean, qty int2, units int4, f4 real, f8 double precision,
            price numeric(12,2), ratio numeric, name text, code varchar(8), pad char(3),
            ref uuid, attrs jsonb, raw bytea, day date, at timestamp, at_tz timestamptz,
            tod time, reg region);
        INSERT INTO sales VALUES
          (1, true, 7, 70000, 1.5, 2.25, 12345.67, 0.000123, 'latte', 'GL-1', 'ab',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"size\": \"grande\"}', '\\x00ff10',
           '2026-11-23', '2026-11-23 08:30:00.123456', '2026-11-23 08:30:00+02', '08:30:01.5', 'north'),
          (2, NULL, NULL, NULL, NULL, NULL, -0.05, -1e20, NULL, NULL, NULL,
           NULL, NULL, NULL, '1999-12-31', '1970-01-01 00:00:00', NULL, NULL, NULL);
        CREATE TABLE odd (id int4, span interval);
        INSERT INTO odd VALUES (1, '1 day');";
    pg_in_sales(&pg, setup);

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let env = [(PW_ENV, pg.password.as_str())];

    // Register: checked (SELECT 1, the table's columns with their import types), then recorded.
    let reg = register_pg(lake, &pg, "sales-db", &["--table", "public.sales"], &env);
    assert_eq!(reg.code, 0, "{}", reg.stderr);
    assert_eq!(reg.output("ok"), "true");
    assert_eq!(reg.output("kind"), "postgres");
    let report: Value = serde_json::from_str(reg.output("report")).unwrap();
    assert_eq!(report["details"]["select_1"], 1);
    let cols = report["details"]["table"]["columns"].as_array().unwrap();
    let price = cols.iter().find(|c| c["name"] == "price").unwrap();
    assert_eq!(price["arrow_type"], "Decimal128(12, 2)");
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("lake/connections/sales-db/connection.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["spec"]["password"]["env"], PW_ENV);
    assert_eq!(record["spec"]["password"]["kubernetes"]["name"], "sales-db");

    // Import a query: typed bronze, lineage, one version per snapshot.
    let query = "SELECT * FROM sales ORDER BY id";
    let imp = import_query(lake, "sales", "sales-db", query, "2026-11-23", &env);
    assert_eq!(imp.code, 0, "{}", imp.stderr);
    assert_eq!(imp.output("rows"), "2");
    assert_eq!(imp.output("created"), "true");
    let d = dump(imp.output("uri"));
    let types: Vec<&str> = d["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let names: Vec<&str> = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let type_of = |n: &str| types[names.iter().position(|c| *c == n).unwrap()];
    for (col, ty) in [
        ("id", "int64"),
        ("flag", "bool"),
        ("qty", "int16"),
        ("units", "int32"),
        ("f4", "float"),
        ("f8", "double"),
        ("price", "decimal128(12, 2)"),
        ("ratio", "string"),
        ("name", "string"),
        ("code", "string"),
        ("pad", "string"),
        ("ref", "string"),
        ("attrs", "string"),
        ("raw", "binary"),
        ("day", "date32[day]"),
        ("at", "timestamp[us]"),
        ("at_tz", "timestamp[us, tz=UTC]"),
        ("tod", "time64[us]"),
        ("reg", "string"),
    ] {
        assert_eq!(type_of(col), ty, "column {col}");
    }
    let r0 = &d["rows"][0];
    assert_eq!(r0["id"], 1);
    assert_eq!(r0["flag"], true);
    assert_eq!(r0["price"], "12345.67");
    assert_eq!(r0["ratio"], "0.000123");
    assert_eq!(r0["pad"], "ab ");
    assert_eq!(r0["ref"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(r0["attrs"], r#"{"size": "grande"}"#);
    assert_eq!(r0["day"], "2026-11-23");
    assert_eq!(r0["at"], "2026-11-23 08:30:00.123456");
    assert_eq!(r0["at_tz"], "2026-11-23 06:30:00+00:00");
    assert_eq!(r0["tod"], "08:30:01.500000");
    assert_eq!(r0["reg"], "north");
    let r1 = &d["rows"][1];
    assert_eq!(r1["flag"], Value::Null);
    assert_eq!(r1["price"], "-0.05");
    assert_eq!(r1["ratio"], "-100000000000000000000");
    assert_eq!(r1["day"], "1999-12-31");
    assert_eq!(r1["at"], "1970-01-01 00:00:00");
    assert!(
        r0["_source_url"]
            .as_str()
            .unwrap()
            .starts_with("postgres://127.0.0.1:"),
        "{r0}"
    );
    assert_eq!(r0["_source_etag"], "2026-11-23");

    // The same snapshot again (a retried pod, a repeated event): the same version, not queried.
    let again = import_query(lake, "sales", "sales-db", query, "2026-11-23", &env);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.output("created"), "false");
    assert_eq!(again.output("version"), "1");
    let next = import_query(lake, "sales", "sales-db", query, "2026-11-24", &env);
    assert_eq!(next.output("version"), "2", "{}", next.stderr);

    // Bad inputs: each a clear line and its exit code; nothing stored changes.
    let wrong_pw = import_query(
        lake,
        "sales",
        "sales-db",
        query,
        "x",
        &[(PW_ENV, "not-the-password")],
    );
    assert_eq!(wrong_pw.code, 2, "{}", wrong_pw.stderr);
    assert!(
        wrong_pw
            .error_line()
            .contains("password authentication failed"),
        "{}",
        wrong_pw.stderr
    );
    let no_env = import_query(lake, "sales", "sales-db", query, "x", &[]);
    assert_eq!(no_env.code, 2, "{}", no_env.stderr);
    assert!(
        no_env
            .error_line()
            .contains("$SALES_DB_PASSWORD, which is not set"),
        "{}",
        no_env.stderr
    );
    assert!(
        no_env.error_line().contains("Secret sales-db key password"),
        "{}",
        no_env.stderr
    );
    let interval = import_query(lake, "odd", "sales-db", "SELECT * FROM odd", "x", &env);
    assert_eq!(interval.code, 2, "{}", interval.stderr);
    assert!(
        interval.error_line().contains("span (interval)"),
        "{}",
        interval.stderr
    );
    assert!(
        interval.error_line().contains("::text"),
        "{}",
        interval.stderr
    );
    let write = import_query(
        lake,
        "odd",
        "sales-db",
        "DELETE FROM sales RETURNING id",
        "y",
        &env,
    );
    assert_eq!(write.code, 2, "a write is refused: {}", write.stderr);
    let unknown = import_query(lake, "odd", "nope", "SELECT 1", "y", &env);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.error_line().contains("'nope' is not registered"),
        "{}",
        unknown.stderr
    );
    let missing_table = connect(
        lake,
        &["check", "--name", "sales-db", "--table", "public.nothing"],
        &env,
    );
    assert_eq!(missing_table.code, 2, "{}", missing_table.stderr);
    assert!(
        missing_table.error_line().contains("does not exist"),
        "{}",
        missing_table.stderr
    );
    let secret_flag = connect(
        lake,
        &[
            "register",
            "--name",
            "x",
            "--kind",
            "postgres",
            "--host",
            "h",
            "--database",
            "d",
            "--user",
            "u",
            "--password-env",
            "hunter2!",
        ],
        &[],
    );
    assert_eq!(secret_flag.code, 2);
    assert!(
        !secret_flag.stderr.contains("hunter2"),
        "{}",
        secret_flag.stderr
    );

    // The database still holds both rows (the DELETE ran in a read-only transaction, refused).
    let checked = connect(lake, &["check", "--name", "sales-db"], &env);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    let count = import_query(
        lake,
        "count",
        "sales-db",
        "SELECT count(*) AS n FROM sales",
        "z",
        &env,
    );
    assert_eq!(dump(count.output("uri"))["rows"][0]["n"], 2);

    // Unreachable: exit 1 (retryable).
    let down = tempfile::tempdir().unwrap();
    let down_lake = down.path().to_str().unwrap();
    let reg_down = connect(
        down_lake,
        &[
            "register",
            "--name",
            "gone",
            "--kind",
            "postgres",
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--database",
            "d",
            "--user",
            "u",
            "--sslmode",
            "disable",
        ],
        &[],
    );
    assert_eq!(reg_down.code, 1, "{}", reg_down.stderr);
    assert!(
        !down.path().join("connections/gone").exists(),
        "a failed check records nothing"
    );

    // The password is nowhere: not in the lake, the outputs or any log line.
    let everything = format!(
        "{}{}{}{}{}{}{}",
        all_text(dir.path()),
        reg.stderr,
        reg.stdout,
        imp.stderr,
        wrong_pw.stderr,
        interval.stderr,
        checked.stderr
    );
    assert!(!everything.contains(&pg.password), "the password leaked");
}

/// Runs `sql` in the `sales` database.
fn pg_in_sales(pg: &Postgres, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = format!(
        "host=127.0.0.1 port={} user={} password={} dbname=sales",
        pg.port, pg.user, pg.password
    );
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(connection);
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        drop(client);
        let _ = task.await;
    });
}

/// Peak resident memory (VmHWM) of an import of `query`, polled from /proc while it runs.
fn import_peak_rss(lake: &str, dataset: &str, query: &str, env: &[(&str, &str)]) -> (u64, String) {
    let outputs = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(crate::support::bin("medallion-import"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args([
            "--lake",
            lake,
            "--dataset",
            dataset,
            "--connection",
            "sales-db",
            "--query",
            query,
            "--snapshot",
            "s",
        ])
        .arg("--outputs-dir")
        .arg(outputs.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kb * 1024);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "import did not finish in 300 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = std::fs::read_to_string(outputs.path().join("rows")).unwrap();
    (peak, rows)
}

#[test]
fn postgres_million_rows_stream_with_flat_memory() {
    let pg = Postgres::start();
    pg.sql("CREATE DATABASE sales");
    pg_in_sales(
        &pg,
        "CREATE TABLE big AS SELECT g AS id, (g % 97)::int4 AS store, g * 1.25::float8 AS amount,
                'customer-' || (g % 5000) AS customer, now() - (g || ' seconds')::interval AS at
         FROM generate_series(1, 1000000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let env = [(PW_ENV, pg.password.as_str())];
    let reg = register_pg(lake, &pg, "sales-db", &[], &env);
    assert_eq!(reg.code, 0, "{}", reg.stderr);
    let (small, rows_small) =
        import_peak_rss(lake, "small", "SELECT * FROM big WHERE id <= 100000", &env);
    let (large, rows_large) = import_peak_rss(lake, "large", "SELECT * FROM big", &env);
    assert_eq!(rows_small, "100000");
    assert_eq!(rows_large, "1000000");
    eprintln!(
        "peak RSS: 100k rows {} MiB, 1M rows {} MiB",
        small >> 20,
        large >> 20
    );
    // Ten times the rows may not take anywhere near ten times the memory: one fetch and one
    // row group are held at a time.
    assert!(
        large < small * 3 && large < 400 << 20,
        "memory grew with the result: 100k rows {} MiB, 1M rows {} MiB",
        small >> 20,
        large >> 20
    );
}

#[test]
fn azure_blob_connection_lists_the_container_with_a_referenced_key_on_azurite() {
    let azurite = crate::support::Azurite::start();
    azurite.blob(&["mkcontainer", "landing"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.csv");
    std::fs::write(&file, "id\n1\n").unwrap();
    azurite.blob(&["upload", "landing", "sales/a.csv", file.to_str().unwrap()]);
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    let base = azurite.env();
    let with_key = |key: &str| {
        let mut env: Vec<(&str, String)> = base.clone();
        // The environment's own key must not be what authenticates: only the referenced one.
        env.push(("AZURE_STORAGE_ACCOUNT_KEY", "bm90LXRoZS1rZXk=".to_string()));
        env.push(("LANDING_KEY", key.to_string()));
        env
    };
    let good = with_key(KEY);
    let reg = connect(
        lake,
        &[
            "register",
            "--name",
            "landing",
            "--kind",
            "azure-blob",
            "--url",
            "az://landing/sales",
            "--account-key-env",
            "LANDING_KEY=landing-storage/key",
        ],
        &crate::support::env_refs(&good),
    );
    assert_eq!(reg.code, 0, "{}", reg.stderr);
    let report: Value = serde_json::from_str(reg.output("report")).unwrap();
    assert_eq!(report["details"]["blobs_listed"], 1, "{report}");
    assert!(
        report["details"]["sample"][0]
            .as_str()
            .unwrap()
            .ends_with("sales/a.csv"),
        "{report}"
    );

    // A key Azurite does not accept: refused (exit 2), the key not repeated.
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let bad = with_key(wrong_key);
    let refused = connect(
        lake,
        &["check", "--name", "landing"],
        &crate::support::env_refs(&bad),
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .error_line()
            .contains("connection 'landing' (azure-blob)"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(wrong_key));
    // Flags that would put a secret in the record are refused.
    let sas_in_url = connect(
        lake,
        &[
            "register",
            "--name",
            "x",
            "--kind",
            "azure-blob",
            "--url",
            "https://devstoreaccount1.blob.core.windows.net/landing?sv=2024&sig=abc",
        ],
        &[],
    );
    assert_eq!(sas_in_url.code, 2);
    assert!(
        sas_in_url.error_line().contains("--sas-env"),
        "{}",
        sas_in_url.stderr
    );
    assert!(!sas_in_url.stderr.contains("sig=abc"));
    let mixed = connect(
        lake,
        &[
            "register",
            "--name",
            "x",
            "--kind",
            "azure-blob",
            "--url",
            "az://a/b",
            "--host",
            "db",
        ],
        &[],
    );
    assert_eq!(mixed.code, 2);
    assert!(
        mixed
            .error_line()
            .contains("--host: does not apply to a azure-blob connection"),
        "{}",
        mixed.stderr
    );
    let listed = connect(lake, &["list"], &[]);
    assert_eq!(listed.output("connections"), r#"["landing"]"#);
    assert!(
        !all_text(dir.path()).contains(KEY),
        "the account key leaked into the lake"
    );
}

type MockLines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// tests/py/snowflake_replay.py serving for MYORG-SALES / LOADER with the key pair in `keys`.
fn snowflake_mock(keys: &Path, extra: &[&str]) -> (crate::support::Reaped, MockLines, String) {
    use std::io::BufRead;
    let mut server = Command::new(crate::support::python())
        .arg(crate::support::repo().join("tests/py/snowflake_replay.py"))
        .args([
            "serve",
            keys.join("pub.pem").to_str().unwrap(),
            "MYORG-SALES",
            "LOADER",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let port = lines.next().unwrap().unwrap();
    (
        crate::support::Reaped(server),
        lines,
        format!("http://127.0.0.1:{port}"),
    )
}

/// Registers the `warehouse` snowflake connection (which checks it first).
fn register_snowflake(
    lake: &str,
    endpoint: &str,
    warehouse: &str,
    pem: &str,
) -> crate::support::StepRun {
    connect(
        lake,
        &[
            "register",
            "--name",
            "warehouse",
            "--kind",
            "snowflake",
            "--account",
            "myorg.sales",
            "--user",
            "loader",
            "--warehouse",
            warehouse,
            "--database",
            "SALES",
            "--role",
            "LOADER_ROLE",
            "--private-key-env",
            "SNOWFLAKE_KEY=snowflake-loader/private-key",
            "--endpoint",
            endpoint,
        ],
        &[("SNOWFLAKE_KEY", pem)],
    )
}

#[test]
fn snowflake_query_import_reads_every_partition_of_recorded_sql_api_responses_mock() {
    let keys = tempfile::tempdir().unwrap();
    py(
        "snowflake_replay.py",
        &["keygen", keys.path().to_str().unwrap()],
    );
    let (server, lines, endpoint) = snowflake_mock(keys.path(), &["--fail-partition-once", "2"]);
    let key = std::fs::read_to_string(keys.path().join("key.pem")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let reg = register_snowflake(lake, &endpoint, "LOAD_WH", &key);
    assert_eq!(reg.code, 0, "{}", reg.stderr);
    let env = [("SNOWFLAKE_KEY", key.as_str())];
    let query = "SELECT * FROM SALES.PUBLIC.ORDERS WHERE SOLD_ON < CURRENT_DATE";

    // Partition 2 answers 503 once: the import fails as retryable (exit 1) and commits nothing.
    let first = import_query(lake, "orders", "warehouse", query, "2026-11-23", &env);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(
        first.error_line().contains("HTTP 503"),
        "{}",
        first.error_line()
    );
    assert!(!dir.path().join("bronze/orders/v1/_manifest.json").exists());
    // The retry submits the same request id: Snowflake returns the statement that ran.
    let second = import_query(lake, "orders", "warehouse", query, "2026-11-23", &env);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.output("rows"), "2500");
    assert_eq!(second.output("created"), "true");
    // The same snapshot again: nothing is asked of Snowflake.
    let third = import_query(lake, "orders", "warehouse", query, "2026-11-23", &env);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(third.output("created"), "false");

    let table = dump(second.output("uri"));
    // The query's columns, then the lineage columns bronze adds.
    let types: Vec<&str> = table["types"].as_array().unwrap()[..10]
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "int64",
            "decimal128(12, 2)",
            "double",
            "string",
            "bool",
            "date32[day]",
            "timestamp[us]",
            "timestamp[us, tz=UTC]",
            "binary",
            "string"
        ]
    );
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2500);
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r["ORDER_ID"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=2500).collect::<Vec<i64>>(),
        "every partition, in order"
    );
    let at = |i: i64, secs_fraction: u32| {
        chrono::DateTime::from_timestamp(1_700_000_000 + i, secs_fraction).unwrap()
    };
    for i in [1i64, 7, 1000, 1001, 2500] {
        let r = &rows[(i - 1) as usize];
        let amount = if i % 7 == 0 {
            Value::Null
        } else {
            Value::String(format!("{:.2}", i as f64 * 1.25))
        };
        assert_eq!(r["AMOUNT"], amount, "row {i}");
        assert_eq!(r["PRICE"].as_f64().unwrap(), i as f64 / 8.0);
        let store = ["Café Centro", "Quote \"Q\" Store", "Norte"][(i % 3) as usize];
        assert_eq!(r["STORE"], store);
        assert_eq!(r["PAID"], i % 2 == 1);
        let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + chrono::Days::new((20000 + i % 30) as u64);
        assert_eq!(r["SOLD_ON"], day.to_string());
        assert_eq!(
            r["SOLD_AT"],
            at(i, 123_456_000)
                .naive_utc()
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string()
        );
        assert_eq!(
            r["UPDATED_AT"],
            format!(
                "{}+00:00",
                at(i, 500_000_000).format("%Y-%m-%d %H:%M:%S%.6f")
            )
        );
        assert_eq!(r["RECEIPT"], format!("b'r{i}'"));
        assert_eq!(r["ATTRS"], format!("{{\"i\": {i}}}"));
    }
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("bronze/orders/v1/_manifest.json")).unwrap(),
    )
    .unwrap();
    let text = manifest.to_string();
    assert!(
        text.contains("snowflake://myorg.sales/SALES?connection=warehouse")
            && text.contains("\"partitions\":3"),
        "{text}"
    );

    // Not a SELECT: refused before Snowflake is asked. A VECTOR column: refused before a row.
    let delete = import_query(
        lake,
        "orders",
        "warehouse",
        "DELETE FROM SALES.PUBLIC.ORDERS",
        "x",
        &env,
    );
    assert_eq!(delete.code, 2, "{}", delete.stderr);
    assert!(
        delete.error_line().contains("starts with DELETE"),
        "{}",
        delete.error_line()
    );
    let vectors = import_query(
        lake,
        "embeddings",
        "warehouse",
        "SELECT ID, EMBEDDING FROM SALES.PUBLIC.EMBEDDINGS",
        "2026-11-23",
        &env,
    );
    assert_eq!(vectors.code, 2, "{}", vectors.stderr);
    assert!(
        vectors
            .error_line()
            .contains("EMBEDDING: type VECTOR has no mapping")
            && vectors.error_line().contains("EMBEDDING::VARCHAR"),
        "{}",
        vectors.error_line()
    );

    drop(server);
    let log: Vec<Value> = lines
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let posts: Vec<&Value> = log
        .iter()
        .filter(|r| {
            r["method"] == "POST" && r["body"]["statement"].as_str().unwrap().contains("ORDERS")
        })
        .collect();
    assert_eq!(posts.len(), 2, "the third import asked nothing: {posts:#?}");
    assert_eq!(posts[0]["request_id"], posts[1]["request_id"]);
    assert_eq!(posts[0]["executed"], true);
    assert_eq!(
        posts[1]["executed"], false,
        "the retry did not run the query again"
    );
    assert_eq!(posts[0]["body"]["warehouse"], "LOAD_WH");
    assert_eq!(posts[0]["body"]["resultSetMetaData"]["format"], "jsonv2");
    let partitions: Vec<&str> = log
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap().contains("partition="))
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        partitions.len(),
        4,
        "1, 2 (503), then 1, 2: {partitions:#?}"
    );
    for r in &log {
        assert_eq!(r["jwt_error"], Value::Null, "{r}");
    }
    let body = key.lines().nth(1).unwrap();
    let everything = format!("{}{}{}", all_text(dir.path()), first.stderr, second.stderr);
    assert!(!everything.contains(body), "the private key leaked");
}

#[test]
fn snowflake_check_signs_a_key_pair_jwt_against_recorded_sql_api_responses_mock() {
    let keys = tempfile::tempdir().unwrap();
    py(
        "snowflake_replay.py",
        &["keygen", keys.path().to_str().unwrap()],
    );
    let other = tempfile::tempdir().unwrap();
    py(
        "snowflake_replay.py",
        &["keygen", other.path().to_str().unwrap()],
    );
    let (server, mut lines, endpoint) = snowflake_mock(keys.path(), &[]);
    let key = std::fs::read_to_string(keys.path().join("key.pem")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let register = |warehouse: &str, pem: &str| register_snowflake(lake, &endpoint, warehouse, pem);
    let reg = register("LOAD_WH", &key);
    assert_eq!(reg.code, 0, "{}", reg.stderr);
    let report: Value = serde_json::from_str(reg.output("report")).unwrap();
    assert_eq!(report["details"]["select_1"], 1);
    assert_eq!(report["details"]["server_version"], "9.38.2");
    assert!(
        report["details"]["public_key_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    // The statement went with the warehouse, database and role; the 202 was polled to the 200.
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["method"], "POST");
    assert_eq!(first["jwt_error"], Value::Null, "{first}");
    assert_eq!(first["body"]["warehouse"], "LOAD_WH");
    assert_eq!(first["body"]["role"], "LOADER_ROLE");
    let poll: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(poll["method"], "GET");
    assert_eq!(poll["jwt_error"], Value::Null, "{poll}");

    // Signed with a key the user does not have: 401, refused (exit 2).
    let wrong = std::fs::read_to_string(other.path().join("key.pem")).unwrap();
    let denied = register("LOAD_WH", &wrong);
    assert_eq!(denied.code, 2, "{}", denied.stderr);
    assert!(
        denied.error_line().contains("JWT token is invalid"),
        "{}",
        denied.stderr
    );
    let _ = lines.next();
    // A documented SQL error (422) comes back as the line Snowflake wrote.
    let no_wh = register("MISSING_WH", &key);
    assert_eq!(no_wh.code, 2, "{}", no_wh.stderr);
    assert!(
        no_wh.error_line().contains("No active warehouse selected"),
        "{}",
        no_wh.stderr
    );
    drop(server);
    let body = key.lines().nth(1).unwrap();
    let everything = format!(
        "{}{}{}{}",
        all_text(dir.path()),
        reg.stderr,
        denied.stderr,
        no_wh.stderr
    );
    assert!(!everything.contains(body), "the private key leaked");
}

#[test]
fn postgres_over_tls_encrypts_with_require_and_verifies_with_verify_full() {
    let pg = Postgres::start_with(true);
    pg.sql("CREATE DATABASE sales");
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let env = [(PW_ENV, pg.password.as_str())];
    let port = pg.port.to_string();
    let register = |mode: &str| {
        connect(
            lake,
            &[
                "register",
                "--name",
                "tls-db",
                "--kind",
                "postgres",
                "--host",
                "localhost",
                "--port",
                &port,
                "--database",
                "sales",
                "--user",
                &pg.user,
                "--sslmode",
                mode,
                "--password-env",
                PW_ENV,
            ],
            &env,
        )
    };
    let encrypted = register("require");
    assert_eq!(encrypted.code, 0, "{}", encrypted.stderr);
    // The session really is TLS: the server says so for this connection.
    let imp = import_query(
        lake,
        "tls",
        "tls-db",
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        "1",
        &env,
    );
    assert_eq!(imp.code, 0, "{}", imp.stderr);
    assert_eq!(dump(imp.output("uri"))["rows"][0]["ssl"], true);
    // The self-signed certificate is not trusted: verify-full refuses (exit 2, not retryable).
    let verified = register("verify-full");
    assert_eq!(verified.code, 2, "{}", verified.stderr);
    assert!(
        verified.error_line().contains("certificate"),
        "{}",
        verified.stderr
    );
}

#[test]
fn sales_db_nightly_runs_the_connect_and_import_query_templates_with_medallion_run() {
    let pg = Postgres::start();
    pg.sql("CREATE DATABASE sales");
    pg_in_sales(
        &pg,
        "CREATE TABLE sales (id int8, sold_at timestamptz, amount numeric(10,2));
         INSERT INTO sales SELECT g, now() - interval '2 days' + g * interval '1 second', g * 1.5
         FROM generate_series(1, 500) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    let env = [(PW_ENV, pg.password.as_str())];
    let reg = register_pg(lake, &pg, "sales-db", &[], &env);
    assert_eq!(reg.code, 0, "{}", reg.stderr);
    let runs = dir.path().join("runs");
    let mut args: Vec<String> = vec![
        "run".into(),
        crate::support::repo()
            .join("workflow-templates/sales-db-nightly.yaml")
            .display()
            .to_string(),
        "--name".into(),
        "night-1".into(),
        "-p".into(),
        format!("lake={lake}"),
    ];
    args.extend(crate::pipelines::run_flags(&runs));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = crate::support::medallion(&argv, &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let s = crate::pipelines::status(&runs, "night-1");
    let node = |t: &str| crate::pipelines::node(&s, t).clone();
    assert_eq!(node("check")["phase"], "Succeeded", "{s:#}");
    assert_eq!(node("check")["outputs"]["ok"], "true", "{s:#}");
    assert_eq!(node("import")["outputs"]["rows"], "500", "{s:#}");
    assert_eq!(node("import")["outputs"]["created"], "true", "{s:#}");
    let d = dump(node("import")["outputs"]["uri"].as_str().unwrap());
    assert_eq!(d["rows"].as_array().unwrap().len(), 500);
    // The password reached the steps through the environment only: no log of the run has it.
    assert!(
        !all_text(&runs).contains(&pg.password),
        "the password leaked into the run"
    );
    assert!(!run.stdout.contains(&pg.password) && !run.stderr.contains(&pg.password));
}
