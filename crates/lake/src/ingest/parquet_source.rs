//! Parquet sources keep their own types: record batches pass through with lineage appended.

use std::fs::File;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use parquet::errors::ParquetError;
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::ingest::batch::Chunk;
use crate::read::{RemoteFile, classify, open_reader};
use crate::source::SourceObject;

/// Streams a Parquet source's row groups.
pub struct ParquetSource {
    batches: ParquetRecordBatchReader,
    schema: SchemaRef,
    url: String,
    next_row: i64,
}

impl ParquetSource {
    /// Opens the source. Must run off the async runtime's worker threads.
    pub fn open(source: &SourceObject, handle: Handle, batch_rows: usize) -> Result<ParquetSource> {
        let url = source.url.clone();
        let (batches, schema) = if let Some(path) = source.local_path() {
            let file = File::open(path).map_err(|e| Error::local_io("read", path, &e))?;
            open_reader(file, batch_rows, &url)?
        } else if let Some((store, path)) = source.remote() {
            let file = RemoteFile::new(
                handle,
                store.clone(),
                path.clone(),
                source.size,
                source.etag.clone(),
            );
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
        Ok(Some(Chunk::consecutive(
            batch.columns().to_vec(),
            batch.num_rows(),
            &mut self.next_row,
        )))
    }
}
