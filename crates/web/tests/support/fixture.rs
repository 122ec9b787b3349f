//! A small lab with real experiments, for the dashboard's tests: two generated clips (one dev,
//! one holdout), the x265 and x264 anchors on both when ffmpeg is installed (x265 is the one
//! the experiment table's BD-rate columns compare with), and two experiments of the
//! lab's codec measured by a real worker — a parent with the default genome and a child with a
//! changed genome, proposed in a recorded planner turn and kept in the program database.

use std::path::Path;
use std::sync::Arc;

use codeclab_codec::genome::Genome;
use codeclab_lab::Lab;
use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::experiment::{Analysis, ExperimentSpec};
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::control::{LabStatus, RunState};
use codeclab_lab::store::programs::{ProgramRecord, ProgramRole};
use codeclab_lab::store::{ExperimentState, PlannerLogEntry, Store, now_ms};
use codeclab_lab::worker::{WorkerConfig, run_worker};
use codeclab_video::corpus::{ClipLabel, ClipSet, Corpus, Silent};
use codeclab_video::{GeneratorSpec, Pattern, Rational};

pub const DEV_CLIP: &str = "fixture-shapes";
pub const HOLDOUT_CLIP: &str = "fixture-pan";
pub const ANCHORS: [&str; 2] = ["x265-medium", "x264-medium"];
pub const PLANNER: &str = "fixture-planner";
pub const RUN_ID: &str = "fixture-run";
pub const HYPOTHESIS: &str = "a weaker deblocking filter keeps the shapes' edges sharper";

/// The fixture's lab and the ids of what it holds.
pub struct FixtureLab {
    pub lab: Arc<Lab>,
    /// The default codec (the reference program).
    pub parent: i64,
    /// The planner's candidate, derived from `parent`.
    pub child: i64,
    /// The anchor experiments (one per anchor and clip), when ffmpeg could run the encoders.
    pub anchors: Vec<i64>,
}

fn add_clip(corpus: &mut Corpus, id: &str, pattern: Pattern, set: ClipSet) {
    let spec = GeneratorSpec {
        pattern,
        width: 64,
        height: 48,
        frames: 6,
        fps: Rational { num: 30, den: 1 },
        seed: 11,
        bit_depth: 8,
    };
    let label = ClipLabel {
        id: id.into(),
        class: format!("synthetic:{pattern:?}").to_lowercase(),
        source: "generated for the dashboard tests".into(),
        set,
    };
    corpus
        .generate(&spec, label, &mut Silent)
        .expect("generating a fixture clip");
}

fn lab_spec(
    genome: &Genome,
    parents: Vec<i64>,
    proposer: &str,
    hypothesis: &str,
) -> ExperimentSpec {
    ExperimentSpec {
        codec: serde_json::json!({"kind": "lab", "genome": genome}),
        parents,
        proposer: proposer.into(),
        hypothesis: hypothesis.into(),
        clips: vec![DEV_CLIP.into(), HOLDOUT_CLIP.into()],
        rate_points: [24, 30, 36, 42].map(RatePoint::Qp).to_vec(),
        anchors: ANCHORS.iter().map(|a| a.to_string()).collect(),
    }
}

/// Processes the queue with one worker until it is empty.
async fn drain(lab: &Arc<Lab>) {
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let mut config = WorkerConfig::new(0);
    config.exit_when_idle = true;
    config.idle_poll = std::time::Duration::from_millis(20);
    run_worker(lab.clone(), config, stop, None)
        .await
        .expect("the fixture's worker");
}

/// Opens the lab on `data_dir` (artifacts in a folder beside the SQLite database).
pub async fn open_lab(data_dir: &Path) -> Lab {
    let store = Store::open_data_dir(data_dir)
        .await
        .expect("opening the fixture store");
    let artifacts = Artifacts::open(&data_dir.join("artifacts").display().to_string())
        .expect("opening the fixture artifacts");
    let mut lab = Lab::new(store, artifacts, data_dir.to_path_buf());
    // Instruction counts need valgrind and take seconds per point: the fixture leaves them
    // unmeasured, which the pages must show as such.
    lab.runner.callgrind_frames = 0;
    lab
}

/// Builds the fixture lab in `data_dir` (which must be empty or absent).
pub async fn build(data_dir: &Path) -> FixtureLab {
    std::fs::create_dir_all(data_dir).expect("creating the fixture data folder");
    let mut corpus = Corpus::open(data_dir).expect("opening the fixture corpus");
    add_clip(&mut corpus, DEV_CLIP, Pattern::Shapes, ClipSet::Dev);
    add_clip(&mut corpus, HOLDOUT_CLIP, Pattern::Pan, ClipSet::Holdout);
    corpus.save().expect("saving the fixture corpus");
    let lab = Arc::new(open_lab(data_dir).await);
    // As `codeclab run` leaves it while its loop works, so that pause and resume mean something.
    lab.store
        .set_lab_status(&LabStatus::new(RunState::Running, None, "loop"))
        .await
        .expect("setting the lab status");

    // Anchors first, so that the experiments are analysed against them as soon as they finish.
    let baseline = lab
        .baseline(&ANCHORS.map(String::from), &[])
        .await
        .expect("queueing the anchors");
    let anchors: Vec<i64> = baseline.iter().filter_map(|e| e.experiment_id).collect();

    let parent_genome = Genome::default();
    let parent = lab
        .submit(
            &lab_spec(&parent_genome, vec![], "user", "the shipped defaults"),
            None,
        )
        .await
        .expect("submitting the parent");
    assert_eq!(parent.state, ExperimentState::Queued, "{parent:?}");

    // The planner turn that proposed the child, logged before its experiment exists (as the
    // loop does), then linked to it.
    let child_genome = Genome {
        deblock_beta_offset: -2,
        deblock_tc_offset: -2,
        ..Genome::default()
    };
    let reply = serde_json::json!({
        "hypothesis": HYPOTHESIS,
        "genome": {"deblock_beta_offset": -2, "deblock_tc_offset": -2},
    })
    .to_string();
    let planner_turn = lab
        .store
        .log_planner(&PlannerLogEntry {
            experiment_id: None,
            planner: PLANNER.into(),
            model: Some("fixture-model".into()),
            prompt: format!(
                "Experiment {} on the dev clips. Propose a genome.",
                parent.id
            ),
            reply,
            hypothesis: Some(HYPOTHESIS.into()),
            reasoning: "Edges of flat shapes blur at high QP; loosen the filter thresholds.".into(),
            outcome: "proposed".into(),
            detail: None,
            input_tokens: Some(812),
            output_tokens: Some(64),
            cost_usd: Some(0.0034),
        })
        .await
        .expect("logging the planner turn");
    let child = lab
        .submit(
            &lab_spec(&child_genome, vec![parent.id], PLANNER, HYPOTHESIS),
            None,
        )
        .await
        .expect("submitting the child");
    lab.store
        .link_planner_turn(planner_turn, child.id)
        .await
        .expect("linking the planner turn");
    for (id, role, parent_id, genome) in [
        (parent.id, ProgramRole::Reference, None, &parent_genome),
        (
            child.id,
            ProgramRole::Candidate,
            Some(parent.id),
            &child_genome,
        ),
    ] {
        lab.store
            .put_program(&ProgramRecord {
                experiment_id: id,
                run_id: RUN_ID.into(),
                planner: PLANNER.into(),
                role,
                parent: parent_id,
                island: 0,
                stage: "dev".into(),
                genome: serde_json::to_value(genome).expect("a genome is JSON"),
                edits: serde_json::json!([]),
                features: None,
                fitness: None,
                scores: None,
                created_at: now_ms(),
            })
            .await
            .expect("recording a program");
    }

    drain(&lab).await;

    // The programs' fitness is what the loop uses: the mean PSNR-Y BD-rate against the first
    // anchor (lower is better), when it could be measured.
    for id in [parent.id, child.id] {
        let analysis = analysis(&lab, id).await;
        let scores = serde_json::to_value(&analysis.bd_rates).expect("BD-rates are JSON");
        let fitness = analysis
            .bd_rates
            .iter()
            .find(|bd| bd.anchor == ANCHORS[0] && bd.metric.key() == "psnr_y")
            .and_then(|bd| bd.report.as_ref())
            .and_then(|report| report["mean"]["pchip"].as_f64());
        lab.store
            .set_program_result(id, None, fitness, &scores)
            .await
            .expect("recording a program's result");
    }

    FixtureLab {
        lab,
        parent: parent.id,
        child: child.id,
        anchors,
    }
}

/// An experiment's analysis; the fixture's experiments are all analysed once drained.
pub async fn analysis(lab: &Lab, id: i64) -> Analysis {
    let value = lab
        .store
        .analysis(id)
        .await
        .expect("reading an analysis")
        .unwrap_or_else(|| panic!("experiment {id} was not analysed"));
    serde_json::from_value(value).expect("a stored analysis parses")
}

/// What `codeclab experiment show ID --json` prints, from the same store calls.
pub async fn show_json(lab: &Lab, id: i64) -> serde_json::Value {
    let record = lab
        .store
        .experiment(id)
        .await
        .expect("reading an experiment")
        .unwrap_or_else(|| panic!("experiment {id} does not exist"));
    let counts = lab.store.job_counts(id).await.expect("reading job counts");
    let analysis = lab.store.analysis(id).await.expect("reading an analysis");
    serde_json::json!({"experiment": record, "jobs": counts, "analysis": analysis})
}
