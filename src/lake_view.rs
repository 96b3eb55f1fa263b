//! Tables of what a lake holds, for a person.

use medallion_lake::{DatasetName, Layer, Registry, StoreLocation, gc};

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Prints every version of every dataset (optionally one layer / one dataset).
pub async fn list(lake: &str, layer: Option<Layer>, dataset: Option<&str>) -> anyhow::Result<()> {
    let registry = Registry::new(StoreLocation::open("lake", lake)?);
    let only = dataset.map(DatasetName::new).transpose()?;
    println!("lake {}", registry.lake().url());
    println!(
        "{:<7} {:<20} {:>4} {:>12} {:>10} {:>6}  {:<20}  source",
        "layer", "dataset", "ver", "rows", "size", "bad", "created (UTC)"
    );
    let mut any = false;
    for layer in Layer::ALL
        .into_iter()
        .filter(|l| layer.is_none_or(|x| x == *l))
    {
        let datasets = registry.datasets(layer).await?;
        for ds in datasets
            .iter()
            .filter(|d| only.as_ref().is_none_or(|o| o == *d))
        {
            for v in registry.versions(layer, ds).await? {
                let m = registry.manifest(layer, ds, v).await?;
                any = true;
                println!(
                    "{:<7} {:<20} {:>4} {:>12} {:>10} {:>6}  {:<20}  {}",
                    layer.as_str(),
                    ds.as_str(),
                    format!("v{v}"),
                    m.rows,
                    human_bytes(m.bytes),
                    m.quarantine.as_ref().map_or(0, |q| q.rows),
                    m.created_at.format("%Y-%m-%d %H:%M:%S"),
                    m.source.as_ref().map_or("-", |s| s.url.as_str())
                );
            }
        }
    }
    if !any {
        println!("(no versions yet)");
    }
    Ok(())
}

/// Prints one manifest as JSON.
pub async fn show(
    lake: &str,
    layer: Layer,
    dataset: &str,
    version: Option<u64>,
) -> anyhow::Result<()> {
    let registry = Registry::new(StoreLocation::open("lake", lake)?);
    let ds = DatasetName::new(dataset)?;
    let version = match version {
        Some(v) => v,
        None => registry.latest(layer, &ds).await?.ok_or_else(|| {
            anyhow::anyhow!("{layer}/{ds} has no versions in {}", registry.lake().url())
        })?,
    };
    let m = registry.manifest(layer, &ds, version).await?;
    println!("{}", serde_json::to_string_pretty(&m)?);
    Ok(())
}

/// Lists (and with `delete`, removes) files no manifest names.
pub async fn gc(
    lake: &str,
    layer: Layer,
    dataset: Option<&str>,
    older_than_secs: u64,
    delete: bool,
) -> anyhow::Result<()> {
    let registry = Registry::new(StoreLocation::open("lake", lake)?);
    let datasets = match dataset {
        Some(d) => vec![DatasetName::new(d)?],
        None => registry.datasets(layer).await?,
    };
    let min_age = std::time::Duration::from_secs(older_than_secs);
    let (mut count, mut bytes, mut removed) = (0usize, 0u64, 0usize);
    for ds in &datasets {
        let orphans = gc::find_orphans(&registry, layer, ds, min_age).await?;
        for o in &orphans {
            println!(
                "{:>10}  {}  {}",
                human_bytes(o.bytes),
                o.modified.format("%Y-%m-%d %H:%M:%S"),
                o.path
            );
        }
        count += orphans.len();
        bytes += orphans.iter().map(|o| o.bytes).sum::<u64>();
        if delete {
            removed += gc::delete_orphans(&registry, &orphans).await?;
        }
    }
    if delete {
        println!(
            "{removed} of {count} unreferenced files deleted ({})",
            human_bytes(bytes)
        );
    } else {
        println!(
            "{count} unreferenced files ({}); pass --delete to remove them",
            human_bytes(bytes)
        );
    }
    Ok(())
}
