//! `codeclab report` run as a user would, on a store built in a temporary data directory: the
//! Markdown and JSON forms, `--since`, `--config`, `--save`, and a clear error for a bad time.

use std::path::Path;
use std::process::{Command, Output};

use codeclab_lab::store::control::{LabStatus, RunState};
use codeclab_lab::store::programs::{ProgramRecord, ProgramRole};
use codeclab_lab::store::{PlannerLogEntry, Store};
use serde_json::{Value, json};

fn codeclab(data_dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codeclab"))
        .arg("report")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env_remove("CODECLAB_DATABASE")
        .env_remove("CODECLAB_ARTIFACTS")
        .output()
        .expect("the codeclab binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "codeclab report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A lab paused by its budget, with one measured reference program and an LLM turn that cost
/// $2.
async fn fill(data_dir: &Path) {
    let store = Store::open_data_dir(data_dir).await.unwrap();
    let spec = serde_json::from_value(json!({
        "codec": {"kind": "lab"},
        "proposer": "evolve",
        "hypothesis": "the shipped default",
        "clips": ["clip"],
        "rate_points": [{"qp": 27}]
    }))
    .unwrap();
    let id = store.submit(&spec, None, None, 3).await.unwrap();
    store
        .put_program(&ProgramRecord {
            experiment_id: id,
            run_id: "run-7".into(),
            planner: "evolve".into(),
            role: ProgramRole::Reference,
            parent: None,
            island: 0,
            stage: "dev".into(),
            genome: json!({}),
            edits: json!([]),
            features: None,
            fitness: None,
            scores: None,
            created_at: 0,
        })
        .await
        .unwrap();
    store
        .set_program_result(
            id,
            None,
            Some(0.0),
            &json!({"metric": "psnr_y", "vs_reference": {"per_clip": {"clip": 0.0}, "mean": 0.0},
                    "clips": ["clip"], "decoder_instructions_per_pixel": 250.0,
                    "encode_seconds": 2.0}),
        )
        .await
        .unwrap();
    store
        .log_planner(&PlannerLogEntry {
            experiment_id: None,
            planner: "llm".into(),
            model: Some("fake-model".into()),
            prompt: "p".into(),
            reply: "r".into(),
            hypothesis: Some("lower the lambda".into()),
            reasoning: String::new(),
            outcome: "rejected".into(),
            detail: Some("the edit is outside the evolvable regions".into()),
            input_tokens: Some(100),
            output_tokens: Some(10),
            cost_usd: Some(2.0),
        })
        .await
        .unwrap();
    store
        .set_lab_status(&LabStatus::new(
            RunState::Paused,
            Some("daily LLM budget reached: $2.00 of $1.00".into()),
            "budget",
        ))
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test]
async fn report_prints_markdown_and_json_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path()).await;
    std::fs::write(
        dir.path().join("codeclab.toml"),
        "[budget]\nllm_usd_per_day = 1.0\n[[goals]]\nkind = \"decoder_instructions_per_pixel\"\nat_most = 300.0\n",
    )
    .unwrap();

    let json: Value = serde_json::from_str(&stdout(&codeclab(dir.path(), &["--format", "json"])))
        .expect("the JSON report parses");
    assert_eq!(json["status"]["state"], "paused");
    assert_eq!(json["run_id"], "run-7");
    assert_eq!(
        json["budget"]["blocked"],
        "daily LLM budget reached: $2.00 of $1.00"
    );
    assert_eq!(json["goals"][0]["value"], 250.0);
    assert_eq!(json["goals"][0]["met"], true);
    assert_eq!(json["experiments"]["queued"], 1);
    assert_eq!(json["next"]["last_turn"]["outcome"], "rejected");

    let markdown = stdout(&codeclab(dir.path(), &[]));
    assert!(markdown.starts_with("# codeclab report, "), "{markdown}");
    for expected in [
        "**paused** (set by budget since ",
        "): daily LLM budget reached: $2.00 of $1.00",
        "| daily LLM budget | day | $2.00 of $1.00 | 200 % |",
        "| decoder instructions per pixel at most 300 | 250.00 | yes |",
        "Newest planner turn (llm with fake-model, ",
    ] {
        assert!(
            markdown.contains(expected),
            "missing `{expected}` in\n{markdown}"
        );
    }

    // Another configuration, an age and a time for --since, and a saved copy.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[budget]\nllm_usd_per_day = 10.0\n").unwrap();
    let output = codeclab(
        dir.path(),
        &[
            "--format",
            "json",
            "--config",
            other.to_str().unwrap(),
            "--since",
            "24h",
            "--run",
            "run-7",
            "--save",
        ],
    );
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["budget"]["blocked"], Value::Null);
    assert!(json["since"].as_str().unwrap().ends_with('Z'));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let saved: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("stored "))
        .collect();
    assert_eq!(saved.len(), 2, "{stderr}");
    for key in saved {
        assert!(dir.path().join("artifacts").join(key).is_file(), "{key}");
    }
    let unknown_run: Value = serde_json::from_str(&stdout(&codeclab(
        dir.path(),
        &[
            "--format",
            "json",
            "--run",
            "no-such-run",
            "--since",
            "2026-01-01T00:00:00Z",
        ],
    )))
    .unwrap();
    assert_eq!(unknown_run["best"], Value::Null);
    assert_eq!(unknown_run["since"], "2026-01-01T00:00:00Z");

    let bad = codeclab(dir.path(), &["--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("neither an RFC 3339 time"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
