//! The cluster a kubeconfig's current context names, for running `medallion-plan` and
//! `medallion-deploy` outside a pod the way every Kubernetes tool does (client-go's
//! clientcmd): `KUBECONFIG` (the first file of the list) or `~/.kube/config`, its
//! `current-context`, that context's cluster (`server`, `certificate-authority-data` or
//! `certificate-authority`, `insecure-skip-tls-verify`) and user (`token`, `tokenFile`,
//! `client-certificate-data` + `client-key-data`, or an `exec` credential plugin such as AKS's
//! kubelogin, whose ExecCredential's `status.token` is used).

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

/// How to reach and authenticate to the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAccess {
    pub server: String,
    /// PEM of the cluster's CA, when the kubeconfig names one.
    pub ca_pem: Option<Vec<u8>>,
    pub insecure_skip_tls_verify: bool,
    pub token: Option<String>,
    /// PEM of the client certificate and key, for mutual TLS.
    pub client_identity_pem: Option<Vec<u8>>,
    /// Where the settings came from (for messages).
    pub source: String,
}

/// The kubeconfig file to read: the first entry of `KUBECONFIG`, else `~/.kube/config`, when it
/// exists.
pub fn default_path() -> Option<PathBuf> {
    let from_env = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .filter(|p| !p.as_os_str().is_empty());
    let path = from_env.or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
    })?;
    path.is_file().then_some(path)
}

fn named<'a>(list: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    list.get(key)?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

fn decode(what: &str, data: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("{what} is not base64: {e}"))
}

/// The current context's cluster and credentials in the kubeconfig at `path`.
pub fn load(path: &Path) -> Result<ClusterAccess, String> {
    let at = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{at}: {e}"))?;
    let config: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{at}: not a kubeconfig: {e}"))?;
    let context_name = config
        .get("current-context")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            format!("{at}: no current-context; run `kubectl config use-context <name>`")
        })?;
    let context = named(&config, "contexts", context_name)
        .and_then(|c| c.get("context"))
        .ok_or_else(|| format!("{at}: context {context_name:?} is not in contexts"))?;
    let text_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let cluster_name = text_of(context, "cluster")
        .ok_or_else(|| format!("{at}: context {context_name:?} names no cluster"))?;
    let cluster = named(&config, "clusters", &cluster_name)
        .and_then(|c| c.get("cluster"))
        .ok_or_else(|| format!("{at}: cluster {cluster_name:?} is not in clusters"))?;
    let server = text_of(cluster, "server")
        .ok_or_else(|| format!("{at}: cluster {cluster_name:?} has no server"))?;
    // Relative file names in a kubeconfig are relative to the file (clientcmd's behaviour).
    let base = path.parent().unwrap_or(Path::new("."));
    let read_file = |what: &str, file: &str| -> Result<Vec<u8>, String> {
        let p = base.join(file);
        std::fs::read(&p).map_err(|e| format!("{at}: {what} {}: {e}", p.display()))
    };
    let ca_pem = match (
        text_of(cluster, "certificate-authority-data"),
        text_of(cluster, "certificate-authority"),
    ) {
        (Some(data), _) => Some(decode("certificate-authority-data", &data)?),
        (None, Some(file)) => Some(read_file("certificate-authority", &file)?),
        (None, None) => None,
    };
    let insecure_skip_tls_verify = cluster
        .get("insecure-skip-tls-verify")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let user = match text_of(context, "user") {
        Some(name) => named(&config, "users", &name)
            .and_then(|u| u.get("user"))
            .ok_or_else(|| format!("{at}: user {name:?} is not in users"))?
            .clone(),
        None => Value::Null,
    };
    let token = if let Some(t) = text_of(&user, "token") {
        Some(t)
    } else if let Some(file) = text_of(&user, "tokenFile") {
        Some(
            String::from_utf8_lossy(&read_file("tokenFile", &file)?)
                .trim()
                .to_string(),
        )
    } else if let Some(exec) = user.get("exec") {
        Some(exec_token(exec).map_err(|e| format!("{at}: user exec plugin: {e}"))?)
    } else {
        None
    };
    let client_identity_pem = match (
        text_of(&user, "client-certificate-data"),
        text_of(&user, "client-key-data"),
    ) {
        (Some(cert), Some(key)) => {
            let mut pem = decode("client-certificate-data", &cert)?;
            pem.push(b'\n');
            pem.extend(decode("client-key-data", &key)?);
            Some(pem)
        }
        _ => None,
    };
    Ok(ClusterAccess {
        server: server.trim_end_matches('/').to_string(),
        ca_pem,
        insecure_skip_tls_verify,
        token,
        client_identity_pem,
        source: format!("{at} (context {context_name})"),
    })
}

/// Runs a client-go exec credential plugin and returns the token of its ExecCredential.
fn exec_token(exec: &Value) -> Result<String, String> {
    let command = exec
        .get("command")
        .and_then(Value::as_str)
        .ok_or("no command")?;
    let mut c = std::process::Command::new(command);
    for a in exec
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        c.arg(a.as_str().unwrap_or_default());
    }
    for e in exec
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(n), Some(v)) = (
            e.get("name").and_then(Value::as_str),
            e.get("value").and_then(Value::as_str),
        ) {
            c.env(n, v);
        }
    }
    c.stdin(std::process::Stdio::null());
    let out = c.output().map_err(|e| format!("{command}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let credential: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{command} printed no ExecCredential JSON: {e}"))?;
    credential
        .pointer("/status/token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{command}'s ExecCredential has no status.token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("config");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_current_context_names_server_ca_and_token() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "PEM").unwrap();
        let p = write(
            dir.path(),
            "apiVersion: v1\nkind: Config\ncurrent-context: b\ncontexts:\n- name: a\n  context: {cluster: one, user: u}\n- name: b\n  context: {cluster: two, user: u}\nclusters:\n- name: one\n  cluster: {server: https://one}\n- name: two\n  cluster: {server: 'https://two:6443/', certificate-authority: ca.pem}\nusers:\n- name: u\n  user: {token: secret-token}\n",
        );
        let a = load(&p).unwrap();
        assert_eq!(a.server, "https://two:6443");
        assert_eq!(a.ca_pem.as_deref(), Some(&b"PEM"[..]));
        assert_eq!(a.token.as_deref(), Some("secret-token"));
    }

    /// An exec plugin (as AKS's kubelogin) prints an ExecCredential; its token is used.
    #[test]
    fn an_exec_plugin_gives_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'http://127.0.0.1:1'}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: ['-c', 'echo \"{\\\"kind\\\":\\\"ExecCredential\\\",\\\"status\\\":{\\\"token\\\":\\\"$T\\\"}}\"']\n      env: [{name: T, value: from-exec}]\n",
        );
        assert_eq!(load(&p).unwrap().token.as_deref(), Some("from-exec"));
    }

    #[test]
    fn a_kubeconfig_without_a_context_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "apiVersion: v1\nkind: Config\n");
        assert!(load(&p).unwrap_err().contains("no current-context"));
        let p = write(
            dir.path(),
            "current-context: x\ncontexts: []\nclusters: []\nusers: []\n",
        );
        assert!(
            load(&p)
                .unwrap_err()
                .contains("context \"x\" is not in contexts")
        );
    }
}
