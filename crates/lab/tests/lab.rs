//! Experiments through the lab: submission, workers, analysis against anchors, bad input, and
//! artifacts in a folder and in a real S3-compatible bucket.

mod common;

use std::sync::Arc;

use codeclab_lab::Lab;
use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::experiment::{Analysis, ExperimentSpec};
use codeclab_lab::runner::QualityMetric;
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::ExperimentState;
use codeclab_lab::store::listing::{ListQuery, SortKey};
use codeclab_lab::worker::{WorkerConfig, run_worker};
use codeclab_metrics::bdrate::{self, ClipCurves};
use codeclab_video::Pattern;
use codeclab_video::corpus::ClipSet;

fn spec(codec: serde_json::Value, clips: &[&str], points: Vec<RatePoint>) -> ExperimentSpec {
    ExperimentSpec {
        codec,
        parents: vec![],
        proposer: "test".into(),
        hypothesis: String::new(),
        clips: clips.iter().map(|c| c.to_string()).collect(),
        rate_points: points,
        anchors: vec!["x265-medium".into()],
    }
}

async fn drain(lab: &Arc<Lab>) {
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let mut config = WorkerConfig::new(0);
    config.exit_when_idle = true;
    run_worker(lab.clone(), config, stop, None).await.unwrap();
}

async fn experiment_against_x265(lab: Lab) {
    let lab = Arc::new(lab);
    let ladder: Vec<RatePoint> = [24, 30, 36, 42].map(RatePoint::Qp).to_vec();
    let good = lab
        .submit(
            &spec(
                serde_json::json!({"kind": "lab"}),
                &["shapes"],
                ladder.clone(),
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(good.state, ExperimentState::Queued);

    // Bad input: each becomes a failed experiment with its reason; the lab keeps going.
    let bad = [
        (
            serde_json::json!({"kind": "h266"}),
            "shapes",
            "unknown variant `h266`",
        ),
        (
            serde_json::json!({"kind": "lab"}),
            "no-such-clip",
            "clip no-such-clip is not in the corpus",
        ),
        (
            serde_json::json!({"kind": "lab", "genome": {"keyint": 0}}),
            "shapes",
            "keyint",
        ),
    ];
    for (codec, clip, reason) in bad {
        let submitted = lab
            .submit(&spec(codec, &[clip], ladder.clone()), None)
            .await
            .unwrap();
        assert_eq!(submitted.state, ExperimentState::Failed);
        let stored = lab.store.experiment(submitted.id).await.unwrap().unwrap();
        assert_eq!(stored.state, ExperimentState::Failed);
        assert!(
            stored.reason.as_deref().unwrap().contains(reason),
            "{stored:?}"
        );
    }
    let crashing = lab
        .submit(
            &spec(
                serde_json::json!({"kind": "lab_binary", "binary": "/bin/false"}),
                &["shapes"],
                ladder.clone(),
            ),
            None,
        )
        .await
        .unwrap();

    let baseline = lab
        .baseline(&["x265-medium".into()], &["shapes".into()])
        .await
        .unwrap();
    assert_eq!(baseline.len(), 1);
    assert_eq!(baseline[0].status, "queued");
    drain(&lab).await;
    // A second baseline run finds the cached curve.
    let again = lab
        .baseline(&["x265-medium".into()], &["shapes".into()])
        .await
        .unwrap();
    assert!(again[0].status.starts_with("cached"), "{again:?}");

    let crashed = lab.store.experiment(crashing.id).await.unwrap().unwrap();
    assert_eq!(crashed.state, ExperimentState::Failed);
    assert!(
        crashed
            .reason
            .as_deref()
            .unwrap()
            .contains("it is dynamically linked"),
        "{crashed:?}"
    );

    let record = lab.store.experiment(good.id).await.unwrap().unwrap();
    assert_eq!(record.state, ExperimentState::Analysed, "{record:?}");
    let analysis: Analysis =
        serde_json::from_value(lab.store.analysis(good.id).await.unwrap().unwrap()).unwrap();
    let test_points = &analysis.curves["shapes"];
    assert_eq!(test_points.len(), 4);
    // The shipped genome's streams declare no learned tool; x265's declare none at all.
    assert!(
        test_points
            .iter()
            .all(|p| p.learned_mac_per_pixel == Some(0.0))
    );

    // The BD-rate stored is the one the metrics crate computes from the two stored curves.
    let anchor_id = baseline[0].experiment_id.unwrap();
    let anchor_points =
        codeclab_lab::experiment::curves(&lab.store.points(anchor_id).await.unwrap());
    assert!(
        anchor_points["shapes"]
            .iter()
            .all(|p| p.learned_mac_per_pixel.is_none())
    );
    let summaries = lab
        .store
        .list_experiments(&ListQuery {
            sort: SortKey::LearnedMac,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let summary_of = |id: i64| {
        summaries
            .rows
            .iter()
            .find(|row| row.id == id)
            .and_then(|row| row.summary.clone())
            .unwrap()
    };
    assert_eq!(summary_of(good.id).learned_mac_per_pixel, Some(0.0));
    assert_eq!(summary_of(anchor_id).learned_mac_per_pixel, None);
    let psnr = analysis
        .bd_rates
        .iter()
        .find(|b| b.anchor == "x265-medium" && b.metric == QualityMetric::PsnrY)
        .unwrap();
    let anchor_curve =
        codeclab_lab::experiment::rd_curve(&anchor_points["shapes"], QualityMetric::PsnrY).unwrap();
    let test_curve = codeclab_lab::experiment::rd_curve(test_points, QualityMetric::PsnrY).unwrap();
    let expected = bdrate::compare_clips([ClipCurves {
        clip: "shapes",
        anchor: &anchor_curve,
        test: &test_curve,
    }]);
    assert_eq!(psnr.report, Some(serde_json::to_value(&expected).unwrap()));
    // VMAF is not computed by the pipeline on this clip: reported as not measured, not as 0.
    let vmaf = analysis
        .bd_rates
        .iter()
        .find(|b| b.metric == QualityMetric::Vmaf)
        .unwrap();
    if test_points[0].quality(QualityMetric::Vmaf).is_none() {
        assert!(vmaf.report.is_none() && vmaf.not_measured.is_some());
    }

    // Artifacts: the bitstream of each point, under the hash its point recorded, and the RD
    // data.
    let keys = lab
        .artifacts
        .list(&format!("experiments/{}", good.id))
        .await
        .unwrap();
    for point in lab.store.points(good.id).await.unwrap() {
        let key = format!(
            "experiments/{}/{}/{}/bitstream.{}.ccb",
            good.id, point.clip_id, point.rate_index, point.record.bitstream_sha256
        );
        assert!(keys.contains(&key), "{key} not in {keys:?}");
    }
    assert!(keys.iter().any(|k| k.ends_with("rd.csv")), "{keys:?}");
    let csv = String::from_utf8(
        lab.artifacts
            .get(&format!("experiments/{}/rd.csv", good.id))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",decoder_instructions_per_pixel,learned_mac_per_pixel")
    );
    assert!(csv.lines().skip(1).all(|row| row.ends_with(",0")), "{csv}");

    // A rerun is a new experiment linked to the old; the old result does not change.
    let rerun = lab.rerun(good.id).await.unwrap();
    assert_ne!(rerun.id, good.id);
    assert_eq!(
        lab.store
            .experiment(rerun.id)
            .await
            .unwrap()
            .unwrap()
            .rerun_of,
        Some(good.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_on_sqlite_and_a_folder() {
    if !codeclab_video::ffmpeg::available() {
        assert!(
            std::env::var("CI").is_err(),
            "ffmpeg must be installed in CI"
        );
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::add_generated_clip(dir.path(), "shapes", 8);
    let mut lab = common::lab(dir.path(), None).await;
    lab.runner.callgrind_frames = 0;
    experiment_against_x265(lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_on_postgres_and_s3() {
    let (Some(admin), Some(bucket)) = (common::postgres_admin_url(), common::s3_url()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::add_generated_clip(dir.path(), "shapes", 8);
    let url = common::fresh_postgres(&admin).await;
    let mut lab = common::lab(dir.path(), Some(&url)).await;
    let prefix = format!("{bucket}/run-{}", std::process::id());
    lab.artifacts = Artifacts::open(&prefix).unwrap();
    lab.runner.callgrind_frames = 0;
    experiment_against_x265(lab).await;
}

/// The learned filter's cost is what each point's stream declares: 4 layers of 3x3 kernels over
/// 8 channels, 9 · (1·8 + 8·8 + 8·8 + 8·1) = 1296 multiply–accumulates per pixel, kept through
/// the store (SQLite, or PostgreSQL at `database`) into the experiment's summary. (A few training
/// steps on a tiny clip: the figure depends on the shape alone.)
async fn learned_filter_experiment(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    common::generate_clips(
        dir.path(),
        &[common::TestClip {
            id: "tiny",
            set: ClipSet::Dev,
            pattern: Pattern::Shapes,
            size: (64, 48),
            frames: 3,
            seed: 3,
        }],
    );
    let mut lab = common::lab(dir.path(), database).await;
    lab.runner.callgrind_frames = 0;
    let lab = Arc::new(lab);
    let codec = serde_json::json!({
        "kind": "lab",
        "genome": {"learned_filter": true, "filter_training_steps": 5}
    });
    let submitted = lab
        .submit(
            &spec(codec, &["tiny"], vec![RatePoint::Qp(27), RatePoint::Qp(37)]),
            None,
        )
        .await
        .unwrap();
    drain(&lab).await;
    let record = lab.store.experiment(submitted.id).await.unwrap().unwrap();
    assert_eq!(record.state, ExperimentState::Analysed, "{record:?}");
    let points = lab.store.points(submitted.id).await.unwrap();
    assert_eq!(points.len(), 2);
    for point in &points {
        assert_eq!(point.record.learned_mac_per_pixel, Some(1296.0));
    }
    let page = lab
        .store
        .list_experiments(&ListQuery::default())
        .await
        .unwrap();
    let summary = page.rows[0].summary.as_ref().unwrap();
    assert_eq!(summary.learned_mac_per_pixel, Some(1296.0));
    assert_eq!(
        lab.store.summary(submitted.id).await.unwrap().as_ref(),
        Some(summary)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learned_filter_experiment_records_the_multiply_accumulates_its_streams_declare() {
    learned_filter_experiment(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learned_filter_experiment_on_postgres() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    learned_filter_experiment(Some(&common::fresh_postgres(&admin).await)).await;
}

#[tokio::test]
async fn artifacts_round_trip_in_a_folder_and_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![Artifacts::open(&dir.path().display().to_string()).unwrap()];
    if let Some(bucket) = common::s3_url() {
        stores
            .push(Artifacts::open(&format!("{bucket}/round-trip-{}", std::process::id())).unwrap());
    }
    for store in stores {
        store
            .put("experiments/1/a/0/bitstream.ccb", vec![1, 2, 3])
            .await
            .unwrap();
        store
            .put("experiments/1/rd.json", b"{}".to_vec())
            .await
            .unwrap();
        store
            .put("experiments/2/rd.json", b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(
            store.get("experiments/1/a/0/bitstream.ccb").await.unwrap(),
            [1, 2, 3]
        );
        assert_eq!(
            store.list("experiments/1").await.unwrap(),
            ["experiments/1/a/0/bitstream.ccb", "experiments/1/rd.json"]
        );
        assert!(store.get("experiments/3/rd.json").await.is_err());
    }
}
