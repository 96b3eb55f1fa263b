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
    let imp = import(
        lake,
        &[
            "--dataset",
            "sales",
            "--connection",
            "sales-db",
            "--query",
            query,
            "--snapshot",
            "2026-11-23",
        ],
        &env,
    );
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
    let again = import(
        lake,
        &[
            "--dataset",
            "sales",
            "--connection",
            "sales-db",
            "--query",
            query,
            "--snapshot",
            "2026-11-23",
        ],
        &env,
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.output("created"), "false");
    assert_eq!(again.output("version"), "1");
    let next = import(
        lake,
        &[
            "--dataset",
            "sales",
            "--connection",
            "sales-db",
            "--query",
            query,
            "--snapshot",
            "2026-11-24",
        ],
        &env,
    );
    assert_eq!(next.output("version"), "2", "{}", next.stderr);

    // Bad inputs: each a clear line and its exit code; nothing stored changes.
    let wrong_pw = import(
        lake,
        &[
            "--dataset",
            "sales",
            "--connection",
            "sales-db",
            "--query",
            query,
            "--snapshot",
            "x",
        ],
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
    let no_env = import(
        lake,
        &[
            "--dataset",
            "sales",
            "--connection",
            "sales-db",
            "--query",
            query,
            "--snapshot",
            "x",
        ],
        &[],
    );
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
    let interval = import(
        lake,
        &[
            "--dataset",
            "odd",
            "--connection",
            "sales-db",
            "--query",
            "SELECT * FROM odd",
            "--snapshot",
            "x",
        ],
        &env,
    );
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
    let write = import(
        lake,
        &[
            "--dataset",
            "odd",
            "--connection",
            "sales-db",
            "--query",
            "DELETE FROM sales RETURNING id",
            "--snapshot",
            "y",
        ],
        &env,
    );
    assert_eq!(write.code, 2, "a write is refused: {}", write.stderr);
    let unknown = import(
        lake,
        &[
            "--dataset",
            "odd",
            "--connection",
            "nope",
            "--query",
            "SELECT 1",
            "--snapshot",
            "y",
        ],
        &env,
    );
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
    let count = import(
        lake,
        &[
            "--dataset",
            "count",
            "--connection",
            "sales-db",
            "--query",
            "SELECT count(*) AS n FROM sales",
            "--snapshot",
            "z",
        ],
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
