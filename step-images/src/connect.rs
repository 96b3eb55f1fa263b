//! The connect step: register a data connection (only references to its secrets) and check it.

use std::path::PathBuf;

use medallion_connect::check::{self, CheckReport};
use medallion_connect::record::{
    self, AzureBlobSpec, CONNECTION_FORMAT, Connection, ConnectionSpec, PostgresSpec, SecretRef,
    SnowflakeSpec, SslMode,
};
use medallion_connect::{Error, azure_blob};
use medallion_lake::StoreLocation;

use crate::StepOutputs;

/// What to do.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ConnectCommand {
    /// Record a connection (after checking it) in <lake>/connections/<name>/
    Register(Box<RegisterArgs>),
    /// Check a registered connection and record the report
    Check(CheckArgs),
    /// Print the registered connections
    List(LakeArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct LakeArgs {
    /// Lake root (local path or Azure URL)
    #[arg(long, env = "MEDALLION_LAKE")]
    pub lake: String,
    /// Where to write one file per output parameter
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub lake: LakeArgs,
    /// Connection name (lowercase letters, digits, '-')
    #[arg(long, env = "MEDALLION_CONNECTION")]
    pub name: String,
    /// PostgreSQL: also describe this table (table or schema.table) and how import maps its columns
    #[arg(long, env = "MEDALLION_TABLE")]
    pub table: Option<String>,
}

/// Registration flags; which ones apply depends on --kind. Secrets are never flags: the
/// `--*-env` flags name the environment variable that holds one (optionally `=secret/key`,
/// the Kubernetes Secret a workflow maps into it).
#[derive(clap::Args, Debug, Clone)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub check: CheckArgs,
    /// postgres, azure-blob or snowflake
    #[arg(long, env = "MEDALLION_CONNECTION_KIND")]
    pub kind: String,
    /// Record without checking (e.g. registered from a machine that cannot reach the source)
    #[arg(long)]
    pub no_check: bool,
    /// Who registers (recorded); default: the workflow or the user
    #[arg(long, env = "MEDALLION_BY")]
    pub by: Option<String>,
    /// postgres: host name
    #[arg(long)]
    pub host: Option<String>,
    /// postgres: port
    #[arg(long)]
    pub port: Option<u16>,
    /// postgres, snowflake: database
    #[arg(long)]
    pub database: Option<String>,
    /// postgres, snowflake: user name
    #[arg(long)]
    pub user: Option<String>,
    /// postgres: disable, require (default) or verify-full
    #[arg(long)]
    pub sslmode: Option<String>,
    /// postgres: ENV holding the password [=k8s-secret/key]
    #[arg(long)]
    pub password_env: Option<String>,
    /// azure-blob: https://<account>.blob.core.windows.net/<container>[/prefix], or az://<container>[/prefix] (account from AZURE_STORAGE_ACCOUNT_NAME)
    #[arg(long)]
    pub url: Option<String>,
    /// azure-blob: ENV holding the account key [=k8s-secret/key]; default: workload identity
    #[arg(long)]
    pub account_key_env: Option<String>,
    /// azure-blob: ENV holding a SAS token [=k8s-secret/key]
    #[arg(long)]
    pub sas_env: Option<String>,
    /// snowflake: account identifier (orgname-account or locator)
    #[arg(long)]
    pub account: Option<String>,
    /// snowflake: ENV holding the PKCS#8 PEM private key [=k8s-secret/key]
    #[arg(long)]
    pub private_key_env: Option<String>,
    /// snowflake: warehouse
    #[arg(long)]
    pub warehouse: Option<String>,
    /// snowflake: schema
    #[arg(long)]
    pub schema: Option<String>,
    /// snowflake: role
    #[arg(long)]
    pub role: Option<String>,
    /// snowflake: base URL instead of https://<account>.snowflakecomputing.com (private link)
    #[arg(long)]
    pub endpoint: Option<String>,
}

impl ConnectCommand {
    pub fn outputs_dir(&self) -> &std::path::Path {
        match self {
            ConnectCommand::Register(r) => &r.check.lake.outputs_dir,
            ConnectCommand::Check(c) => &c.lake.outputs_dir,
            ConnectCommand::List(l) => &l.outputs_dir,
        }
    }
}

/// What the step did.
pub enum Connected {
    Checked {
        connection: Box<Connection>,
        report: Option<Box<CheckReport>>,
    },
    Listed(Vec<String>),
}

pub async fn run(command: &ConnectCommand) -> Result<Connected, Error> {
    match command {
        ConnectCommand::Register(args) => {
            let lake = StoreLocation::open("lake", &args.check.lake.lake)?;
            let connection = connection_from(args)?;
            let report = if args.no_check {
                None
            } else {
                Some(check::check(&connection, table(&args.check.table)).await?)
            };
            // Only a connection that works (or was asked not to be checked) is recorded.
            record::save(&lake, &connection).await?;
            if let Some(r) = &report {
                check::record(&lake, r).await?;
            }
            tracing::info!(connection = %connection.name, kind = connection.spec.kind(), checked = report.is_some(), "connection registered");
            Ok(Connected::Checked {
                connection: Box::new(connection),
                report: report.map(Box::new),
            })
        }
        ConnectCommand::Check(args) => {
            let lake = StoreLocation::open("lake", &args.lake.lake)?;
            let connection = record::load(&lake, &args.name).await?;
            let report = check::check(&connection, table(&args.table)).await?;
            check::record(&lake, &report).await?;
            tracing::info!(connection = %connection.name, kind = connection.spec.kind(), seconds = report.seconds, "connection checked");
            Ok(Connected::Checked {
                connection: Box::new(connection),
                report: Some(Box::new(report)),
            })
        }
        ConnectCommand::List(args) => {
            let lake = StoreLocation::open("lake", &args.lake)?;
            Ok(Connected::Listed(record::list(&lake).await?))
        }
    }
}

/// `--table ""` (the template's default) means no table.
fn table(flag: &Option<String>) -> Option<&str> {
    flag.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// The record the registration flags describe; flags of another kind are refused.
pub fn connection_from(args: &RegisterArgs) -> Result<Connection, Error> {
    let name = args.check.name.clone();
    record::check_name(&name)?;
    let given: Vec<(&str, bool)> = vec![
        ("--host", args.host.is_some()),
        ("--port", args.port.is_some()),
        ("--database", args.database.is_some()),
        ("--user", args.user.is_some()),
        ("--sslmode", args.sslmode.is_some()),
        ("--password-env", args.password_env.is_some()),
        ("--url", args.url.is_some()),
        ("--account-key-env", args.account_key_env.is_some()),
        ("--sas-env", args.sas_env.is_some()),
        ("--account", args.account.is_some()),
        ("--private-key-env", args.private_key_env.is_some()),
        ("--warehouse", args.warehouse.is_some()),
        ("--schema", args.schema.is_some()),
        ("--role", args.role.is_some()),
        ("--endpoint", args.endpoint.is_some()),
    ];
    let allowed: &[&str] = match args.kind.as_str() {
        "postgres" => &[
            "--host",
            "--port",
            "--database",
            "--user",
            "--sslmode",
            "--password-env",
        ],
        "azure-blob" => &["--url", "--account-key-env", "--sas-env"],
        "snowflake" => &[
            "--account",
            "--user",
            "--private-key-env",
            "--warehouse",
            "--database",
            "--schema",
            "--role",
            "--endpoint",
        ],
        other => {
            return Err(Error::invalid(
                "--kind",
                format!("'{other}' is not one of postgres, azure-blob, snowflake"),
            ));
        }
    };
    if let Some((flag, _)) = given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
        return Err(Error::invalid(
            *flag,
            format!("does not apply to a {} connection", args.kind),
        ));
    }
    let need = |flag: &str, v: &Option<String>| {
        v.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            Error::invalid(flag, format!("is required for a {} connection", args.kind))
        })
    };
    let secret = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|raw| SecretRef::parse(flag, raw))
            .transpose()
    };
    let spec = match args.kind.as_str() {
        "postgres" => {
            let host = need("--host", &args.host)?;
            if host.contains('@') || host.contains("://") || host.contains(' ') {
                // Never echo it: it may hold a password.
                return Err(Error::invalid(
                    "--host",
                    "must be a host name only; user and password go in --user and --password-env",
                ));
            }
            ConnectionSpec::Postgres(PostgresSpec {
                host,
                port: args.port.unwrap_or(5432),
                database: need("--database", &args.database)?,
                user: need("--user", &args.user)?,
                sslmode: SslMode::parse(args.sslmode.as_deref().unwrap_or("require"))?,
                password: secret("--password-env", &args.password_env)?,
            })
        }
        "azure-blob" => {
            let url = need("--url", &args.url)?;
            if url.contains('?') {
                return Err(Error::invalid(
                    "--url",
                    "must not carry a query string (a SAS token is a secret: put it in an environment variable and pass --sas-env)",
                ));
            }
            azure_blob::parse_url(&url)?;
            if args.account_key_env.is_some() && args.sas_env.is_some() {
                return Err(Error::invalid(
                    "--sas-env",
                    "give --account-key-env or --sas-env, not both",
                ));
            }
            ConnectionSpec::AzureBlob(AzureBlobSpec {
                url,
                account_key: secret("--account-key-env", &args.account_key_env)?,
                sas_token: secret("--sas-env", &args.sas_env)?,
            })
        }
        _ => ConnectionSpec::Snowflake(SnowflakeSpec {
            account: need("--account", &args.account)?,
            user: need("--user", &args.user)?,
            warehouse: args.warehouse.clone(),
            database: args.database.clone(),
            schema: args.schema.clone(),
            role: args.role.clone(),
            private_key: secret("--private-key-env", &args.private_key_env)?.ok_or_else(|| {
                Error::invalid(
                    "--private-key-env",
                    "is required for a snowflake connection",
                )
            })?,
            endpoint: args.endpoint.clone(),
        }),
    };
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("ARGO_WORKFLOW_NAME").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_string());
    Ok(Connection {
        format: CONNECTION_FORMAT,
        name,
        spec,
        registered_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        registered_by: by,
    })
}

/// Output parameters: `connection`, `kind`, `ok`, `report` (the check as JSON), `connections`.
pub fn outputs(done: &Connected) -> StepOutputs {
    let mut out = StepOutputs::new();
    match done {
        Connected::Checked { connection, report } => {
            out.set("connection", connection.name.clone())
                .set("kind", connection.spec.kind())
                .set("ok", report.as_ref().is_some_and(|r| r.ok))
                .set(
                    "report",
                    report
                        .as_ref()
                        .and_then(|r| serde_json::to_string(r).ok())
                        .unwrap_or_else(|| "{}".to_string()),
                );
        }
        Connected::Listed(names) => {
            out.set("connections", serde_json::json!(names).to_string());
        }
    }
    out
}
