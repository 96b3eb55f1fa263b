//! Garbage: files under a dataset that no manifest names. A writer that crashed, was killed or
//! lost a race leaves its part files behind; they are invisible (readers follow manifests) but
//! take space. This finds them, and deletes them on request, only when they are older than a
//! minimum age so a write still in progress is never touched.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::error::{Error, Result};
use crate::layout::{self, DatasetName, Layer};
use crate::registry::Registry;

/// A file no manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// Lake-relative path.
    pub path: String,
    pub bytes: u64,
    pub modified: DateTime<Utc>,
}

/// Files under `layer/dataset` (and its quarantine) that no committed manifest names and that
/// are older than `min_age`. The identity index (`_sources/`) is never garbage.
pub async fn find_orphans(
    registry: &Registry,
    layer: Layer,
    dataset: &DatasetName,
    min_age: Duration,
) -> Result<Vec<Orphan>> {
    let mut keep: HashSet<String> = HashSet::new();
    for v in registry.versions(layer, dataset).await? {
        let m = registry.manifest(layer, dataset, v).await?;
        let dir = layout::version_dir(layer, dataset, v);
        keep.insert(format!("{dir}/{}", layout::MANIFEST));
        keep.extend(m.files.iter().map(|f| format!("{dir}/{}", f.name)));
        if let Some(q) = &m.quarantine {
            keep.insert(format!(
                "{}/{}",
                layout::quarantine_dir(layer, dataset, v),
                q.file
            ));
        }
    }
    let cutoff = Utc::now() - chrono::Duration::from_std(min_age).unwrap_or_default();
    let prefixes = [
        layout::dataset_dir(layer, dataset),
        format!("quarantine/{layer}/{dataset}"),
    ];
    let sources = format!("{}/_sources/", layout::dataset_dir(layer, dataset));
    let mut out = Vec::new();
    for prefix in prefixes {
        for file in list_files(registry, &prefix).await? {
            if !keep.contains(&file.path)
                && !file.path.starts_with(&sources)
                && file.modified < cutoff
            {
                out.push(file);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Deletes the given orphans; returns how many were removed.
pub async fn delete_orphans(registry: &Registry, orphans: &[Orphan]) -> Result<usize> {
    let lake = registry.lake();
    let mut removed = 0;
    for o in orphans {
        match lake.local_dir() {
            Some(dir) => {
                let path = dir.join(&o.path);
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::local_io("delete", &path, &e)),
                }
            }
            None => {
                let path = lake.path(&o.path);
                match lake.store().delete(&path).await {
                    Ok(()) => removed += 1,
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Error::store("delete", lake.url_of(&path), e)),
                }
            }
        }
    }
    Ok(removed)
}

/// Every file under a lake-relative prefix. Local lakes are walked directly, so that the
/// staging files of interrupted uploads (which object_store's listing hides) are seen too.
async fn list_files(registry: &Registry, prefix: &str) -> Result<Vec<Orphan>> {
    let lake = registry.lake();
    if let Some(root) = lake.local_dir() {
        let mut out = Vec::new();
        let mut stack = vec![root.join(prefix)];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::local_io("list", &dir, &e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::local_io("list", &dir, &e))?;
                let path = entry.path();
                let meta = entry
                    .metadata()
                    .map_err(|e| Error::local_io("stat", &path, &e))?;
                if meta.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(root) {
                    out.push(Orphan {
                        path: rel.to_string_lossy().replace('\\', "/"),
                        bytes: meta.len(),
                        modified: meta
                            .modified()
                            .map(DateTime::<Utc>::from)
                            .unwrap_or_else(|_| Utc::now()),
                    });
                }
            }
        }
        return Ok(out);
    }
    let root = lake.root().as_ref().to_string();
    let listing: Vec<object_store::ObjectMeta> = lake
        .store()
        .list(Some(&lake.path(prefix)))
        .try_collect()
        .await
        .map_err(|e| Error::store("list", lake.url_of(&lake.path(prefix)), e))?;
    Ok(listing
        .into_iter()
        .map(|m| Orphan {
            path: m
                .location
                .as_ref()
                .strip_prefix(&root)
                .unwrap_or(m.location.as_ref())
                .trim_start_matches('/')
                .to_string(),
            bytes: m.size,
            modified: m.last_modified,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;

    use super::*;
    use crate::StoreLocation;

    #[tokio::test]
    async fn finds_only_unreferenced_files() {
        let dir = tempfile::tempdir().unwrap();
        let lake = StoreLocation::open("lake", dir.path().to_str().unwrap()).unwrap();
        let registry = Registry::new(lake.clone());
        let ds = DatasetName::new("houses").unwrap();
        std::fs::create_dir_all(dir.path().join("bronze/houses/v1")).unwrap();
        std::fs::write(
            dir.path()
                .join("bronze/houses/v1/part-00000-dead.parquet#1"),
            b"half",
        )
        .unwrap();
        lake.store()
            .put(
                &lake.path("bronze/houses/v2/part-00000-x.parquet"),
                PutPayload::from_static(b"x"),
            )
            .await
            .unwrap();
        lake.store()
            .put(
                &lake.path("bronze/houses/_sources/abc.json"),
                PutPayload::from_static(b"{}"),
            )
            .await
            .unwrap();
        let young = find_orphans(&registry, Layer::Bronze, &ds, Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(
            young.is_empty(),
            "files younger than the minimum age are left alone: {young:?}"
        );
        let all = find_orphans(&registry, Layer::Bronze, &ds, Duration::ZERO)
            .await
            .unwrap();
        let paths: Vec<&str> = all.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "bronze/houses/v1/part-00000-dead.parquet#1",
                "bronze/houses/v2/part-00000-x.parquet"
            ]
        );
        assert_eq!(delete_orphans(&registry, &all).await.unwrap(), 2);
        assert!(
            find_orphans(&registry, Layer::Bronze, &ds, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
