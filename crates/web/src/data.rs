//! What the pages and the API show, read from the store: one function per view, shared by the
//! HTML pages and their JSON twins so both always carry the same numbers.

use std::collections::BTreeMap;

use codeclab_lab::Lab;
use codeclab_lab::artifacts::experiment_prefix;
use codeclab_lab::budget::{self, BudgetState};
use codeclab_lab::config::{BudgetConfig, LabConfig};
use codeclab_lab::experiment::{self, Analysis};
use codeclab_lab::goals::{self, GoalProgress, ProgramScores};
use codeclab_lab::runner::{PointRecord, QualityMetric};
use codeclab_lab::store::control::{LabStatus, Note};
use codeclab_lab::store::listing::{ExperimentSummary, LatestIds};
use codeclab_lab::store::programs::ProgramRecord;
use codeclab_lab::store::{
    ExperimentRecord, ExperimentState, JobCounts, PlannerLogRecord, Store, now_ms,
};
use serde::Serialize;

use crate::error::WebError;

/// The metrics the dashboard's BD-rate tables show.
pub const SHOWN_METRICS: [QualityMetric; 3] = [
    QualityMetric::PsnrY,
    QualityMetric::Vmaf,
    QualityMetric::Ssim,
];

/// The lab's configuration file in its data directory (the embedded default when absent).
pub fn lab_config(lab: &Lab) -> Result<LabConfig, WebError> {
    LabConfig::load(&lab.data_dir.join("codeclab.toml"))
        .map_err(|e| WebError::Internal(e.to_string()))
}

/// What the live stream sends and the pages' counters show.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pulse {
    pub status: LabStatus,
    /// Experiments by state.
    pub counts: BTreeMap<String, i64>,
    pub total: i64,
    pub queue: JobCounts,
    pub latest: LatestIds,
}

pub async fn pulse(store: &Store) -> Result<Pulse, WebError> {
    let counts = store.state_counts().await?;
    Ok(Pulse {
        status: store.lab_status().await?,
        total: counts.values().sum(),
        counts,
        queue: store.queue_counts().await?,
        latest: store.latest_ids().await?,
    })
}

/// The mean BD-rate of the best codec on one clip set against one anchor and metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetBdRate {
    pub anchor: String,
    pub metric: QualityMetric,
    /// `dev` or `holdout`.
    pub set: String,
    /// Mean over the set's clips of the PCHIP BD-rate, percent; `None`: not measured.
    pub value: Option<f64>,
    pub clips: usize,
    pub not_measured: Option<String>,
}

/// The best codec so far.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BestCodec {
    pub experiment_id: i64,
    /// How it was chosen: `program` (lowest fitness of the newest planner run) or `experiment`
    /// (no planner run yet: lowest PSNR-Y BD-rate against the summary anchor).
    pub chosen_by: String,
    pub role: Option<String>,
    pub fitness: Option<f64>,
    pub codec: String,
    pub holdout_experiment_id: Option<i64>,
    pub decoder_instructions_per_pixel: Option<f64>,
    pub learned_mac_per_pixel: Option<f64>,
    pub bd_rates: Vec<SetBdRate>,
}

/// The planner's newest turn, in brief.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TurnBrief {
    pub id: i64,
    pub planner: String,
    pub experiment_id: Option<i64>,
    pub hypothesis: Option<String>,
    pub outcome: String,
    pub created_at: i64,
}

/// The overview page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overview {
    #[serde(flatten)]
    pub pulse: Pulse,
    pub best: Option<BestCodec>,
    pub goals: Vec<GoalProgress>,
    pub budget: BudgetConfig,
    pub spend: BudgetState,
    pub latest_turn: Option<TurnBrief>,
    pub promoted: Option<serde_json::Value>,
}

pub async fn overview(lab: &Lab) -> Result<Overview, WebError> {
    let store = &lab.store;
    let config = lab_config(lab)?;
    let goals_now = goals::effective(store, &config.goals).await?;
    let budget_now = budget::effective(store, &config.budget).await?;
    let spend = budget::check(store, &budget_now, now_ms()).await?;
    let latest_turn = store
        .planner_log(1)
        .await?
        .into_iter()
        .next()
        .map(|t| TurnBrief {
            id: t.id,
            planner: t.entry.planner,
            experiment_id: t.entry.experiment_id,
            hypothesis: t.entry.hypothesis,
            outcome: t.entry.outcome,
            created_at: t.created_at,
        });
    Ok(Overview {
        pulse: pulse(store).await?,
        best: best_codec(store).await?,
        goals: goals::progress(store, &goals_now, None).await?,
        budget: budget_now,
        spend,
        latest_turn,
        promoted: store.setting("promoted_codec").await?,
    })
}

async fn best_codec(store: &Store) -> Result<Option<BestCodec>, WebError> {
    let (_, programs) = goals::run_leaders(store, None).await?;
    let (experiment_id, chosen_by, program, holdout) = match goals::best_program(&programs) {
        Some(best) => (
            best.experiment_id,
            "program",
            Some(best.clone()),
            goals::holdout_of(&programs, best).map(|h| h.experiment_id),
        ),
        None => match store.best_summarised_experiment().await? {
            Some(id) => (id, "experiment", None, None),
            None => return Ok(None),
        },
    };
    let Some(record) = store.experiment(experiment_id).await? else {
        return Ok(None);
    };
    let clip_sets: BTreeMap<String, String> = store
        .clips()
        .await?
        .into_iter()
        .map(|c| (c.id, c.clip_set))
        .collect();
    // Per (anchor, metric): each clip's BD-rate (or why not), from the dev experiment and the
    // holdout re-measurement.
    let mut per_clip: BTreeMap<(String, QualityMetric), BTreeMap<String, Result<f64, String>>> =
        BTreeMap::new();
    for id in std::iter::once(experiment_id).chain(holdout) {
        let Some(analysis) = stored_analysis(store, id).await? else {
            continue;
        };
        for bd in analysis
            .bd_rates
            .iter()
            .filter(|bd| SHOWN_METRICS.contains(&bd.metric))
        {
            let clips = per_clip.entry((bd.anchor.clone(), bd.metric)).or_default();
            match &bd.report {
                Some(report) => {
                    for clip in report["clips"].as_array().into_iter().flatten() {
                        let name = clip["clip"].as_str().unwrap_or_default().to_string();
                        let value = clip["report"]["pchip"]
                            .as_f64()
                            .ok_or_else(|| format!("BD-rate failed on {name}"));
                        clips.insert(name, value);
                    }
                }
                None => {
                    for clip in analysis.curves.keys() {
                        clips.insert(
                            clip.clone(),
                            Err(bd.not_measured.clone().unwrap_or_default()),
                        );
                    }
                }
            }
        }
    }
    let mut bd_rates = Vec::new();
    for ((anchor, metric), clips) in &per_clip {
        for set in ["dev", "holdout"] {
            let in_set: Vec<&Result<f64, String>> = clips
                .iter()
                .filter(|(clip, _)| clip_sets.get(*clip).map(String::as_str) == Some(set))
                .map(|(_, value)| value)
                .collect();
            let (value, not_measured) = if in_set.is_empty() {
                (None, Some(format!("no {set} clip measured")))
            } else {
                match in_set
                    .iter()
                    .map(|v| v.as_ref().ok().copied())
                    .collect::<Option<Vec<f64>>>()
                {
                    Some(values) => (Some(values.iter().sum::<f64>() / values.len() as f64), None),
                    None => (None, in_set.iter().find_map(|v| v.as_ref().err().cloned())),
                }
            };
            bd_rates.push(SetBdRate {
                anchor: anchor.clone(),
                metric: *metric,
                set: set.into(),
                value,
                clips: in_set.len(),
                not_measured,
            });
        }
    }
    let (decoder_instructions_per_pixel, learned_mac_per_pixel) = match &program {
        Some(p) => ProgramScores::of(p)
            .ok()
            .flatten()
            .map_or((None, None), |s| {
                (s.decoder_instructions_per_pixel, s.learned_mac_per_pixel)
            }),
        None => store
            .summary(experiment_id)
            .await?
            .map_or((None, None), |s| {
                (s.decoder_instructions_per_pixel, s.learned_mac_per_pixel)
            }),
    };
    Ok(Some(BestCodec {
        experiment_id,
        chosen_by: chosen_by.into(),
        role: program.as_ref().map(|p| p.role.name().to_string()),
        fitness: program.as_ref().and_then(|p| p.fitness),
        codec: record.spec.codec_label(),
        holdout_experiment_id: holdout,
        decoder_instructions_per_pixel,
        learned_mac_per_pixel,
        bd_rates,
    }))
}

async fn stored_analysis(store: &Store, id: i64) -> Result<Option<Analysis>, WebError> {
    match store.analysis(id).await? {
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| WebError::Internal(format!("analysis of {id}: {e}"))),
        None => Ok(None),
    }
}

/// One changed genome field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenomeChange {
    /// Dotted path of the field.
    pub key: String,
    pub parent: Option<serde_json::Value>,
    pub child: Option<serde_json::Value>,
}

/// The fields that differ between two genomes (objects compared key by key, nested objects
/// by dotted path).
pub fn genome_diff(parent: &serde_json::Value, child: &serde_json::Value) -> Vec<GenomeChange> {
    fn walk(
        prefix: &str,
        parent: Option<&serde_json::Value>,
        child: Option<&serde_json::Value>,
        out: &mut Vec<GenomeChange>,
    ) {
        match (parent, child) {
            (Some(serde_json::Value::Object(a)), Some(serde_json::Value::Object(b))) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, a.get(key), b.get(key), out);
                }
            }
            (a, b) if a != b => out.push(GenomeChange {
                key: prefix.to_string(),
                parent: a.cloned(),
                child: b.cloned(),
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", Some(parent), Some(child), &mut out);
    out
}

/// The full genome of an experiment's codec (defaults filled in), when it is the lab's codec.
pub fn full_genome(record: &ExperimentRecord) -> Option<serde_json::Value> {
    let partial = record.spec.codec.get("genome").cloned().or_else(|| {
        (record.spec.codec.get("kind")?.as_str()? == "lab").then(|| serde_json::json!({}))
    })?;
    let genome = codeclab_codec::Genome::from_json(&partial.to_string()).ok()?;
    serde_json::to_value(genome).ok()
}

/// An anchor's curve on one clip, as the experiment page draws it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnchorCurve {
    pub anchor: String,
    pub experiment_id: i64,
    pub points: Vec<PointRecord>,
}

/// Everything the experiment page shows. `experiment`, `jobs` and `analysis` are what
/// `codeclab experiment show --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentDetail {
    pub experiment: ExperimentRecord,
    pub jobs: JobCounts,
    pub analysis: Option<serde_json::Value>,
    /// The measured points by clip (the analysis holds the same once analysed).
    pub curves: BTreeMap<String, Vec<PointRecord>>,
    /// Per clip, the anchors' curves it is compared with.
    pub anchor_curves: BTreeMap<String, Vec<AnchorCurve>>,
    pub summary: Option<ExperimentSummary>,
    pub program: Option<ProgramRecord>,
    /// The experiment its genome and edits are compared with.
    pub parent: Option<i64>,
    pub genome: Option<serde_json::Value>,
    pub genome_diff: Vec<GenomeChange>,
    /// The SEARCH/REPLACE edits this program adds to its parent's.
    pub new_edits: Vec<serde_json::Value>,
    pub planner_turns: Vec<PlannerLogRecord>,
    pub cost_usd: Option<f64>,
    /// Artifact keys under the experiment's prefix.
    pub artifacts: Vec<String>,
    pub notes: Vec<Note>,
}

pub async fn experiment_detail(lab: &Lab, id: i64) -> Result<ExperimentDetail, WebError> {
    let store = &lab.store;
    let experiment = store
        .experiment(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("experiment {id} does not exist")))?;
    let jobs = store.job_counts(id).await?;
    let analysis = store.analysis(id).await?;
    let curves = experiment::curves(&store.points(id).await?);
    let mut anchor_curves = BTreeMap::new();
    if experiment.anchor_name.is_none() {
        for clip in &experiment.spec.clips {
            let mut found = Vec::new();
            for anchor in store.anchors_on_clip(clip).await? {
                if !experiment.spec.anchors.is_empty()
                    && !experiment.spec.anchors.contains(&anchor.name)
                {
                    continue;
                }
                let Some(record) = store.experiment(anchor.experiment_id).await? else {
                    continue;
                };
                if !matches!(
                    record.state,
                    ExperimentState::Completed | ExperimentState::Analysed
                ) {
                    continue;
                }
                let points = experiment::curves(&store.points(record.id).await?)
                    .remove(clip)
                    .unwrap_or_default();
                found.push(AnchorCurve {
                    anchor: anchor.name,
                    experiment_id: record.id,
                    points,
                });
            }
            anchor_curves.insert(clip.clone(), found);
        }
    }
    let program = store.program(id).await?;
    let parent = program
        .as_ref()
        .and_then(|p| p.parent)
        .or_else(|| experiment.spec.parents.first().copied());
    let genome = program
        .as_ref()
        .map(|p| p.genome.clone())
        .or_else(|| full_genome(&experiment));
    let (mut genome_diff, mut new_edits) = (Vec::new(), Vec::new());
    if let Some(parent_id) = parent {
        let parent_program = store.program(parent_id).await?;
        let parent_genome = match &parent_program {
            Some(p) => Some(p.genome.clone()),
            None => store
                .experiment(parent_id)
                .await?
                .as_ref()
                .and_then(full_genome),
        };
        if let (Some(a), Some(b)) = (&parent_genome, &genome) {
            genome_diff = self::genome_diff(a, b);
        }
        let parent_edits: Vec<serde_json::Value> = parent_program
            .and_then(|p| p.edits.as_array().cloned())
            .unwrap_or_default();
        new_edits = program
            .as_ref()
            .and_then(|p| p.edits.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|edit| !parent_edits.contains(edit))
            .collect();
    } else if let Some(p) = &program {
        new_edits = p.edits.as_array().cloned().unwrap_or_default();
    }
    Ok(ExperimentDetail {
        jobs,
        analysis,
        curves,
        anchor_curves,
        summary: store.summary(id).await?,
        program,
        parent,
        genome,
        genome_diff,
        new_edits,
        planner_turns: store.planner_turns(id).await?,
        cost_usd: store.experiment_cost(id).await?,
        artifacts: lab.artifacts.list(&experiment_prefix(id)).await?,
        notes: store.notes(Some(id)).await?,
        experiment,
    })
}

/// The decoder-complexity figure the evolution view's Pareto front is computed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Complexity {
    /// Callgrind instructions per pixel of the decoder.
    #[default]
    DecoderInstructionsPerPixel,
    /// Multiply–accumulates per pixel of the learned tools the streams declare.
    LearnedMacPerPixel,
}

impl Complexity {
    pub const ALL: [Complexity; 2] = [
        Complexity::DecoderInstructionsPerPixel,
        Complexity::LearnedMacPerPixel,
    ];

    /// The name in query strings and JSON (the points' field of the figure).
    pub fn name(self) -> &'static str {
        match self {
            Complexity::DecoderInstructionsPerPixel => "decoder_instructions_per_pixel",
            Complexity::LearnedMacPerPixel => "learned_mac_per_pixel",
        }
    }

    pub fn parse(text: &str) -> Option<Complexity> {
        Complexity::ALL.into_iter().find(|c| c.name() == text)
    }

    /// The figure in words, for axes and links.
    pub fn label(self) -> &'static str {
        match self {
            Complexity::DecoderInstructionsPerPixel => "decoder instructions per pixel",
            Complexity::LearnedMacPerPixel => "learned multiply–accumulates per pixel",
        }
    }

    /// A program's figure; `None`: not measured (or, for the learned tools, not applicable).
    pub fn of(self, point: &EvolutionPoint) -> Option<f64> {
        match self {
            Complexity::DecoderInstructionsPerPixel => point.decoder_instructions_per_pixel,
            Complexity::LearnedMacPerPixel => point.learned_mac_per_pixel,
        }
    }
}

/// One program of the evolution view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvolutionPoint {
    pub experiment_id: i64,
    pub parent: Option<i64>,
    pub role: String,
    pub island: i64,
    pub created_at: i64,
    /// Lower is better (see [`Evolution::objective`]); `None` until measured.
    pub fitness: Option<f64>,
    pub decoder_instructions_per_pixel: Option<f64>,
    pub learned_mac_per_pixel: Option<f64>,
    pub genome_changes: Vec<GenomeChange>,
    pub edits_added: usize,
    /// On the Pareto front of fitness and [`Evolution::complexity`].
    pub pareto: bool,
}

/// The best fitness after each measured program.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BestStep {
    pub experiment_id: i64,
    pub created_at: i64,
    pub best: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evolution {
    /// What fitness means here.
    pub objective: String,
    /// The figure the Pareto front weighs fitness against.
    pub complexity: Complexity,
    pub run_id: Option<String>,
    pub programs: Vec<EvolutionPoint>,
    pub best_over_time: Vec<BestStep>,
}

pub async fn evolution(store: &Store, complexity: Complexity) -> Result<Evolution, WebError> {
    let (run_id, programs) = goals::run_programs(store, None).await?;
    let (objective, mut points) = if programs.is_empty() {
        (
            format!(
                "no planner run yet: analysed experiments by mean PSNR-Y BD-rate against {} (percent)",
                codeclab_lab::store::listing::SUMMARY_ANCHOR
            ),
            analysed_points(store).await?,
        )
    } else {
        let by_id: BTreeMap<i64, &ProgramRecord> =
            programs.iter().map(|p| (p.experiment_id, p)).collect();
        let points = programs
            .iter()
            .map(|p| {
                let parent = p.parent.and_then(|id| by_id.get(&id));
                let scores = ProgramScores::of(p).ok().flatten();
                let parent_edits: Vec<serde_json::Value> = parent
                    .and_then(|q| q.edits.as_array().cloned())
                    .unwrap_or_default();
                EvolutionPoint {
                    experiment_id: p.experiment_id,
                    parent: p.parent,
                    role: p.role.name().into(),
                    island: p.island,
                    created_at: p.created_at,
                    fitness: p.fitness.filter(|f| f.is_finite()),
                    decoder_instructions_per_pixel: scores
                        .as_ref()
                        .and_then(|s| s.decoder_instructions_per_pixel)
                        .or_else(|| {
                            p.features.as_ref()?["decoder_instructions_per_pixel"].as_f64()
                        }),
                    learned_mac_per_pixel: scores
                        .as_ref()
                        .and_then(|s| s.learned_mac_per_pixel)
                        .or_else(|| p.features.as_ref()?["learned_mac_per_pixel"].as_f64()),
                    genome_changes: parent
                        .map(|q| genome_diff(&q.genome, &p.genome))
                        .unwrap_or_default(),
                    edits_added: p.edits.as_array().map_or(0, |e| {
                        e.iter().filter(|x| !parent_edits.contains(x)).count()
                    }),
                    pareto: false,
                }
            })
            .collect();
        (
            "mean BD-rate against the run's reference on the dev clips (percent, lower is better)"
                .to_string(),
            points,
        )
    };
    mark_pareto(&mut points, complexity);
    let mut best_over_time = Vec::new();
    let mut best = f64::INFINITY;
    for point in &points {
        if let Some(f) = point.fitness
            && f < best
        {
            best = f;
        }
        if best.is_finite() {
            best_over_time.push(BestStep {
                experiment_id: point.experiment_id,
                created_at: point.created_at,
                best,
            });
        }
    }
    Ok(Evolution {
        objective,
        complexity,
        run_id,
        programs: points,
        best_over_time,
    })
}

async fn analysed_points(store: &Store) -> Result<Vec<EvolutionPoint>, WebError> {
    let page = store
        .list_experiments(&codeclab_lab::store::listing::ListQuery {
            filter: codeclab_lab::store::listing::ExperimentFilter {
                state: Some(ExperimentState::Analysed),
                ..Default::default()
            },
            descending: false,
            limit: 1000,
            ..Default::default()
        })
        .await?;
    Ok(page
        .rows
        .into_iter()
        .filter(|row| row.anchor_name.is_none())
        .map(|row| EvolutionPoint {
            experiment_id: row.id,
            parent: row.rerun_of,
            role: row.proposer,
            island: 0,
            created_at: row.created_at,
            fitness: row.summary.as_ref().and_then(|s| s.bd_psnr_y),
            decoder_instructions_per_pixel: row
                .summary
                .as_ref()
                .and_then(|s| s.decoder_instructions_per_pixel),
            learned_mac_per_pixel: row.summary.as_ref().and_then(|s| s.learned_mac_per_pixel),
            genome_changes: Vec::new(),
            edits_added: 0,
            pareto: false,
        })
        .collect())
}

/// Marks the points no other point beats on both fitness and `complexity`.
fn mark_pareto(points: &mut [EvolutionPoint], complexity: Complexity) {
    let measured: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.fitness?, complexity.of(p)?)))
        .collect();
    for point in points.iter_mut() {
        let (Some(f), Some(c)) = (point.fitness, complexity.of(point)) else {
            continue;
        };
        point.pareto = !measured
            .iter()
            .any(|&(g, d)| g <= f && d <= c && (g < f || d < c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genome_diff_lists_changed_added_and_removed_fields() {
        let a = serde_json::json!({"qp_offset": 1, "me": {"range": 16, "subpel": true}, "gone": 3});
        let b = serde_json::json!({"qp_offset": 2, "me": {"range": 16, "subpel": false}, "new": 4});
        let keys: Vec<String> = genome_diff(&a, &b).into_iter().map(|c| c.key).collect();
        assert_eq!(keys, ["gone", "me.subpel", "new", "qp_offset"]);
        assert!(genome_diff(&a, &a).is_empty());
    }

    fn point(id: i64, fitness: f64, instructions: f64, mac: Option<f64>) -> EvolutionPoint {
        EvolutionPoint {
            experiment_id: id,
            parent: None,
            role: "candidate".into(),
            island: 0,
            created_at: id,
            fitness: Some(fitness),
            decoder_instructions_per_pixel: Some(instructions),
            learned_mac_per_pixel: mac,
            genome_changes: Vec::new(),
            edits_added: 0,
            pareto: false,
        }
    }

    fn front(points: &mut [EvolutionPoint], complexity: Complexity) -> Vec<i64> {
        mark_pareto(points, complexity);
        points
            .iter()
            .filter(|p| p.pareto)
            .map(|p| p.experiment_id)
            .collect()
    }

    #[test]
    fn the_pareto_front_keeps_the_points_nothing_beats_on_both_axes() {
        let mut points = vec![
            point(1, -5.0, 300.0, None),
            point(2, -3.0, 200.0, None),
            point(3, -2.0, 250.0, None),
            point(4, -6.0, 400.0, None),
        ];
        assert_eq!(
            front(&mut points, Complexity::DecoderInstructionsPerPixel),
            [1, 2, 4]
        );
    }

    #[test]
    fn the_learned_mac_front_keeps_the_points_nothing_beats_on_both_axes() {
        let mut points = vec![
            point(1, -5.0, 300.0, Some(0.0)),
            point(2, -3.0, 200.0, Some(0.0)),
            point(3, -8.0, 900.0, Some(1296.0)),
            point(4, -7.0, 500.0, Some(2592.0)),
            point(5, -9.0, 950.0, Some(2592.0)),
            // No learned-MAC figure: off that front, whatever its fitness.
            point(6, -10.0, 100.0, None),
        ];
        assert_eq!(
            front(&mut points, Complexity::LearnedMacPerPixel),
            [1, 3, 5]
        );
        // The same programs weighed against instructions: the front is another one.
        assert_eq!(
            front(&mut points, Complexity::DecoderInstructionsPerPixel),
            [6]
        );
    }

    #[test]
    fn complexity_names_parse_back() {
        for complexity in Complexity::ALL {
            assert_eq!(Complexity::parse(complexity.name()), Some(complexity));
            assert_eq!(serde_json::to_value(complexity).unwrap(), complexity.name());
        }
        assert_eq!(Complexity::parse("mac"), None);
    }
}
