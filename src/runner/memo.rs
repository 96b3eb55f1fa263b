//! `memoize`, as the Argo controller applies it: the key is taken after substitution, must
//! match `^[a-zA-Z0-9][-a-zA-Z0-9]*$` or the node errors with "invalid cache key: <key>"
//! (workflow/controller/cache/cache.go v4.1.2 line 15, configmap_cache.go lines 85-88), the
//! cache is read only once the node holds its mutexes (operator.go lines 2324-2420), `maxAge`
//! ignores older entries without deleting them (cache.go lines 40-49; a success overwrites the
//! entry), and an entry is saved when the node succeeds.
//!
//! Locally an entry is `<runs>/memo/<configmap>/<key>.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use medallion_argo::parse_go_duration;
use serde_json::Value;

pub struct MemoSlot {
    pub key: String,
    file: PathBuf,
    max_age: Option<Duration>,
}

/// Why a node's memoization cannot be used: Argo errors the node with this message.
#[derive(Debug, PartialEq, Eq)]
pub struct MemoError(pub String);

/// Whether Argo accepts a (substituted) cache key.
pub fn valid_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The memo entry of a template, `None` when it does not memoize.
pub fn memo_slot(template: &Value, runs_dir: &Path) -> Result<Option<MemoSlot>, MemoError> {
    let Some(m) = template.get("memoize") else {
        return Ok(None);
    };
    let key = m.get("key").and_then(Value::as_str).unwrap_or("");
    if !valid_key(key) {
        return Err(MemoError(format!("invalid cache key: {key}")));
    }
    let cache = m
        .pointer("/cache/configMap/name")
        .and_then(Value::as_str)
        .ok_or_else(|| MemoError("memoize.cache.configMap.name is missing".into()))?;
    let max_age = m
        .get("maxAge")
        .and_then(Value::as_str)
        .map(|a| parse_go_duration(a).map_err(|e| MemoError(format!("invalid maxAge: {e}"))))
        .transpose()?;
    Ok(Some(MemoSlot {
        file: runs_dir
            .join("memo")
            .join(cache)
            .join(format!("{key}.json")),
        key: key.to_string(),
        max_age,
    }))
}

impl MemoSlot {
    /// The outputs of a saved entry no older than maxAge.
    pub fn lookup(&self) -> Option<BTreeMap<String, String>> {
        let meta = std::fs::metadata(&self.file).ok()?;
        if let (Some(max), Ok(modified)) = (self.max_age, meta.modified())
            && SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default()
                > max
        {
            return None;
        }
        let text = std::fs::read_to_string(&self.file).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn store(&self, outputs: &BTreeMap<String, String>) {
        if let Some(dir) = self.file.parent()
            && std::fs::create_dir_all(dir).is_ok()
            && let Ok(text) = serde_json::to_string(outputs)
        {
            // Written aside and renamed, so a reader never sees half an entry.
            let tmp = self.file.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &self.file);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Argo's cacheKeyRegex (workflow/controller/cache/cache.go v4.1.2 line 15).
    #[test]
    fn keys_argo_refuses_are_errors() {
        let dir = Path::new("/nonexistent");
        for bad in ["", "import_sales", "-a", "a.b", "a/b", "\"0x8D\""] {
            let t = json!({"memoize": {"key": bad, "cache": {"configMap": {"name": "c"}}}});
            assert_eq!(
                memo_slot(&t, dir).err(),
                Some(MemoError(format!("invalid cache key: {bad}"))),
                "{bad}"
            );
        }
        let t = json!({"memoize": {"key": "import-sales-0x8D", "maxAge": "1h", "cache": {"configMap": {"name": "c"}}}});
        assert!(memo_slot(&t, dir).unwrap().is_some());
    }
}
