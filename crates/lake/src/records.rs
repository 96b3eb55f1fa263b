//! Small JSON documents in the lake that are not dataset versions: model aliases, approval
//! requests and decisions, release plans. Read as optional, created once (if-none-match), listed
//! by prefix. Every path is lake-relative.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::store::StoreLocation;

/// What a create-once write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// This call wrote the document.
    New,
    /// A document was already there; nothing was written.
    AlreadyExists,
}

/// Reads and parses `rel`; `None` when it does not exist.
pub async fn read_json<T: DeserializeOwned>(lake: &StoreLocation, rel: &str) -> Result<Option<T>> {
    let Some(bytes) = read_bytes(lake, rel).await? else {
        return Ok(None);
    };
    let path = lake.path(rel);
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::CorruptDocument {
            location: lake.url_of(&path),
            message: e.to_string(),
        })
}

/// The bytes of `rel`; `None` when it does not exist.
pub async fn read_bytes(lake: &StoreLocation, rel: &str) -> Result<Option<Bytes>> {
    let path = lake.path(rel);
    match lake.store().get(&path).await {
        Ok(r) => r
            .bytes()
            .await
            .map(Some)
            .map_err(|e| Error::store("read", lake.url_of(&path), e)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(Error::store("read", lake.url_of(&path), e)),
    }
}

/// Writes `value` to `rel` only if nothing is there yet (if-none-match on Azure, a hard link on
/// a local lake): of two concurrent writers exactly one gets [`Created::New`].
pub async fn create_json<T: Serialize>(
    lake: &StoreLocation,
    rel: &str,
    value: &T,
) -> Result<Created> {
    let path = lake.path(rel);
    let json = serde_json::to_vec_pretty(value).map_err(|e| Error::internal("encode json", e))?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match lake
        .store()
        .put_opts(&path, PutPayload::from(Bytes::from(json)), opts)
        .await
    {
        Ok(_) => Ok(Created::New),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::AlreadyExists),
        Err(e) => Err(Error::store("create", lake.url_of(&path), e)),
    }
}

/// Writes `value` to `rel`, replacing what is there (for pointers whose truth lives elsewhere,
/// such as an alias's current entry; its history entries are created once).
pub async fn put_json<T: Serialize>(lake: &StoreLocation, rel: &str, value: &T) -> Result<()> {
    let path = lake.path(rel);
    let json = serde_json::to_vec_pretty(value).map_err(|e| Error::internal("encode json", e))?;
    lake.store()
        .put(&path, PutPayload::from(Bytes::from(json)))
        .await
        .map(|_| ())
        .map_err(|e| Error::store("write", lake.url_of(&path), e))
}

/// Writes `bytes` to `rel`, replacing what is there (a rendering of a record stored beside it).
pub async fn put_bytes(lake: &StoreLocation, rel: &str, bytes: Vec<u8>) -> Result<()> {
    let path = lake.path(rel);
    lake.store()
        .put(&path, PutPayload::from(Bytes::from(bytes)))
        .await
        .map(|_| ())
        .map_err(|e| Error::store("write", lake.url_of(&path), e))
}

/// Lake-relative paths of every object under `prefix` whose name ends with `suffix`, sorted.
pub async fn list(lake: &StoreLocation, prefix: &str, suffix: &str) -> Result<Vec<String>> {
    let dir = lake.path(prefix);
    let root = lake.root().as_ref().to_string();
    let objects: Vec<_> = lake
        .store()
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| Error::store("list", lake.url_of(&dir), e))?;
    let mut out: Vec<String> = objects
        .into_iter()
        .map(|o| o.location.as_ref().to_string())
        .filter(|p| p.ends_with(suffix))
        .map(|p| {
            if root.is_empty() {
                p
            } else {
                p.strip_prefix(&root)
                    .map(|r| r.trim_start_matches('/').to_string())
                    .unwrap_or(p)
            }
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_once_read_list() {
        let dir = tempfile::tempdir().unwrap();
        let lake = StoreLocation::open("lake", dir.path().to_str().unwrap()).unwrap();
        assert_eq!(
            read_json::<serde_json::Value>(&lake, "a/b.json")
                .await
                .unwrap(),
            None
        );
        let first = serde_json::json!({"who": "first"});
        let second = serde_json::json!({"who": "second"});
        assert_eq!(
            create_json(&lake, "a/b.json", &first).await.unwrap(),
            Created::New
        );
        assert_eq!(
            create_json(&lake, "a/b.json", &second).await.unwrap(),
            Created::AlreadyExists
        );
        let back: serde_json::Value = read_json(&lake, "a/b.json").await.unwrap().unwrap();
        assert_eq!(back, first);
        create_json(&lake, "a/c/d.json", &second).await.unwrap();
        create_json(&lake, "a/c/e.txt", &second).await.unwrap();
        assert_eq!(
            list(&lake, "a", ".json").await.unwrap(),
            vec!["a/b.json", "a/c/d.json"]
        );
        assert!(list(&lake, "nothing", ".json").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn corrupt_document_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.json"), b"{not json").unwrap();
        let lake = StoreLocation::open("lake", dir.path().to_str().unwrap()).unwrap();
        let err = read_json::<serde_json::Value>(&lake, "x.json")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("x.json"), "{err}");
    }
}
