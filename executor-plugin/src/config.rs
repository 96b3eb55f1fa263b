//! The plugin's configuration (flags or environment, see `medallion-plugin --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use medallion_lake::StoreLocation;

/// The port in `executor-plugin/plugin.yaml` (above 10000, as Argo asks of plugins).
pub const DEFAULT_PORT: u16 = 10707;
/// Where Argo's agent puts the token (mounted into every plugin sidecar).
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/argo/token";
/// The largest request body accepted; a template with inlined parameters is a few KiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub token_file: PathBuf,
    pub lake: StoreLocation,
    pub max_body: usize,
    /// How long look-ups of moving things (latest version, an alias) are served from the cache.
    pub cache_ttl: Duration,
    /// How often a waiting approval asks to be called again, unless the template says otherwise.
    pub default_requeue: Duration,
    /// How long an approval waits for a person, unless the template says otherwise.
    pub default_approval_timeout: Duration,
}
