//! Test fixtures: the built binaries, temporary lakes, Azurite, the Python readers.
//!
//! Real services only: Azurite (npm) and pyarrow / the Azure SDK for Python (PyPI), installed by
//! `scripts/test`, which exports where they are. A missing service fails the test with a message
//! saying why; nothing is skipped.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary built in the same profile as this test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run scripts/test (it builds every binary before testing)",
        path.display()
    );
    path
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The result of running a step binary.
pub struct StepRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub outputs: BTreeMap<String, String>,
}

impl StepRun {
    pub fn output(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no output '{name}'; stderr: {}", self.stderr))
    }

    /// The error line the step printed (its last stderr line).
    pub fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| l.contains("error:"))
            .unwrap_or("")
    }
}

fn collect(output: Output, outputs_dir: &Path) -> StepRun {
    let mut outputs = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(outputs_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with('.') {
                outputs.insert(name, std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    StepRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        outputs,
    }
}

/// `medallion-import` with these arguments plus `--lake` and a fresh `--outputs-dir`.
pub fn import_cmd(lake: &str, args: &[&str], env: &[(&str, &str)]) -> (Command, tempfile::TempDir) {
    let outputs = tempfile::tempdir().expect("outputs dir");
    let mut cmd = Command::new(bin("medallion-import"));
    cmd.arg("--lake")
        .arg(lake)
        .arg("--outputs-dir")
        .arg(outputs.path())
        .args(args)
        .env_remove("MEDALLION_LAKE")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd, outputs)
}

pub fn import(lake: &str, args: &[&str], env: &[(&str, &str)]) -> StepRun {
    let (mut cmd, outputs) = import_cmd(lake, args, env);
    let output = cmd.output().expect("run medallion-import");
    collect(output, outputs.path())
}

/// Runs `n` imports with the same arguments at once; asserts each succeeded into version 1 and
/// that exactly one created it. Returns how many reported `created=false`.
pub fn import_concurrently(n: usize, lake: &str, args: &[&str], env: &[(&str, &str)]) -> usize {
    let children: Vec<_> = (0..n)
        .map(|_| {
            let (mut cmd, out) = import_cmd(lake, args, env);
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn medallion-import");
            (child, out)
        })
        .collect();
    let mut created = Vec::new();
    for (child, out) in children {
        let o = child.wait_with_output().expect("wait for medallion-import");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            std::fs::read_to_string(out.path().join("version")).unwrap(),
            "1"
        );
        created.push(std::fs::read_to_string(out.path().join("created")).unwrap());
    }
    assert_eq!(
        created.iter().filter(|c| *c == "true").count(),
        1,
        "{created:?}"
    );
    created.iter().filter(|c| *c == "false").count()
}

/// `medallion-refine` with these arguments plus `--lake` and a fresh `--outputs-dir`.
pub fn refine(lake: &str, args: &[&str]) -> StepRun {
    step("medallion-refine", lake, args, &[])
}

/// A step binary with these arguments plus `--lake` and a fresh `--outputs-dir`.
pub fn step(binary: &str, lake: &str, args: &[&str], env: &[(&str, &str)]) -> StepRun {
    let outputs = tempfile::tempdir().expect("outputs dir");
    let mut cmd = Command::new(bin(binary));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd
        .arg("--lake")
        .arg(lake)
        .arg("--outputs-dir")
        .arg(outputs.path())
        .args(args)
        .env_remove("MEDALLION_LAKE")
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"));
    collect(output, outputs.path())
}

pub fn contract(name: &str) -> String {
    repo()
        .join("examples/contracts")
        .join(name)
        .display()
        .to_string()
}

/// Imports and refines a CSV as the next version of `dataset`.
pub fn silver(lake: &str, dataset: &str, src: &Path, contract_name: &str) -> String {
    let imported = import(
        lake,
        &["--dataset", dataset, "--source", src.to_str().unwrap()],
        &[],
    );
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let refined = refine(
        lake,
        &[
            "--dataset",
            dataset,
            "--version",
            imported.output("version"),
            "--contract",
            &contract(contract_name),
        ],
    );
    assert_eq!(refined.code, 0, "{}", refined.stderr);
    refined.output("version").to_string()
}

/// Multiplies column `index` of a generated CSV (no quoted fields) by `factor`, in place.
pub fn scale_column(path: &Path, index: usize, factor: f64) {
    let text = std::fs::read_to_string(path).unwrap();
    let scaled: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                return l.to_string();
            }
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            f[index] = format!("{:.0}", f[index].parse::<f64>().unwrap() * factor);
            f.join(",")
        })
        .collect();
    std::fs::write(path, scaled.join("\n") + "\n").unwrap();
}

/// Runs the `medallion` CLI.
pub fn medallion(args: &[&str], env: &[(&str, &str)]) -> StepRun {
    let mut cmd = Command::new(bin("medallion"));
    cmd.args(args).env_remove("MEDALLION_LAKE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run medallion");
    collect(output, Path::new("/nonexistent"))
}

/// Writes a generated file (`houses` or `sales`) with `rows` rows.
pub fn generate(kind: &str, rows: u64, seed: u64, out: &Path) {
    let run = medallion(
        &[
            "generate",
            kind,
            "--rows",
            &rows.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "generate failed: {}", run.stderr);
}

/// The Python with pyarrow and azure-storage-blob that scripts/test installs.
pub fn python() -> PathBuf {
    let p = std::env::var("MEDALLION_TEST_PYTHON")
        .unwrap_or_else(|_| repo().join(".tools/venv/bin/python").display().to_string());
    let path = PathBuf::from(p);
    assert!(
        path.exists(),
        "no test Python at {}: run scripts/test, which creates it with pyarrow and azure-storage-blob",
        path.display()
    );
    path
}

/// Runs a helper script under tests/py; panics with its stderr when it fails.
pub fn py(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/py").join(script))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A real Azurite blob service on a free loopback port, stopped on drop.
pub struct Azurite {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Azurite {
    pub fn start() -> Azurite {
        let dir = tempfile::tempdir().expect("azurite dir");
        let port = free_port();
        let mut a = Azurite {
            child: None,
            port,
            dir,
        };
        a.restart();
        a
    }

    /// Starts (again) on the same port and data folder.
    pub fn restart(&mut self) {
        let bin = std::env::var("MEDALLION_TEST_AZURITE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo().join(".tools/node_modules/.bin/azurite-blob"));
        assert!(
            bin.exists(),
            "Azurite is not installed at {}: run scripts/test, which installs it with npm",
            bin.display()
        );
        let child = Command::new(&bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &self.port.to_string(),
                "--location",
            ])
            .arg(self.dir.path())
            .args([
                "--silent",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Azurite ({}): {e}", bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Azurite did not listen on port {} within 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the service, as an outage would. SIGTERM lets Azurite save its metadata so a
    /// restart sees the containers again; SIGKILL follows if it lingers.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_gently(c, "-TERM");
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for steps talking to this Azurite.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
            ("AZURITE_BLOB_STORAGE_URL", self.endpoint()),
            ("MEDALLION_STORE_MAX_RETRIES", "2".to_string()),
            ("MEDALLION_STORE_RETRY_TIMEOUT_SECS", "10".to_string()),
            ("MEDALLION_STORE_TIMEOUT_SECS", "10".to_string()),
        ]
    }

    pub fn blob(&self, args: &[&str]) -> String {
        let endpoint = self.endpoint();
        let mut all = vec![endpoint.as_str()];
        all.extend_from_slice(args);
        py("azblob.py", &all)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Borrows `(String, String)` pairs as `(&str, &str)`.
pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Every manifest under a local lake.
pub fn manifests(lake: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![lake.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n == "_manifest.json") {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// A real `medallion-plugin` on a free loopback port, killed on drop.
pub struct PluginServer {
    child: Child,
    pub port: u16,
    pub token_file: PathBuf,
    pub stderr_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl PluginServer {
    /// Starts the plugin for `lake` with token `token` and extra flags; waits until it listens.
    pub fn start(lake: &str, token: &str, extra: &[&str]) -> PluginServer {
        let dir = tempfile::tempdir().expect("plugin dir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).expect("write token");
        let stderr_file = dir.path().join("stderr.log");
        let port = free_port();
        let child = Command::new(bin("medallion-plugin"))
            .args(["--port", &port.to_string(), "--lake", lake])
            .arg("--token-file")
            .arg(&token_file)
            .args(extra)
            .env_remove("MEDALLION_LAKE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_file).expect("stderr file"))
            .spawn()
            .expect("start medallion-plugin");
        let server = PluginServer {
            child,
            port,
            token_file,
            stderr_file,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "medallion-plugin did not listen within 10 s: {}",
                server.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// One HTTP/1.1 request; returns the status and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        http_request(self.port, method, path, headers, body)
    }

    /// `POST /api/v1/template.execute` as the agent sends it, with `token`.
    pub fn execute(&self, token: Option<&str>, body: &serde_json::Value) -> (u16, String) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        self.request(
            "POST",
            "/api/v1/template.execute",
            &headers,
            body.to_string().as_bytes(),
        )
    }
}

impl Drop for PluginServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One of Argo's own JSON schemas (`workflows-schema.json`, `events-schema.json`), vendored in
/// `schemas/argo/`; `MEDALLION_ARGO_SCHEMAS` names another folder (e.g. newer Argo versions). A
/// missing schema fails the test with where it looked: schema checks are never skipped.
pub fn argo_schema(name: &str) -> PathBuf {
    let mut tried = Vec::new();
    if let Ok(dir) = std::env::var("MEDALLION_ARGO_SCHEMAS") {
        tried.push(PathBuf::from(dir).join(name));
    }
    tried.push(repo().join("schemas/argo").join(name));
    tried
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "Argo's {name} not found (looked at {}); set MEDALLION_ARGO_SCHEMAS to the folder holding it",
                tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        })
}

/// One HTTP/1.1 request to a loopback port; returns the status and the body.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    // The server may answer (413, 403) before reading a large body and close: ignore that.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A real `medallion-serve` on a free loopback port, killed on drop.
pub struct ModelServer {
    child: Child,
    pub port: u16,
    stderr_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl ModelServer {
    /// Starts the server for `model` in `lake` with extra flags; waits until it is ready.
    pub fn start(lake: &str, model: &str, extra: &[&str]) -> ModelServer {
        let dir = tempfile::tempdir().expect("server dir");
        let stderr_file = dir.path().join("stderr.log");
        let port = free_port();
        let child = Command::new(bin("medallion-serve"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--lake",
                lake,
                "--model",
                model,
            ])
            .args(extra)
            .env_remove("MEDALLION_LAKE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_file).expect("stderr file"))
            .spawn()
            .expect("start medallion-serve");
        let mut server = ModelServer {
            child,
            port,
            stderr_file,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("medallion-serve exited with {status}: {}", server.logs());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && server.request("GET", "/v2/health/ready", &[], b"").0 == 200
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "medallion-serve was not ready within 10 s: {}",
                server.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        http_request(self.port, method, path, headers, body)
    }

    /// Sends SIGTERM (as Kubernetes does) and returns the exit code.
    pub fn terminate(&mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "medallion-serve did not stop within 20 s of SIGTERM: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real PostgreSQL (initdb + postgres from PATH or /usr/local/bin) on a free loopback port
/// with password (SCRAM) authentication, stopped on drop. As root, it runs as `nobody`
/// (PostgreSQL refuses to run as root).
pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Holds the data directory until the server is stopped.
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// With `tls`, the server also accepts TLS with a self-signed certificate for `localhost`.
    pub fn start_with(tls: bool) -> Postgres {
        let find = |name: &str| -> PathBuf {
            let candidates = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default();
            candidates
                .into_iter()
                .chain([PathBuf::from("/usr/local/bin"), PathBuf::from("/usr/lib/postgresql/15/bin")])
                .map(|d| d.join(name))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("PostgreSQL's {name} is not installed (looked in PATH and /usr/local/bin); install the postgresql package"))
        };
        let (initdb, postgres) = (find("initdb"), find("postgres"));
        let dir = tempfile::tempdir().expect("postgres dir");
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if as_root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
        }
        let password = format!(
            "pw-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(7)
        );
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password).unwrap();
        let command = |program: &Path| {
            if as_root {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        let data = dir.path().join("data");
        let out = command(&initdb)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "medallion",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb ({}): {e}", initdb.display()));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut tls_flags = Vec::new();
        if tls {
            let (crt, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            let out = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=localhost",
                    "-keyout",
                ])
                .arg(&key)
                .arg("-out")
                .arg(&crt)
                .output()
                .expect("openssl (Debian openssl) makes the test certificate");
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            if as_root {
                std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
            }
            tls_flags = vec![
                "-c".to_string(),
                "ssl=on".to_string(),
                "-c".to_string(),
                format!("ssl_cert_file={}", crt.display()),
                "-c".to_string(),
                format!("ssl_key_file={}", key.display()),
            ];
        }
        let port = free_port();
        let child = command(&postgres)
            .arg("-D")
            .arg(&data)
            .args(&tls_flags)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "log_min_messages=warning",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start postgres ({}): {e}", postgres.display()));
        let pg = Postgres {
            child: Some(child),
            port,
            user: "medallion".to_string(),
            password,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while pg.try_sql("SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections on port {} within 30 s",
                port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    fn try_sql(&self, sql: &str) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let config = format!(
            "host=127.0.0.1 port={} user={} password={} dbname=postgres",
            self.port, self.user, self.password
        );
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            let task = tokio::spawn(connection);
            let result = client.batch_execute(sql).await.map_err(|e| e.to_string());
            drop(client);
            let _ = task.await;
            result
        })
    }

    /// Runs SQL statements (setup), panicking with the server's message on failure.
    pub fn sql(&self, sql: &str) {
        if let Err(e) = self.try_sql(sql) {
            panic!("SQL failed: {e}\n{sql}");
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            // SIGTERM is "smart shutdown"; SIGINT ("fast") does not wait for clients.
            stop_gently(c, "-INT");
        }
    }
}

/// Sends `signal` to a service, waits up to 10 s for it to exit, then kills it.
/// A helper process killed (and reaped) when dropped, also when the test panics.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops a process started with `process_group(0)` and everything it forked: SIGTERM to the
/// group, up to 10 s to exit, then SIGKILL to the group.
pub fn stop_group(mut child: Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.kill();
    let _ = child.wait();
}

fn stop_gently(mut child: Child, signal: &str) {
    let _ = Command::new("kill")
        .arg(signal)
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
