//! Checking a connection: one round trip per kind, timed, recorded in the lake.

use std::time::Instant;

use medallion_lake::StoreLocation;
use medallion_lake::records;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::record::{Connection, ConnectionSpec, check_path};
use crate::{azure_blob, postgres, snowflake};

/// What a check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub connection: String,
    pub kind: String,
    pub ok: bool,
    pub checked_at: String,
    pub seconds: f64,
    pub details: Value,
}

/// Checks `connection` (for PostgreSQL, also describes `table`).
pub async fn check(connection: &Connection, table: Option<&str>) -> Result<CheckReport> {
    let clock = Instant::now();
    let name = connection.name.as_str();
    let details = match &connection.spec {
        ConnectionSpec::Postgres(spec) => {
            postgres::PgSession::connect(name, spec)
                .await?
                .check(table)
                .await?
        }
        ConnectionSpec::AzureBlob(spec) => azure_blob::check(name, spec).await?,
        ConnectionSpec::Snowflake(spec) => snowflake::check(name, spec).await?,
    };
    Ok(CheckReport {
        connection: name.to_string(),
        kind: connection.spec.kind().to_string(),
        ok: true,
        checked_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        seconds: clock.elapsed().as_secs_f64(),
        details,
    })
}

/// Stores the report as the connection's last check.
pub async fn record(lake: &StoreLocation, report: &CheckReport) -> Result<()> {
    records::put_json(lake, &check_path(&report.connection), report).await?;
    Ok(())
}
