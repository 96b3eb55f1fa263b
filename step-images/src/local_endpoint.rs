//! The local deploy target's machinery: `medallion-serve` processes in two slots (blue, green)
//! per endpoint, and the files that say which one serves.
//!
//! ```text
//! <state-dir>/<endpoint>/blue.json, green.json   the process in each slot (pid, port, model, version, plan)
//! <state-dir>/<endpoint>/blue.log, green.log     its stdout and stderr (JSON logs)
//! <state-dir>/<endpoint>/active.json             the pointer: which slot serves, at which URL
//! ```
//!
//! Servers are started in their own process group, so they outlive the deploy step that started
//! them (as a Deployment outlives `kubectl apply`), and are stopped with SIGTERM (they finish
//! in-flight requests and flush their capture).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medallion_release::model_release::{Running, Slot, SlotState};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What runs in one slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotProcess {
    pub slot: Slot,
    pub pid: u32,
    pub port: u16,
    pub model: String,
    pub version: u64,
    pub plan_id: String,
    pub started_at: String,
}

impl SlotProcess {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Which slot serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub slot: Slot,
    pub url: String,
    pub model: String,
    pub version: u64,
    pub plan_id: String,
    pub switched_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{what}: {message}")]
    Start { what: String, message: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> LocalError {
    LocalError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// One endpoint's folder of local state.
#[derive(Debug, Clone)]
pub struct EndpointDir {
    pub dir: PathBuf,
    pub endpoint: String,
}

impl EndpointDir {
    pub fn new(state_dir: &Path, endpoint: &str) -> EndpointDir {
        EndpointDir {
            dir: state_dir.join(endpoint),
            endpoint: endpoint.to_string(),
        }
    }

    fn slot_path(&self, slot: Slot) -> PathBuf {
        self.dir.join(format!("{slot}.json"))
    }

    pub fn log_path(&self, slot: Slot) -> PathBuf {
        self.dir.join(format!("{slot}.log"))
    }

    fn active_path(&self) -> PathBuf {
        self.dir.join("active.json")
    }

    pub fn slot(&self, slot: Slot) -> Result<Option<SlotProcess>, LocalError> {
        read_json(&self.slot_path(slot))
    }

    pub fn active(&self) -> Result<Option<Active>, LocalError> {
        read_json(&self.active_path())
    }

    pub fn set_slot(&self, p: &SlotProcess) -> Result<(), LocalError> {
        write_json(&self.slot_path(p.slot), p)
    }

    pub fn clear_slot(&self, slot: Slot) -> Result<(), LocalError> {
        remove(&self.slot_path(slot))
    }

    /// Moves the pointer (atomically: a reader sees the old or the new file, never half).
    pub fn set_active(&self, a: &Active) -> Result<(), LocalError> {
        write_json(&self.active_path(), a)
    }

    pub fn clear_active(&self) -> Result<(), LocalError> {
        remove(&self.active_path())
    }

    /// Stops the process in `slot` (if it still runs) and forgets it.
    pub fn stop_slot(&self, slot: Slot) -> Result<Option<SlotProcess>, LocalError> {
        let Some(p) = self.slot(slot)? else {
            return Ok(None);
        };
        stop(p.pid, Duration::from_secs(10));
        self.clear_slot(slot)?;
        Ok(Some(p))
    }

    /// What runs here, as the servers themselves report it.
    pub async fn running(&self, client: &reqwest::Client) -> Result<Running, LocalError> {
        let active = self.active()?;
        let mut report = Running {
            active: None,
            standby: None,
            reported_by: format!("local state {}", self.dir.display()),
        };
        for slot in [Slot::Blue, Slot::Green] {
            let Some(p) = self.slot(slot)? else { continue };
            let served = if alive(p.pid) {
                served_version(client, &p.url(), &p.model).await
            } else {
                None
            };
            let state = SlotState {
                slot,
                version: served.unwrap_or(p.version),
                ready: served.is_some(),
            };
            if active.as_ref().is_some_and(|a| a.slot == slot) {
                report.reported_by = format!("GET {}/v2/models/{}", p.url(), p.model);
                report.active = Some(state);
            } else {
                report.standby = Some(state);
            }
        }
        Ok(report)
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, LocalError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), LocalError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| io(path, e))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

fn remove(path: &Path) -> Result<(), LocalError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, e)),
    }
}

/// True while process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: "123 (medallion-serve) S ...".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

/// SIGTERM, then SIGKILL if it has not gone within `grace`.
pub fn stop(pid: u32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    let signal = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let start = Instant::now();
    while alive(pid) && start.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        signal("-KILL");
    }
}

/// A port the OS says is free now.
pub fn free_port() -> Result<u16, LocalError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| LocalError::Start {
            what: "a free loopback port".into(),
            message: e.to_string(),
        })
}

/// What a server should be started with.
#[derive(Debug, Clone)]
pub struct ServeCommand {
    pub serve_bin: PathBuf,
    pub lake: String,
    pub model: String,
    pub version: u64,
    pub port: u16,
    pub capture_fraction: f64,
}

/// Starts `medallion-serve` for `slot` in its own process group, logging to the slot's log.
pub fn start(ep: &EndpointDir, slot: Slot, cmd: &ServeCommand) -> Result<Child, LocalError> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(&ep.dir).map_err(|e| io(&ep.dir, e))?;
    let log_path = ep.log_path(slot);
    let log = std::fs::File::create(&log_path).map_err(|e| io(&log_path, e))?;
    let err = log.try_clone().map_err(|e| io(&log_path, e))?;
    Command::new(&cmd.serve_bin)
        .args(["--lake", &cmd.lake, "--model", &cmd.model])
        .args(["--version", &cmd.version.to_string()])
        .args(["--host", "127.0.0.1", "--port", &cmd.port.to_string()])
        .args(["--endpoint", &ep.endpoint])
        .args(["--capture-fraction", &cmd.capture_fraction.to_string()])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| LocalError::Start {
            what: cmd.serve_bin.display().to_string(),
            message: format!(
                "cannot be started ({e}); build it (cargo build --release -p medallion-serve) or pass --serve-bin"
            ),
        })
}

/// The version `url` serves for `model`, when it answers ready.
pub async fn served_version(client: &reqwest::Client, url: &str, model: &str) -> Option<u64> {
    let ready = client
        .get(format!("{url}/v2/health/ready"))
        .send()
        .await
        .ok()?;
    if !ready.status().is_success() {
        return None;
    }
    let meta = client
        .get(format!("{url}/v2/models/{model}"))
        .send()
        .await
        .ok()?;
    if !meta.status().is_success() {
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(&meta.bytes().await.ok()?).ok()?;
    body.pointer("/versions/0")?.as_str()?.parse().ok()
}

/// Waits until the server answers ready, it exits, or `timeout` passes.
pub async fn wait_ready(
    client: &reqwest::Client,
    child: &mut Child,
    url: &str,
    timeout: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the server exited ({status}) before it was ready"));
        }
        if let Ok(r) = client.get(format!("{url}/v2/health/ready")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "the server was not ready within {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The last `n` lines of a log, for an error message.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// An HTTP client for loopback servers (never through a proxy).
pub fn client() -> Result<reqwest::Client, LocalError> {
    medallion_lake::install_tls_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| LocalError::Start {
            what: "an HTTP client".into(),
            message: e.to_string(),
        })
}
