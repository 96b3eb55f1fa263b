//! Writes record batches as zstd Parquet part files of a pending version.
//!
//! Row groups are cut at [`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] of encoded data, whichever
//! comes first (big enough for scans, small enough to keep the writer's memory flat); a new part
//! file starts after [`PART_BYTES`] so readers can split work across files.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tokio::runtime::Handle;

use crate::error::{Error, ErrorClass, Result};
use crate::manifest::DataFile;
use crate::registry::PendingVersion;
use crate::sink::{SinkFailure, UploadSink};
use crate::store::StoreLocation;

pub const ROW_GROUP_ROWS: usize = 1024 * 1024;
pub const ROW_GROUP_BYTES: usize = 48 * 1024 * 1024;
pub const PART_BYTES: usize = 1024 * 1024 * 1024;

/// Parquet properties for lake data: zstd, dictionaries, page statistics.
pub fn writer_properties(tool: &str) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("{tool} {} (parquet-rs)", env!("CARGO_PKG_VERSION")))
        .build()
}

struct OpenPart {
    writer: ArrowWriter<UploadSink>,
    name: String,
    rows: u64,
}

/// Writes the parts of one pending version.
pub struct PartWriter {
    handle: Handle,
    lake: StoreLocation,
    pending: PendingVersion,
    schema: SchemaRef,
    props: WriterProperties,
    current: Option<OpenPart>,
    files: Vec<DataFile>,
    started: Vec<String>,
    failure: SinkFailure,
}

impl PartWriter {
    pub fn new(
        handle: Handle,
        lake: StoreLocation,
        pending: PendingVersion,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> PartWriter {
        PartWriter {
            handle,
            lake,
            pending,
            schema,
            props,
            current: None,
            files: Vec::new(),
            started: Vec::new(),
            failure: SinkFailure::default(),
        }
    }

    fn map_err(&self, op: &'static str, name: &str, e: ParquetError) -> Error {
        if let Some(store_error) = self.failure.take() {
            return store_error;
        }
        Error::Parquet {
            op,
            location: self
                .lake
                .url_of(&self.lake.path(&self.pending.data_path(name))),
            message: e.to_string(),
            class: ErrorClass::Transient,
        }
    }

    fn open_part(&mut self) -> Result<OpenPart> {
        let name = self.pending.part_name(self.files.len());
        let path = self.lake.path(&self.pending.data_path(&name));
        let url = self.lake.url_of(&path);
        self.started.push(name.clone());
        let sink = UploadSink::create(
            self.handle.clone(),
            self.lake.store().clone(),
            &path,
            url,
            self.failure.clone(),
        )?;
        let writer = ArrowWriter::try_new(sink, self.schema.clone(), Some(self.props.clone()))
            .map_err(|e| self.map_err("open", &name, e))?;
        Ok(OpenPart {
            writer,
            name,
            rows: 0,
        })
    }

    /// Appends a batch (its schema must be the writer's).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut part = match self.current.take() {
            Some(p) => p,
            None => self.open_part()?,
        };
        if let Err(e) = part.writer.write(batch) {
            return Err(self.map_err("write", &part.name, e));
        }
        part.rows += batch.num_rows() as u64;
        if part.writer.bytes_written() >= PART_BYTES {
            self.close_part(part)?;
        } else {
            self.current = Some(part);
        }
        Ok(())
    }

    fn close_part(&mut self, part: OpenPart) -> Result<()> {
        let OpenPart { writer, name, rows } = part;
        let sink = writer
            .into_inner()
            .map_err(|e| self.map_err("finish", &name, e))?;
        let written = sink.finish()?;
        self.files.push(DataFile {
            name,
            rows,
            bytes: written.bytes,
            sha256: written.sha256,
        });
        Ok(())
    }

    /// Finishes the open part; returns every part written. With no rows at all, writes one
    /// empty part so the version still carries its schema.
    pub fn finish(mut self) -> Result<Vec<DataFile>> {
        if self.current.is_none() && self.files.is_empty() {
            self.current = Some(self.open_part()?);
        }
        if let Some(part) = self.current.take() {
            self.close_part(part)?;
        }
        Ok(std::mem::take(&mut self.files))
    }

    /// Names of every part this writer started (for cleanup after a failure).
    pub fn started(&self) -> Vec<String> {
        self.started.clone()
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

/// Encodes a small batch set (quarantine) as one in-memory Parquet file.
pub fn parquet_bytes(schema: SchemaRef, batches: &[RecordBatch], tool: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(writer_properties(tool)))
        .map_err(|e| Error::internal("encode quarantine", e))?;
    for b in batches {
        writer
            .write(b)
            .map_err(|e| Error::internal("encode quarantine", e))?;
    }
    writer
        .close()
        .map_err(|e| Error::internal("encode quarantine", e))?;
    Ok(out)
}

/// Shared schema handle.
pub fn schema_ref(fields: Vec<arrow_schema::Field>) -> SchemaRef {
    Arc::new(arrow_schema::Schema::new(fields))
}
