//! Shared test set-up: lab data directories with small generated clips, and the real servers
//! (PostgreSQL, S3-compatible) the test command starts.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::config::LabConfig;
use codeclab_lab::planner::Planner;
use codeclab_lab::planner::run_loop::{LoopOptions, LoopSummary, run_loop};
use codeclab_lab::process::StepCost;
use codeclab_lab::runner::PointRecord;
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::{Store, sqlite_url};
use codeclab_lab::worker::{WorkerConfig, run_worker};
use codeclab_lab::{Lab, LabError};
use codeclab_video::corpus::{ClipLabel, ClipSet, Corpus, Silent};
use codeclab_video::{GeneratorSpec, Pattern, Rational};
use sqlx::Connection;
use tokio::sync::watch;

/// A generated clip of a test corpus.
pub struct TestClip<'a> {
    pub id: &'a str,
    pub set: ClipSet,
    pub pattern: Pattern,
    pub size: (usize, usize),
    pub frames: u64,
    pub seed: u64,
}

/// Renders `clips` into the corpus of `data_dir`.
pub fn generate_clips(data_dir: &Path, clips: &[TestClip]) {
    let mut corpus = Corpus::open(data_dir).unwrap();
    for clip in clips {
        let spec = GeneratorSpec {
            pattern: clip.pattern,
            width: clip.size.0,
            height: clip.size.1,
            frames: clip.frames,
            fps: Rational { num: 30, den: 1 },
            seed: clip.seed,
            bit_depth: 8,
        };
        let label = ClipLabel {
            id: clip.id.into(),
            class: "synthetic".into(),
            source: "test".into(),
            set: clip.set,
        };
        corpus.generate(&spec, label, &mut Silent).unwrap();
    }
    corpus.save().unwrap();
}

/// Adds a small generated dev clip (`frames` frames of 96x64) to the corpus of `data_dir`.
pub fn add_generated_clip(data_dir: &Path, id: &str, frames: u64) {
    generate_clips(
        data_dir,
        &[TestClip {
            id,
            set: ClipSet::Dev,
            pattern: Pattern::Shapes,
            size: (96, 64),
            frames,
            seed: 7,
        }],
    );
}

/// The PostgreSQL admin URL the test command exports; `None` (with the reason printed) when
/// it is missing outside CI. Under CI a missing server fails the test.
pub fn postgres_admin_url() -> Option<String> {
    server_url("CODECLAB_TEST_POSTGRES", "PostgreSQL")
}

/// The S3 bucket URL the test command exports (see `postgres_admin_url`).
pub fn s3_url() -> Option<String> {
    server_url("CODECLAB_TEST_S3", "S3-compatible server")
}

fn server_url(variable: &str, what: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) => {
            assert!(
                url.contains("127.0.0.1") || url.contains("localhost") || url.starts_with("s3://"),
                "{variable} must point at a loopback server: {url}"
            );
            Some(url)
        }
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{variable} is not set: the {what} must run in CI (scripts/test-services.sh)")
        }
        Err(_) => {
            eprintln!("skipped: {variable} is not set (source scripts/test-services.sh)");
            None
        }
    }
}

static DATABASES: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty PostgreSQL database on the test server; returns its URL.
pub async fn fresh_postgres(admin: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!(
        "codeclab_test_{}_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

/// A lab on `data_dir` with the given database URL (SQLite in the data dir when `None`) and
/// artifacts in a folder.
pub async fn lab(data_dir: &Path, database: Option<&str>) -> Lab {
    let store = match database {
        Some(url) => Store::open(url).await.unwrap(),
        None => Store::open_data_dir(data_dir).await.unwrap(),
    };
    let artifacts = Artifacts::open(&data_dir.join("artifacts").display().to_string()).unwrap();
    let mut lab = Lab::new(store, artifacts, data_dir.to_path_buf());
    // The in-process codec's instruction counter is built beside the tests' binaries.
    lab.adapters.lab_prefix_decoder = Some(env!("CARGO_BIN_EXE_codeclab-lab-decode").into());
    lab
}

/// A lab on `dir` (SQLite) with one dev and one holdout clip of 64x48, 3 frames, and without
/// decoder instruction counting: planner-loop tests measure many such points.
pub async fn tiny_lab(dir: &Path) -> Arc<Lab> {
    let clip = |id, set, pattern| TestClip {
        id,
        set,
        pattern,
        size: (64, 48),
        frames: 3,
        seed: 3,
    };
    generate_clips(
        dir,
        &[
            clip("dev_shapes", ClipSet::Dev, Pattern::Shapes),
            clip("holdout_pan", ClipSet::Holdout, Pattern::Pan),
        ],
    );
    let mut lab = lab(dir, None).await;
    lab.adapters.lab_prefix_decoder = None;
    Arc::new(lab)
}

/// Runs `planner` with two in-process workers until the loop ends (or `stop_after` elapses,
/// which interrupts it as Ctrl-C would).
pub async fn drive<P: Planner>(
    lab: &Arc<Lab>,
    planner: &mut P,
    config: &LabConfig,
    options: LoopOptions,
    stop_after: Option<Duration>,
) -> Result<LoopSummary, LabError> {
    let (shutdown, _) = watch::channel(false);
    let mut workers = Vec::new();
    for index in 0..2 {
        let mut worker = WorkerConfig::new(index);
        worker.idle_poll = Duration::from_millis(100);
        workers.push(tokio::spawn(run_worker(
            lab.clone(),
            worker,
            shutdown.subscribe(),
            None,
        )));
    }
    if let Some(after) = stop_after {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = shutdown.send(true);
        });
    }
    let summary = run_loop(lab.clone(), planner, config, options, shutdown.subscribe()).await;
    let _ = shutdown.send(true);
    for worker in workers {
        worker.await.unwrap().unwrap();
    }
    summary
}

/// The databases a store test runs on: an SQLite file in `dir`, and a fresh PostgreSQL
/// database when the test server runs.
pub async fn database_urls(dir: &Path) -> Vec<String> {
    let mut urls = vec![sqlite_url(&dir.join("lab.sqlite"))];
    if let Some(admin) = postgres_admin_url() {
        urls.push(fresh_postgres(&admin).await);
    }
    urls
}

/// A measured point of `bytes` at `point` on a 10-frame 96x64 clip, PSNR-Y 40 dB.
pub fn point_record(point: RatePoint, bytes: u64) -> PointRecord {
    PointRecord {
        rate_point: point,
        clip_sha256: "00".into(),
        frames: 10,
        width: 96,
        height: 64,
        fps: "30/1".into(),
        bytes,
        kbps: 1.0,
        metrics: std::collections::BTreeMap::from([("psnr_y".to_string(), 40.0)]),
        encode: StepCost::default(),
        decode: StepCost::default(),
        decoder_instructions_per_pixel: None,
        learned_mac_per_pixel: None,
        bitstream_sha256: "ab".into(),
        codec_version: "test".into(),
    }
}
