//! The bad-input corpus (tests/corpus/expected.tsv): every file gets its exit code and message,
//! and nothing already in the lake changes.

use std::path::Path;

use crate::support::{import, manifests, repo};

struct Case {
    file: String,
    args: Vec<String>,
    exit: i32,
    rows: Option<u64>,
    message: Option<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(repo().join("tests/corpus/expected.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "bad corpus line: {l}");
            Case {
                file: f[0].to_string(),
                args: if f[1] == "-" {
                    vec![]
                } else {
                    f[1].split(' ').map(str::to_string).collect()
                },
                exit: f[2].parse().unwrap(),
                rows: f[3].parse().ok(),
                message: (f[4] != "-").then(|| f[4].to_string()),
            }
        })
        .collect()
}

/// Files and their bytes under a folder, to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_file_gets_its_exit_code_and_message() {
    let corpus = repo().join("tests/corpus");
    let mut failures = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let lake = tempfile::tempdir().unwrap();
        let lake_s = lake.path().to_str().unwrap();
        // Something good is already stored; a bad input must not touch it.
        let seed_file = lake.path().join("seed.csv");
        std::fs::write(&seed_file, "x,y\nseed,1\n").unwrap();
        let seed = import(
            lake_s,
            &["--dataset", "d", "--source", seed_file.to_str().unwrap()],
            &[],
        );
        assert_eq!(seed.code, 0, "{}", seed.stderr);
        let before = snapshot(lake.path());

        let source = corpus.join(&case.file);
        let mut args = vec!["--dataset", "d", "--source", source.to_str().unwrap()];
        args.extend(case.args.iter().map(String::as_str));
        let run = import(lake_s, &args, &[]);
        let what = format!("case {} ({} {:?})", i + 1, case.file, case.args);
        if run.code != case.exit {
            failures.push(format!(
                "{what}: exit {} != {}; stderr: {}",
                run.code,
                case.exit,
                run.error_line()
            ));
            continue;
        }
        if let Some(rows) = case.rows {
            if run.output("rows") != rows.to_string() {
                failures.push(format!("{what}: rows {} != {rows}", run.output("rows")));
            }
            if run.output("version") != "2" || run.output("created") != "true" {
                failures.push(format!("{what}: expected a new v2, got {:?}", run.outputs));
            }
        }
        if let Some(msg) = &case.message {
            let line = run.error_line();
            if !line.contains(msg.as_str()) {
                failures.push(format!("{what}: message {line:?} lacks {msg:?}"));
            }
            if line.lines().count() != 1 || !line.starts_with("medallion-import: error: ") {
                failures.push(format!("{what}: error is not one prefixed line: {line:?}"));
            }
            if snapshot(lake.path()) != before {
                failures.push(format!("{what}: the lake changed after a failed import"));
            }
            if !run.outputs.is_empty() {
                failures.push(format!(
                    "{what}: a failed import wrote outputs {:?}",
                    run.outputs
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "corpus failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn generated_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let lake_s = lake.path().to_str().unwrap();

    // A truncated gzip stream.
    let mut gz = flate2_free_gzip(&"id,name\n1,abc\n".repeat(20_000));
    gz.truncate(gz.len() / 2);
    let truncated = dir.path().join("truncated.csv.gz");
    std::fs::write(&truncated, gz).unwrap();
    // An unclosed quote that swallows the rest of a large file.
    let huge = dir.path().join("huge_field.csv");
    std::fs::write(&huge, format!("id,name\n1,\"{}\n", "x".repeat(3 << 20))).unwrap();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--source".into(), truncated.display().to_string()],
            "gzip stream",
        ),
        (
            vec![
                "--source".into(),
                huge.display().to_string(),
                "--max-record-bytes".into(),
                "1048576".into(),
            ],
            "unclosed quote",
        ),
        (
            vec!["--source".into(), "az://landing/../secret/x.csv".into()],
            "must stay inside its container",
        ),
        (
            vec![
                "--source".into(),
                "https://acct.blob.core.windows.net/landing/a.csv?sv=1&sig=SECRETSIG".into(),
            ],
            "may not carry a query string",
        ),
    ];
    for (args, msg) in cases {
        let mut all = vec!["--dataset", "d"];
        all.extend(args.iter().map(String::as_str));
        let run = import(lake_s, &all, &[]);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.error_line().contains(msg),
            "{args:?}: {}",
            run.error_line()
        );
        assert!(
            !run.stderr.contains("SECRETSIG"),
            "a signature leaked: {}",
            run.stderr
        );
    }
    for name in ["../etc", "a/b", "Houses"] {
        let run = import(lake_s, &["--dataset", name, "--source", "x.csv"], &[]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.error_line().contains("dataset name"),
            "{}",
            run.error_line()
        );
    }
    assert!(manifests(lake.path()).is_empty());
}

/// A gzip file written by the system's gzip, so the test does not need a compression crate.
fn flate2_free_gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip is on every Debian machine");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().stdout
}
