//! Data connections for Medallion: a record per connection in the lake holding only references
//! to secrets, a check per kind (Azure Blob: list the container; PostgreSQL: connect, `SELECT 1`,
//! the table's columns; Snowflake: `SELECT 1` through the SQL API v2 with a key-pair JWT), and
//! PostgreSQL and Snowflake queries streamed into bronze through the lake's row-source import.

pub mod azure_blob;
pub mod check;
pub mod error;
pub mod pg_tls;
pub mod pg_values;
pub mod postgres;
pub mod record;
pub mod sf_query;
pub mod sf_values;
pub mod snowflake;

pub use error::{Error, Result};
pub use record::{Connection, ConnectionSpec, SecretRef};
