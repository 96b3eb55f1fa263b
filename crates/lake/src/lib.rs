//! # medallion-lake
//!
//! The lake every Medallion step reads and writes: a root URL (a local folder by default, Azure
//! Blob Storage in production) holding versioned, immutable datasets in layers.
//!
//! ```text
//! <lake>/bronze/<dataset>/v<N>/part-*.parquet + _manifest.json
//! <lake>/quarantine/<layer>/<dataset>/v<N>/rejects-*.parquet
//! ```
//!
//! Main types:
//! - [`StoreLocation`] / [`StoreUrl`]: a URL (`./lake`, `az://`, `abfss://`, `https://<account>.blob...`)
//!   opened as an `object_store` plus a path; credentials only from the environment.
//! - [`Registry`]: allocates `v<N>`, commits a version by creating its [`Manifest`] with a
//!   conditional create, finds a [`SourceIdentity`] again (idempotent imports), lists versions.
//! - [`ingest::import`]: streams a CSV / JSON lines / Parquet source into a bronze version with
//!   lineage columns, bad rows to quarantine, flat memory.
//! - [`Error`]: one line a person can act on, with an [`ErrorClass`] that steps map to exit codes.
//!
//! ```no_run
//! # async fn demo() -> medallion_lake::Result<()> {
//! use medallion_lake::{DatasetName, Registry, StoreLocation, ingest};
//! let registry = Registry::new(StoreLocation::open("lake", "./lake")?);
//! let outcome = ingest::import(&registry, ingest::ImportRequest {
//!     dataset: DatasetName::new("houses")?,
//!     source: "examples/data/houses.csv".into(),
//!     options: Default::default(),
//!     workflow: None,
//!     progress: None,
//! }).await?;
//! println!("bronze v{} ({} rows, new: {})", outcome.manifest.version, outcome.manifest.rows, outcome.created);
//! # Ok(()) }
//! ```

pub mod error;
pub mod gc;
pub mod ingest;
pub mod layout;
pub mod manifest;
pub mod read;
pub mod records;
pub mod redact;
pub mod registry;
pub mod sink;
pub mod source;
pub mod store;

pub use error::{Classified, Error, ErrorClass, Result};
pub use layout::{DatasetName, Layer};
pub use manifest::{Manifest, SourceIdentity, WorkflowRef};
pub use registry::Registry;
pub use store::{AzureCredential, StoreLocation, StoreUrl, install_tls_provider};
