//! # medallion-quality
//!
//! What makes bronze data fit to learn from: [`contract::Contract`]s (YAML: per column a type,
//! required or not, null tokens, trimming, case, allowed values, ranges, regexes; renames, dedup
//! keys, a rule for unknown columns, a rejected-share limit) and [`refine::refine`], which turns a
//! bronze version into a silver version under a contract, quarantining every rejected row with
//! its reasons.
//!
//! ```no_run
//! # async fn demo() -> medallion_quality::Result<()> {
//! use medallion_lake::{DatasetName, Registry, StoreLocation};
//! use medallion_quality::{contract::Contract, refine};
//! let registry = Registry::new(StoreLocation::open("lake", "./lake")?);
//! let contract = Contract::load("examples/contracts/houses.yaml".as_ref())?;
//! let out = refine::refine(&registry, refine::RefineRequest {
//!     dataset: DatasetName::new("houses")?, version: 1, contract, workflow: None,
//! }).await?;
//! println!("silver v{}: {} rows, {} rejected", out.manifest.version, out.manifest.rows, out.rejected);
//! # Ok(()) }
//! ```

pub mod contract;
pub mod convert;
pub mod error;
pub mod profile;
pub mod refine;

pub use error::{Error, Result};
