//! Reading Parquet, from a source or from the lake: local files directly, blobs with ranged GETs
//! (the synchronous Parquet reader on a blocking thread), and [`VersionReader`] to stream every row
//! of a committed version part by part.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use tokio::runtime::Handle;

use crate::error::{Error, ErrorClass, Result};
use crate::layout;
use crate::manifest::Manifest;
use crate::store::StoreLocation;

/// Random access to a blob for the synchronous Parquet reader: each read is a ranged GET pinned
/// to the ETag seen at open. Runs on a blocking thread.
#[derive(Clone)]
pub struct RemoteFile {
    handle: Handle,
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    etag: Option<String>,
}

/// Bytes fetched per request when the reader streams a column chunk.
const WINDOW: u64 = 8 << 20;

impl RemoteFile {
    /// `etag`: pin every read to this version of the blob (`None` for immutable lake files).
    pub fn new(
        handle: Handle,
        store: Arc<dyn ObjectStore>,
        path: Path,
        size: u64,
        etag: Option<String>,
    ) -> RemoteFile {
        RemoteFile {
            handle,
            store,
            path,
            size,
            etag,
        }
    }

    fn range(&self, start: u64, end: u64) -> parquet::errors::Result<Bytes> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            if_match: self.etag.as_ref().map(|e| format!("\"{e}\"")),
            ..Default::default()
        };
        let (store, path) = (self.store.clone(), self.path.clone());
        self.handle
            .block_on(async move { store.get_opts(&path, opts).await?.bytes().await })
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}

impl Length for RemoteFile {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for RemoteFile {
    type T = RangeReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<RangeReader> {
        Ok(RangeReader {
            file: self.clone(),
            pos: start,
            buf: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.range(start, start + length as u64)
    }
}

/// Sequential reads over a blob, fetched in windows.
pub struct RangeReader {
    file: RemoteFile,
    pos: u64,
    buf: Bytes,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            if self.pos >= self.file.size {
                return Ok(0);
            }
            let end = (self.pos + WINDOW).min(self.file.size);
            self.buf = self
                .file
                .range(self.pos, end)
                .map_err(std::io::Error::other)?;
            self.pos = end;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

pub(crate) fn classify(e: ParquetError, url: &str) -> Error {
    match e {
        // Wrapped I/O or store failures may be transient.
        ParquetError::External(inner) => Error::Parquet {
            op: "read",
            location: url.to_string(),
            message: crate::redact::text(&crate::error::one_line(&inner.to_string())),
            class: ErrorClass::Transient,
        },
        other => Error::bad_source(
            url,
            Default::default(),
            format!(
                "is not a readable Parquet file: {}",
                crate::error::one_line(&other.to_string())
            ),
        ),
    }
}

/// A batch reader over any random-access file, and the file's Arrow schema.
pub fn open_reader<R: ChunkReader + 'static>(
    file: R,
    batch_rows: usize,
    url: &str,
) -> Result<(ParquetRecordBatchReader, SchemaRef)> {
    open_projected(file, batch_rows, url, None)
}

/// Like [`open_reader`], reading only the given top-level columns (the schema returned is the
/// file's whole schema; batches hold the chosen columns, in file order).
pub fn open_projected<R: ChunkReader + 'static>(
    file: R,
    batch_rows: usize,
    url: &str,
    columns: Option<&[usize]>,
) -> Result<(ParquetRecordBatchReader, SchemaRef)> {
    let mut builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| classify(e, url))?;
    let schema = builder.schema().clone();
    if let Some(cols) = columns {
        let mask = ProjectionMask::roots(builder.parquet_schema(), cols.iter().copied());
        builder = builder.with_projection(mask);
    }
    let reader = builder
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| classify(e, url))?;
    Ok((reader, schema))
}

/// Streams the rows of a committed version, part after part, in manifest order.
/// Must be used off the async runtime's worker threads.
pub struct VersionReader {
    lake: StoreLocation,
    manifest: Manifest,
    handle: Handle,
    batch_rows: usize,
    next_file: usize,
    current: Option<ParquetRecordBatchReader>,
    schema: Option<SchemaRef>,
    columns: Option<Vec<usize>>,
}

impl VersionReader {
    pub fn new(
        lake: StoreLocation,
        manifest: Manifest,
        handle: Handle,
        batch_rows: usize,
    ) -> VersionReader {
        VersionReader {
            lake,
            manifest,
            handle,
            batch_rows,
            next_file: 0,
            current: None,
            schema: None,
            columns: None,
        }
    }

    /// Reads only these top-level columns (indices in the version's schema, ascending).
    pub fn with_columns(mut self, columns: Vec<usize>) -> VersionReader {
        self.columns = Some(columns);
        self
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The version's Arrow schema (from its first part).
    pub fn schema(&mut self) -> Result<SchemaRef> {
        if self.schema.is_none() {
            self.open_next()?;
        }
        self.schema
            .clone()
            .ok_or_else(|| Error::internal("read version", "the version has no data files"))
    }

    fn open_next(&mut self) -> Result<bool> {
        let Some(file) = self.manifest.files.get(self.next_file) else {
            return Ok(false);
        };
        self.next_file += 1;
        let rel = format!(
            "{}/{}",
            layout::version_dir(
                self.manifest.layer,
                &self.manifest.dataset,
                self.manifest.version
            ),
            file.name
        );
        let path = self.lake.path(&rel);
        let url = self.lake.url_of(&path);
        let (reader, schema) = match self.lake.local_dir() {
            Some(dir) => {
                let local = dir.join(&rel);
                let f = File::open(&local).map_err(|e| Error::local_io("read", &local, &e))?;
                open_projected(f, self.batch_rows, &url, self.columns.as_deref())?
            }
            None => {
                let remote = RemoteFile::new(
                    self.handle.clone(),
                    self.lake.store().clone(),
                    path,
                    file.bytes,
                    None,
                );
                open_projected(remote, self.batch_rows, &url, self.columns.as_deref())?
            }
        };
        self.schema.get_or_insert(schema);
        self.current = Some(reader);
        Ok(true)
    }

    /// The next batch of rows; `None` after the last part.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(reader) = self.current.as_mut() {
                match reader.next() {
                    Some(Ok(batch)) => return Ok(Some(batch)),
                    Some(Err(e)) => {
                        return Err(Error::Parquet {
                            op: "read",
                            location: format!(
                                "{} v{}",
                                self.manifest.dataset, self.manifest.version
                            ),
                            message: crate::error::one_line(&e.to_string()),
                            class: ErrorClass::Transient,
                        });
                    }
                    None => self.current = None,
                }
            }
            if !self.open_next()? {
                return Ok(None);
            }
        }
    }
}
