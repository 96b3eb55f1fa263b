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

/// Runs `SELECT 1` (and `CURRENT_VERSION()`): proves the key, the user, the role and the warehouse.
pub async fn check(name: &str, spec: &SnowflakeSpec) -> Result<Value> {
    let key = spec.private_key.read(name, "private key")?;
    let refused = |message: String| Error::Refused {
        connection: name.to_string(),
        kind: KIND,
        message,
    };
    let token = key_pair_jwt(
        &spec.account,
        &spec.user,
        &key,
        chrono::Utc::now().timestamp(),
    )
    .map_err(refused)?;
    medallion_lake::install_tls_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| refused(e.to_string()))?;
    let base = base_url(spec);
    let mut body = json!({
        "statement": "SELECT 1 AS ONE, CURRENT_VERSION() AS VERSION",
        "timeout": STATEMENT_TIMEOUT.as_secs(),
    });
    for (field, value) in [
        ("warehouse", &spec.warehouse),
        ("database", &spec.database),
        ("schema", &spec.schema),
        ("role", &spec.role),
    ] {
        if let Some(v) = value {
            body[field] = json!(v);
        }
    }
    let call = |r: reqwest::RequestBuilder| {
        r.bearer_auth(&token.jwt)
            .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
            .header("Accept", "application/json")
            .header(
                "User-Agent",
                concat!("medallion/", env!("CARGO_PKG_VERSION")),
            )
    };
    let started = Instant::now();
    let (mut status, mut value) = send(
        name,
        &base,
        call(
            http.post(format!("{base}/api/v2/statements"))
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        ),
    )
    .await?;
    // 202: still running; poll the statement's status URL until it answers or the time is up.
    while status == 202 {
        if started.elapsed() > STATEMENT_TIMEOUT {
            return Err(Error::Unreachable {
                connection: name.to_string(),
                kind: KIND,
                message: format!(
                    "SELECT 1 still running after {}s; is the warehouse suspended or queued?",
                    STATEMENT_TIMEOUT.as_secs()
                ),
            });
        }
        let Some(path) = value["statementStatusUrl"].as_str() else {
            return Err(refused("202 without a statementStatusUrl".into()));
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        (status, value) = send(name, &base, call(http.get(format!("{base}{path}")))).await?;
    }
    if status != 200 {
        let message = format!(
            "HTTP {status}: {} (code {}, sqlState {})",
            value["message"].as_str().unwrap_or("no message"),
            value["code"].as_str().unwrap_or("-"),
            value["sqlState"].as_str().unwrap_or("-"),
        );
        let message = key.redact(&message);
        return Err(if status == 429 || status >= 500 {
            Error::Unreachable {
                connection: name.to_string(),
                kind: KIND,
                message,
            }
        } else {
            refused(message)
        });
    }
    let row = &value["data"][0];
    if row[0].as_str() != Some("1") {
        return Err(refused(format!(
            "SELECT 1 returned {} instead of 1",
            row[0]
        )));
    }
    Ok(json!({
        "select_1": 1,
        "server_version": row[1],
        "statement_handle": value["statementHandle"],
        "public_key_fingerprint": token.fingerprint,
        "url": base,
    }))
}

async fn send(name: &str, base: &str, request: reqwest::RequestBuilder) -> Result<(u16, Value)> {
    let unreachable = |message: String| Error::Unreachable {
        connection: name.to_string(),
        kind: KIND,
        message,
    };
    let response = request
        .send()
        .await
        .map_err(|e| unreachable(format!("{base}: {e}")))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unreachable(format!("{base}: {e}")))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
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
