//! `codeclab experiment show` run as a user would, on a store built in a temporary data directory:
//! the learned tools' multiply–accumulates per pixel of each point and of the experiment, in the
//! text and in the JSON, and null where a format declares none (an anchor).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use codeclab_lab::experiment::{self, ExperimentSpec};
use codeclab_lab::process::StepCost;
use codeclab_lab::runner::PointRecord;
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::Store;
use serde_json::{Value, json};

const RATES: [u32; 2] = [27, 37];

fn show(data_dir: &Path, id: i64, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_codeclab"))
        .args(["experiment", "show", "--data-dir"])
        .arg(data_dir)
        .arg(id.to_string())
        .args(extra)
        .env_remove("CODECLAB_DATABASE")
        .env_remove("CODECLAB_ARTIFACTS")
        .output()
        .expect("the codeclab binary runs");
    assert!(
        output.status.success(),
        "codeclab experiment show failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A point of 3 frames at 30 fps: the rate halves and PSNR-Y falls 2.5 dB every 5 QP.
fn point(qp: u32, learned_mac_per_pixel: Option<f64>) -> PointRecord {
    let step = f64::from(qp - RATES[0]);
    let kbps = 160.0 / 2f64.powf(step / 5.0);
    PointRecord {
        rate_point: RatePoint::Qp(qp),
        clip_sha256: "00".into(),
        frames: 3,
        width: 64,
        height: 48,
        fps: "30/1".into(),
        bytes: (kbps * 1000.0 / 8.0 * 3.0 / 30.0).round() as u64,
        kbps,
        metrics: BTreeMap::from([("psnr_y".to_string(), 40.0 - step / 2.0)]),
        encode: StepCost::default(),
        decode: StepCost::default(),
        decoder_instructions_per_pixel: None,
        learned_mac_per_pixel,
        bitstream_sha256: format!("{qp}"),
        codec_version: "test".into(),
    }
}

/// Submits an experiment of `codec` on one clip, hands in every job with points declaring
/// `learned_mac_per_pixel`, and stores its analysis.
async fn measured(
    store: &Store,
    codec: Value,
    anchor: Option<&str>,
    learned_mac_per_pixel: Option<f64>,
) -> i64 {
    let spec: ExperimentSpec = serde_json::from_value(json!({
        "codec": codec,
        "clips": ["clip"],
        "rate_points": RATES.map(|qp| json!({"qp": qp})),
    }))
    .unwrap();
    let id = store.submit(&spec, None, anchor, 3).await.unwrap();
    let mut curves: BTreeMap<String, Vec<PointRecord>> = BTreeMap::new();
    while let Some(job) = store.claim_job("w", 60_000).await.unwrap() {
        let record = point(RATES[job.rate_index as usize], learned_mac_per_pixel);
        store.finish_job(&job, "w", &record).await.unwrap();
        curves.entry(job.clip_id.clone()).or_default().push(record);
    }
    let analysis = experiment::analyse(curves, &BTreeMap::new());
    assert!(
        store
            .record_analysis(id, &serde_json::to_value(&analysis).unwrap())
            .await
            .unwrap()
    );
    id
}

#[tokio::test]
async fn show_prints_the_learned_mac_of_each_point_and_of_the_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let filtered = measured(
        &store,
        json!({"kind": "lab", "genome": {"learned_filter": true}}),
        None,
        Some(1296.0),
    )
    .await;
    let anchor = measured(
        &store,
        json!({"kind": "ffmpeg", "encoder": "x265"}),
        Some("x265-medium"),
        None,
    )
    .await;
    store.close().await;

    let json: Value = serde_json::from_str(&show(dir.path(), filtered, &["--json"])).unwrap();
    for point in json["analysis"]["curves"]["clip"].as_array().unwrap() {
        assert_eq!(point["learned_mac_per_pixel"], 1296.0);
    }
    assert_eq!(json["summary"]["learned_mac_per_pixel"], 1296.0);
    // Not counted: null, as the figure of an anchor's format is.
    assert!(json["summary"]["decoder_instructions_per_pixel"].is_null());
    let json: Value = serde_json::from_str(&show(dir.path(), anchor, &["--json"])).unwrap();
    for point in json["analysis"]["curves"]["clip"].as_array().unwrap() {
        assert!(point["learned_mac_per_pixel"].is_null(), "{point}");
    }
    assert!(json["summary"]["learned_mac_per_pixel"].is_null());

    let text = show(dir.path(), filtered, &[]);
    let header = text.lines().find(|l| l.contains("dec instr/px")).unwrap();
    assert!(header.trim_end().ends_with("learned MAC/px"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("qp 27"))
        .unwrap();
    assert!(row.trim_end().ends_with("1296.0"), "{text}");
    assert!(
        text.contains(
            "Mean over points: decoder instructions per pixel not measured, learned \
             multiply-accumulates per pixel 1296.0"
        ),
        "{text}"
    );
    let text = show(dir.path(), anchor, &[]);
    assert!(
        text.contains("learned multiply-accumulates per pixel not measured"),
        "{text}"
    );
}
