//! Connection records: what a connection is and where its secrets come from, never the secrets.
//!
//! ```text
//! <lake>/connections/<name>/connection.json   the record (rewritten by a new registration)
//! <lake>/connections/<name>/last-check.json   the latest check's report
//! ```
//!
//! A secret is referenced by the environment variable a step reads it from and, for Kubernetes,
//! the Secret name and key the workflow maps into that variable with `secretKeyRef`.

use std::fmt;

use medallion_lake::StoreLocation;
use medallion_lake::records;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const CONNECTION_FORMAT: u32 = 1;

/// A registered connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub format: u32,
    pub name: String,
    pub spec: ConnectionSpec,
    pub registered_at: String,
    pub registered_by: String,
}

/// What kind of source, and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ConnectionSpec {
    Postgres(PostgresSpec),
    AzureBlob(AzureBlobSpec),
    Snowflake(SnowflakeSpec),
}

impl ConnectionSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectionSpec::Postgres(_) => "postgres",
            ConnectionSpec::AzureBlob(_) => "azure-blob",
            ConnectionSpec::Snowflake(_) => "snowflake",
        }
    }

    /// Every secret reference, with the field it fills.
    pub fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        match self {
            ConnectionSpec::Postgres(p) => p.password.iter().map(|s| ("password", s)).collect(),
            ConnectionSpec::AzureBlob(a) => a
                .account_key
                .iter()
                .map(|s| ("account key", s))
                .chain(a.sas_token.iter().map(|s| ("SAS token", s)))
                .collect(),
            ConnectionSpec::Snowflake(s) => vec![("private key", &s.private_key)],
        }
    }
}

/// PostgreSQL (Azure Database for PostgreSQL or any other).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub sslmode: SslMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
}

/// TLS to PostgreSQL, as libpq names the modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS, the server's certificate not verified (libpq's `require`).
    Require,
    /// TLS, the certificate verified against the system's roots and the host name.
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "require" => Ok(SslMode::Require),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(Error::invalid(
                "--sslmode",
                format!("'{other}' is not one of disable, require, verify-full"),
            )),
        }
    }
}

/// An Azure Blob container (or a folder in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureBlobSpec {
    /// `https://<account>.blob.core.windows.net/<container>[/<prefix>]`, or `az://<container>[/<prefix>]` with the account from `AZURE_STORAGE_ACCOUNT_NAME`.
    pub url: String,
    /// None of the two: the environment's credential (workload identity in a pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sas_token: Option<SecretRef>,
}

/// Snowflake through the SQL API v2 with key-pair (JWT) authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnowflakeSpec {
    /// Account identifier (`orgname-account` or a locator), as in the account URL.
    pub account: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The PKCS#8 PEM private key whose public key is set on the user.
    pub private_key: SecretRef,
    /// Base URL override (a private link; recorded-response tests); default
    /// `https://<account>.snowflakecomputing.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Where a secret comes from. The record holds this and nothing else about the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// The environment variable a step reads the secret from.
    pub env: String,
    /// The Kubernetes Secret mapped into `env` (with `secretKeyRef`) in a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSecretKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSecretKey {
    pub name: String,
    pub key: String,
}

/// A secret's value, read from the environment. Never displayed or serialized.
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    #[cfg(test)]
    pub fn for_tests(value: &str) -> Secret {
        Secret(value.to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `***` (for messages from the other
    /// side, which might echo what they were sent).
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }
}

impl SecretRef {
    /// Parses `ENV` or `ENV=secret-name/key` (the Kubernetes Secret that fills `ENV` in a pod).
    pub fn parse(flag: &str, raw: &str) -> Result<SecretRef> {
        let (env, kube) = match raw.split_once('=') {
            Some((env, kube)) => (env, Some(kube)),
            None => (raw, None),
        };
        if !is_env_name(env) {
            return Err(Error::invalid(
                flag,
                "expects the NAME of an environment variable holding the secret (letters, digits, _), \
                 optionally =<kubernetes-secret>/<key>; never the secret itself",
            ));
        }
        let kubernetes = match kube {
            None => None,
            Some(k) => {
                let Some((name, key)) = k.split_once('/') else {
                    return Err(Error::invalid(
                        flag,
                        format!("'{env}=...' must name <kubernetes-secret>/<key>"),
                    ));
                };
                if !is_dns_label(name) || key.is_empty() || !key.bytes().all(is_secret_key_byte) {
                    return Err(Error::invalid(
                        flag,
                        format!(
                            "'{env}=...': the Secret name must be a DNS label and the key letters, digits, '-', '_' or '.'"
                        ),
                    ));
                }
                Some(KubernetesSecretKey {
                    name: name.to_string(),
                    key: key.to_string(),
                })
            }
        };
        Ok(SecretRef {
            env: env.to_string(),
            kubernetes,
        })
    }

    /// Reads the secret from the environment.
    pub fn read(&self, connection: &str, field: &'static str) -> Result<Secret> {
        match std::env::var(&self.env) {
            Ok(v) if !v.is_empty() => Ok(Secret(v)),
            _ => Err(Error::SecretMissing {
                connection: connection.to_string(),
                field,
                env: self.env.clone(),
                hint: match &self.kubernetes {
                    Some(k) => format!(
                        " (in a pod: map Secret {} key {} into it with secretKeyRef)",
                        k.name, k.key
                    ),
                    None => "; export it before running".to_string(),
                },
            }),
        }
    }
}

fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
}

fn is_secret_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// A lowercase DNS label: what a connection or Kubernetes Secret may be called.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks a connection name.
pub fn check_name(name: &str) -> Result<()> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(Error::invalid(
            "--name",
            format!(
                "'{}' is not a connection name: use 1-63 lowercase letters, digits and '-'",
                name.chars().take(80).collect::<String>()
            ),
        ))
    }
}

fn record_path(name: &str) -> String {
    format!("connections/{name}/connection.json")
}

pub fn check_path(name: &str) -> String {
    format!("connections/{name}/last-check.json")
}

/// Stores the record (a new registration replaces the old one).
pub async fn save(lake: &StoreLocation, connection: &Connection) -> Result<()> {
    check_name(&connection.name)?;
    records::put_json(lake, &record_path(&connection.name), connection).await?;
    Ok(())
}

/// Loads a registered connection.
pub async fn load(lake: &StoreLocation, name: &str) -> Result<Connection> {
    check_name(name)?;
    let found: Option<Connection> = records::read_json(lake, &record_path(name)).await?;
    let connection = found.ok_or_else(|| Error::NotRegistered {
        name: name.to_string(),
        lake: lake.url().to_string(),
    })?;
    if connection.format != CONNECTION_FORMAT {
        return Err(Error::invalid(
            record_path(name),
            format!(
                "format {} is not one this version reads ({CONNECTION_FORMAT}); upgrade medallion",
                connection.format
            ),
        ));
    }
    Ok(connection)
}

/// The names of every registered connection, sorted.
pub async fn list(lake: &StoreLocation) -> Result<Vec<String>> {
    let mut names: Vec<String> = records::list(lake, "connections/", "/connection.json")
        .await?
        .into_iter()
        .filter_map(|p| {
            p.trim_start_matches("connections/")
                .strip_suffix("/connection.json")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_name_variables_and_kubernetes_secrets_only() {
        let plain = SecretRef::parse("--password-env", "PGPASSWORD").unwrap();
        assert_eq!(plain.env, "PGPASSWORD");
        assert!(plain.kubernetes.is_none());
        let kube = SecretRef::parse("--password-env", "PGPASSWORD=sales-db/password").unwrap();
        assert_eq!(
            kube.kubernetes,
            Some(KubernetesSecretKey {
                name: "sales-db".into(),
                key: "password".into()
            })
        );
        // A value that looks like a secret rather than a name is refused, and not echoed.
        let err = SecretRef::parse("--password-env", "hunter2!").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(SecretRef::parse("--password-env", "PG=Bad_Name/key").is_err());
        assert!(SecretRef::parse("--password-env", "PG=name").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_or_the_record() {
        let secret = Secret("s3cr3t-value".into());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(
            secret.redact("password s3cr3t-value rejected"),
            "password *** rejected"
        );
        let connection = Connection {
            format: CONNECTION_FORMAT,
            name: "sales-db".into(),
            spec: ConnectionSpec::Postgres(PostgresSpec {
                host: "db.example".into(),
                port: 5432,
                database: "sales".into(),
                user: "reader".into(),
                sslmode: SslMode::VerifyFull,
                password: Some(SecretRef::parse("--password-env", "PGPASSWORD").unwrap()),
            }),
            registered_at: "2026-11-23T00:00:00Z".into(),
            registered_by: "test".into(),
        };
        let json = serde_json::to_string(&connection).unwrap();
        assert!(json.contains(r#""kind":"postgres""#), "{json}");
        assert!(
            json.contains(r#""password":{"env":"PGPASSWORD"}"#),
            "{json}"
        );
        let back: Connection = serde_json::from_str(&json).unwrap();
        assert_eq!(back, connection);
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(check_name("sales-db").is_ok());
        for bad in ["", "Sales", "a/b", "-x", "x-", "a..b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
