//! Azure Blob connections: the check lists the container (or the folder the URL names).

use futures::StreamExt;
use medallion_lake::{AzureCredential, ErrorClass, StoreLocation, StoreUrl};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::record::{AzureBlobSpec, Secret};

const KIND: &str = "azure-blob";
/// Blobs listed at most by a check (enough to prove access without walking a huge container).
const LIST_LIMIT: usize = 1000;

/// Parses and checks the URL of an Azure Blob connection (register time).
pub fn parse_url(raw: &str) -> Result<StoreUrl> {
    match StoreUrl::parse("--url", raw)? {
        StoreUrl::Local(_) => Err(Error::invalid(
            "--url",
            "an azure-blob connection needs an https://<account>.blob.core.windows.net/<container> or az://<container> URL",
        )),
        url => Ok(url),
    }
}

/// Opens the container with the connection's credential.
pub fn open(name: &str, spec: &AzureBlobSpec) -> Result<(StoreLocation, Option<Secret>)> {
    let url = parse_url(&spec.url)?;
    let (credential, secret) = match (&spec.account_key, &spec.sas_token) {
        (Some(k), _) => {
            let s = k.read(name, "account key")?;
            (AzureCredential::AccessKey(s.expose().to_string()), Some(s))
        }
        (None, Some(t)) => {
            let s = t.read(name, "SAS token")?;
            (
                AzureCredential::Sas(s.expose().trim_start_matches('?').to_string()),
                Some(s),
            )
        }
        (None, None) => (AzureCredential::Environment, None),
    };
    Ok((StoreLocation::open_azure(&url, credential)?, secret))
}

/// Lists up to [`LIST_LIMIT`] blobs: proves the account, the credential and the container.
pub async fn check(name: &str, spec: &AzureBlobSpec) -> Result<Value> {
    let (location, secret) = open(name, spec)?;
    let root = location.root().clone();
    let mut listing = location.store().list(Some(&root)).take(LIST_LIMIT);
    let (mut count, mut bytes, mut sample) = (0usize, 0u64, Vec::new());
    while let Some(item) = listing.next().await {
        let meta = item.map_err(|e| {
            let lake = medallion_lake::Error::store("list", location.url(), e);
            let message = match &secret {
                Some(s) => s.redact(&lake.to_string()),
                None => lake.to_string(),
            };
            match lake.class() {
                ErrorClass::Transient => Error::Unreachable {
                    connection: name.to_string(),
                    kind: KIND,
                    message,
                },
                _ => Error::Refused {
                    connection: name.to_string(),
                    kind: KIND,
                    message,
                },
            }
        })?;
        count += 1;
        bytes += meta.size;
        if sample.len() < 5 {
            sample.push(location.url_of(&meta.location));
        }
    }
    Ok(json!({
        "url": location.url(),
        "blobs_listed": count,
        "bytes_listed": bytes,
        "listing_truncated": count == LIST_LIMIT,
        "sample": sample,
    }))
}
