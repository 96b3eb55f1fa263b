//! A blocking `std::io::Write` that streams into one object with a multipart upload.
//!
//! Sync encoders (the Parquet writer) run on their own thread and write here; parts are uploaded
//! on the async runtime with at most [`MAX_PARTS_IN_FLIGHT`] in flight, so memory stays flat
//! whatever the file size. The object becomes visible only on [`UploadSink::finish`]; on Azure an
//! unfinished upload leaves only uncommitted blocks, which the service discards. The sink also
//! counts and hashes what it writes.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use crate::error::{Error, Result};

/// Bytes per uploaded part.
pub const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts uploading at once.
pub const MAX_PARTS_IN_FLIGHT: usize = 2;

/// The first store error a sink hit, kept with its class (an `io::Error` would lose it).
#[derive(Clone, Default)]
pub struct SinkFailure(Arc<Mutex<Option<Error>>>);

impl SinkFailure {
    fn set(&self, err: Error) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(err);
        }
    }

    /// Takes the recorded error, if any.
    pub fn take(&self) -> Option<Error> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// What a finished upload wrote.
#[derive(Debug, Clone)]
pub struct WrittenObject {
    pub bytes: u64,
    pub sha256: String,
}

pub struct UploadSink {
    handle: Handle,
    upload: Option<WriteMultipart>,
    url: String,
    hasher: Sha256,
    bytes: u64,
    unchecked: usize,
    failure: SinkFailure,
}

impl UploadSink {
    /// Starts an upload to `path`. Call from a thread that is not a runtime worker.
    pub fn create(
        handle: Handle,
        store: Arc<dyn ObjectStore>,
        path: &Path,
        url: String,
        failure: SinkFailure,
    ) -> Result<UploadSink> {
        let p = path.clone();
        let upload = handle
            .block_on(async move { store.put_multipart(&p).await })
            .map_err(|e| Error::store("start upload", url.clone(), e))?;
        Ok(UploadSink {
            handle,
            upload: Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES)),
            url,
            hasher: Sha256::new(),
            bytes: 0,
            unchecked: 0,
            failure,
        })
    }

    fn fail(&self, op: &'static str, e: object_store::Error) -> io::Error {
        let err = Error::store(op, self.url.clone(), e);
        let msg = err.to_string();
        self.failure.set(err);
        io::Error::other(msg)
    }

    /// Completes the upload: the object becomes visible.
    pub fn finish(mut self) -> Result<WrittenObject> {
        let Some(upload) = self.upload.take() else {
            return Err(Error::internal("finish upload", "finished twice"));
        };
        let url = self.url.clone();
        self.handle
            .block_on(upload.finish())
            .map_err(|e| Error::store("finish upload", url, e))?;
        Ok(WrittenObject {
            bytes: self.bytes,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
        })
    }

    /// Abandons the upload (best effort).
    pub fn abort(mut self) {
        if let Some(upload) = self.upload.take() {
            let _ = self.handle.block_on(upload.abort());
        }
    }
}

impl Write for UploadSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(upload) = self.upload.as_mut() else {
            return Err(io::Error::other("upload already finished"));
        };
        {
            let _guard = self.handle.enter();
            upload.write(buf);
        }
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        self.unchecked += buf.len();
        // A part is handed to the runtime at most every PART_BYTES: only then can the number of
        // parts in flight have grown, so only then is it worth waiting for capacity.
        if self.unchecked >= PART_BYTES {
            self.unchecked = 0;
            let waited = self
                .handle
                .block_on(upload.wait_for_capacity(MAX_PARTS_IN_FLIGHT));
            waited.map_err(|e| self.fail("upload", e))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for UploadSink {
    /// An upload dropped unfinished (an error elsewhere) is aborted in the background; whatever
    /// is left behind is invisible, since no manifest names it.
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            self.handle.spawn(async move {
                let _ = upload.abort().await;
            });
        }
    }
}
