//! PostgreSQL: connect (optionally over TLS), check, and stream a query's rows into Arrow.
//!
//! A query import runs in a read-only, repeatable-read transaction through a server-side cursor
//! (`DECLARE … NO SCROLL CURSOR`, then `FETCH FORWARD n`), so memory stays at one batch whatever
//! the result size, the rows are one consistent snapshot, and only a single SELECT (or VALUES)
//! is accepted: an import cannot change the database.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_schema::Field;
use medallion_lake::ingest::batch::Chunk;
use medallion_lake::ingest::rows::RowSource;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls, Statement};

use crate::error::{Error, Result};
use crate::pg_tls::MakeRustls;
use crate::pg_values::{ColumnBuilder, RawValue, ValueKind};
use crate::record::{PostgresSpec, Secret, SslMode};

const KIND: &str = "postgres";
const CURSOR: &str = "medallion_import";

/// An open connection.
pub struct PgSession {
    client: Client,
    task: JoinHandle<()>,
    name: String,
    secret: Option<Secret>,
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PgSession {
    /// Connects with the password read from the environment variable the record names.
    pub async fn connect(name: &str, spec: &PostgresSpec) -> Result<PgSession> {
        let secret = spec
            .password
            .as_ref()
            .map(|s| s.read(name, "password"))
            .transpose()?;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&spec.host)
            .port(spec.port)
            .dbname(&spec.database)
            .user(&spec.user)
            .application_name("medallion")
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true);
        if let Some(s) = &secret {
            config.password(s.expose());
        }
        let fail = |e: tokio_postgres::Error| pg_error(name, secret.as_ref(), &e);
        let task = match spec.sslmode {
            SslMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                let (client, connection) = config.connect(NoTls).await.map_err(fail)?;
                (client, tokio::spawn(drive(connection, name.to_string())))
            }
            mode => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let tls = MakeRustls::new(mode).map_err(|message| Error::Refused {
                    connection: name.to_string(),
                    kind: KIND,
                    message,
                })?;
                let (client, connection) = config.connect(tls).await.map_err(fail)?;
                (client, tokio::spawn(drive(connection, name.to_string())))
            }
        };
        Ok(PgSession {
            client: task.0,
            task: task.1,
            name: name.to_string(),
            secret,
        })
    }

    fn error(&self, e: &tokio_postgres::Error) -> Error {
        pg_error(&self.name, self.secret.as_ref(), e)
    }

    /// `SELECT 1`, the server version and, for `table`, the columns and what import makes of them.
    pub async fn check(&self, table: Option<&str>) -> Result<Value> {
        let one: i32 = self
            .client
            .query_one("SELECT 1::int4", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.error(&e))?;
        if one != 1 {
            return Err(Error::Refused {
                connection: self.name.clone(),
                kind: KIND,
                message: format!("SELECT 1 returned {one}"),
            });
        }
        let version: String = self
            .client
            .query_one("SHOW server_version", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.error(&e))?;
        let mut out = json!({ "select_1": one, "server_version": version });
        if let Some(table) = table {
            let relation = quote_relation(table).map_err(|m| Error::invalid("--table", m))?;
            let described = self
                .client
                .prepare(&format!("SELECT * FROM {relation}"))
                .await
                .map_err(|e| self.error(&e))?;
            let columns: Vec<Value> = described
                .columns()
                .iter()
                .map(|c| {
                    let kind = ValueKind::of(c.type_(), c.type_modifier());
                    json!({
                        "name": c.name(),
                        "postgres_type": c.type_().name(),
                        "arrow_type": kind.map(|k| k.data_type().to_string()),
                        "note": if kind.is_none() { Some(format!("not importable as is; cast it in the query, e.g. {}::text", c.name())) } else { None },
                    })
                })
                .collect();
            out["table"] = json!({ "name": table, "columns": columns });
        }
        Ok(out)
    }

    /// Starts streaming `query`'s rows, `rows_per_fetch` at a time.
    pub async fn open_query(
        self,
        query: &str,
        rows_per_fetch: usize,
        url: &str,
        handle: Handle,
    ) -> Result<PgQuery> {
        let query = query.trim().trim_end_matches(';').trim();
        if query.is_empty() {
            return Err(Error::invalid(
                "--query",
                "is empty; pass one SELECT statement",
            ));
        }
        self.client
            .batch_execute("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(|e| self.error(&e))?;
        let described = self
            .client
            .prepare(query)
            .await
            .map_err(|e| self.error(&e))?;
        let mut kinds = Vec::new();
        let mut fields = Vec::new();
        let mut unsupported = Vec::new();
        let mut columns = Vec::new();
        for c in described.columns() {
            match ValueKind::of(c.type_(), c.type_modifier()) {
                Some(k) => {
                    kinds.push(k);
                    fields.push(k.field(c.name()));
                    columns.push(json!({"name": c.name(), "postgres_type": c.type_().name(), "arrow_type": k.data_type().to_string()}));
                }
                None => unsupported.push(format!("{} ({})", c.name(), c.type_().name())),
            }
        }
        if !unsupported.is_empty() {
            return Err(Error::Refused {
                connection: self.name.clone(),
                kind: KIND,
                message: format!(
                    "the query returns columns import cannot map: {}; cast them in the query (e.g. col::text)",
                    unsupported.join(", ")
                ),
            });
        }
        if fields.is_empty() {
            return Err(Error::invalid("--query", "returns no columns"));
        }
        self.client
            .batch_execute(&format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR {query}"))
            .await
            .map_err(|e| self.error(&e))?;
        let n = rows_per_fetch.max(1);
        let fetch = self
            .client
            .prepare(&format!("FETCH FORWARD {n} FROM {CURSOR}"))
            .await
            .map_err(|e| self.error(&e))?;
        let mut details = BTreeMap::new();
        details.insert("connection".to_string(), json!(self.name));
        details.insert("connection_kind".to_string(), json!(KIND));
        details.insert("query".to_string(), json!(query));
        details.insert("columns".to_string(), json!(columns));
        Ok(PgQuery {
            session: self,
            fetch,
            kinds,
            fields,
            rows_per_fetch: n,
            next_row: 1,
            done: false,
            url: url.to_string(),
            handle,
            details,
        })
    }
}

async fn drive<F>(connection: F, name: String)
where
    F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        tracing::warn!(connection = %name, error = %one_line(&e), "postgres connection ended");
    }
}

/// The rows of an open query.
pub struct PgQuery {
    session: PgSession,
    fetch: Statement,
    kinds: Vec<ValueKind>,
    fields: Vec<Field>,
    rows_per_fetch: usize,
    next_row: i64,
    done: bool,
    url: String,
    handle: Handle,
    details: BTreeMap<String, Value>,
}

impl PgQuery {
    fn fail(&self, e: Error) -> medallion_lake::Error {
        e.into_lake(&self.url)
    }
}

impl RowSource for PgQuery {
    fn fields(&self) -> Vec<Field> {
        self.fields.clone()
    }

    fn next_chunk(
        &mut self,
        _max_rows: usize,
        _max_bytes: usize,
    ) -> medallion_lake::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        let rows = self
            .handle
            .block_on(self.session.client.query(&self.fetch, &[]))
            .map_err(|e| self.fail(self.session.error(&e)))?;
        if rows.len() < self.rows_per_fetch {
            self.done = true;
            // Read-only: ending the transaction only closes the cursor.
            self.handle
                .block_on(self.session.client.batch_execute("COMMIT"))
                .map_err(|e| self.fail(self.session.error(&e)))?;
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let mut builders: Vec<ColumnBuilder> = self
            .kinds
            .iter()
            .map(|k| ColumnBuilder::new(*k, rows.len()))
            .collect();
        for (r, row) in rows.iter().enumerate() {
            for (i, (b, kind)) in builders.iter_mut().zip(&self.kinds).enumerate() {
                let raw: Option<RawValue> = row
                    .try_get(i)
                    .map_err(|e| self.fail(self.session.error(&e)))?;
                b.push(*kind, raw.map(|v| v.0)).map_err(|message| {
                    medallion_lake::Error::SourceQuery {
                        url: self.url.clone(),
                        class: medallion_lake::ErrorClass::BadInput,
                        message: format!(
                            "row {} column {}: {message}",
                            self.next_row + r as i64,
                            self.fields[i].name()
                        ),
                    }
                })?;
            }
        }
        let columns = builders
            .into_iter()
            .map(|b| {
                b.finish().map_err(|m| medallion_lake::Error::SourceQuery {
                    url: self.url.clone(),
                    class: medallion_lake::ErrorClass::BadInput,
                    message: m,
                })
            })
            .collect::<medallion_lake::Result<Vec<_>>>()?;
        Ok(Some(Chunk::consecutive(
            columns,
            rows.len(),
            &mut self.next_row,
        )))
    }

    fn details(&self) -> BTreeMap<String, Value> {
        self.details.clone()
    }
}

/// The credential-free URL that names a query over a connection: the lineage's source URL.
pub fn query_url(name: &str, spec: &PostgresSpec, query: &str) -> String {
    let digest = hex::encode(Sha256::digest(query.trim().trim_end_matches(';').trim()));
    format!(
        "postgres://{}:{}/{}?connection={name}&query-sha256={}",
        spec.host,
        spec.port,
        spec.database,
        &digest[..16]
    )
}

/// `schema.table` or `table`, each part quoted as an identifier.
fn quote_relation(raw: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = raw.split('.').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "'{raw}' is not a table name; use table or schema.table"
        ));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join("."))
}

fn one_line(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', " ")
}

/// A PostgreSQL error as ours: server errors by SQLSTATE class (connection and resource classes
/// may pass, the rest are the request's fault), client-side errors as unreachable.
fn pg_error(name: &str, secret: Option<&Secret>, e: &tokio_postgres::Error) -> Error {
    let redact = |t: String| match secret {
        Some(s) => s.redact(&t),
        None => t,
    };
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let mut message = format!("{} (SQLSTATE {code})", db.message());
        if let Some(hint) = db.hint() {
            message.push_str("; hint: ");
            message.push_str(hint);
        }
        let message = redact(message);
        let transient = ["08", "40", "53", "57", "58"]
            .iter()
            .any(|c| code.starts_with(c));
        return if transient {
            Error::Unreachable {
                connection: name.to_string(),
                kind: KIND,
                message,
            }
        } else {
            Error::Refused {
                connection: name.to_string(),
                kind: KIND,
                message,
            }
        };
    }
    let message = redact(one_line(e));
    // A certificate the client does not trust will not be trusted on a retry either.
    if message.contains("certificate") || message.contains("server does not support TLS") {
        return Error::Refused {
            connection: name.to_string(),
            kind: KIND,
            message: format!(
                "{message}; use --sslmode require to encrypt without verifying, or a server certificate the system trusts"
            ),
        };
    }
    Error::Unreachable {
        connection: name.to_string(),
        kind: KIND,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_are_quoted_and_urls_hold_no_secret() {
        assert_eq!(
            quote_relation("public.sales").unwrap(),
            r#""public"."sales""#
        );
        assert_eq!(quote_relation(r#"we"ird"#).unwrap(), r#""we""ird""#);
        assert!(quote_relation("a.b.c").is_err());
        let spec = PostgresSpec {
            host: "db".into(),
            port: 5432,
            database: "sales".into(),
            user: "reader".into(),
            sslmode: SslMode::Require,
            password: None,
        };
        let a = query_url("sales-db", &spec, "SELECT 1;");
        assert_eq!(a, query_url("sales-db", &spec, " SELECT 1 "));
        assert!(a.starts_with("postgres://db:5432/sales?connection=sales-db&query-sha256="));
        assert!(!a.contains("reader"));
    }
}
