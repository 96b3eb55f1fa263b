//! Training a spec on a lake version into a new model version (DESIGN.md §2):
//!
//! ```text
//! <lake>/models/<model>/v<N>/_manifest.json     the commit (files, lineage, metrics, gates)
//!                            model-<attempt>.json, metrics-<attempt>.json   hashed in the manifest
//!                            model.json, metrics.json, card.html            written after the commit
//! ```
//!
//! The same data version and spec always give the same model version: the version's identity
//! is (data content hash, spec hash), so a repeated event or a retried pod finds it instead of
//! training a duplicate. Files carry the writer's attempt id until the manifest names them, so
//! concurrent trainers never overwrite each other.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use medallion_lake::manifest::{DataFile, Producer, Timings, VersionRef};
use medallion_lake::registry::{Begin, Committed};
use medallion_lake::{DatasetName, Layer, Manifest, Registry, SourceIdentity, WorkflowRef, layout};
use medallion_release::models::{self, Metrics};
use medallion_release::policy::{Baseline, Decision, Policy, Subject, Verdict};
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::card::{self, CardData};
use crate::error::{Error, Result};
use crate::fit::{self, CustomerTable, SegmentMix, Trained};
use crate::frame;
use crate::model_file::ModelFile;
use crate::spec::{ModelSpec, Task};

pub const TOOL: &str = "medallion-train";

pub struct TrainRequest {
    pub layer: Layer,
    pub dataset: DatasetName,
    pub version: Option<u64>,
    pub spec: ModelSpec,
    pub workflow: Option<WorkflowRef>,
    /// Also write the encoded train/holdout matrices here as CSV (train.csv, holdout.csv; last
    /// column the target) and the holdout predictions (predictions.csv).
    pub export_split: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub manifest: Manifest,
    /// False when this data and spec were trained before (the existing version is returned).
    pub created: bool,
    pub metrics: Metrics,
    pub verdict: Verdict,
    pub passed: bool,
    pub better_than_baseline: bool,
    pub model_uri: String,
    pub card_uri: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The identity of (data version, spec): what makes a retrain a no-op.
fn identity(registry: &Registry, data: &Manifest, spec_hash: &str) -> SourceIdentity {
    let mut h = Sha256::new();
    h.update(b"medallion-train\n");
    h.update(data.content_sha256.as_bytes());
    h.update(b"\n");
    h.update(spec_hash.as_bytes());
    SourceIdentity {
        url: format!(
            "{}#spec={spec_hash}",
            registry.version_url(data.layer, &data.dataset, data.version)
        ),
        etag: None,
        sha256: Some(hex::encode(h.finalize())),
        size: data.rows,
        last_modified: None,
    }
}

/// Fits the spec on the data (reading only the columns it needs).
async fn fit_on(registry: &Registry, spec: &ModelSpec, data: &Manifest) -> Result<Trained> {
    let label = format!("{} {} v{}", data.layer, data.dataset, data.version);
    match spec.task {
        Task::Regression => {
            let mut cols = crate::features::Encoder::columns_needed(&spec.features);
            if let Some(t) = &spec.target
                && !cols.contains(t)
            {
                cols.push(t.clone());
            }
            let frame = frame::read(registry, data, &cols).await?;
            let spec = spec.clone();
            tokio::task::spawn_blocking(move || fit::regression(&spec, &frame, &label))
                .await
                .map_err(|e| medallion_lake::Error::internal("train", e))?
        }
        Task::Clustering => {
            let Some(c) = spec.customers.clone() else {
                return Err(Error::data(&label, "clustering needs customers:"));
            };
            let mut cols = vec![c.id.clone(), c.time.clone()];
            cols.extend(c.amount.iter().cloned());
            let (c1, l1) = (c.clone(), label.clone());
            let table = std::sync::Arc::new(std::sync::Mutex::new(CustomerTable::default()));
            let t2 = table.clone();
            frame::scan(registry, data, &cols, move |f| {
                let mut t = t2.lock().map_err(|_| Error::data(&l1, "poisoned"))?;
                t.add(&c1, &f, &l1)
            })
            .await?;
            let table = std::mem::take(
                &mut *table
                    .lock()
                    .map_err(|_| Error::data(&label, "customer table lock poisoned"))?,
            );
            let (spec2, label2) = (spec.clone(), label.clone());
            let (mut trained, segment_of) =
                tokio::task::spawn_blocking(move || fit::clustering(&spec2, &table, &label2))
                    .await
                    .map_err(|e| medallion_lake::Error::internal("train", e))??;
            if !c.describe.is_empty() {
                let mut cols = vec![c.id.clone()];
                cols.extend(c.describe.iter().cloned());
                let mix = std::sync::Arc::new(std::sync::Mutex::new(SegmentMix::default()));
                let (m2, c2, seg) = (mix.clone(), c.clone(), std::sync::Arc::new(segment_of));
                frame::scan(registry, data, &cols, move |f| {
                    if let Ok(mut m) = m2.lock() {
                        m.add(&c2, &f, &seg);
                    }
                    Ok(())
                })
                .await?;
                if let Ok(m) = mix.lock() {
                    m.annotate(&mut trained.model.segments);
                }
            }
            Ok(trained)
        }
    }
}

async fn put(registry: &Registry, rel: &str, bytes: Vec<u8>) -> Result<()> {
    let lake = registry.lake();
    let path = lake.path(rel);
    lake.store()
        .put(&path, PutPayload::from(Bytes::from(bytes)))
        .await
        .map(|_| ())
        .map_err(|e| medallion_lake::Error::store("write", lake.url_of(&path), e).into())
}

fn csv_of(features: &[String], target: &str, x: &crate::features::Matrix, y: &[f64]) -> String {
    let mut s = features
        .iter()
        .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(",");
    s.push_str(&format!(",\"{target}\"\n"));
    for (i, target) in y.iter().enumerate().take(x.rows) {
        let row: Vec<String> = x.row(i).iter().map(|v| format!("{v:?}")).collect();
        s.push_str(&row.join(","));
        s.push_str(&format!(",{target:?}\n"));
    }
    s
}

fn export(dir: &std::path::Path, trained: &Trained) -> Result<()> {
    let Some(split) = &trained.split else {
        return Ok(());
    };
    let io = |e: std::io::Error| {
        Error::data(
            dir.display().to_string(),
            format!("cannot write the split there ({e}); pass a writable --export-split"),
        )
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    for (name, (x, y)) in [("train.csv", &split.train), ("holdout.csv", &split.holdout)] {
        std::fs::write(dir.join(name), csv_of(&split.features, &split.target, x, y)).map_err(io)?;
    }
    if !trained.holdout.is_empty() {
        let mut s = String::from("prediction\n");
        for (_, p) in &trained.holdout {
            s.push_str(&format!("{p:?}\n"));
        }
        std::fs::write(dir.join("predictions.csv"), s).map_err(io)?;
    }
    Ok(())
}

/// The model file of a committed version (model.json, or the attempt file its manifest names).
pub async fn load_model(
    registry: &Registry,
    model: &DatasetName,
    version: u64,
) -> Result<(Manifest, ModelFile)> {
    let manifest = registry.manifest(Layer::Models, model, version).await?;
    let lake = registry.lake();
    let mut rel = layout::model_file(model, version, "model.json");
    let mut bytes = medallion_lake::records::read_bytes(lake, &rel).await?;
    if bytes.is_none()
        && let Some(name) = manifest
            .details
            .get("files")
            .and_then(|f| f.get("model"))
            .and_then(Value::as_str)
    {
        rel = layout::model_file(model, version, name);
        bytes = medallion_lake::records::read_bytes(lake, &rel).await?;
    }
    let location = lake.url_of(&lake.path(&rel));
    let bytes = bytes.ok_or_else(|| Error::ModelFile {
        location: location.clone(),
        message: "missing; the version's files were deleted".into(),
    })?;
    let file =
        ModelFile::from_json(&bytes).map_err(|message| Error::ModelFile { location, message })?;
    Ok((manifest, file))
}

/// Evaluates the spec's gates; better_than_baseline compares the primary metric with the
/// `not_worse_than` alias (default `production`).
async fn gates(
    registry: &Registry,
    spec: &ModelSpec,
    model: &DatasetName,
    version: u64,
    metrics: &Metrics,
) -> Result<(Verdict, bool)> {
    let policy = spec.gates.clone().unwrap_or_else(|| Policy {
        thresholds: Vec::new(),
        not_worse_than: None,
        tolerance: 0.0,
        no_production: Default::default(),
        higher_is_better: Vec::new(),
        lower_is_better: Vec::new(),
        destructive: Default::default(),
        protected: Vec::new(),
        max_replicas: None,
        allowed_namespaces: Vec::new(),
        review: Default::default(),
    });
    let alias_name = policy
        .not_worse_than
        .clone()
        .unwrap_or_else(|| "production".into());
    let alias = DatasetName::new(&alias_name)?;
    let lake = registry.lake();
    // When the candidate is the production version itself (a retrain that found the version
    // trained before), it is compared with itself: not worse, and not better.
    let baseline = match models::alias(lake, model, &alias).await? {
        Some(a) => Baseline::Found {
            alias: alias_name.clone(),
            version: a.version,
            metrics: if a.version == version {
                metrics.clone()
            } else {
                models::metrics(lake, model, a.version).await?
            },
        },
        None => Baseline::Missing {
            alias: alias_name.clone(),
        },
    };
    let primary = match spec.task {
        Task::Regression => "rmse",
        Task::Clustering => "silhouette",
    };
    let better = match &baseline {
        Baseline::Found { metrics: base, .. } => {
            match (
                metrics.get(primary),
                base.get(primary),
                policy.higher_is_better(primary),
            ) {
                (Some(c), Some(b), Some(true)) => c > b,
                (Some(c), Some(b), Some(false)) => c < b,
                _ => false,
            }
        }
        Baseline::Missing { .. } => true,
        Baseline::None => false,
    };
    let used = if policy.not_worse_than.is_some() {
        baseline
    } else {
        Baseline::None
    };
    let verdict = policy.evaluate(Subject {
        metrics: Some(metrics),
        baseline: &used,
        plan: None,
    });
    Ok((verdict, better))
}

/// Trains (or finds) the model version for this data version and spec.
pub async fn train(registry: &Registry, req: TrainRequest) -> Result<TrainOutcome> {
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let model = req.spec.model_name()?;
    let data = frame::version(registry, req.layer, &req.dataset, req.version).await?;
    let spec_hash = req.spec.hash();
    let id = identity(registry, &data, &spec_hash);
    let pending = match registry.begin(Layer::Models, &model, Some(&id)).await? {
        Begin::Existing(m) => {
            tracing::info!(model = %model, version = m.version, "this data version and spec were trained before");
            return finish(registry, &req.spec, &model, *m, false).await;
        }
        Begin::Pending(p) => p,
    };
    let trained = fit_on(registry, &req.spec, &data).await?;
    let fit_seconds = clock.elapsed().as_secs_f64();
    if let Some(dir) = &req.export_split {
        export(dir, &trained)?;
    }
    let model_json = serde_json::to_vec_pretty(&trained.model)
        .map_err(|e| medallion_lake::Error::internal("encode model", e))?;
    let metrics_json = serde_json::to_vec_pretty(&trained.metrics)
        .map_err(|e| medallion_lake::Error::internal("encode metrics", e))?;
    let names = [
        format!("model-{}.json", pending.attempt),
        format!("metrics-{}.json", pending.attempt),
    ];
    let mut files = Vec::new();
    for (name, bytes) in names.iter().zip([&model_json, &metrics_json]) {
        if let Err(e) = put(registry, &pending.data_path(name), bytes.clone()).await {
            registry.abandon(&pending, &names, false).await;
            return Err(e);
        }
        files.push(DataFile {
            name: name.clone(),
            rows: 0,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        });
    }
    // Phases: reading and preparing the data, the model fit, cross-validation, the rest.
    let mut phases = BTreeMap::new();
    let mut accounted = 0.0;
    if let Some(secs) = trained.details.get("seconds").and_then(Value::as_object) {
        for (k, v) in secs {
            if let Some(x) = v.as_f64() {
                phases.insert(k.clone(), x);
                accounted += x;
            }
        }
    }
    phases.insert(
        "read_and_evaluate".to_string(),
        (fit_seconds - accounted).max(0.0),
    );
    let timings = Timings {
        started_at: started,
        finished_at: chrono::Utc::now(),
        phases,
    };
    let schema = arrow_schema::Schema::empty();
    let mut manifest = Manifest::new_version(
        Layer::Models,
        &model,
        pending.version,
        &schema,
        files,
        Producer::current(TOOL),
        timings,
    );
    manifest.rows = trained.metrics.get("train_rows").copied().unwrap_or(0.0) as u64;
    manifest.source = Some(id);
    manifest.parents = vec![VersionRef {
        layer: data.layer,
        dataset: data.dataset.clone(),
        version: data.version,
        content_sha256: Some(data.content_sha256.clone()),
    }];
    manifest.workflow = req.workflow.clone();
    let d = &mut manifest.details;
    d.insert("task".into(), json!(req.spec.task));
    d.insert("spec_sha256".into(), json!(spec_hash));
    d.insert("spec".into(), json!(req.spec));
    d.insert("metrics".into(), json!(trained.metrics));
    d.insert("features".into(), json!(trained.model.features));
    d.insert("training".into(), trained.details.clone());
    d.insert(
        "files".into(),
        json!({"model": names[0], "metrics": names[1]}),
    );
    let manifest = match registry.commit(pending, manifest).await? {
        Committed::Created(m) => *m,
        Committed::Existing(m) => return finish(registry, &req.spec, &model, *m, false).await,
    };
    // Readable names and the card, now that the version number is final.
    let v = manifest.version;
    put(
        registry,
        &layout::model_file(&model, v, "model.json"),
        model_json,
    )
    .await?;
    put(
        registry,
        &layout::model_file(&model, v, "metrics.json"),
        metrics_json,
    )
    .await?;
    let data_label = format!("{} {} v{}", data.layer, data.dataset, data.version);
    let html = card::render(&CardData {
        model: &trained.model,
        version: v,
        data: &data_label,
        data_sha256: &data.content_sha256,
        spec_sha256: &spec_hash,
        params: &fit::params(&req.spec),
        metrics: &json!(trained.metrics),
        holdout: &trained.holdout,
        points: &trained.points,
        axes: ("frequency", "monetary"),
    });
    put(
        registry,
        &layout::model_file(&model, v, "card.html"),
        html.into_bytes(),
    )
    .await?;
    finish(registry, &req.spec, &model, manifest, true).await
}

async fn finish(
    registry: &Registry,
    spec: &ModelSpec,
    model: &DatasetName,
    manifest: Manifest,
    created: bool,
) -> Result<TrainOutcome> {
    let metrics = models::metrics(registry.lake(), model, manifest.version).await?;
    let (verdict, better) = gates(registry, spec, model, manifest.version, &metrics).await?;
    let passed = verdict.decision != Decision::Rejected;
    let lake = registry.lake();
    let uri = |f: &str| lake.url_of(&lake.path(&layout::model_file(model, manifest.version, f)));
    Ok(TrainOutcome {
        model_uri: uri("model.json"),
        card_uri: uri("card.html"),
        created,
        metrics,
        verdict,
        passed,
        better_than_baseline: better,
        manifest,
    })
}
