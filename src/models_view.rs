//! `medallion model list/show/alias`: the model registry in the lake, for people.

use medallion_lake::{DatasetName, Layer, Registry, StoreLocation};
use medallion_release::models::{self, AliasMove};

fn registry(lake: &str) -> anyhow::Result<Registry> {
    Ok(Registry::new(StoreLocation::open("lake", lake)?))
}

fn metric_line(m: &serde_json::Value) -> String {
    let Some(obj) = m.as_object() else {
        return String::new();
    };
    obj.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "rows" | "train_rows" | "customers"))
        .filter_map(|(k, v)| v.as_f64().map(|x| format!("{k}={x:.4}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Models, their versions (data, metrics) and aliases.
pub async fn list(lake: &str, only: Option<&str>) -> anyhow::Result<()> {
    let reg = registry(lake)?;
    let names = match only {
        Some(m) => vec![DatasetName::new(m)?],
        None => reg.datasets(Layer::Models).await?,
    };
    if names.is_empty() {
        println!(
            "no models in {} yet; train one with medallion-train or `medallion demo`",
            reg.lake().url()
        );
    }
    for model in names {
        let aliases = models::aliases(reg.lake(), &model).await?;
        println!("{model}");
        for v in reg.versions(Layer::Models, &model).await? {
            let m = reg.manifest(Layer::Models, &model, v).await?;
            let data = m
                .parents
                .first()
                .map(|p| format!("{} {} v{}", p.layer, p.dataset, p.version))
                .unwrap_or_default();
            let tags: Vec<&str> = aliases
                .iter()
                .filter(|a| a.version == v)
                .map(|a| a.alias.as_str())
                .collect();
            let metrics = m
                .details
                .get("metrics")
                .map(metric_line)
                .unwrap_or_default();
            let tagged = if tags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", tags.join(", "))
            };
            println!(
                "  v{v}{tagged}  {}  from {data}  {metrics}",
                m.created_at.format("%Y-%m-%d %H:%M")
            );
        }
    }
    Ok(())
}

/// One version's manifest, or the version an alias names.
pub async fn show(
    lake: &str,
    model: &str,
    version: Option<u64>,
    alias: Option<&str>,
) -> anyhow::Result<()> {
    let reg = registry(lake)?;
    let model = DatasetName::new(model)?;
    let v = match (version, alias) {
        (Some(v), _) => v,
        (None, Some(a)) => {
            models::alias(reg.lake(), &model, &DatasetName::new(a)?)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "model {model} has no alias {a}; see `medallion model list {model}`"
                    )
                })?
                .version
        }
        (None, None) => reg.latest(Layer::Models, &model).await?.ok_or_else(|| {
            anyhow::anyhow!("model {model} has no version in {}", reg.lake().url())
        })?,
    };
    let m = reg.manifest(Layer::Models, &model, v).await?;
    println!("{}", serde_json::to_string_pretty(&m)?);
    println!(
        "card: {}",
        reg.lake()
            .url_of(
                &reg.lake()
                    .path(&medallion_lake::layout::model_file(&model, v, "card.html"))
            )
    );
    Ok(())
}

pub struct Move {
    pub lake: String,
    pub model: String,
    pub alias: String,
    pub version: u64,
    pub expect: Option<String>,
    pub by: String,
    pub reason: Option<String>,
}

/// Moves an alias by compare-and-swap.
pub async fn move_alias(m: Move) -> anyhow::Result<()> {
    let reg = registry(&m.lake)?;
    let model = DatasetName::new(&m.model)?;
    let alias = DatasetName::new(&m.alias)?;
    let expect = match m.expect.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(v) => Some(Some(v.trim_start_matches('v').parse::<u64>().map_err(
            |_| anyhow::anyhow!("--expect {v} is not a version number or 'none'"),
        )?)),
    };
    let record = models::move_alias(
        reg.lake(),
        &model,
        &alias,
        AliasMove {
            version: m.version,
            expect,
            by: &m.by,
            reason: m.reason.as_deref(),
        },
    )
    .await?;
    let before = record
        .previous
        .map_or("nothing".to_string(), |v| format!("v{v}"));
    println!(
        "{model} {alias}: {before} -> v{} (move {} by {})",
        record.version, record.seq, m.by
    );
    Ok(())
}

/// Every move of an alias.
pub async fn history(lake: &str, model: &str, alias: &str) -> anyhow::Result<()> {
    let reg = registry(lake)?;
    let model = DatasetName::new(model)?;
    let alias = DatasetName::new(alias)?;
    for r in models::alias_history(reg.lake(), &model, &alias).await? {
        println!(
            "{:>3}  v{}  (was {})  {}  by {}  {}",
            r.seq,
            r.version,
            r.previous.map_or("-".to_string(), |v| format!("v{v}")),
            r.updated_at.unwrap_or_default(),
            r.updated_by.unwrap_or_default(),
            r.reason.unwrap_or_default()
        );
    }
    Ok(())
}
