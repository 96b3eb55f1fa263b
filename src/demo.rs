//! `medallion demo`, the README's command 1: the product's main job on bundled data, the way it
//! runs in production but on this machine. The bundled GloboRealty and GloboLatte files are
//! dropped into a local landing folder, their BlobCreated events are made and replayed through
//! the landing Sensor, and each Workflow it submits runs with `medallion run`'s engine and the
//! real step binaries, into a local lake.

use std::path::{Path, PathBuf};

use crate::events;
use crate::runner::RunOptions;

/// The step binaries the pipelines run; the demo needs them beside `medallion`.
const STEPS: &[&str] = &[
    "medallion-import",
    "medallion-refine",
    "medallion-profile",
    "medallion-train",
    "medallion-plan",
    "medallion-approve",
    "medallion-deploy",
    "medallion-serve",
];

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DemoError(String);

pub struct Demo {
    pub lake: String,
    pub landing: PathBuf,
    pub runs_dir: PathBuf,
    /// Where workflow-templates/, event-sources/ and examples/ are.
    pub repo: PathBuf,
    pub bin_dir: PathBuf,
    /// The local deploy target's state (slots, pointers, server logs).
    pub state_dir: PathBuf,
    /// Release the models that pass their gates to local medallion-serve endpoints.
    pub release: bool,
}

/// Copies `from` to `to` unless `to` already holds the same bytes (a re-run is the same upload).
fn drop_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).map_err(|e| {
        DemoError(format!(
            "{}: {e}; run the demo from the repository root or pass --repo",
            from.display()
        ))
    })?;
    if std::fs::read(to).ok().as_deref() == Some(&bytes[..]) {
        return Ok(());
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(to, bytes)?;
    Ok(())
}

pub fn run(demo: Demo) -> anyhow::Result<()> {
    for step in STEPS {
        if !demo.bin_dir.join(step).is_file() {
            return Err(DemoError(format!(
                "{} is not built; build the step binaries first: cargo build --release --workspace --bins",
                demo.bin_dir.join(step).display()
            ))
            .into());
        }
    }
    let r = &demo.repo;
    let uploads = [
        (
            r.join("examples/data/houses.csv"),
            demo.landing.join("houses/windsor/globorealty.csv"),
        ),
        (
            r.join("examples/data/sales.csv"),
            demo.landing.join("sales/mx/globolatte.csv"),
        ),
    ];
    let events_dir = demo.runs_dir.join("events");
    std::fs::create_dir_all(&events_dir)?;
    let mut event_files = Vec::new();
    for (from, to) in &uploads {
        drop_file(from, to)?;
        let event = events::blob_created(to, &demo.landing, "landing")?;
        let name = to
            .strip_prefix(&demo.landing)
            .unwrap_or(to)
            .display()
            .to_string()
            .replace('/', "-");
        let file = events_dir.join(format!("{name}.blob-created.json"));
        std::fs::write(&file, event)?;
        event_files.push(file.clone());
        println!(
            "dropped {} into the landing folder; its BlobCreated event: {}",
            to.display(),
            file.display()
        );
    }
    let sensor = r.join("event-sources");
    let fired = events::fire(&event_files, &[sensor])?;
    let workflows: Vec<serde_json::Value> = fired
        .into_iter()
        .map(|(file, _, t)| {
            println!("sensor {} → trigger {} for {file}", t.sensor, t.trigger);
            t.workflow
        })
        .collect();
    let options = RunOptions {
        file: PathBuf::new(),
        parameters: if demo.release {
            vec![
                ("lake".into(), demo.lake.clone()),
                ("deploy-target".into(), "local".into()),
            ]
        } else {
            vec![("lake".into(), demo.lake.clone())]
        },
        library: vec![r.join("workflow-templates")],
        bin_dir: demo.bin_dir.clone(),
        config_maps: [
            (
                "medallion-contracts".to_string(),
                r.join("examples/contracts"),
            ),
            (
                "medallion-model-specs".to_string(),
                r.join("examples/models"),
            ),
            (
                "medallion-policies".to_string(),
                r.join("examples/policies"),
            ),
        ]
        .into_iter()
        .collect(),
        runs_dir: demo.runs_dir.clone(),
        name: None,
        decision: None,
        supplied: Default::default(),
        // The demo installs nothing: the plugin (if a template ran one) serves the demo's lake.
        plugin_lake: Some(demo.lake.clone()),
        time_scale: 1.0,
        argo_version: Default::default(),
        step_env: vec![(
            "MEDALLION_STATE_DIR".into(),
            demo.state_dir.display().to_string(),
        )],
    };
    events::run_triggered(&workflows, options)?;
    if demo.release {
        for endpoint in ["house-price", "customer-segments"] {
            let ep = medallion_steps::local_endpoint::EndpointDir::new(&demo.state_dir, endpoint);
            if let Some(a) = ep.active()? {
                println!(
                    "\nendpoint {endpoint}: {} v{} serves at {} (KServe V2: GET {}/v2/models/{}; `medallion endpoint status {endpoint}`; stop with `medallion endpoint stop {endpoint}`)",
                    a.model, a.version, a.url, a.url, a.model
                );
            }
        }
    }
    println!(
        "\nThe lake is {}: `medallion lake list --lake {}` lists bronze and silver, `medallion model list --lake {}` the models; \
         each run's profile report and status are under {}; each model's card is models/<model>/v<N>/card.html in the lake.",
        demo.lake,
        demo.lake,
        demo.lake,
        demo.runs_dir.display()
    );
    Ok(())
}
