//! How the runner executes leaf nodes: containers as local processes, suspend gates, plugin
//! templates through a real `medallion-plugin`; and the retry, memoize and mutex settings.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medallion_argo::parse_go_duration;
use serde_json::{Value, json};

use super::{Engine, Leaf, Outcome, Phase, RunError, items, template_error, value_text};

pub struct ContainerResult {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub artifacts: BTreeMap<String, PathBuf>,
}

/// Mount path → local folder for a container's volumeMounts.
fn mounts(
    engine: &Engine,
    template: &Value,
    node_dir: &Path,
) -> Result<Vec<(String, PathBuf)>, RunError> {
    let tname = super::name_of(template);
    let volumes: Vec<&Value> = items(template, "/volumes")
        .chain(engine.spec_volumes.iter())
        .collect();
    let mut out = Vec::new();
    for m in items(template, &format!("/{}/volumeMounts", body_of(template))) {
        let name = m.get("name").and_then(Value::as_str).unwrap_or("");
        let mount = m.get("mountPath").and_then(Value::as_str).unwrap_or("");
        let volume = volumes
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| {
                template_error(format!(
                    "template {tname}: volumeMount {name:?} names no volume"
                ))
            })?;
        let local = if volume.get("emptyDir").is_some() {
            let dir = node_dir.join(format!("vol-{name}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| template_error(format!("{}: {e}", dir.display())))?;
            dir
        } else if let Some(cm) = volume.pointer("/configMap/name").and_then(Value::as_str) {
            engine.options.config_maps.get(cm).cloned().ok_or_else(|| {
                template_error(format!(
                    "template {tname}: ConfigMap {cm:?} has no local folder: pass --config-map {cm}=<folder>"
                ))
            })?
        } else {
            return Err(template_error(format!(
                "template {tname}: volume {name:?} is neither emptyDir nor configMap; medallion run implements only those"
            )));
        };
        out.push((mount.trim_end_matches('/').to_string(), local));
    }
    // Longest mount first, so /tmp/outputs wins over /tmp.
    out.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    Ok(out)
}

/// `container` or `script`: the part of a template that says what runs.
fn body_of(template: &Value) -> &'static str {
    if template.get("script").is_some() {
        "script"
    } else {
        "container"
    }
}

/// Every mount path in a script's text rewritten into its local folder, in one pass (so a local
/// folder that itself lies under /tmp is not rewritten again). A mount matches where a path
/// starts: at the text's start or after whitespace, a quote, `=`, `(` or `:`, and it must end
/// the path or be followed by `/`.
pub(super) fn map_paths_in_text(text: &str, mounts: &[(String, PathBuf)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let at_start = i == 0
            || matches!(
                bytes[i - 1],
                b' ' | b'\t' | b'\n' | b'"' | b'\'' | b'=' | b'(' | b':'
            );
        if at_start && bytes[i] == b'/' {
            let rest = &text[i..];
            // Mounts are sorted longest first.
            if let Some((mount, local)) = mounts.iter().find(|(m, _)| {
                rest.starts_with(m.as_str())
                    && rest[m.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| c == '/' || c.is_whitespace() || "\"';)*".contains(c))
            }) {
                out.push_str(&local.display().to_string());
                i += mount.len();
                continue;
            }
        }
        let c = rest_char(text, i);
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn rest_char(text: &str, i: usize) -> char {
    text[i..].chars().next().unwrap_or(' ')
}

/// A container path rewritten into the folder of its mount (unchanged when under no mount).
pub(super) fn map_path(text: &str, mounts: &[(String, PathBuf)]) -> String {
    for (mount, local) in mounts {
        if text == mount {
            return local.display().to_string();
        }
        if let Some(rest) = text.strip_prefix(mount.as_str())
            && rest.starts_with('/')
        {
            return format!("{}{rest}", local.display());
        }
    }
    text.to_string()
}

/// Runs a container or script node as a local process. `attempt_deadline` is the retry
/// budget's deadline for this attempt (maxDuration); the template's activeDeadlineSeconds and
/// the workflow's deadline bound it too, as the pod's deadlines do on a cluster.
pub fn run_container(
    engine: &Engine,
    template: &Value,
    raw: &Leaf<'_>,
    node_dir: &Path,
    attempt_deadline: Option<Instant>,
) -> Result<ContainerResult, RunError> {
    let tname = super::name_of(template);
    let fail = |m: String| template_error(format!("template {tname}: {m}"));
    let body = body_of(template);
    let container = template.get(body).cloned().unwrap_or(Value::Null);
    const CONTAINER_FIELDS: &[&str] = &[
        "image",
        "command",
        "args",
        "env",
        "volumeMounts",
        "name",
        "imagePullPolicy",
    ];
    const SCRIPT_FIELDS: &[&str] = &["command", "source"];
    const CONTAINER_POD_ONLY: &[&str] = &[
        "resources",
        "securityContext",
        "ports",
        "readinessProbe",
        "livenessProbe",
        "startupProbe",
    ];
    if let Some(map) = container.as_object() {
        for k in map.keys() {
            if CONTAINER_POD_ONLY.contains(&k.as_str()) {
                if let Ok(mut n) = engine.not_applied.lock() {
                    n.insert(format!("{body}.{k}"));
                }
            } else {
                let known = CONTAINER_FIELDS.contains(&k.as_str())
                    || (body == "script" && SCRIPT_FIELDS.contains(&k.as_str()));
                if known {
                    continue;
                }
                return Err(fail(format!(
                    "{body}.{k} is not implemented by medallion run"
                )));
            }
        }
    }
    let image = container.get("image").and_then(Value::as_str).unwrap_or("");
    std::fs::create_dir_all(node_dir).map_err(|e| fail(format!("{}: {e}", node_dir.display())))?;
    let mounts = mounts(engine, template, node_dir)?;
    let mut command = if body == "script" {
        // An upstream tool's image (terraform) runs its script with the local tool on PATH.
        let tool = upstream_tool(image).map_err(fail)?;
        let shell: Vec<&str> = items(raw.template, "/script/command")
            .filter_map(Value::as_str)
            .collect();
        if shell != ["sh"] && shell != ["/bin/sh"] {
            return Err(fail(format!(
                "script.command {shell:?}: medallion run runs scripts with sh only"
            )));
        }
        let source = raw
            .template
            .pointer("/script/source")
            .map(value_text)
            .unwrap_or_default();
        let source = raw
            .resolve(engine, &map_paths_in_text(&source, &mounts), &[])
            .map_err(|m| fail(format!("script.source: {m}")))?;
        let script = node_dir.join("script.sh");
        std::fs::write(&script, source).map_err(|e| fail(format!("{}: {e}", script.display())))?;
        tracing::debug!(tool, "script template runs with the local tool");
        let mut c = Command::new("sh");
        c.arg(&script);
        c
    } else {
        let binary = local_binary(&engine.options.bin_dir, image).map_err(fail)?;
        // The command names the image's one binary (/medallion-<step>), the entrypoint the
        // image would run; anything else is not what this image holds.
        let command: Vec<&str> = items(raw.template, "/container/command")
            .filter_map(Value::as_str)
            .collect();
        let expected = format!("/{}", super::image_name(image));
        if !command.is_empty() && command != [expected.as_str()] {
            return Err(fail(format!(
                "container.command {command:?}: the image {image:?} runs {expected}; medallion run runs that binary only"
            )));
        }
        let args: Vec<String> = items(raw.template, "/container/args")
            .map(|a| raw.resolve(engine, &value_text(a), &mounts))
            .collect::<Result<_, _>>()
            .map_err(|m| fail(format!("args: {m}")))?;
        let mut c = Command::new(binary);
        c.args(&args);
        c
    };
    let binary = PathBuf::from(command.get_program());
    // Input artifacts: the task's files copied to their paths (mapped into the node's mounts).
    for a in items(template, "/inputs/artifacts") {
        let name = a.get("name").and_then(Value::as_str).unwrap_or("");
        let path = a.get("path").and_then(Value::as_str).unwrap_or("");
        let from = raw
            .artifacts
            .get(name)
            .ok_or_else(|| fail(format!("input artifact {name} is not given")))?;
        let local = PathBuf::from(map_path(path, &mounts));
        if local.as_os_str() == path {
            return Err(fail(format!(
                "input artifact {name}: {path} is under no volume mount; mount an emptyDir above it"
            )));
        }
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
        }
        std::fs::copy(from, &local).map_err(|e| {
            fail(format!(
                "input artifact {name}: copy {} to {}: {e}",
                from.display(),
                local.display()
            ))
        })?;
    }
    command.stdin(Stdio::null());
    for (name, value) in &engine.options.step_env {
        command.env(name, value);
    }
    for e in items(raw.template, &format!("/{body}/env")) {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("");
        match e.get("value") {
            Some(v) => {
                let value = raw
                    .resolve(engine, &value_text(v), &mounts)
                    .map_err(|m| fail(format!("env {name}: {m}")))?;
                command.env(name, value);
            }
            None if e.pointer("/valueFrom/secretKeyRef").is_some() => {
                // Locally the Secret is this machine's environment: the variable (named by the
                // connection's record) passes through to the step as it is.
                if let Ok(mut n) = engine.not_applied.lock() {
                    n.insert("env.valueFrom.secretKeyRef (taken from this environment)".into());
                }
            }
            None => {
                return Err(fail(format!(
                    "env {name}: only literal values and secretKeyRef are implemented by medallion run"
                )));
            }
        }
    }
    // The pods' /tmp is an emptyDir; locally the node's folder plays that part.
    if let Some((_, tmp)) = mounts.iter().find(|(m, _)| m == "/tmp") {
        command.env("TMPDIR", tmp);
    }
    let stdout =
        std::fs::File::create(node_dir.join("stdout.log")).map_err(|e| fail(e.to_string()))?;
    let stderr =
        std::fs::File::create(node_dir.join("stderr.log")).map_err(|e| fail(e.to_string()))?;
    command.stdout(stdout).stderr(stderr);
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", binary.display())))?;
    let own = template
        .get("activeDeadlineSeconds")
        .and_then(|v| value_text(v).parse::<u64>().ok())
        .map(|s| Instant::now() + Duration::from_secs(s));
    let outer = [attempt_deadline, engine.deadline]
        .into_iter()
        .flatten()
        .min();
    let deadline = [own, outer].into_iter().flatten().min();
    let (status, timed_out) = wait(&mut child, deadline)
        .map_err(|e| fail(format!("waiting for {}: {e}", binary.display())))?;
    let exit_code = status;
    if timed_out || exit_code != Some(0) {
        let log = std::fs::read_to_string(node_dir.join("stderr.log")).unwrap_or_default();
        let last = last_error_line(&log);
        let message = if timed_out && deadline == own {
            format!(
                "killed after activeDeadlineSeconds ({}s)",
                template
                    .get("activeDeadlineSeconds")
                    .map(value_text)
                    .unwrap_or_default()
            )
        } else if timed_out {
            // The executor's own deadline (ARGO_DEADLINE: maxDuration or the workflow's).
            "Step exceeded its deadline".to_string()
        } else {
            format!(
                "{} exited with {}{}",
                super::image_name(image),
                exit_code.map_or("a signal".to_string(), |c| c.to_string()),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            )
        };
        return Ok(ContainerResult {
            outcome: Outcome {
                phase: Phase::Failed,
                message,
                outputs: BTreeMap::new(),
                rejected: false,
                artifacts: BTreeMap::new(),
            },
            exit_code,
            artifacts: BTreeMap::new(),
        });
    }
    let mut outputs = BTreeMap::new();
    for p in items(template, "/outputs/parameters") {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(path) = p.pointer("/valueFrom/path").and_then(Value::as_str) else {
            return Err(fail(format!(
                "output {name}: only valueFrom.path is implemented for containers"
            )));
        };
        let local = raw
            .resolve(engine, path, &mounts)
            .map_err(|m| fail(format!("output {name}: {m}")))?;
        let value = match std::fs::read_to_string(&local) {
            Ok(v) => v,
            Err(e) => match p.pointer("/valueFrom/default") {
                Some(d) => value_text(d),
                None => {
                    return Ok(ContainerResult {
                        outcome: Outcome {
                            phase: Phase::Failed,
                            message: format!(
                                "output parameter {name}: {path} was not written ({e})"
                            ),
                            outputs: BTreeMap::new(),
                            rejected: false,
                            artifacts: BTreeMap::new(),
                        },
                        exit_code,
                        artifacts: BTreeMap::new(),
                    });
                }
            },
        };
        outputs.insert(name.to_string(), value);
    }
    let mut artifacts = BTreeMap::new();
    for a in items(template, "/outputs/artifacts") {
        let name = a.get("name").and_then(Value::as_str).unwrap_or("");
        let path = a.get("path").and_then(Value::as_str).unwrap_or("");
        let local = PathBuf::from(
            raw.resolve(engine, path, &mounts)
                .map_err(|m| fail(format!("artifact {name}: {m}")))?,
        );
        let optional = a.get("optional").and_then(Value::as_bool).unwrap_or(false);
        if !local.is_file() {
            if optional {
                continue;
            }
            return Err(fail(format!(
                "output artifact {name}: {path} was not written"
            )));
        }
        let kept = node_dir
            .join("artifacts")
            .join(local.file_name().unwrap_or_default());
        std::fs::create_dir_all(node_dir.join("artifacts")).map_err(|e| fail(e.to_string()))?;
        std::fs::copy(&local, &kept).map_err(|e| fail(format!("artifact {name}: {e}")))?;
        artifacts.insert(name.to_string(), kept);
    }
    Ok(ContainerResult {
        outcome: Outcome {
            phase: Phase::Succeeded,
            message: String::new(),
            outputs,
            rejected: false,
            artifacts: BTreeMap::new(),
        },
        exit_code,
        artifacts,
    })
}

/// The most useful line of a step's JSON log: the last error message, or the last line.
fn last_error_line(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    for l in lines.iter().rev() {
        if let Ok(v) = serde_json::from_str::<Value>(l)
            && v.get("level")
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case("error"))
            && let Some(m) = v.pointer("/fields/message").and_then(Value::as_str)
        {
            return m.to_string();
        }
    }
    lines
        .last()
        .map(|l| l.chars().take(400).collect())
        .unwrap_or_default()
}

/// Waits for the process; its exit code, or 128 + the signal that killed it (as a container
/// runtime reports it: 137 for SIGKILL), and whether the deadline killed it.
fn wait(child: &mut Child, deadline: Option<Instant>) -> std::io::Result<(Option<i32>, bool)> {
    use std::os::unix::process::ExitStatusExt;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status.code().or(status.signal().map(|s| 128 + s)), false));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            child.kill()?;
            let status = child.wait()?;
            return Ok((status.code().or(status.signal().map(|s| 128 + s)), true));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A real `medallion-plugin` on a free loopback port, serving the run's lake.
pub struct PluginServer {
    child: Child,
    port: u16,
    token: String,
}

impl PluginServer {
    fn start(bin_dir: &Path, lake: &str, dir: &Path) -> Result<PluginServer, String> {
        let binary = bin_dir.join("medallion-plugin");
        if !binary.is_file() {
            return Err(format!(
                "plugin templates need {}: build it with `cargo build --release --workspace --bins`",
                binary.display()
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let token = uuid::Uuid::new_v4().simple().to_string();
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let token_file = dir.join("plugin-token");
        std::fs::write(&token_file, &token).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("plugin.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .args([
                "--port",
                &port.to_string(),
                "--lake",
                lake,
                "--requeue",
                "1s",
            ])
            .arg("--token-file")
            .arg(&token_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut server = PluginServer { child, port, token };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10)
                || server.child.try_wait().ok().flatten().is_some()
            {
                let log = std::fs::read_to_string(dir.join("plugin.log")).unwrap_or_default();
                server.stop();
                return Err(format!(
                    "medallion-plugin did not start: {}",
                    last_error_line(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn execute(&self, body: &Value) -> Result<Value, String> {
        let payload = body.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        let head = format!(
            "POST /api/v1/template.execute HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
            self.token,
            payload.len()
        );
        stream
            .write_all(head.as_bytes())
            .map_err(|e| e.to_string())?;
        stream
            .write_all(payload.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or("the plugin's answer is not HTTP")?;
        let status = head.split(' ').nth(1).unwrap_or("");
        if status != "200" {
            return Err(format!("the plugin answered {status}: {body}"));
        }
        serde_json::from_str(body).map_err(|e| format!("the plugin's answer is not JSON ({e})"))
    }
}

/// A plugin node, through the plugin server (started on first use), polled while it reports
/// Running with a requeue.
/// The ConfigMap and key the executor plugin's sidecar reads its lake from
/// (executor-plugin/plugin.yaml, MEDALLION_LAKE).
pub const PLUGIN_LAKE_CONFIG: (&str, &str) = ("medallion-settings", "lake");

/// The lake the executor plugin serves: as configured for the plugin (`--plugin-lake`, or the
/// ConfigMap its sidecar reads, given with `--config-map medallion-settings=<dir>`), never the
/// run's own `lake` parameter: on a cluster the plugin serves its configured lake whatever a
/// workflow passes (workflow/controller/agent.go v4.1.2 lines 340-359).
fn plugin_lake(engine: &Engine) -> Result<String, String> {
    if let Some(lake) = &engine.options.plugin_lake {
        return Ok(lake.clone());
    }
    let (map, key) = PLUGIN_LAKE_CONFIG;
    let Some(dir) = engine.options.config_maps.get(map) else {
        return Err(format!(
            "the executor plugin serves the lake configured for it (ConfigMap {map}, key {key}), not this run's: pass --plugin-lake <lake> or --config-map {map}=<dir holding a file {key}>"
        ));
    };
    let file = dir.join(key);
    std::fs::read_to_string(&file)
        .map(|l| l.trim().to_string())
        .map_err(|e| format!("the executor plugin's lake: {}: {e}", file.display()))
}

pub fn plugin(engine: &Engine, template: &Value, path: &str) -> Result<Outcome, RunError> {
    let task = path.rsplit('.').next().unwrap_or(path).to_string();
    let fail = |m: String| template_error(format!("plugin task {task}: {m}"));
    let mut guard = engine
        .plugin
        .lock()
        .map_err(|_| fail("plugin lock poisoned".into()))?;
    if guard.is_none() {
        let lake = plugin_lake(engine).map_err(&fail)?;
        *guard = Some(
            PluginServer::start(&engine.options.bin_dir, &lake, &engine.run_dir).map_err(&fail)?,
        );
    }
    let Some(server) = guard.as_ref() else {
        return Err(fail("plugin server missing".into()));
    };
    let inputs: Vec<Value> = template
        .pointer("/inputs/parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let body = json!({
        "workflow": {"metadata": {"name": engine.workflow_name, "namespace": "local", "uid": engine.workflow_uid}},
        "template": {"name": template.get("name").cloned().unwrap_or(Value::Null),
                     "inputs": {"parameters": inputs},
                     "plugin": template.get("plugin").cloned().unwrap_or(Value::Null)}
    });
    loop {
        let reply = server.execute(&body).map_err(&fail)?;
        let phase = reply
            .pointer("/node/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = reply
            .pointer("/node/message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let outputs: BTreeMap<String, String> = items(&reply, "/node/outputs/parameters")
            .filter_map(|p| {
                Some((
                    p.get("name")?.as_str()?.to_string(),
                    p.get("value").map(value_text)?,
                ))
            })
            .collect();
        match phase {
            "Succeeded" => {
                return Ok(Outcome {
                    phase: Phase::Succeeded,
                    message,
                    outputs,
                    rejected: false,
                    artifacts: BTreeMap::new(),
                });
            }
            "Failed" | "Error" => {
                return Ok(Outcome {
                    phase: Phase::Failed,
                    message,
                    outputs,
                    rejected: false,
                    artifacts: BTreeMap::new(),
                });
            }
            "Running" | "Pending" | "" => {
                let wait = reply
                    .get("requeue")
                    .and_then(Value::as_str)
                    .and_then(|r| parse_go_duration(r).ok())
                    .unwrap_or(Duration::from_secs(1));
                engine.view.note(&format!(
                    "{task}: {message}; asking again in {}",
                    medallion_argo::format_go_duration(wait)
                ));
                std::thread::sleep(wait);
            }
            other => return Err(fail(format!("the plugin answered phase {other:?}"))),
        }
    }
}

/// The mutex names of a template's `synchronization` (semaphores are not implemented).
pub fn mutex_names(template: &Value) -> Result<Vec<String>, String> {
    let Some(s) = template.get("synchronization") else {
        return Ok(Vec::new());
    };
    if s.get("semaphores").is_some() || s.get("semaphore").is_some() {
        return Err("synchronization semaphores are not implemented by medallion run".into());
    }
    let mut names: Vec<String> = items(s, "/mutexes")
        .chain(s.get("mutex"))
        .filter_map(|m| m.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// The local tool for an upstream image's script template (lint's list of allowed images).
fn upstream_tool(image: &str) -> Result<&'static str, String> {
    let Some(tool) = medallion_argo::lint::upstream_image(image) else {
        return Err(format!(
            "script image {image:?} is not one medallion run maps to a local tool ({})",
            medallion_argo::lint::UPSTREAM_IMAGES
                .iter()
                .map(|(i, t)| format!("{i} → {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(tool)
    } else {
        Err(format!(
            "script image {image:?} runs the local `{tool}`, which is not on PATH; install it"
        ))
    }
}

/// The local binary a `medallion-*` container image maps to.
fn local_binary(bin_dir: &Path, image: &str) -> Result<PathBuf, String> {
    let name = super::image_name(image);
    if !name.starts_with("medallion-") {
        return Err(format!(
            "image {image:?} is not a Medallion step; medallion run only runs medallion-* images"
        ));
    }
    let path = bin_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "image {image:?} maps to {}, which does not exist: build the steps with `cargo build --release --workspace --bins` or pass --bin-dir",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_paths_map_once_at_path_starts() {
        let mounts = vec![
            ("/tmp/outputs".to_string(), PathBuf::from("/x/out")),
            ("/config".to_string(), PathBuf::from("/repo/cfg")),
            ("/tmp".to_string(), PathBuf::from("/tmp/.tmpA/vol-tmp")),
        ];
        let text = "cp -L /config/*.tf /tmp/work/\nterraform show -json /tmp/outputs/tfplan > /tmp/outputs/plan.json\necho \"abc  /tmp/in/tfplan\" | sha256sum -c -\nHOME=/tmp x/tmp/y /tmpfoo";
        assert_eq!(
            map_paths_in_text(text, &mounts),
            "cp -L /repo/cfg/*.tf /tmp/.tmpA/vol-tmp/work/\nterraform show -json /x/out/tfplan > /x/out/plan.json\necho \"abc  /tmp/.tmpA/vol-tmp/in/tfplan\" | sha256sum -c -\nHOME=/tmp/.tmpA/vol-tmp x/tmp/y /tmpfoo"
        );
    }

    #[test]
    fn paths_under_mounts_are_rewritten_longest_mount_first() {
        let mounts = vec![
            ("/tmp/outputs".to_string(), PathBuf::from("/w/out")),
            ("/tmp".to_string(), PathBuf::from("/w/tmp")),
            (
                "/contracts".to_string(),
                PathBuf::from("/repo/examples/contracts"),
            ),
        ];
        assert_eq!(map_path("/tmp/outputs/version", &mounts), "/w/out/version");
        assert_eq!(map_path("/tmp/x", &mounts), "/w/tmp/x");
        assert_eq!(map_path("/tmpfoo", &mounts), "/tmpfoo");
        assert_eq!(
            map_path("/contracts/houses.yaml", &mounts),
            "/repo/examples/contracts/houses.yaml"
        );
        assert_eq!(map_path("az://lake/x", &mounts), "az://lake/x");
    }
}
