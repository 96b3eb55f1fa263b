//! Snowflake through the SQL API v2 (`POST /api/v2/statements`) with key-pair authentication:
//! a JWT signed RS256 with the user's PKCS#8 private key, whose issuer names the public key's
//! SHA-256 fingerprint, as Snowflake documents ("Using key-pair authentication").

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::record::{Secret, SnowflakeSpec};

const KIND: &str = "snowflake";
/// How long a statement may run before the check gives up.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A signed JWT and the public key fingerprint it names.
pub struct KeyPairToken {
    pub jwt: String,
    pub fingerprint: String,
}

/// The account part of the JWT's issuer: uppercase, the locator without region, `.` → `-`.
pub fn jwt_account(account: &str) -> String {
    let account = account
        .trim()
        .trim_end_matches(".snowflakecomputing.com")
        .to_ascii_uppercase();
    // A locator with its region (xy12345.east-us-2.azure, xy12345.us-east-1) uses only the
    // locator; an org.account identifier becomes ORG-ACCOUNT (account names have no hyphen).
    let parts: Vec<&str> = account.split('.').collect();
    match parts.as_slice() {
        [one] => one.to_string(),
        [org, name] if !name.contains('-') => format!("{org}-{name}"),
        [locator, ..] => locator.to_string(),
        [] => String::new(),
    }
}

/// Signs a key-pair JWT for `account`/`user`, valid from `now` for 59 minutes.
pub fn key_pair_jwt(
    account: &str,
    user: &str,
    private_key_pem: &Secret,
    now: i64,
) -> std::result::Result<KeyPairToken, String> {
    let der = pem_body(private_key_pem.expose())?;
    let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| {
        format!("the private key is not an unencrypted PKCS#8 RSA key ({e}); convert it with `openssl pkcs8 -topk8 -nocrypt`")
    })?;
    let fingerprint = format!(
        "SHA256:{}",
        STANDARD.encode(Sha256::digest(spki_der(key.public_key().as_ref())))
    );
    let account = jwt_account(account);
    let user = user.to_ascii_uppercase();
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let claims = json!({
        "iss": format!("{account}.{user}.{fingerprint}"),
        "sub": format!("{account}.{user}"),
        "iat": now,
        "exp": now + 59 * 60,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing the JWT failed".to_string())?;
    Ok(KeyPairToken {
        jwt: format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)),
        fingerprint,
    })
}

/// The DER inside a PEM block (`-----BEGIN PRIVATE KEY-----`).
fn pem_body(pem: &str) -> std::result::Result<Vec<u8>, String> {
    if pem.contains("ENCRYPTED PRIVATE KEY") {
        return Err("the private key is encrypted; give an unencrypted PKCS#8 key (the secret store protects it)".into());
    }
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        return Err(
            "the private key is PKCS#1; convert it with `openssl pkcs8 -topk8 -nocrypt`".into(),
        );
    }
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "the private key is not PEM (BEGIN PRIVATE KEY)".to_string())
}

/// SubjectPublicKeyInfo DER for an RSA public key given as PKCS#1 DER: what Snowflake hashes.
pub fn spki_der(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x03];
    der_len(&mut bit_string, pkcs1.len() + 1);
    bit_string.push(0x00);
    bit_string.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_len(&mut out, ALGORITHM.len() + bit_string.len());
    out.extend_from_slice(&ALGORITHM);
    out.extend_from_slice(&bit_string);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
}

/// The account's base URL.
pub fn base_url(spec: &SnowflakeSpec) -> String {
    match &spec.endpoint {
        Some(e) => e.trim_end_matches('/').to_string(),
        None => format!(
            "https://{}.snowflakecomputing.com",
            spec.account.trim().to_ascii_lowercase()
        ),
    }
}

/// A signed-in client of one account's SQL API. The JWT is signed again before it expires, so
/// an import that reads partitions for longer than an hour keeps going.
pub struct SqlApi {
    name: String,
    spec: SnowflakeSpec,
    key: Secret,
    http: reqwest::Client,
    base: String,
    token: std::sync::Mutex<(KeyPairToken, i64)>,
}

/// A JWT lives 59 minutes; a new one is signed after 50.
const TOKEN_RENEW_SECS: i64 = 50 * 60;

impl SqlApi {
    pub fn new(name: &str, spec: &SnowflakeSpec) -> Result<SqlApi> {
        let key = spec.private_key.read(name, "private key")?;
        let now = chrono::Utc::now().timestamp();
        let token =
            key_pair_jwt(&spec.account, &spec.user, &key, now).map_err(|m| Error::Refused {
                connection: name.to_string(),
                kind: KIND,
                message: m,
            })?;
        medallion_lake::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| Error::Unreachable {
                connection: name.to_string(),
                kind: KIND,
                message: e.to_string(),
            })?;
        Ok(SqlApi {
            name: name.to_string(),
            spec: spec.clone(),
            key,
            http,
            base: base_url(spec),
            token: std::sync::Mutex::new((token, now)),
        })
    }

    /// The public key fingerprint the JWT names.
    pub fn fingerprint(&self) -> String {
        self.token
            .lock()
            .map(|t| t.0.fingerprint.clone())
            .unwrap_or_default()
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn refused(&self, message: String) -> Error {
        Error::Refused {
            connection: self.name.clone(),
            kind: KIND,
            message: self.key.redact(&message),
        }
    }

    fn unreachable(&self, message: String) -> Error {
        Error::Unreachable {
            connection: self.name.clone(),
            kind: KIND,
            message: self.key.redact(&message),
        }
    }

    fn jwt(&self) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        let mut slot = self
            .token
            .lock()
            .map_err(|_| self.refused("the token lock is poisoned".into()))?;
        if now - slot.1 >= TOKEN_RENEW_SECS {
            let fresh = key_pair_jwt(&self.spec.account, &self.spec.user, &self.key, now)
                .map_err(|m| self.refused(m))?;
            *slot = (fresh, now);
        }
        Ok(slot.0.jwt.clone())
    }

    fn call(&self, r: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        Ok(r.bearer_auth(self.jwt()?)
            .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
            .header("Accept", "application/json")
            .header(
                "User-Agent",
                concat!("medallion/", env!("CARGO_PKG_VERSION")),
            ))
    }

    /// Sends a request; the status and the body (gunzipped when the server compressed it, as
    /// it does for result partitions).
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>)> {
        let response = request
            .send()
            .await
            .map_err(|e| self.unreachable(format!("{}: {e}", self.base)))?;
        let status = response.status().as_u16();
        let gzip = response
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.unreachable(format!("{}: {e}", self.base)))?;
        if !gzip {
            return Ok((status, bytes.to_vec()));
        }
        let mut out = Vec::with_capacity(bytes.len() * 4);
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| self.unreachable(format!("a gzip body that does not decompress: {e}")))?;
        Ok((status, out))
    }

    /// The error for a non-200 answer: 429 and 5xx may pass, the rest will not.
    fn answer_error(&self, status: u16, body: &[u8]) -> Error {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let message = format!(
            "HTTP {status}: {} (code {}, sqlState {})",
            value["message"].as_str().unwrap_or("no message").trim(),
            value["code"].as_str().unwrap_or("-"),
            value["sqlState"].as_str().unwrap_or("-"),
        );
        if status == 429 || status >= 500 {
            self.unreachable(message)
        } else {
            self.refused(message)
        }
    }

    /// Runs one statement and returns its first answer (the result set with partition 0),
    /// polling the status URL while Snowflake answers 202. `request_id` makes a resubmission
    /// (a retried step) return the first run's result instead of running the statement again.
    pub async fn execute(
        &self,
        statement: &str,
        request_id: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let mut body = json!({
            "statement": statement,
            "timeout": timeout.as_secs(),
            "resultSetMetaData": {"format": "jsonv2"},
            "parameters": {"MULTI_STATEMENT_COUNT": "1", "QUERY_TAG": "medallion"},
        });
        for (field, value) in [
            ("warehouse", &self.spec.warehouse),
            ("database", &self.spec.database),
            ("schema", &self.spec.schema),
            ("role", &self.spec.role),
        ] {
            if let Some(v) = value {
                body[field] = json!(v);
            }
        }
        let mut url = format!("{}/api/v2/statements", self.base);
        if let Some(id) = request_id {
            url.push_str(&format!("?requestId={id}&retry=true"));
        }
        let started = Instant::now();
        let (mut status, mut bytes) = self
            .send(
                self.call(self.http.post(url))?
                    .header("Content-Type", "application/json")
                    .body(body.to_string()),
            )
            .await?;
        while status == 202 {
            if started.elapsed() > timeout + Duration::from_secs(30) {
                return Err(self.unreachable(format!(
                    "the statement is still running after {}s; is the warehouse suspended or queued?",
                    timeout.as_secs()
                )));
            }
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let Some(path) = value["statementStatusUrl"].as_str() else {
                return Err(self.refused("202 without a statementStatusUrl".into()));
            };
            tokio::time::sleep(Duration::from_millis(500)).await;
            (status, bytes) = self
                .send(self.call(self.http.get(format!("{}{path}", self.base)))?)
                .await?;
        }
        if status != 200 {
            return Err(self.answer_error(status, &bytes));
        }
        Ok(bytes)
    }

    /// Partition `n` (1 and up) of a statement's result set.
    pub async fn partition(&self, handle: &str, n: usize) -> Result<Vec<u8>> {
        let url = format!("{}/api/v2/statements/{handle}?partition={n}", self.base);
        let (status, bytes) = self.send(self.call(self.http.get(url))?).await?;
        if status != 200 {
            return Err(self.answer_error(status, &bytes));
        }
        Ok(bytes)
    }
}

/// Runs `SELECT 1` (and `CURRENT_VERSION()`): proves the key, the user, the role and the warehouse.
pub async fn check(name: &str, spec: &SnowflakeSpec) -> Result<Value> {
    let api = SqlApi::new(name, spec)?;
    let bytes = api
        .execute(
            "SELECT 1 AS ONE, CURRENT_VERSION() AS VERSION",
            None,
            STATEMENT_TIMEOUT,
        )
        .await?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| api.refused(format!("the result is not JSON: {e}")))?;
    let row = &value["data"][0];
    if row[0].as_str() != Some("1") {
        return Err(api.refused(format!("SELECT 1 returned {} instead of 1", row[0])));
    }
    Ok(json!({
        "select_1": 1,
        "server_version": row[1],
        "statement_handle": value["statementHandle"],
        "public_key_fingerprint": api.fingerprint(),
        "url": api.base(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_accounts_follow_snowflakes_rules() {
        assert_eq!(jwt_account("myorg-myaccount"), "MYORG-MYACCOUNT");
        assert_eq!(jwt_account("xy12345.east-us-2.azure"), "XY12345");
        assert_eq!(jwt_account("xy12345"), "XY12345");
        assert_eq!(jwt_account("xy12345.us-east-1"), "XY12345");
        assert_eq!(jwt_account("myorg.myaccount"), "MYORG-MYACCOUNT");
    }

    #[test]
    fn spki_wraps_the_pkcs1_key_with_long_lengths() {
        let pkcs1 = vec![0x30u8; 270];
        let spki = spki_der(&pkcs1);
        // SEQUENCE, long form with 2 length bytes: 15 + 4 + 271 = 290 = 0x0122.
        assert_eq!(&spki[..4], &[0x30, 0x82, 0x01, 0x22]);
        assert_eq!(&spki[4..19][..3], &[0x30, 0x0d, 0x06]);
        assert_eq!(&spki[19..23], &[0x03, 0x82, 0x01, 0x0f]);
        assert_eq!(spki[23], 0x00);
        assert_eq!(spki.len(), 4 + 290);
    }

    #[test]
    fn bad_keys_are_explained() {
        let s = |t: &str| crate::record::Secret::for_tests(t);
        let err = key_pair_jwt(
            "a",
            "u",
            &s("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"),
            0,
        )
        .err()
        .unwrap();
        assert!(err.contains("PKCS#1"), "{err}");
        let err = key_pair_jwt("a", "u", &s("not a key"), 0).err().unwrap();
        assert!(err.contains("PKCS#8") || err.contains("PEM"), "{err}");
    }
}
