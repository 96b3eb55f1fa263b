//! The versioned registry: allocate `v<N>`, commit it atomically, find a source's version again.
//!
//! Protocol (every step is safe against concurrent writers and against a crash at any point):
//!
//! 1. [`Registry::begin`] looks the source identity up in the dataset's identity index
//!    (`_sources/<key>.json`); if it is there, the existing version is returned and nothing is
//!    written. Otherwise the writer targets `v<max+1>` with a random attempt id.
//! 2. The writer puts its data files under `v<N>/` with names that carry the attempt id, so two
//!    writers never overwrite each other's files. Until the manifest exists those files are
//!    invisible: readers only follow manifests.
//! 3. [`Registry::commit`] re-checks the index and every manifest committed since `begin` for the
//!    same identity (a concurrent import of the same source, or a writer that crashed between its
//!    manifest and its index entry, which this also repairs). If the source is already there, the
//!    writer deletes its files and returns the existing version. If another writer took `v<N>`,
//!    the files move to the next free version. The manifest is then created with a conditional
//!    create (if-none-match): exactly one writer owns each version.
//! 4. Only after the manifest exists is the identity index entry written.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::{self, DatasetName, Layer};
use crate::manifest::{MANIFEST_FORMAT, Manifest, QuarantineRecord, SourceIdentity};
use crate::store::StoreLocation;

/// How many times a writer re-targets the next version before giving up.
const MAX_COMMIT_ATTEMPTS: u32 = 64;

/// The registry of one lake.
#[derive(Clone, Debug)]
pub struct Registry {
    lake: StoreLocation,
}

/// A version being written, not yet visible.
#[derive(Debug, Clone)]
pub struct PendingVersion {
    pub layer: Layer,
    pub dataset: DatasetName,
    /// The version this writer currently targets (it may move at commit).
    pub version: u64,
    /// Random id that makes this writer's file names unique.
    pub attempt: String,
    /// Every committed version up to this one has been checked for the source identity.
    checked_upto: u64,
}

impl PendingVersion {
    /// File name for the `seq`-th data part of this attempt.
    pub fn part_name(&self, seq: usize) -> String {
        format!("part-{seq:05}-{}.parquet", self.attempt)
    }

    /// File name of this attempt's quarantine file.
    pub fn quarantine_name(&self) -> String {
        format!("rejects-{}.parquet", self.attempt)
    }

    /// Lake-relative path of a data file in the targeted version folder.
    pub fn data_path(&self, name: &str) -> String {
        format!(
            "{}/{name}",
            layout::version_dir(self.layer, &self.dataset, self.version)
        )
    }

    /// Lake-relative path of the quarantine file for the targeted version.
    pub fn quarantine_path(&self) -> String {
        format!(
            "{}/{}",
            layout::quarantine_dir(self.layer, &self.dataset, self.version),
            self.quarantine_name()
        )
    }
}

/// What `begin` found.
#[derive(Debug)]
pub enum Begin {
    /// The source is already in the lake.
    Existing(Box<Manifest>),
    /// Write the data, then commit.
    Pending(PendingVersion),
}

/// What `commit` did.
#[derive(Debug)]
pub enum Committed {
    /// This writer created the version.
    Created(Box<Manifest>),
    /// The same source was committed by someone else; this writer's files were removed.
    Existing(Box<Manifest>),
}

/// The last import of a URL (see [`Registry::last_import_of`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlHint {
    pub version: u64,
    pub size: u64,
    pub sha256: String,
}

fn url_key(url: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("url-{}", hex::encode(Sha256::digest(url.as_bytes())))
}

#[derive(Serialize, Deserialize)]
struct IndexEntry {
    version: u64,
    source: SourceIdentity,
}

impl Registry {
    pub fn new(lake: StoreLocation) -> Registry {
        Registry { lake }
    }

    pub fn lake(&self) -> &StoreLocation {
        &self.lake
    }

    fn store(&self) -> &dyn ObjectStore {
        self.lake.store().as_ref()
    }

    /// The URL of a version's folder.
    pub fn version_url(&self, layer: Layer, dataset: &DatasetName, version: u64) -> String {
        self.lake.url_of(
            &self
                .lake
                .path(&layout::version_dir(layer, dataset, version)),
        )
    }

    /// Datasets that have at least one folder in `layer`.
    pub async fn datasets(&self, layer: Layer) -> Result<Vec<DatasetName>> {
        let names = self.child_dirs(layer.as_str()).await?;
        Ok(names
            .iter()
            .filter_map(|n| DatasetName::new(n).ok())
            .collect())
    }

    /// Committed versions of a dataset, ascending.
    pub async fn versions(&self, layer: Layer, dataset: &DatasetName) -> Result<Vec<u64>> {
        let candidates = self.version_dirs(layer, dataset).await?;
        let found: Vec<Option<u64>> = futures::stream::iter(candidates)
            .map(|v| async move {
                Ok::<_, Error>(self.manifest_exists(layer, dataset, v).await?.then_some(v))
            })
            .buffered(16)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// The highest committed version, if any.
    pub async fn latest(&self, layer: Layer, dataset: &DatasetName) -> Result<Option<u64>> {
        for v in self.version_dirs(layer, dataset).await?.into_iter().rev() {
            if self.manifest_exists(layer, dataset, v).await? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Reads a committed version's manifest.
    pub async fn manifest(
        &self,
        layer: Layer,
        dataset: &DatasetName,
        version: u64,
    ) -> Result<Manifest> {
        let rel = layout::manifest_path(layer, dataset, version);
        let path = self.lake.path(&rel);
        let bytes = match self.store().get(&path).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| Error::store("read", self.lake.url_of(&path), e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::VersionNotFound {
                    what: layer.as_str(),
                    dataset: dataset.to_string(),
                    version,
                    lake: self.lake.url().to_string(),
                });
            }
            Err(e) => return Err(Error::store("read", self.lake.url_of(&path), e)),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| Error::CorruptManifest {
                location: self.lake.url_of(&path),
                message: e.to_string(),
            })?;
        if manifest.format > MANIFEST_FORMAT {
            return Err(Error::CorruptManifest {
                location: self.lake.url_of(&path),
                message: format!(
                    "format {} is newer than this build understands ({MANIFEST_FORMAT}); upgrade medallion",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }

    /// Starts a write of `dataset` in `layer`. With a source identity, returns the existing
    /// version instead when that source was committed before. Without one (a local file whose
    /// digest is computed during the write), the check happens at commit.
    pub async fn begin(
        &self,
        layer: Layer,
        dataset: &DatasetName,
        source: Option<&SourceIdentity>,
    ) -> Result<Begin> {
        let latest = self.latest(layer, dataset).await?.unwrap_or(0);
        let mut checked_upto = latest.saturating_sub(1);
        if let Some(identity) = source {
            if let Some(m) = self.lookup_index(layer, dataset, identity).await? {
                return Ok(Begin::Existing(Box::new(m)));
            }
            // The newest version may have been committed by a writer that died before writing its
            // index entry; every older one was checked by the writer that committed after it.
            if latest > 0 {
                let m = self.manifest(layer, dataset, latest).await?;
                self.repair_index(&m).await;
                if m.source.as_ref().is_some_and(|s| s.same_as(identity)) {
                    return Ok(Begin::Existing(Box::new(m)));
                }
            }
            checked_upto = latest;
        }
        Ok(Begin::Pending(PendingVersion {
            layer,
            dataset: dataset.clone(),
            version: latest + 1,
            attempt: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            checked_upto,
        }))
    }

    /// The last import recorded for a source URL, if any: a hint (size and digest) that lets an
    /// importer check a re-upload of the same local file before converting it. Never trusted
    /// alone: the digest must still match.
    pub async fn last_import_of(
        &self,
        layer: Layer,
        dataset: &DatasetName,
        url: &str,
    ) -> Result<Option<UrlHint>> {
        let path = self
            .lake
            .path(&layout::source_index_path(layer, dataset, &url_key(url)));
        match self.store().get(&path).await {
            Ok(r) => {
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| Error::store("read", self.lake.url_of(&path), e))?;
                Ok(serde_json::from_slice(&bytes).ok())
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::store("read", self.lake.url_of(&path), e)),
        }
    }

    /// Commits `manifest` (its files already written under `pending`'s folder). The manifest's
    /// `version` is set here. See the module docs for the protocol.
    pub async fn commit(
        &self,
        mut pending: PendingVersion,
        mut manifest: Manifest,
    ) -> Result<Committed> {
        let layer = pending.layer;
        let dataset = pending.dataset.clone();
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            if let Some(identity) = manifest.source.clone()
                && let Some(existing) = self.lookup_index(layer, &dataset, &identity).await?
            {
                self.remove_files(&pending, &manifest).await;
                return Ok(Committed::Existing(Box::new(existing)));
            }
            let latest = self.latest(layer, &dataset).await?.unwrap_or(0);
            if let Some(identity) = manifest.source.clone() {
                for v in (pending.checked_upto + 1)..=latest {
                    let other = match self.manifest(layer, &dataset, v).await {
                        Ok(m) => m,
                        Err(Error::VersionNotFound { .. }) => continue,
                        Err(e) => return Err(e),
                    };
                    self.repair_index(&other).await;
                    if other.source.as_ref().is_some_and(|s| s.same_as(&identity)) {
                        self.remove_files(&pending, &manifest).await;
                        return Ok(Committed::Existing(Box::new(other)));
                    }
                }
            }
            pending.checked_upto = pending.checked_upto.max(latest);
            if latest >= pending.version {
                self.move_files(&mut pending, &manifest, latest + 1).await?;
            }
            manifest.version = pending.version;
            let rel = layout::manifest_path(layer, &dataset, pending.version);
            let path = self.lake.path(&rel);
            match self.put_json(&path, &manifest, PutMode::Create).await {
                Ok(()) => {
                    self.repair_index(&manifest).await;
                    self.write_url_hint(&manifest).await;
                    tracing::info!(layer = %layer, dataset = %dataset, version = manifest.version, "committed");
                    return Ok(Committed::Created(Box::new(manifest)));
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    tracing::info!(
                        version = pending.version,
                        "another writer committed this version first"
                    );
                    continue;
                }
                Err(e) => {
                    self.remove_files(&pending, &manifest).await;
                    return Err(Error::store("commit manifest", self.lake.url_of(&path), e));
                }
            }
        }
        self.remove_files(&pending, &manifest).await;
        Err(Error::CommitContention {
            dataset: dataset.to_string(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// Writes this attempt's quarantine file (`rows` rows, as Parquet). If that fails the version
    /// cannot be committed, so the attempt's `data_files` are deleted too.
    pub async fn write_quarantine(
        &self,
        pending: &PendingVersion,
        parquet: Vec<u8>,
        rows: u64,
        data_files: &[String],
    ) -> Result<QuarantineRecord> {
        let path = self.lake.path(&pending.quarantine_path());
        if let Err(e) = self
            .store()
            .put(&path, PutPayload::from(Bytes::from(parquet)))
            .await
        {
            self.abandon(pending, data_files, true).await;
            return Err(Error::store("write quarantine", self.lake.url_of(&path), e));
        }
        Ok(QuarantineRecord {
            file: pending.quarantine_name(),
            rows,
        })
    }

    /// Deletes the files of a write that will not be committed (best effort: leftovers are
    /// invisible, since no manifest names them).
    pub async fn abandon(&self, pending: &PendingVersion, file_names: &[String], quarantine: bool) {
        for name in file_names {
            self.delete_quietly(&self.lake.path(&pending.data_path(name)))
                .await;
        }
        if quarantine {
            self.delete_quietly(&self.lake.path(&pending.quarantine_path()))
                .await;
        }
    }

    async fn remove_files(&self, pending: &PendingVersion, manifest: &Manifest) {
        let names: Vec<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
        self.abandon(pending, &names, manifest.quarantine.is_some())
            .await;
    }

    async fn move_files(
        &self,
        pending: &mut PendingVersion,
        manifest: &Manifest,
        to: u64,
    ) -> Result<()> {
        let mut next = pending.clone();
        next.version = to;
        for f in &manifest.files {
            self.rename(&pending.data_path(&f.name), &next.data_path(&f.name))
                .await?;
        }
        if manifest.quarantine.is_some() {
            self.rename(&pending.quarantine_path(), &next.quarantine_path())
                .await?;
        }
        tracing::info!(
            from = pending.version,
            to,
            "version taken by another writer; moved files"
        );
        *pending = next;
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (from, to) = (self.lake.path(from), self.lake.path(to));
        self.store()
            .rename(&from, &to)
            .await
            .map_err(|e| Error::store("move", self.lake.url_of(&from), e))
    }

    async fn delete_quietly(&self, path: &Path) {
        if let Err(e) = self.store().delete(path).await
            && !matches!(e, object_store::Error::NotFound { .. })
        {
            tracing::warn!(path = %self.lake.url_of(path), error = %crate::redact::text(&e.to_string()), "could not delete an uncommitted file; it stays invisible");
        }
    }

    async fn lookup_index(
        &self,
        layer: Layer,
        dataset: &DatasetName,
        identity: &SourceIdentity,
    ) -> Result<Option<Manifest>> {
        let path = self
            .lake
            .path(&layout::source_index_path(layer, dataset, &identity.key()));
        let bytes = match self.store().get(&path).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| Error::store("read", self.lake.url_of(&path), e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Error::store("read", self.lake.url_of(&path), e)),
        };
        let Ok(entry) = serde_json::from_slice::<IndexEntry>(&bytes) else {
            tracing::warn!(path = %self.lake.url_of(&path), "ignoring an unreadable identity index entry");
            return Ok(None);
        };
        match self.manifest(layer, dataset, entry.version).await {
            Ok(m) if m.source.as_ref().is_some_and(|s| s.same_as(identity)) => Ok(Some(m)),
            Ok(_) | Err(Error::VersionNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records the newest import of a local file's URL (a hint; see [`Self::last_import_of`]).
    async fn write_url_hint(&self, manifest: &Manifest) {
        let Some(source) = &manifest.source else {
            return;
        };
        if let Some(sha256) = &source.sha256 {
            let hint = UrlHint {
                version: manifest.version,
                size: source.size,
                sha256: sha256.clone(),
            };
            let path = self.lake.path(&layout::source_index_path(
                manifest.layer,
                &manifest.dataset,
                &url_key(&source.url),
            ));
            if let Err(e) = self.put_json(&path, &hint, PutMode::Overwrite).await {
                tracing::warn!(error = %crate::redact::text(&e.to_string()), "could not write the URL hint");
            }
        }
    }

    /// Writes the identity index entry of a committed manifest if it is missing.
    async fn repair_index(&self, manifest: &Manifest) {
        let Some(source) = &manifest.source else {
            return;
        };
        let path = self.lake.path(&layout::source_index_path(
            manifest.layer,
            &manifest.dataset,
            &source.key(),
        ));
        let entry = IndexEntry {
            version: manifest.version,
            source: source.clone(),
        };
        match self.put_json(&path, &entry, PutMode::Create).await {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => tracing::warn!(
                path = %self.lake.url_of(&path),
                error = %crate::redact::text(&e.to_string()),
                "could not write the identity index; the next import repairs it"
            ),
        }
    }

    async fn put_json<T: Serialize>(
        &self,
        path: &Path,
        value: &T,
        mode: PutMode,
    ) -> Result<(), object_store::Error> {
        let json = serde_json::to_vec_pretty(value).map_err(|e| object_store::Error::Generic {
            store: "json",
            source: Box::new(e),
        })?;
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        self.store()
            .put_opts(path, PutPayload::from(Bytes::from(json)), opts)
            .await
            .map(|_| ())
    }

    async fn manifest_exists(
        &self,
        layer: Layer,
        dataset: &DatasetName,
        version: u64,
    ) -> Result<bool> {
        let path = self
            .lake
            .path(&layout::manifest_path(layer, dataset, version));
        match self.store().head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::store("check", self.lake.url_of(&path), e)),
        }
    }

    /// `v<N>` folders under a dataset, ascending (committed or not).
    async fn version_dirs(&self, layer: Layer, dataset: &DatasetName) -> Result<Vec<u64>> {
        let names = self
            .child_dirs(&layout::dataset_dir(layer, dataset))
            .await?;
        let set: BTreeSet<u64> = names
            .iter()
            .filter_map(|n| layout::parse_version_dir(n))
            .collect();
        Ok(set.into_iter().collect())
    }

    async fn child_dirs(&self, rel: &str) -> Result<Vec<String>> {
        let prefix = self.lake.path(rel);
        let listing = match self.store().list_with_delimiter(Some(&prefix)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(Error::store("list", self.lake.url_of(&prefix), e)),
        };
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;

    use super::*;
    use crate::manifest::{DataFile, Producer, Timings};

    fn identity(sha: &str) -> SourceIdentity {
        SourceIdentity {
            url: "file:///x.csv".into(),
            etag: None,
            sha256: Some(sha.into()),
            size: 3,
            last_modified: None,
        }
    }

    fn manifest_for(pending: &PendingVersion, source: SourceIdentity) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            layer: pending.layer,
            dataset: pending.dataset.clone(),
            version: 0,
            created_at: Utc::now(),
            rows: 1,
            bytes: 3,
            schema: vec![],
            content_sha256: String::new(),
            files: vec![DataFile {
                name: pending.part_name(0),
                rows: 1,
                bytes: 3,
                sha256: "00".into(),
            }],
            source: Some(source),
            parents: vec![],
            quarantine: None,
            producer: Producer::current("test"),
            workflow: None,
            timings: Timings {
                started_at: Utc::now(),
                finished_at: Utc::now(),
                phases: BTreeMap::new(),
            },
            details: BTreeMap::new(),
        }
    }

    async fn write_part(reg: &Registry, pending: &PendingVersion) {
        let p = reg.lake().path(&pending.data_path(&pending.part_name(0)));
        reg.lake()
            .store()
            .put(&p, PutPayload::from_static(b"abc"))
            .await
            .unwrap();
    }

    async fn import(reg: &Registry, sha: &str) -> (u64, bool) {
        let ds = DatasetName::new("houses").unwrap();
        match reg
            .begin(Layer::Bronze, &ds, Some(&identity(sha)))
            .await
            .unwrap()
        {
            Begin::Existing(m) => (m.version, false),
            Begin::Pending(p) => {
                write_part(reg, &p).await;
                let m = manifest_for(&p, identity(sha));
                match reg.commit(p, m).await.unwrap() {
                    Committed::Created(m) => (m.version, true),
                    Committed::Existing(m) => (m.version, false),
                }
            }
        }
    }

    #[tokio::test]
    async fn versions_are_sequential_and_sources_idempotent() {
        let reg = Registry::new(StoreLocation::in_memory());
        assert_eq!(import(&reg, "a").await, (1, true));
        assert_eq!(import(&reg, "b").await, (2, true));
        assert_eq!(import(&reg, "a").await, (1, false));
        let ds = DatasetName::new("houses").unwrap();
        assert_eq!(reg.versions(Layer::Bronze, &ds).await.unwrap(), vec![1, 2]);
        assert_eq!(reg.datasets(Layer::Bronze).await.unwrap(), vec![ds]);
    }

    #[tokio::test]
    async fn concurrent_writers_of_one_source_make_one_version() {
        let reg = Registry::new(StoreLocation::in_memory());
        let ds = DatasetName::new("houses").unwrap();
        // Both begin before either commits: both target v1.
        let Begin::Pending(a) = reg
            .begin(Layer::Bronze, &ds, Some(&identity("s")))
            .await
            .unwrap()
        else {
            panic!()
        };
        let Begin::Pending(b) = reg
            .begin(Layer::Bronze, &ds, Some(&identity("s")))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!((a.version, b.version), (1, 1));
        write_part(&reg, &a).await;
        write_part(&reg, &b).await;
        let (ma, mb) = (
            manifest_for(&a, identity("s")),
            manifest_for(&b, identity("s")),
        );
        let b_file = reg.lake().path(&b.data_path(&b.part_name(0)));
        assert!(matches!(
            reg.commit(a, ma).await.unwrap(),
            Committed::Created(_)
        ));
        match reg.commit(b, mb).await.unwrap() {
            Committed::Existing(m) => assert_eq!(m.version, 1),
            other => panic!("{other:?}"),
        }
        // The loser's file is gone; only v1 exists.
        assert!(reg.lake().store().head(&b_file).await.is_err());
        assert_eq!(reg.versions(Layer::Bronze, &ds).await.unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn a_loser_with_another_source_moves_to_the_next_version() {
        let reg = Registry::new(StoreLocation::in_memory());
        let ds = DatasetName::new("houses").unwrap();
        let Begin::Pending(a) = reg
            .begin(Layer::Bronze, &ds, Some(&identity("a")))
            .await
            .unwrap()
        else {
            panic!()
        };
        let Begin::Pending(b) = reg
            .begin(Layer::Bronze, &ds, Some(&identity("b")))
            .await
            .unwrap()
        else {
            panic!()
        };
        write_part(&reg, &a).await;
        write_part(&reg, &b).await;
        let (ma, mb) = (
            manifest_for(&a, identity("a")),
            manifest_for(&b, identity("b")),
        );
        reg.commit(a, ma).await.unwrap();
        let Committed::Created(m) = reg.commit(b, mb).await.unwrap() else {
            panic!()
        };
        assert_eq!(m.version, 2);
        let moved = reg
            .lake()
            .path(&format!("bronze/houses/v2/{}", m.files[0].name));
        assert!(reg.lake().store().head(&moved).await.is_ok());
    }

    #[tokio::test]
    async fn a_missing_index_entry_is_repaired_and_still_deduplicates() {
        let reg = Registry::new(StoreLocation::in_memory());
        let ds = DatasetName::new("houses").unwrap();
        assert_eq!(import(&reg, "a").await, (1, true));
        // Simulate a crash between manifest and index: drop the index entry.
        let idx = reg.lake().path(&layout::source_index_path(
            Layer::Bronze,
            &ds,
            &identity("a").key(),
        ));
        reg.lake().store().delete(&idx).await.unwrap();
        assert_eq!(import(&reg, "a").await, (1, false));
        assert!(
            reg.lake().store().head(&idx).await.is_ok(),
            "index repaired"
        );
    }

    #[tokio::test]
    async fn uncommitted_folders_are_invisible_and_reused() {
        let reg = Registry::new(StoreLocation::in_memory());
        let ds = DatasetName::new("houses").unwrap();
        let Begin::Pending(crashed) = reg
            .begin(Layer::Bronze, &ds, Some(&identity("a")))
            .await
            .unwrap()
        else {
            panic!()
        };
        write_part(&reg, &crashed).await; // ...and the writer dies here.
        assert_eq!(reg.latest(Layer::Bronze, &ds).await.unwrap(), None);
        assert!(reg.versions(Layer::Bronze, &ds).await.unwrap().is_empty());
        assert_eq!(import(&reg, "a").await, (1, true));
    }

    #[tokio::test]
    async fn missing_versions_are_a_clear_error() {
        let reg = Registry::new(StoreLocation::in_memory());
        let ds = DatasetName::new("houses").unwrap();
        let err = reg.manifest(Layer::Bronze, &ds, 7).await.unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("houses v7 does not exist"),
            "{err}"
        );
    }
}
