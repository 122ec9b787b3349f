//! `codeclab run`: the lab's main job. Opens the data directory (or a shared database and
//! bucket), makes sure the corpus and the anchor curves are there, and runs the planner loop with
//! local workers measuring its experiments, until the run ends or Ctrl-C (gracefully: jobs in
//! progress go back to the queue, the run resumes at the next start). After a `kill -9`, running
//! it again resumes too: expired leases return their jobs to the queue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::candidate::{Candidates, Policy, Project};
use codeclab_lab::config::{LabConfig, PlannerKind};
use codeclab_lab::planner::evolve::EvolvePlanner;
use codeclab_lab::planner::llm::LlmPlanner;
use codeclab_lab::planner::run_loop::{LoopOptions, LoopSummary, run_loop, store_report};
use codeclab_lab::secrets::Secrets;
use codeclab_lab::worker::{WorkerConfig, WorkerEvent, WorkerStats, run_worker};
use codeclab_lab::{Lab, Store};
use tokio::sync::{mpsc, watch};

/// Where the lab keeps its records and artifacts.
#[derive(Args, Clone, Debug)]
pub struct LabArgs {
    /// Data directory: corpus, SQLite database, artifacts and scratch space.
    #[arg(long, env = "CODECLAB_DATA", default_value = "./codeclab-data")]
    pub data_dir: PathBuf,
    /// Database URL (`postgres://...` or `sqlite:PATH`); default: SQLite in the data directory.
    #[arg(long, env = "CODECLAB_DATABASE")]
    pub database: Option<String>,
    /// Artifact store (`s3://BUCKET[/PREFIX]` or a folder); default: DATA_DIR/artifacts.
    #[arg(long, env = "CODECLAB_ARTIFACTS")]
    pub artifacts: Option<String>,
}

impl LabArgs {
    pub async fn open(&self) -> anyhow::Result<Lab> {
        let store = match &self.database {
            Some(url) => Store::open(url).await,
            None => Store::open_data_dir(&self.data_dir).await,
        }
        .context("opening the database")?;
        let artifacts_url = self
            .artifacts
            .clone()
            .unwrap_or_else(|| self.data_dir.join("artifacts").display().to_string());
        let artifacts = Artifacts::open(&artifacts_url).context("opening the artifact store")?;
        let mut lab = Lab::new(store, artifacts, self.data_dir.clone());
        lab.adapters.secrets = Secrets::from_environment([], self.database.as_deref());
        Ok(lab)
    }

    /// [`LabArgs::open`], with the secrets `config` names (its API key variable) scrubbed too.
    pub async fn open_configured(&self, config: &LabConfig) -> anyhow::Result<Lab> {
        let mut lab = self.open().await?;
        let api_key = Some(config.llm.api_key_env.as_str()).filter(|name| !name.is_empty());
        lab.adapters
            .secrets
            .extend(&Secrets::from_environment(api_key, []));
        Ok(lab)
    }
}

/// How local workers run.
#[derive(Args, Clone, Debug)]
pub struct WorkerArgs {
    /// Lease of a claimed job, in seconds: another worker takes the job over when it expires.
    #[arg(long, default_value_t = 60.0)]
    pub lease_seconds: f64,
    /// Heartbeat period, in seconds (renews the lease).
    #[arg(long, default_value_t = 10.0)]
    pub heartbeat_seconds: f64,
    /// Attempts a job gets before a lost lease fails it.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i64,
}

impl WorkerArgs {
    pub fn config(&self, index: usize, exit_when_idle: bool) -> anyhow::Result<WorkerConfig> {
        anyhow::ensure!(
            self.lease_seconds > 0.0 && self.heartbeat_seconds > 0.0,
            "lease and heartbeat must be positive"
        );
        anyhow::ensure!(
            self.heartbeat_seconds < self.lease_seconds,
            "the heartbeat must come more often than the lease expires"
        );
        let mut config = WorkerConfig::new(index);
        config.lease = Duration::from_secs_f64(self.lease_seconds);
        config.heartbeat = Duration::from_secs_f64(self.heartbeat_seconds);
        config.exit_when_idle = exit_when_idle;
        Ok(config)
    }
}

/// Which planner `codeclab run` drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlannerChoice {
    /// Offline evolutionary search over the genome (no network).
    Evolve,
    /// A language model, configured in the `[llm]` section of the configuration.
    Llm,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Lab configuration (TOML: planner, evaluation, budget, goals, alerts); default:
    /// DATA_DIR/codeclab.toml, or the embedded defaults when that file does not exist.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The planner (overrides the configuration).
    #[arg(long, value_enum)]
    pub planner: Option<PlannerChoice>,
    /// Seed of the planner's random choices (overrides the configuration).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Experiments the planner run may submit in all (the reference, its proposals and the
    /// holdout validation); the run then ends.
    #[arg(long)]
    pub max_experiments: Option<u64>,
    /// Local workers (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Only measure what is queued, without the planner, and stop when the queue is empty.
    #[arg(long, conflicts_with_all = ["planner", "seed", "max_experiments"])]
    pub until_idle: bool,
    /// Do not queue missing anchor curves at start.
    #[arg(long)]
    pub no_baseline: bool,
    /// Print worker events and the final summary as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Where the dashboard listens (loopback unless told otherwise).
    #[arg(long, default_value_t = codeclab_web::DEFAULT_BIND)]
    pub bind: std::net::SocketAddr,
    /// Do not serve the dashboard.
    #[arg(long)]
    pub no_dashboard: bool,
}

impl RunArgs {
    /// The configuration with the command line's overrides.
    fn lab_config(&self) -> anyhow::Result<LabConfig> {
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| self.lab.data_dir.join("codeclab.toml"));
        let mut config = LabConfig::load(&path)?;
        if let Some(planner) = self.planner {
            config.planner.kind = match planner {
                PlannerChoice::Evolve => PlannerKind::Evolve,
                PlannerChoice::Llm => PlannerKind::Llm,
            };
        }
        if let Some(seed) = self.seed {
            config.planner.seed = seed;
        }
        Ok(config)
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let config = args.lab_config()?;
        let lab = args.lab.open_configured(&config).await?;
        let lab = Arc::new(Lab {
            max_attempts: args.worker.max_attempts,
            ..lab
        });
        lab.ensure_corpus().context("preparing the corpus")?;
        if !args.no_baseline {
            let entries = lab.baseline(&config.evaluation.anchors, &[]).await?;
            let queued = entries.iter().filter(|e| e.status == "queued").count();
            tracing::info!("anchors: {} curves, {queued} newly queued", entries.len());
        }
        let workers = args.workers.unwrap_or_else(default_workers);
        let shutdown = shutdown_on_ctrl_c();
        if !args.no_dashboard {
            let config = super::serve::dashboard_config(&lab, args.bind).await?;
            let lab = lab.clone();
            let stop = shutdown.subscribe();
            // The lab goes on without its dashboard (e.g. when the port is taken).
            tokio::spawn(async move {
                if let Err(error) = codeclab_web::serve(lab, config, stop).await {
                    tracing::error!("the dashboard stopped: {error:#}");
                }
            });
        }
        if args.until_idle {
            let stats = run_workers(lab, &args.worker, workers, true, args.json, &shutdown).await?;
            print_stats(&stats, args.json);
            return Ok(());
        }
        let options = LoopOptions {
            max_experiments: args.max_experiments,
            parallel: match config.planner.parallel {
                0 => workers,
                n => n as usize,
            },
            candidates: None,
            binaries_dir: args.lab.data_dir.join("candidates").join("binaries"),
            poll: Duration::from_secs(1),
        };
        // Workers keep measuring until the planner run ends and the queue is drained, or until
        // Ctrl-C (which also ends the run, resumable).
        let workers_done = shutdown.clone();
        let workers_task = {
            let lab = lab.clone();
            let worker = args.worker.clone();
            let json = args.json;
            tokio::spawn(async move {
                run_workers(lab, &worker, workers, false, json, &workers_done).await
            })
        };
        let summary = match config.planner.kind {
            PlannerKind::Evolve => {
                let mut planner = EvolvePlanner::new(&config.planner);
                run_loop(
                    lab.clone(),
                    &mut planner,
                    &config,
                    options,
                    shutdown.subscribe(),
                )
                .await
            }
            PlannerKind::Llm => {
                let candidates = Arc::new(codec_candidates(&lab)?);
                let mut planner = LlmPlanner::new(
                    config.llm.client_config(&config.budget.prices),
                    lab.store.clone(),
                    candidates.original().clone(),
                    Policy::default(),
                )
                .map_err(|kind| anyhow::anyhow!("the LLM client: {kind}"))?
                .with_secrets(&lab.adapters.secrets);
                let options = LoopOptions {
                    candidates: Some(candidates),
                    ..options
                };
                run_loop(
                    lab.clone(),
                    &mut planner,
                    &config,
                    options,
                    shutdown.subscribe(),
                )
                .await
            }
        };
        let mut summary = match summary {
            Ok(summary) => summary,
            Err(error) => {
                let _ = shutdown.send(true);
                let _ = workers_task.await;
                return Err(error).context("the planner loop");
            }
        };
        let drained = !*shutdown.borrow() && drain_queue(&lab, &shutdown).await?;
        let _ = shutdown.send(true);
        let stats = workers_task.await??;
        if drained {
            // The anchors measured after the loop ended complete its programs' analyses.
            summary.report_keys =
                store_report(&lab, &config, &summary.run_id, summary.started_at).await?;
        }
        print_stats(&stats, args.json);
        print_summary(&summary, args.json);
        Ok(())
    })
}

/// The pipeline code candidates of the lab's codec take, built under `DATA_DIR/candidates`.
pub fn codec_candidates(lab: &Lab) -> anyhow::Result<Candidates> {
    let repository = codec_repository().context(
        "code candidates edit the codec's sources: run from the codeclab source tree or set \
         CODECLAB_SOURCE to it",
    )?;
    Ok(Candidates::new(
        Project::LabCodec { repository },
        &lab.data_dir.join("candidates"),
        Policy::default(),
    )
    .context("reading the codec's sources")?
    .with_secrets(lab.adapters.secrets.clone()))
}

/// The codeclab source tree whose codec candidates edit: `CODECLAB_SOURCE`, or the nearest
/// ancestor of the working directory holding `crates/codec`.
fn codec_repository() -> Option<PathBuf> {
    let is_repository = |dir: &std::path::Path| dir.join("crates/codec/Cargo.toml").is_file();
    if let Some(dir) = std::env::var_os("CODECLAB_SOURCE") {
        return Some(PathBuf::from(dir)).filter(|d| is_repository(d));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|dir| is_repository(dir))
        .map(std::path::Path::to_path_buf)
}

/// Waits until no job is queued or running: whether it had to wait and the queue drained
/// (false when it was empty or on Ctrl-C).
async fn drain_queue(lab: &Lab, shutdown: &watch::Sender<bool>) -> anyhow::Result<bool> {
    let mut stop = shutdown.subscribe();
    let mut waited = false;
    loop {
        let counts = lab.store.queue_counts().await?;
        if counts.queued == 0 && counts.running == 0 {
            return Ok(waited);
        }
        waited = true;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return Ok(false),
        }
    }
}

fn print_summary(summary: &LoopSummary, json: bool) {
    if json {
        println!("{}", serde_json::json!({ "run": summary }));
        return;
    }
    println!(
        "planner run {}: {} experiments ({} measured, {} failed), {} rejected turns; {}",
        summary.run_id,
        summary.experiments,
        summary.measured,
        summary.failed,
        summary.rejected,
        summary.stop_reason
    );
    match summary.best {
        Some((id, fitness)) => println!(
            "best: experiment {id}, BD-rate {fitness:+.2} % vs the reference on the dev clips{}",
            summary
                .best_encode_time_ratio
                .map(|r| format!(", encoding {r:.2}x the reference's CPU time"))
                .unwrap_or_default()
        ),
        None => println!("best: no candidate beat the reference on the dev clips"),
    }
    if let Some((id, fitness)) = summary.best_at_reference_effort {
        println!(
            "best at no more encoder effort than the reference: experiment {id}, BD-rate \
             {fitness:+.2} % on the dev clips"
        );
    }
    if let Some(holdout) = &summary.holdout {
        println!(
            "holdout: BD-rate {:+.2} % vs the reference (experiments {} vs {})",
            holdout.mean, holdout.candidate_experiment, holdout.reference_experiment
        );
    }
    if !summary.report_keys.is_empty() {
        println!("report: {}", summary.report_keys.join(", "));
    }
}

pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn print_stats(stats: &WorkerStats, json: bool) {
    if json {
        println!("{}", serde_json::json!({ "summary": stats }));
    } else {
        println!(
            "jobs done {}, failed {}, lost {}; experiments analysed {}",
            stats.jobs_done, stats.jobs_failed, stats.jobs_lost, stats.experiments_analysed
        );
    }
}

/// A shutdown signal that Ctrl-C raises.
pub fn shutdown_on_ctrl_c() -> watch::Sender<bool> {
    let (shutdown, _) = watch::channel(false);
    let signal = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping: jobs in progress go back to the queue");
            let _ = signal.send(true);
        }
    });
    shutdown
}

/// Runs `count` workers in this process until `shutdown` (or until idle), with a progress
/// display (or JSON event lines).
pub async fn run_workers(
    lab: Arc<Lab>,
    worker: &WorkerArgs,
    count: usize,
    until_idle: bool,
    json: bool,
    shutdown: &watch::Sender<bool>,
) -> anyhow::Result<WorkerStats> {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<WorkerEvent>();
    let mut handles = Vec::new();
    for index in 0..count.max(1) {
        let config = worker.config(index, until_idle)?;
        handles.push(tokio::spawn(run_worker(
            lab.clone(),
            config,
            shutdown.subscribe(),
            Some(events_tx.clone()),
        )));
    }
    drop(events_tx);
    let counts = lab.store.queue_counts().await?;
    let bar = crate::progress::bar(Some(counts.queued as u64 + counts.running as u64), "jobs");
    while let Some(event) = events_rx.recv().await {
        if json {
            println!("{}", serde_json::to_string(&event)?);
        }
        match &event {
            WorkerEvent::Done { .. } => bar.inc(1),
            WorkerEvent::Failed {
                experiment, reason, ..
            } => {
                bar.inc(1);
                if !json {
                    bar.println(format!("experiment {experiment} failed: {reason}"));
                }
            }
            WorkerEvent::Claimed { .. } | WorkerEvent::Analysed { .. } => {}
        }
    }
    bar.finish_and_clear();
    let mut total = WorkerStats::default();
    for handle in handles {
        let stats = handle.await??;
        total.jobs_done += stats.jobs_done;
        total.jobs_failed += stats.jobs_failed;
        total.jobs_lost += stats.jobs_lost;
        total.experiments_analysed += stats.experiments_analysed;
    }
    Ok(total)
}

#[derive(Args)]
pub struct BenchLabArgs {
    /// Experiments in the run (each: the lab codec, default genome, on the carphone clip at
    /// QP 22, 27, 32 and 37, measured like any experiment, callgrind included when installed).
    #[arg(long, default_value_t = 4)]
    pub experiments: usize,
    /// Local workers.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Data directory to reuse (its corpus saves decoding the clip again); default: a temporary one.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// `codeclab bench lab`: experiments per hour through the whole lab (queue, workers, runner,
/// metrics, store, artifacts) for the standard 4-point experiment on carphone.
pub fn bench(args: BenchLabArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let temporary = tempfile::tempdir()?;
        let data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| temporary.path().to_path_buf());
        let lab_args = LabArgs {
            data_dir: data_dir.clone(),
            database: None,
            artifacts: None,
        };
        let lab = lab_args.open().await?;
        lab.ensure_corpus().context("preparing the corpus")?;
        let spec = codeclab_lab::experiment::ExperimentSpec {
            codec: serde_json::json!({"kind": "lab"}),
            parents: Vec::new(),
            proposer: "bench".into(),
            hypothesis: "throughput of the lab".into(),
            clips: vec!["carphone_qcif".into()],
            rate_points: [22, 27, 32, 37]
                .map(codeclab_lab::spec::RatePoint::Qp)
                .to_vec(),
            anchors: Vec::new(),
        };
        let mut ids = Vec::new();
        for _ in 0..args.experiments {
            ids.push(lab.submit(&spec, None).await?.id);
        }
        let worker = WorkerArgs {
            lease_seconds: 300.0,
            heartbeat_seconds: 10.0,
            max_attempts: 3,
        };
        let start = std::time::Instant::now();
        let lab = Arc::new(lab);
        run_workers(
            lab.clone(),
            &worker,
            args.workers,
            true,
            false,
            &shutdown_on_ctrl_c(),
        )
        .await?;
        let seconds = start.elapsed().as_secs_f64();
        let mut analysed = 0;
        for id in &ids {
            if let Some(record) = lab.store.experiment(*id).await? {
                anyhow::ensure!(
                    record.state == codeclab_lab::store::ExperimentState::Analysed,
                    "bench experiment {id} ended {}: {}",
                    record.state,
                    record.reason.unwrap_or_default()
                );
                analysed += 1;
            }
        }
        let per_hour = analysed as f64 * 3600.0 / seconds;
        let cores = default_workers();
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "experiments": analysed,
                    "seconds": seconds,
                    "experiments_per_hour": per_hour,
                    "workers": args.workers,
                    "cores": cores,
                    "callgrind": lab.runner.valgrind.is_some() && lab.adapters.lab_prefix_decoder.is_some(),
                })
            );
        } else {
            println!(
                "lab: {analysed} experiments (carphone_qcif, 4 QPs) in {seconds:.1} s with {} workers on {cores} cores: {per_hour:.1} experiments/hour{}",
                args.workers,
                if lab.runner.valgrind.is_some() && lab.adapters.lab_prefix_decoder.is_some() {
                    " (decoder instructions counted)"
                } else {
                    " (decoder instructions not counted)"
                }
            );
        }
        Ok(())
    })
}
