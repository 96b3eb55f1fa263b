//! Parquet sources keep their own types: record batches pass through with lineage appended.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use tokio::runtime::Handle;

use crate::error::{Error, ErrorClass, Result};
use crate::ingest::batch::Chunk;
use crate::source::SourceObject;

/// Random access to a blob for the synchronous Parquet reader: each read is a ranged GET pinned
/// to the ETag seen at open. Runs on a blocking thread.
#[derive(Clone)]
struct RemoteFile {
    handle: Handle,
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    etag: Option<String>,
}

/// Bytes fetched per request when the reader streams a column chunk.
const WINDOW: u64 = 8 << 20;

impl RemoteFile {
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
struct RangeReader {
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

/// Streams a Parquet source's row groups.
pub struct ParquetSource {
    batches: ParquetRecordBatchReader,
    schema: SchemaRef,
    url: String,
    next_row: i64,
}

fn classify(e: ParquetError, url: &str) -> Error {
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
fn open_reader<R: ChunkReader + 'static>(
    file: R,
    batch_rows: usize,
    url: &str,
) -> Result<(ParquetRecordBatchReader, SchemaRef)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| classify(e, url))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| classify(e, url))?;
    Ok((reader, schema))
}

impl ParquetSource {
    /// Opens the source. Must run off the async runtime's worker threads.
    pub fn open(source: &SourceObject, handle: Handle, batch_rows: usize) -> Result<ParquetSource> {
        let url = source.url.clone();
        let (batches, schema) = if let Some(path) = source.local_path() {
            let file = File::open(path).map_err(|e| Error::local_io("read", path, &e))?;
            open_reader(file, batch_rows, &url)?
        } else if let Some((store, path)) = source.remote() {
            let file = RemoteFile {
                handle,
                store: store.clone(),
                path: path.clone(),
                size: source.size,
                etag: source.etag.clone(),
            };
            open_reader(file, batch_rows, &url)?
        } else {
            return Err(Error::internal(
                "parquet source",
                "neither local nor remote",
            ));
        };
        Ok(ParquetSource {
            batches,
            schema,
            url,
            next_row: 1,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let next: Option<std::result::Result<RecordBatch, ParquetError>> =
            self.batches.next().map(|b| b.map_err(ParquetError::from));
        let Some(batch) = next.transpose().map_err(|e| classify(e, &self.url))? else {
            return Ok(None);
        };
        let n = batch.num_rows() as i64;
        let row_numbers = Int64Array::from_iter_values(self.next_row..self.next_row + n);
        self.next_row += n;
        Ok(Some(Chunk {
            columns: batch.columns().to_vec(),
            row_numbers,
        }))
    }
}
