//! A source object (a local file or a blob) opened for one sequential, streaming read.
//!
//! Reads from a blob are pinned to the ETag seen when the source was opened (`If-Match`), so the
//! bytes imported are exactly the ones the identity names even if the blob is overwritten
//! meanwhile. Errors from the underlying store are tagged ([`SourceFault`]) so that the format
//! readers above can tell "the store failed" (transient) from "the bytes are bad" (bad input).

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::manifest::SourceIdentity;
use crate::store::{StoreLocation, StoreUrl};

/// A store failure while reading a source, carried inside an `io::Error`.
#[derive(Debug)]
pub struct SourceFault(pub Error);

impl std::fmt::Display for SourceFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceFault {}

/// Turns an `io::Error` from a reader stack back into a lake error: a tagged store failure keeps
/// its class; anything else came from decoding the bytes and is bad input.
pub fn classify_read_error(err: io::Error, url: &str, what: &str) -> Error {
    if err.get_ref().is_some_and(|e| e.is::<SourceFault>()) {
        if let Some(inner) = err.into_inner()
            && let Ok(fault) = inner.downcast::<SourceFault>()
        {
            return fault.0;
        }
        return Error::internal("read source", "lost a store error");
    }
    let detail = crate::error::one_line(&err.to_string());
    let message = match err.kind() {
        io::ErrorKind::UnexpectedEof => {
            format!("{what} ends unexpectedly (truncated file?): {detail}")
        }
        _ => format!("{what} is not readable: {detail}"),
    };
    Error::bad_source(url, Default::default(), message)
}

#[derive(Clone)]
enum Backing {
    Local(PathBuf),
    Remote {
        store: Arc<dyn ObjectStore>,
        path: Path,
    },
}

/// An opened source: its identity facts and how to read it.
#[derive(Clone)]
pub struct SourceObject {
    /// Canonical, credential-free URL.
    pub url: String,
    /// The object's file name (for format detection).
    pub name: String,
    pub size: u64,
    /// Normalised ETag, when the store gives one (blobs; not local files).
    pub etag: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
    backing: Backing,
}

impl SourceObject {
    /// Stats the source named by `raw` (path or URL) without reading it.
    pub async fn open(raw: &str) -> Result<SourceObject> {
        let url = StoreUrl::parse("source", raw)?;
        let canonical = url.canonical();
        match &url {
            StoreUrl::Local(path) => {
                let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => Error::SourceNotFound {
                        url: canonical.clone(),
                    },
                    _ => Error::local_io("read", path, &e),
                })?;
                if !meta.is_file() {
                    return Err(Error::bad_source(
                        &canonical,
                        Default::default(),
                        "is not a regular file",
                    ));
                }
                Ok(SourceObject {
                    name: file_name(path.to_string_lossy().as_ref()),
                    url: canonical,
                    size: meta.len(),
                    etag: None,
                    last_modified: meta.modified().ok().map(DateTime::<Utc>::from),
                    backing: Backing::Local(path.clone()),
                })
            }
            StoreUrl::Azure { path, .. } => {
                if path.is_empty() {
                    return Err(Error::InvalidUrl {
                        what: "source",
                        url: canonical,
                        reason: "it names a container, not a blob".into(),
                    });
                }
                let loc = StoreLocation::from_url(&url)?;
                let object = loc.root().clone();
                let meta = match loc.store().head(&object).await {
                    Ok(m) => m,
                    Err(object_store::Error::NotFound { .. }) => {
                        return Err(Error::SourceNotFound { url: canonical });
                    }
                    Err(e) => return Err(Error::store("stat source", canonical, e)),
                };
                Ok(SourceObject {
                    name: path.last().cloned().unwrap_or_default(),
                    url: canonical,
                    size: meta.size,
                    etag: meta.e_tag.as_deref().map(SourceIdentity::normalize_etag),
                    last_modified: Some(meta.last_modified),
                    backing: Backing::Remote {
                        store: loc.store().clone(),
                        path: object,
                    },
                })
            }
        }
    }

    /// Whether the source is a local file (no ETag: identity is the content's SHA-256).
    pub fn is_local(&self) -> bool {
        matches!(self.backing, Backing::Local(_))
    }

    /// The local path, for local sources.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match &self.backing {
            Backing::Local(p) => Some(p),
            Backing::Remote { .. } => None,
        }
    }

    /// The store and path, for remote sources.
    pub fn remote(&self) -> Option<(&Arc<dyn ObjectStore>, &Path)> {
        match &self.backing {
            Backing::Remote { store, path } => Some((store, path)),
            Backing::Local(_) => None,
        }
    }

    /// The identity of the source: URL + ETag, or URL + the given content digest.
    pub fn identity(&self, sha256: Option<String>) -> SourceIdentity {
        SourceIdentity {
            url: self.url.clone(),
            etag: self.etag.clone(),
            sha256,
            size: self.size,
            last_modified: self.last_modified,
        }
    }

    /// SHA-256 of a local source's bytes (one sequential pass).
    pub fn local_sha256(&self) -> Result<Option<String>> {
        let Backing::Local(path) = &self.backing else {
            return Ok(None);
        };
        let mut file = File::open(path).map_err(|e| Error::local_io("read", path, &e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Error::local_io("read", path, &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    /// A blocking reader of the whole object. Must be used off the async runtime's threads.
    /// `progress` counts bytes read, for progress bars.
    pub fn reader(
        &self,
        handle: Handle,
        progress: Option<Arc<AtomicU64>>,
    ) -> Result<Box<dyn Read + Send>> {
        let inner: Box<dyn Read + Send> = match &self.backing {
            Backing::Local(path) => {
                let file = File::open(path).map_err(|e| Error::local_io("read", path, &e))?;
                Box::new(LocalReader {
                    file,
                    path: path.clone(),
                })
            }
            Backing::Remote { store, path } => Box::new(RemoteReader {
                handle,
                store: store.clone(),
                path: path.clone(),
                url: self.url.clone(),
                etag: self.etag.clone(),
                stream: None,
                current: Bytes::new(),
            }),
        };
        Ok(Box::new(CountingReader { inner, progress }))
    }
}

fn file_name(s: &str) -> String {
    s.rsplit(['/', '\\']).next().unwrap_or(s).to_string()
}

struct LocalReader {
    file: File,
    path: PathBuf,
}

impl Read for LocalReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file
            .read(buf)
            .map_err(|e| io::Error::other(SourceFault(Error::local_io("read", &self.path, &e))))
    }
}

struct RemoteReader {
    handle: Handle,
    store: Arc<dyn ObjectStore>,
    path: Path,
    url: String,
    etag: Option<String>,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    current: Bytes,
}

impl RemoteReader {
    fn fault(&self, op: &'static str, e: object_store::Error) -> io::Error {
        let err = match e {
            object_store::Error::Precondition { .. } => Error::Store {
                op,
                location: self.url.clone(),
                message: "the blob changed while it was being imported; the new version will arrive as its own event".into(),
                class: crate::error::ErrorClass::Transient,
            },
            other => Error::store(op, self.url.clone(), other),
        };
        io::Error::other(SourceFault(err))
    }
}

impl Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.stream.is_none() {
                let opts = GetOptions {
                    if_match: self.etag.as_ref().map(|e| format!("\"{e}\"")),
                    ..Default::default()
                };
                let store = self.store.clone();
                let path = self.path.clone();
                let result = self
                    .handle
                    .block_on(async move { store.get_opts(&path, opts).await })
                    .map_err(|e| self.fault("read source", e))?;
                self.stream = Some(result.into_stream());
            }
            let Some(stream) = self.stream.as_mut() else {
                return Ok(0);
            };
            match self.handle.block_on(stream.next()) {
                None => return Ok(0),
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(self.fault("read source", e)),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

struct CountingReader {
    inner: Box<dyn Read + Send>,
    progress: Option<Arc<AtomicU64>>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = &self.progress {
            p.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}
