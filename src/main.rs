//! `medallion`: the human CLI. Progress bars and tables for a person at a terminal; the step
//! binaries (`medallion-<step>`) are what runs in pods.

mod approvals;
mod demo;
mod doctor;
mod endpoints_view;
mod events;
mod generate;
mod lake_view;
mod lint;
mod models_view;
mod plugin_manifest;
mod runner;
mod templates;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use medallion_lake::ingest::{ImportOutcome, ImportProgress};
use medallion_lake::{Classified, Error, Layer};
use medallion_quality::refine::RefineOutcome;
use medallion_steps::import::ImportArgs;
use medallion_steps::refine::RefineArgs;

/// Medallion: blob uploads to governed, versioned data and models on Argo Workflows.
#[derive(Parser)]
#[command(name = "medallion", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the main job on bundled data: drop the sample house and sales files into a local
    /// landing folder, replay their BlobCreated events through the landing Sensor, and run both
    /// pipelines (import, refine, profile, train) into a local lake with the step binaries
    Demo {
        /// Lake root
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
        /// The local landing folder (plays the landing blob container)
        #[arg(long, default_value = "./landing")]
        landing: PathBuf,
        /// Where the runs' folders (logs, reports, status.json) and the memo cache go
        #[arg(long, default_value = ".medallion/runs")]
        runs_dir: PathBuf,
        /// The repository checkout (workflow-templates/, event-sources/, examples/)
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Folder of the step binaries (default: this binary's folder)
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Where the released models' local servers keep their slots, pointers and logs
        #[arg(
            long,
            env = "MEDALLION_STATE_DIR",
            default_value = ".medallion/endpoints"
        )]
        state_dir: PathBuf,
        /// Stop after train: no release, no model server left running
        #[arg(long)]
        no_release: bool,
    },
    /// Import a file into a new bronze version (as the medallion-import step does), with progress
    Import {
        #[command(flatten)]
        args: ImportArgs,
    },
    /// Refine a bronze version into silver under a data contract (as the medallion-refine step does)
    Refine {
        #[command(flatten)]
        args: RefineArgs,
    },
    /// Train a model version from a lake version and a model spec (as the medallion-train step does)
    Train {
        #[command(flatten)]
        args: medallion_steps::train::TrainArgs,
    },
    /// The model registry: versions, aliases (production, staging, ...) and their history
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// See what a lake holds
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// Decide a gate waiting for a person (the plugin's `approve` when the policy asks for review),
    /// or list the waiting gates
    #[command(group(clap::ArgGroup::new("decision").required(true).args(["grant", "reject", "list"])))]
    Approve {
        /// Approve the waiting gate of this workflow (name or uid)
        #[arg(long, value_name = "WORKFLOW")]
        grant: Option<String>,
        /// Reject the waiting gate of this workflow (name or uid)
        #[arg(long, value_name = "WORKFLOW")]
        reject: Option<String>,
        /// List the gates waiting for a decision
        #[arg(long)]
        list: bool,
        /// With --list: also decided and expired ones
        #[arg(long, requires = "list")]
        all: bool,
        /// The gate, when the workflow has more than one waiting
        #[arg(long)]
        gate: Option<String>,
        /// The namespace, when workflows of the same name wait in several
        #[arg(long)]
        namespace: Option<String>,
        /// Who decides (recorded with the decision)
        #[arg(long, required_unless_present = "list")]
        by: Option<String>,
        /// Why (recorded with the decision)
        #[arg(long, required_unless_present = "list")]
        reason: Option<String>,
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
    },
    /// Return an endpoint to the release it served before (local target): the kept slot takes
    /// the traffic again, the production alias moves back, the rollback is recorded
    Rollback {
        /// The endpoint
        endpoint: String,
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
        /// Who rolls back (recorded)
        #[arg(long, default_value = "medallion rollback")]
        by: String,
        /// For endpoints released as manifests: the GitOps checkout they were written to
        #[arg(long, env = "MEDALLION_MANIFESTS_DIR")]
        manifests_dir: Option<PathBuf>,
        #[command(flatten)]
        local: medallion_steps::deploy::LocalArgs,
        /// For endpoints released to Kubernetes: the API server and token (default: in-cluster)
        #[command(flatten)]
        kube: medallion_steps::kube_apply::KubeArgs,
    },
    /// Endpoints: what serves where (the lake's release records and the local servers)
    Endpoint {
        #[command(subcommand)]
        command: EndpointCommand,
    },
    /// Is the cluster ready for Medallion? Argo Workflows and Argo Events (CRDs, versions,
    /// executor plugins), the plugin's ConfigMap, the artifact repository, the ConfigMaps the
    /// templates mount, the service accounts and what each may do (read-only; the cluster of
    /// the kubeconfig, in-cluster, or --kube-api)
    Doctor {
        #[command(flatten)]
        conn: medallion_steps::kube_apply::KubeConn,
        /// Where the WorkflowTemplates and Workflows live
        #[arg(long, default_value = "argo")]
        namespace: String,
        /// Where Argo Events and the landing Sensor live
        #[arg(long, default_value = "argo-events")]
        events_namespace: String,
        /// Where released models are served
        #[arg(long, default_value = "models")]
        models_namespace: String,
        /// Output format
        #[arg(long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
    },
    /// Check the Argo YAML offline as Argo and Argo Events judge it: their JSON schemas, the
    /// rules Argo applies at submission, what the controller, UI and Sensor do at run time,
    /// template references, `{{...}}` variables, images; each finding cites the Argo source line
    Lint {
        /// Folders or files, `-` for standard input (default: workflow-templates event-sources
        /// executor-plugin install)
        paths: Vec<PathBuf>,
        /// The Dockerfile whose `medallion-*` targets are the images templates may use
        #[arg(long, default_value = "Dockerfile")]
        dockerfile: PathBuf,
        /// The Argo Workflows release line the cluster runs (its schema and rules)
        #[arg(long, value_enum, default_value = "4.1")]
        argo_version: lint::ArgoVersionArg,
        /// Output format
        #[arg(long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
    },
    /// Run a WorkflowTemplate (or a Workflow referencing one) on this machine: tasks in DAG
    /// order, medallion-* images as the local binaries, suspend gates answered here
    Run {
        /// The WorkflowTemplate or Workflow file
        file: PathBuf,
        /// The Workflow's name (default: the template's name and a random suffix)
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        flags: RunFlags,
    },
    /// Argo Events, offline
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// WorkflowTemplate helpers
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Executor-plugin manifests
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Write a seeded, realistic source CSV (GloboRealty houses or GloboLatte sales)
    Generate {
        kind: generate::Kind,
        /// Data rows
        #[arg(long, default_value_t = 1000)]
        rows: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output file ('-' for stdout)
        #[arg(long, short)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum EndpointCommand {
    /// The release an endpoint serves, its history, and its local servers
    Status {
        endpoint: String,
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
        #[command(flatten)]
        local: medallion_steps::deploy::LocalArgs,
    },
    /// Stop an endpoint's local servers (both slots); the lake's records stay
    Stop {
        endpoint: String,
        #[command(flatten)]
        local: medallion_steps::deploy::LocalArgs,
    },
}

/// How `medallion run` and `medallion events replay --run` execute a workflow locally.
#[derive(clap::Args)]
struct RunFlags {
    /// A workflow parameter, name=value (repeatable)
    #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    /// Folders whose WorkflowTemplates templateRefs resolve to
    #[arg(long, default_value = "workflow-templates")]
    library: Vec<PathBuf>,
    /// Folder of the step binaries (default: this binary's folder)
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// A ConfigMap's local folder, NAME=DIR (repeatable; defaults: medallion-contracts=examples/contracts,
    /// medallion-model-specs=examples/models, medallion-policies=examples/policies, as the README creates them)
    #[arg(long = "config-map", value_name = "NAME=DIR")]
    config_maps: Vec<String>,
    /// Where run folders (node logs, outputs, artifacts, status.json) and the memo cache go
    #[arg(long, default_value = ".medallion/runs")]
    runs_dir: PathBuf,
    /// Answer every suspend gate with approve
    #[arg(long, conflicts_with = "reject")]
    approve: bool,
    /// Answer every suspend gate with reject
    #[arg(long)]
    reject: bool,
    /// A suspend node's supplied parameter, TASK.PARAM=VALUE (repeatable)
    #[arg(long, value_name = "TASK.PARAM=VALUE")]
    supply: Vec<String>,
    /// The lake the executor plugin serves, as it is configured for the plugin on a cluster
    /// (default: the file `lake` of --config-map medallion-settings=DIR); never the run's own
    /// `lake` parameter, which the plugin does not see
    #[arg(long)]
    plugin_lake: Option<String>,
    /// The Argo Workflows release line whose submission rules the run applies first
    #[arg(long, value_enum, default_value = "4.1")]
    argo_version: lint::ArgoVersionArg,
    /// Multiplies retry backoffs and suspend durations (0 = no waiting; for tests)
    #[arg(long, default_value_t = 1.0, hide = true)]
    time_scale: f64,
    /// Where local releases keep their servers' slots and pointers (medallion-deploy's local target)
    #[arg(
        long,
        env = "MEDALLION_STATE_DIR",
        default_value = ".medallion/endpoints"
    )]
    state_dir: PathBuf,
}

impl RunFlags {
    fn options(self, file: PathBuf, name: Option<String>) -> anyhow::Result<runner::RunOptions> {
        Ok(runner::RunOptions {
            file,
            parameters: pairs("-p", &self.parameters)?,
            library: self.library,
            bin_dir: self.bin_dir.map_or_else(own_dir, Ok)?,
            config_maps: default_config_maps()
                .into_iter()
                .chain(
                    pairs("--config-map", &self.config_maps)?
                        .into_iter()
                        .map(|(k, v)| (k, PathBuf::from(v))),
                )
                .collect(),
            runs_dir: self.runs_dir,
            name,
            decision: match (self.approve, self.reject) {
                (true, _) => Some(runner::Decision::Approve),
                (_, true) => Some(runner::Decision::Reject),
                _ => None,
            },
            supplied: pairs("--supply", &self.supply)?.into_iter().collect(),
            plugin_lake: self.plugin_lake,
            time_scale: self.time_scale,
            argo_version: self.argo_version.into(),
            step_env: vec![(
                "MEDALLION_STATE_DIR".into(),
                self.state_dir.display().to_string(),
            )],
        })
    }
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Apply Sensors' filters and parameter mapping to Event Grid events and print the
    /// Workflows they would submit (nothing matching: an empty list, still exit 0)
    Replay {
        /// Event files: a JSON event, a JSON array (Event Grid push), or base64 JSON (a queue message)
        #[arg(required = true)]
        events: Vec<PathBuf>,
        /// The event path: folders or files with the EventSources (their filters run first)
        /// and the Sensors
        #[arg(long, default_value = "event-sources")]
        sensor: Vec<PathBuf>,
        /// text (the Workflows as YAML) or json ({"triggered": [{"sensor", "trigger", "workflow"}]})
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// Then run each triggered Workflow on this machine (as `medallion run` does)
        #[arg(long)]
        run: bool,
        #[command(flatten)]
        flags: RunFlags,
    },
    /// Write the BlobCreated event Event Grid would send for a file in a local landing folder
    /// (url file://..., subject under the landing container, an ETag from the content)
    BlobCreated {
        /// The file, inside the landing folder
        file: PathBuf,
        /// The landing folder (plays the landing container)
        #[arg(long, default_value = "landing")]
        landing: PathBuf,
        /// The container name the subject carries
        #[arg(long, default_value = "landing")]
        container: String,
        /// Write here instead of stdout
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// The ClusterWorkflowTemplate copy of a WorkflowTemplate (for templateRef clusterScope: true)
    Cluster {
        #[arg(default_value = "workflow-templates/medallion-steps.yaml")]
        template: PathBuf,
        /// Write here instead of stdout
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// The ConfigMap `argo executor-plugin build` makes from a plugin.yaml (what the controller reads)
    Configmap {
        /// The plugin manifest
        #[arg(default_value = "executor-plugin/plugin.yaml")]
        manifest: PathBuf,
        /// Write here instead of stdout
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Datasets and versions with rows, size, source and time
    List {
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
        /// Only this layer
        #[arg(long)]
        layer: Option<Layer>,
        /// Only this dataset
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Files no manifest names (left by crashed or losing writers); deleted with --delete
    Gc {
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
        #[arg(long, default_value = "bronze")]
        layer: Layer,
        /// Only this dataset (default: every dataset of the layer)
        #[arg(long)]
        dataset: Option<String>,
        /// Leave files younger than this alone (a write may still be in progress)
        #[arg(long, default_value_t = 3600)]
        older_than_secs: u64,
        /// Delete what is found (default: only list it)
        #[arg(long)]
        delete: bool,
    },
    /// One version's manifest (the latest when no version is given)
    Show {
        dataset: String,
        version: Option<u64>,
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
        #[arg(long, default_value = "bronze")]
        layer: Layer,
    },
}

#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Models, their versions (data, metrics) and which aliases name them
    List {
        /// Only this model
        model: Option<String>,
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
    },
    /// A version's manifest (lineage, metrics, gates) and where its card is
    Show {
        model: String,
        #[arg(long, conflicts_with = "alias")]
        version: Option<u64>,
        #[arg(long)]
        alias: Option<String>,
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
    },
    /// Move an alias to a version (compare-and-swap: fails with exit 3 if it moved meanwhile),
    /// or print its history
    #[command(group(clap::ArgGroup::new("what").required(true).args(["version", "history"])))]
    Alias {
        model: String,
        alias: String,
        /// The version the alias should name
        #[arg(long)]
        version: Option<u64>,
        /// Only move if the alias names this version now ('none': only if it does not exist)
        #[arg(long, requires = "version")]
        expect: Option<String>,
        /// Who moves it (recorded)
        #[arg(long, requires = "version", default_value = "cli")]
        by: String,
        /// Why (recorded)
        #[arg(long, requires = "version")]
        reason: Option<String>,
        /// Print every move of the alias instead
        #[arg(long)]
        history: bool,
        #[arg(long, env = "MEDALLION_LAKE", default_value = "./lake")]
        lake: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("medallion: error: {e:#}");
            ExitCode::from(exit_code_of(&e))
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{flag} {value:?}: expected NAME=VALUE")]
struct ParameterError {
    flag: &'static str,
    value: String,
}

/// `name=value` flags as pairs.
fn pairs(flag: &'static str, list: &[String]) -> Result<Vec<(String, String)>, ParameterError> {
    list.iter()
        .map(|p| {
            p.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| ParameterError {
                    flag,
                    value: p.clone(),
                })
        })
        .collect()
}

/// The folder this binary lives in (the step binaries are built beside it).
fn own_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".")))
}

/// The ConfigMaps the step library mounts, from the folders the README creates them from.
fn default_config_maps() -> Vec<(String, PathBuf)> {
    vec![
        (
            "medallion-contracts".into(),
            PathBuf::from("examples/contracts"),
        ),
        (
            "medallion-model-specs".into(),
            PathBuf::from("examples/models"),
        ),
        (
            "medallion-policies".into(),
            PathBuf::from("examples/policies"),
        ),
    ]
}

/// The exit code of a library error (2 bad input, 3 precondition, 1 anything else).
fn exit_code_of(e: &anyhow::Error) -> u8 {
    if let Some(r) = e.downcast_ref::<runner::RunError>() {
        r.exit_code()
    } else if let Some(d) = e.downcast_ref::<doctor::DoctorError>() {
        d.exit_code()
    } else if let Some(l) = e.downcast_ref::<Error>() {
        l.exit_code()
    } else if let Some(q) = e.downcast_ref::<medallion_quality::Error>() {
        q.class().exit_code()
    } else if let Some(r) = e.downcast_ref::<medallion_release::Error>() {
        r.class().exit_code()
    } else if let Some(m) = e.downcast_ref::<medallion_model::Error>() {
        m.class().exit_code()
    } else if let Some(c) = e.downcast_ref::<medallion_connect::Error>() {
        c.exit_code()
    } else if let Some(d) = e.downcast_ref::<medallion_steps::deploy::DeployError>() {
        d.class().exit_code()
    } else if e.downcast_ref::<plugin_manifest::ManifestError>().is_some()
        || e.downcast_ref::<medallion_argo::sensor::SensorError>()
            .is_some()
        || e.downcast_ref::<lint::LintError>().is_some()
        || e.downcast_ref::<ParameterError>().is_some()
        || e.downcast_ref::<demo::DemoError>().is_some()
    {
        2
    } else {
        1
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = medallion_steps::runtime()?;
    match cli.command {
        Command::Demo {
            lake,
            landing,
            runs_dir,
            repo,
            bin_dir,
            state_dir,
            no_release,
        } => {
            demo::run(demo::Demo {
                lake: lake.clone(),
                landing,
                runs_dir,
                repo,
                bin_dir: bin_dir.map_or_else(own_dir, Ok)?,
                state_dir,
                release: !no_release,
            })?;
            println!();
            runtime.block_on(lake_view::list(&lake, None, None))?;
        }
        Command::Import { args } => {
            let outcome = import_with_progress(&runtime, &args)?;
            print_outcome(&outcome);
        }
        Command::Refine { args } => {
            let refined = runtime.block_on(medallion_steps::refine::run(&args))?;
            print_refined(&refined);
        }
        Command::Train { args } => {
            let trained = runtime.block_on(medallion_steps::train::run(&args))?;
            print_trained(&trained);
        }
        Command::Rollback {
            endpoint,
            lake,
            by,
            manifests_dir,
            local,
            kube,
        } => {
            let done = runtime.block_on(medallion_steps::deploy::rollback(
                &lake,
                &endpoint,
                &local,
                manifests_dir.as_deref(),
                &kube,
                &by,
            ))?;
            let s = &done.state;
            println!(
                "{endpoint}: rolled back to {} v{} (plan {}) on {} at {}{}; {} v{} stays on {}",
                s.serving.model,
                s.serving.version,
                s.serving.plan_id,
                s.serving.slot,
                done.url,
                if done.restarted { " (restarted)" } else { "" },
                s.previous.as_ref().map_or("", |p| p.model.as_str()),
                s.previous.as_ref().map_or(0, |p| p.version),
                s.previous.as_ref().map_or("", |p| p.slot.as_str()),
            );
        }
        Command::Doctor {
            conn,
            namespace,
            events_namespace,
            models_namespace,
            format,
        } => {
            let namespaces = doctor::Namespaces {
                workflows: namespace,
                events: events_namespace,
                models: models_namespace,
            };
            let checks = runtime.block_on(doctor::checks(&conn, namespaces))?;
            doctor::report(&checks, format == "json")?;
        }
        Command::Endpoint { command } => match command {
            EndpointCommand::Status {
                endpoint,
                lake,
                local,
            } => runtime.block_on(endpoints_view::status(&lake, &endpoint, &local))?,
            EndpointCommand::Stop { endpoint, local } => {
                let stopped = medallion_steps::deploy::stop_local(&local, &endpoint)?;
                if stopped.is_empty() {
                    println!("{endpoint}: no local server was running");
                }
                for p in stopped {
                    println!(
                        "{endpoint}: stopped {} ({} v{}, pid {}, port {})",
                        p.slot, p.model, p.version, p.pid, p.port
                    );
                }
            }
        },
        Command::Model { command } => match command {
            ModelCommand::List { model, lake } => {
                runtime.block_on(models_view::list(&lake, model.as_deref()))?
            }
            ModelCommand::Show {
                model,
                version,
                alias,
                lake,
            } => runtime.block_on(models_view::show(&lake, &model, version, alias.as_deref()))?,
            ModelCommand::Alias {
                model,
                alias,
                version,
                expect,
                by,
                reason,
                history,
                lake,
            } => match version {
                Some(version) if !history => {
                    runtime.block_on(models_view::move_alias(models_view::Move {
                        lake,
                        model,
                        alias,
                        version,
                        expect,
                        by,
                        reason,
                    }))?
                }
                _ => runtime.block_on(models_view::history(&lake, &model, &alias))?,
            },
        },
        Command::Approve {
            grant,
            reject,
            list,
            all,
            gate,
            namespace,
            by,
            reason,
            lake,
        } => {
            let decision = match (grant, reject) {
                (Some(w), _) => Some((w, medallion_release::approval::Verdict::Granted)),
                (None, Some(w)) => Some((w, medallion_release::approval::Verdict::Rejected)),
                (None, None) => None,
            };
            match decision {
                Some((workflow, verdict)) if !list => {
                    runtime.block_on(approvals::decide(approvals::Decide {
                        lake,
                        workflow,
                        verdict,
                        gate,
                        namespace,
                        by: by.unwrap_or_default(),
                        reason: reason.unwrap_or_default(),
                    }))?
                }
                _ => runtime.block_on(approvals::list(&lake, all))?,
            }
        }
        Command::Lint {
            paths,
            dockerfile,
            argo_version,
            format,
        } => {
            let paths = if paths.is_empty() {
                lint::DEFAULT_DIRS.iter().map(PathBuf::from).collect()
            } else {
                paths
            };
            lint::run(&paths, &dockerfile, argo_version.into(), format == "json")?;
        }
        Command::Run { file, name, flags } => {
            runner::run(flags.options(file, name)?)?;
        }
        Command::Events { command } => match command {
            EventsCommand::Replay {
                events,
                sensor,
                format,
                run,
                flags,
            } => {
                let workflows = events::replay(&events, &sensor, format == "json")?;
                if run {
                    events::run_triggered(&workflows, flags.options(PathBuf::new(), None)?)?;
                }
            }
            EventsCommand::BlobCreated {
                file,
                landing,
                container,
                out,
            } => write_or_print(out, events::blob_created(&file, &landing, &container)?)?,
        },
        Command::Templates { command } => match command {
            TemplatesCommand::Cluster { template, out } => {
                write_or_print(out, templates::cluster_copy(&template)?)?
            }
        },
        Command::Plugin { command } => match command {
            PluginCommand::Configmap { manifest, out } => {
                write_or_print(out, plugin_manifest::configmap_yaml(&manifest)?)?
            }
        },
        Command::Lake { command } => match command {
            LakeCommand::List {
                lake,
                layer,
                dataset,
            } => runtime.block_on(lake_view::list(&lake, layer, dataset.as_deref()))?,
            LakeCommand::Gc {
                lake,
                layer,
                dataset,
                older_than_secs,
                delete,
            } => runtime.block_on(lake_view::gc(
                &lake,
                layer,
                dataset.as_deref(),
                older_than_secs,
                delete,
            ))?,
            LakeCommand::Show {
                dataset,
                version,
                lake,
                layer,
            } => runtime.block_on(lake_view::show(&lake, layer, &dataset, version))?,
        },
        Command::Generate {
            kind,
            rows,
            seed,
            out,
        } => {
            if out.as_os_str() == "-" {
                let stdout = std::io::stdout();
                let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
                generate::write_csv(kind, rows, seed, &mut w)?;
            } else {
                let file = std::fs::File::create(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
                generate::write_csv(kind, rows, seed, &mut w)?;
                std::io::Write::flush(&mut w)?;
                eprintln!("wrote {} rows to {}", rows, out.display());
            }
        }
    }
    Ok(())
}

fn import_with_progress(
    runtime: &tokio::runtime::Runtime,
    args: &ImportArgs,
) -> anyhow::Result<ImportOutcome> {
    let progress = Arc::new(ImportProgress::default());
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let size = std::fs::metadata(args.source.as_deref().unwrap_or_default())
        .map(|m| m.len())
        .unwrap_or(0);
    bar.set_length(size);
    let watcher = {
        let (bar, progress) = (bar.clone(), progress.clone());
        std::thread::spawn(move || {
            while !bar.is_finished() {
                let msg = match progress.phase() {
                    ImportProgress::HASHING => "hashing",
                    ImportProgress::CONVERTING => "converting",
                    _ => "committing",
                };
                bar.set_message(msg);
                bar.set_position(progress.bytes.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let result = runtime.block_on(medallion_steps::import::run(args, Some(progress)));
    bar.finish_and_clear();
    let _ = watcher.join();
    Ok(result?)
}

fn print_trained(t: &medallion_model::train::TrainOutcome) {
    let m = &t.manifest;
    let verb = if t.created {
        "trained"
    } else {
        "already trained as"
    };
    let metrics: Vec<String> = t
        .metrics
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "rows" | "train_rows" | "customers"))
        .map(|(k, v)| format!("{k}={v:.4}"))
        .collect();
    println!(
        "{verb} model {} v{}: {}",
        m.dataset,
        m.version,
        metrics.join(" ")
    );
    println!(
        "  gates {}: {}; better than production: {}",
        if t.passed { "passed" } else { "FAILED" },
        t.verdict.reasons(),
        t.better_than_baseline
    );
    println!("  card: {}", t.card_uri);
}

fn print_refined(r: &RefineOutcome) {
    let m = &r.manifest;
    let verb = if r.created {
        "created"
    } else {
        "already refined as"
    };
    println!(
        "{verb} silver {} v{}: {} rows, {} rejected, {} duplicates ({})",
        m.dataset, m.version, m.rows, r.rejected, r.duplicates, r.uri
    );
}

fn print_outcome(outcome: &ImportOutcome) {
    let m = &outcome.manifest;
    let verb = if outcome.created {
        "created"
    } else {
        "already imported as"
    };
    println!(
        "{} {} v{}: {} rows, {} columns, {} → {} ({})",
        verb,
        m.dataset,
        m.version,
        m.rows,
        m.schema.len(),
        lake_view::human_bytes(outcome.source_bytes),
        lake_view::human_bytes(m.bytes),
        outcome.uri
    );
    if let Some(q) = &m.quarantine {
        println!(
            "  {} bad rows quarantined in quarantine/{}/{}/v{}/{}",
            q.rows, m.layer, m.dataset, m.version, q.file
        );
    }
}

/// Writes generated text to `out`, or prints it.
fn write_or_print(out: Option<PathBuf>, text: String) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
