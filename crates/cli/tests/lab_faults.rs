//! Fault tests with real `codeclab` processes: a worker killed with SIGKILL mid-job, `codeclab
//! run` killed and restarted, and two workers on two PostgreSQL connections sharing a queue.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use codeclab_lab::Lab;
use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::candidate::{Edit, SourceTree, apply};
use codeclab_lab::experiment::ExperimentSpec;
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::{ExperimentState, Store};
use codeclab_sandbox::{BuildConfig, build};
use codeclab_video::corpus::{ClipLabel, ClipSet, Corpus, Silent};
use codeclab_video::{GeneratorSpec, Pattern, Rational};

const CODECLAB: &str = env!("CARGO_BIN_EXE_codeclab");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The PostgreSQL admin URL exported by the test command; required under CI.
fn postgres_admin_url() -> Option<String> {
    match std::env::var("CODECLAB_TEST_POSTGRES") {
        Ok(url) => {
            assert!(url.contains("127.0.0.1"), "loopback only: {url}");
            Some(url)
        }
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CODECLAB_TEST_POSTGRES is not set: PostgreSQL must run in CI")
        }
        Err(_) => {
            eprintln!(
                "skipped: CODECLAB_TEST_POSTGRES is not set (source scripts/test-services.sh)"
            );
            None
        }
    }
}

async fn fresh_postgres(admin: &str, tag: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!("codeclab_fault_{tag}_{}", std::process::id());
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

/// A data directory with one small generated clip, `shapes`.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let spec = GeneratorSpec {
        pattern: Pattern::Shapes,
        width: 96,
        height: 64,
        frames: 4,
        fps: Rational { num: 30, den: 1 },
        seed: 3,
        bit_depth: 8,
    };
    let label = ClipLabel {
        id: "shapes".into(),
        class: "synthetic:shapes".into(),
        source: "test".into(),
        set: ClipSet::Dev,
    };
    corpus.generate(&spec, label, &mut Silent).unwrap();
    corpus.save().unwrap();
    dir
}

/// A codec binary with the lab codec's command line that sleeps `delay` seconds in every
/// encode, so a job is reliably in progress when a worker is killed. A `lab_binary` codec runs in
/// the sandbox, which opens no files (no shared libraries, no shell): this is the lab's miniature
/// codec fixture, built statically as candidates are.
fn slow_codec(dir: &Path, delay: f64) -> PathBuf {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab/tests/fixtures/candidates/y4m_codec");
    let slowed = apply(
        &SourceTree::load(&fixture).unwrap(),
        &[Edit {
            block: "quantizer".into(),
            search: "    1 + qp / 8\n".into(),
            replace: format!(
                "    std::thread::sleep(std::time::Duration::from_secs_f64({delay:?}));\n    1 + qp / 8\n"
            ),
        }],
    )
    .unwrap();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slow-codec");
    let project = cache.join(format!("project-{delay}"));
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(fixture.join("Cargo.toml"), project.join("Cargo.toml")).unwrap();
    slowed.write(&project).unwrap();
    let path = dir.join("slow-codec");
    build(
        &project,
        "y4m-codec",
        &BuildConfig::new(cache.join("target")),
        &path,
    )
    .unwrap_or_else(|failure| panic!("building the slow codec: {failure}"));
    path
}

async fn open_lab(dir: &Path, database: &str) -> Lab {
    let store = Store::open(database).await.unwrap();
    let artifacts = Artifacts::open(&dir.join("artifacts").display().to_string()).unwrap();
    Lab::new(store, artifacts, dir.to_path_buf())
}

fn experiment(codec: serde_json::Value, points: &[u32]) -> ExperimentSpec {
    ExperimentSpec {
        codec,
        parents: vec![],
        proposer: "fault-test".into(),
        hypothesis: String::new(),
        clips: vec!["shapes".into()],
        rate_points: points.iter().map(|&q| RatePoint::Qp(q)).collect(),
        anchors: vec![],
    }
}

fn spawn(args: &[&str], dir: &Path, database: &str) -> Child {
    Command::new(CODECLAB)
        .args(args)
        .args([
            "--data-dir",
            &dir.display().to_string(),
            "--database",
            database,
        ])
        .args(["--lease-seconds", "2", "--heartbeat-seconds", "0.5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `condition` (checked every 100 ms) for at most `limit`.
async fn wait_for<F, Fut>(limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finish(child: Child, limit: Duration) -> String {
    let start = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_worker_killed_mid_job_is_replaced_after_its_lease_expires() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let rt = runtime();
    let dir = data_dir();
    let codec = slow_codec(dir.path(), 2.0);
    let database = rt.block_on(fresh_postgres(&admin, "kill"));
    let lab = rt.block_on(open_lab(dir.path(), &database));
    let id = rt
        .block_on(lab.submit(
            &experiment(
                serde_json::json!({"kind": "lab_binary", "binary": codec}),
                &[26, 34],
            ),
            None,
        ))
        .unwrap()
        .id;

    let mut victim = spawn(&["worker"], dir.path(), &database);
    rt.block_on(wait_for(Duration::from_secs(60), || async {
        lab.store.job_counts(id).await.unwrap().running == 1
    }));
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();

    let rescuer = spawn(
        &["worker", "--exit-when-idle", "--json"],
        dir.path(),
        &database,
    );
    let events = finish(rescuer, Duration::from_secs(120));
    assert!(events.contains("\"event\":\"done\""), "{events}");
    let record = rt.block_on(lab.store.experiment(id)).unwrap().unwrap();
    assert_eq!(record.state, ExperimentState::Analysed, "{record:?}");
    let points = rt.block_on(lab.store.points(id)).unwrap();
    assert_eq!(points.len(), 2, "exactly one result per job");
    let counts = rt.block_on(lab.store.job_counts(id)).unwrap();
    assert_eq!((counts.done, counts.total()), (2, 2));
    // The decoder of a codec binary is kept with the experiment's artifacts.
    let decoder = dir
        .path()
        .join(format!("artifacts/experiments/{id}/decoder/slow-codec"));
    assert!(decoder.is_file(), "{} is missing", decoder.display());
}

#[test]
fn two_workers_on_postgres_never_run_the_same_job() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let rt = runtime();
    let dir = data_dir();
    let database = rt.block_on(fresh_postgres(&admin, "pair"));
    let lab = rt.block_on(open_lab(dir.path(), &database));
    let points: Vec<u32> = (20..28).collect();
    let id = rt
        .block_on(lab.submit(
            &experiment(serde_json::json!({"kind": "lab"}), &points),
            None,
        ))
        .unwrap()
        .id;
    let spawn_worker = || {
        Command::new(CODECLAB)
            .args(["worker", "--exit-when-idle", "--json"])
            .args([
                "--data-dir",
                &dir.path().display().to_string(),
                "--database",
                &database,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn_worker(), spawn_worker());
    let claimed = |events: &str| -> Vec<i64> {
        events
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["event"] == "claimed")
            .map(|event| event["job"].as_i64().unwrap())
            .collect()
    };
    let a = claimed(&finish(first, Duration::from_secs(180)));
    let b = claimed(&finish(second, Duration::from_secs(180)));
    let all: Vec<i64> = a.iter().chain(&b).copied().collect();
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 8, "each job claimed once: {a:?} {b:?}");
    assert_eq!(unique.len(), 8);
    let record = rt.block_on(lab.store.experiment(id)).unwrap().unwrap();
    assert_eq!(record.state, ExperimentState::Analysed);
}

#[test]
fn run_killed_and_restarted_resumes_where_it_was() {
    if codeclab_video::shared::corpus_dir().is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "the shared corpus must be there in CI"
        );
        eprintln!("skipped: no shared corpus");
        return;
    }
    let rt = runtime();
    let dir = data_dir();
    let codec = slow_codec(dir.path(), 1.5);
    let database = codeclab_lab::store::sqlite_url(&dir.path().join("lab.sqlite"));
    let lab = rt.block_on(open_lab(dir.path(), &database));
    let id = rt
        .block_on(lab.submit(
            &experiment(
                serde_json::json!({"kind": "lab_binary", "binary": codec}),
                &[24, 30, 36, 42],
            ),
            None,
        ))
        .unwrap()
        .id;
    let run_args = [
        "run",
        "--until-idle",
        "--no-baseline",
        "--no-dashboard",
        "--workers",
        "1",
    ];
    let mut first = spawn(&run_args, dir.path(), &database);
    rt.block_on(wait_for(Duration::from_secs(240), || async {
        let counts = lab.store.job_counts(id).await.unwrap();
        counts.done >= 1 && counts.running == 1
    }));
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let kept = rt.block_on(lab.store.points(id)).unwrap();
    assert!(!kept.is_empty());

    let second = spawn(&run_args, dir.path(), &database);
    finish(second, Duration::from_secs(240));
    let record = rt.block_on(lab.store.experiment(id)).unwrap().unwrap();
    assert_eq!(record.state, ExperimentState::Analysed, "{record:?}");
    let points = rt.block_on(lab.store.points(id)).unwrap();
    assert_eq!(points.len(), 4);
    // What the first run finished is kept as it was, not measured again.
    for old in &kept {
        let now = points
            .iter()
            .find(|p| p.rate_index == old.rate_index)
            .unwrap();
        assert_eq!((now.created_at, &now.worker), (old.created_at, &old.worker));
    }
}
