//! The offline planner: an evolutionary search over the codec genome that needs no model.
//!
//! Nothing is kept between turns: every turn rebuilds the program database from the view, and
//! every random choice comes from a small generator seeded with the configured seed and the size
//! of the view, so a planner rebuilt after a restart proposes the same thing, and the same seed
//! with the same results gives the same sequence. The search goes through three stages, each a
//! function of what the view holds:
//!
//! 1. **Probes**: single-gene changes from the reference, genes in order of their prior relevance
//!    (shuffled a little by the seed); a numeric gene's opposite direction is probed only when the
//!    first one did not help. They measure each gene's own effect.
//! 2. **Combination**: a greedy chain adds the improving probes, best first, to the best
//!    combination so far; an addition stays only if it improves.
//! 3. **Refinement**: islands, each with a MAP-Elites archive over (encoder effort, decoder
//!    instructions per pixel). Half the turns first try to repeat the numeric move that made one
//!    of the island's best elites better than its parent (a line search); otherwise a parent
//!    comes from the island's elites (its best, a tournament, or a random elite), then crossover
//!    with another island's elite or a mutation of genes drawn by their learned success rates,
//!    with a step size adapted by the 1/5th-success rule. Every few generations an island's best
//!    migrates to the next island.
//!
//! Failures count: a failed program lowers the weight of the genes (and directions) it changed,
//! and no proposal repeats a failed change (the same switches, numeric genes moved at least as
//! far in the same direction from the same starting values).
//!
//! Genes that act only through a switch (the learned filter's shape and training) keep their
//! parent's values in a proposal whose switch is off: the codec would ignore the move. A
//! `learned_mac_per_pixel` goal bounds the search: a proposal whose learned filter would declare
//! more multiply–accumulates per pixel than the tightest such goal allows gets a smaller filter
//! (narrower kernels, then fewer channels, then fewer layers), or is not made when even the
//! smallest is too large (a genome fixes the filter's shape, so the figure is known before
//! measuring).

use std::collections::BTreeMap;

use codeclab_codec::Genome;
use codeclab_codec::learned::FilterShape;
use serde::Serialize;
use serde_json::Value;

use super::{Outcome, Planner, PlannerView, Program, Proposal, Turn};
use crate::LabError;
use crate::candidate::Edit;
use crate::config::{Goal, PlannerConfig};

/// The name recorded as the proposer.
pub const PLANNER_NAME: &str = "evolve";

/// Share of a run's proposals spent on single-gene probes.
const PROBE_SHARE: f64 = 0.35;
const MIN_PROBES: usize = 3;
/// A probe's step, as a fraction of the gene's range (of its logarithm for wide positive ranges).
const PROBE_STEP: f64 = 0.08;
/// Mutation step size (same unit): start and bounds.
const SIGMA_START: f64 = 0.1;
const SIGMA_MIN: f64 = 0.02;
const SIGMA_MAX: f64 = 0.25;
/// 1/5th-success rule: an improving child multiplies the step by this, any other child divides
/// it by its fourth root, so the step holds still at one success in five.
const SIGMA_GROWTH: f64 = 1.5;
/// Chance that a refinement turn crosses its parent with another elite instead of mutating it.
const CROSSOVER_RATE: f64 = 0.25;
/// Chance that a refinement turn first tries to repeat a successful move of one of the island's
/// best elites.
const EXTRAPOLATION_RATE: f64 = 0.5;
const EXTRAPOLATED_ELITES: usize = 3;
/// Parent selection in refinement: the island's best below the first threshold, a tournament
/// below the second, a random elite above (exploration).
const SELECT_BEST: f64 = 0.55;
const SELECT_TOURNAMENT: f64 = 0.85;
const TOURNAMENT_SIZE: usize = 3;
/// Proposals per island between two migrations.
const MIGRATION_INTERVAL: usize = 4;
/// Candidates drawn per refinement turn before giving up.
const ATTEMPTS: usize = 96;
/// Archive resolution: bins per octave of encoder effort and of decoder instructions per pixel.
const EFFORT_BINS_PER_OCTAVE: f64 = 4.0;
const DECODER_BINS_PER_OCTAVE: f64 = 8.0;
/// Real-valued genes are rounded to this, so that near-equal values do not pass as new.
const REAL_RESOLUTION: f64 = 1e-3;
/// Wide positive ranges (max/min at least this) are searched on a log scale.
const LOG_SCALE_RATIO: f64 = 8.0;

/// Prior relevance of the genes to the rate-distortion trade-off: the probing order and the
/// starting weights of mutation. Motion references, the mode-decision shortcuts, the Lagrange
/// multiplier, the quantiser's dead zones and the frame QP offset shape it most; the search
/// tools and block sizes mostly trade speed. The mini-GOP length and the B-level QP step start
/// at 1; the switches and strengths of the newer tools (bi-prediction, scene cuts, temporal
/// rate-distortion) start low, their defaults being the measured best. The learned filter is
/// off by default for its encoding time, not for its rate, so its switch is worth a probe, but a
/// late one: every program with it on costs many ordinary encodes. Its shape and training start
/// low too: each step up buys quality with encoding time (training steps, size) and decoding
/// work (size), and they act only once the filter is on. 0 holds a gene: the fitness is measured
/// on luma, so moving the chroma QP would trade chroma quality the fitness does not see for rate.
const PRIORS: &[(&str, f64)] = &[
    ("reference_frames", 3.0),
    ("skip_stops_split", 3.0),
    ("clean_inter_stops_split", 2.5),
    ("early_skip", 3.0),
    ("lambda_scale", 3.0),
    ("skip_intra_after_clean_inter", 2.5),
    ("deadzone_inter", 2.0),
    ("deadzone_intra", 2.0),
    ("p_frame_qp_offset", 2.0),
    ("mini_gop", 1.0),
    ("adaptive_gop", 1.0),
    ("b_layer_qp_offset", 1.0),
    ("bipred", 0.3),
    ("temporal_rd", 0.3),
    ("temporal_rd_strength", 0.3),
    ("scene_cut_threshold", 0.3),
    ("lookahead", 0.3),
    ("deblock_beta_offset", 1.5),
    ("deblock_tc_offset", 1.5),
    ("intra_rdo_candidates", 1.5),
    ("inter_rd_candidates", 1.0),
    ("inter_rd_margin", 1.0),
    ("subpel_precision", 1.0),
    ("merge_candidates", 1.0),
    ("temporal_mvp", 0.5),
    ("bi_merge", 0.5),
    ("me_range", 1.0),
    ("min_block_log2", 0.8),
    ("max_block_log2", 0.8),
    ("rdoq", 0.8),
    ("sign_hiding", 0.5),
    ("intra_dst", 0.5),
    ("transform_skip", 0.5),
    ("residual_quadtree", 0.5),
    ("context_carry", 0.5),
    ("intra_angular", 0.5),
    ("deblock", 0.5),
    ("sao", 0.5),
    ("keyint", 0.5),
    ("learned_filter", 0.5),
    ("filter_training_steps", 0.4),
    ("filter_channels", 0.4),
    ("filter_layers", 0.3),
    ("filter_kernel_radius", 0.3),
    ("filter_weight_bits", 0.3),
    ("chroma_qp_offset", 0.0),
];
/// Prior of a gene the table does not name.
const DEFAULT_PRIOR: f64 = 1.0;
/// Genes the codec ignores while a switch is off, and that switch.
const SWITCHED: &[(&str, &str)] = &[
    ("filter_layers", "learned_filter"),
    ("filter_channels", "learned_filter"),
    ("filter_kernel_radius", "learned_filter"),
    ("filter_weight_bits", "learned_filter"),
    ("filter_training_steps", "learned_filter"),
];

/// Multiply–accumulates per luma pixel of the learned tools a genome's streams declare.
fn learned_mac_per_pixel(genome: &Genome) -> f64 {
    genome
        .learned_filter_shape()
        .map_or(0, FilterShape::mac_per_pixel) as f64
}

/// `genome` with its learned filter shrunk, one step at a time (narrower kernels, then fewer
/// channels, then fewer layers), until it declares at most `cap` multiply–accumulates per pixel;
/// `None` when even the smallest filter declares more.
fn fit_learned_filter(mut genome: Genome, cap: f64) -> Option<Genome> {
    let least = |name: &str| {
        Genome::RANGES
            .iter()
            .find(|r| r.name == name)
            .map_or(0, |r| r.min as u8)
    };
    while learned_mac_per_pixel(&genome) > cap {
        if genome.filter_kernel_radius > least("filter_kernel_radius") {
            genome.filter_kernel_radius -= 1;
        } else if genome.filter_channels > least("filter_channels") {
            genome.filter_channels -= 1;
        } else if genome.filter_layers > least("filter_layers") {
            genome.filter_layers -= 1;
        } else {
            return None;
        }
    }
    Some(genome)
}

/// The tightest `learned_mac_per_pixel` goal, if any.
fn learned_mac_cap(goals: &[Goal]) -> Option<f64> {
    goals
        .iter()
        .filter_map(|goal| match goal {
            Goal::LearnedMacPerPixel { at_most } => Some(*at_most),
            _ => None,
        })
        .min_by(f64::total_cmp)
}

/// The encoder's work implied by a genome relative to [`Genome::default`] (1.0): a product of
/// per-tool factors, with the block-size range and the three mode-decision shortcuts each taken
/// as a whole (their effects interact).
///
/// Calibrated on user CPU time of `codeclab encode --qp 32` on carphone (QCIF, 120 frames; the
/// default takes about 2.05 s), one tool at a time, plus pairs where tools interact: each
/// reference frame beyond the first adds about 24.5 %; each intra candidate kept for the full RD
/// check about 10 % (1 candidate 0.9, 8 candidates 1.6); whole-sample motion 1.24, half-sample
/// 1.09 (coarser motion leaves more residual to code); one merge candidate 1.09; RDOQ off 0.53.
/// Checked on combinations (2 references with 4 intra candidates, 3 references without RDOQ,
/// 4 references with 8 candidates and two shortcuts off): within 10 %. The motion search range,
/// the angular intra search, deblocking, the key-frame interval and the QP offsets moved the
/// time by 3 % or less, the temporal and bi-predicted merge candidates the encoder's
/// instructions by -1 to +4 % (+0.3 to +1.6 % together), and are left out.
pub fn encoder_effort(genome: &Genome) -> f64 {
    let reference_frames = 1.0 + 0.245 * (f64::from(genome.reference_frames) - 1.0);
    let intra_candidates = 1.0 + 0.1 * (f64::from(genome.intra_rdo_candidates) - 2.0);
    let subpel = match genome.subpel_precision {
        0 => 1.24,
        1 => 1.09,
        _ => 1.0,
    };
    let merge = 1.0 + 0.0225 * (5.0 - f64::from(genome.merge_candidates));
    let rdoq = if genome.rdoq { 1.0 } else { 0.53 };
    // Each motion-searched prediction (per reference in both directions, and the average) left
    // out of the full check saves about 10 % (carphone: 1 of 3 kept 0.8, 2 kept 0.9).
    let checked = 2 * u32::from(genome.reference_frames) + 1;
    let skipped = checked.saturating_sub(u32::from(genome.inter_rd_candidates));
    let inter_candidates = (1.0 - 0.1 * f64::from(skipped)).max(0.5);
    // Encoder instructions on 720p bikes at QP 32 against the default margin (0.1): 0.97 with
    // the cheapest alone (0), 1.07 with every prediction (as 1.0 nearly always is); linear
    // between.
    let margin = genome.inter_rd_margin.clamp(0.0, 1.0);
    let inter_margin = if margin <= 0.1 {
        0.97 + 0.3 * margin
    } else {
        1.0 + 0.07 * (margin - 0.1) / 0.9
    };
    // Smallest and largest block (log2), as measured.
    let blocks = match (genome.min_block_log2, genome.max_block_log2) {
        (3, 3) => 0.33,
        (3, 4) => 0.52,
        (3, 5) | (4, 5) | (5, 6) => 0.8,
        (4, 4) => 0.42,
        (4, 6) => 1.02,
        (5, 5) => 0.6,
        // 8x8 to 64x64, the default (inconsistent sizes do not validate).
        _ => 1.0,
    };
    // Early skip, skip stops split, skip intra after a clean inter: which ones are off.
    let shortcuts = match (
        genome.early_skip,
        genome.skip_stops_split,
        genome.skip_intra_after_clean_inter,
    ) {
        (true, true, true) => 1.0,
        (false, true, true) => 1.12,
        (true, false, true) => 1.11,
        (true, true, false) => 1.14,
        (false, false, true) => 1.39,
        (false, true, false) => 1.71,
        (true, false, false) => 1.28,
        (false, false, false) => 2.32,
    };
    // Stopping at any inter unit without residual, not only skip, saves about a fifth (720p
    // bikes and QCIF carphone at QP 27, 20 frames).
    let clean_inter = if genome.clean_inter_stops_split {
        0.8
    } else {
        1.0
    };
    // The learned filter, measured later, when the default took 0.93 s: training on each key
    // frame (120 / keyint of them here, so the interval matters once the filter is on) costs
    // about 0.02 s plus 45 µs per multiply–accumulate per pixel for each optimiser step, and
    // applying it 0.26 ms per multiply–accumulate per pixel over the clip. The shipped shape
    // with 300 steps took 27 s (29x); the model is within 30 % from 2 to 6 layers, 8 to 16
    // channels, 3x3 and 5x5 kernels, and 0 to 300 steps.
    let learned_filter = genome.learned_filter_shape().map_or(1.0, |shape| {
        let mac = shape.mac_per_pixel() as f64;
        let key_frames = (120.0 / f64::from(genome.keyint)).ceil();
        let training = key_frames * f64::from(genome.filter_training_steps) * (0.02 + 45e-6 * mac);
        1.0 + (training + 2.6e-4 * mac) / 0.93
    });
    reference_frames
        * intra_candidates
        * inter_candidates
        * inter_margin
        * subpel
        * merge
        * rdoq
        * blocks
        * shortcuts
        * clean_inter
        * learned_filter
}

/// The offline planner.
#[derive(Clone, Debug)]
pub struct EvolvePlanner {
    seed: u64,
    islands: usize,
}

/// A program database's MAP-Elites archives, one per island, as rebuilt from a view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Archive {
    pub islands: Vec<IslandArchive>,
}

/// One island's archive.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IslandArchive {
    pub island: i64,
    /// Programs proposed on this island (the reference excluded).
    pub programs: usize,
    /// The elite of each occupied cell, best first.
    pub elites: Vec<Elite>,
}

/// The best program of one archive cell.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Elite {
    pub cell: Cell,
    pub experiment_id: i64,
    pub fitness: f64,
    /// Arrived from another island by migration.
    pub migrant: bool,
}

/// An archive cell: log-scale bins of the two diversity features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Cell {
    /// `floor(4 log2(encoder effort))`: quarter octaves around the default (bin 0).
    pub effort_bin: i32,
    /// `floor(8 log2(decoder instructions per pixel))`; `None` when not counted.
    pub decoder_bin: Option<i32>,
}

impl EvolvePlanner {
    pub fn new(config: &PlannerConfig) -> Self {
        EvolvePlanner {
            seed: config.seed,
            islands: usize::try_from(config.islands).unwrap_or(1).max(1),
        }
    }

    /// The next turn for `view` (what [`Planner::propose`] answers).
    pub fn plan(&self, view: &PlannerView<'_>) -> Turn {
        let database = Database::new(view.programs, self.islands, view.goals);
        let mut rng = SplitMix::new(mix(&[
            self.seed,
            view.programs.len() as u64,
            view.feedback.len() as u64,
        ]));
        let draft = database
            .next_probe(self.seed, view.remaining)
            .or_else(|| database.next_combination())
            .or_else(|| database.refinement(&mut rng));
        match draft {
            Some(draft) => Turn::Propose(draft.into_proposal()),
            None => Turn::Rejected {
                log_id: None,
                reason: format!(
                    "the evolve planner drew {ATTEMPTS} candidates and each one repeated a \
                     program of the run or a failed change"
                ),
            },
        }
    }

    /// The MAP-Elites archives this planner rebuilds from `view`.
    pub fn archive(&self, view: &PlannerView<'_>) -> Archive {
        let database = Database::new(view.programs, self.islands, view.goals);
        let archives = database.archives();
        Archive {
            islands: archives
                .into_iter()
                .enumerate()
                .map(|(island, cells)| {
                    let mut elites: Vec<Elite> = cells
                        .into_iter()
                        .map(|(cell, entry)| Elite {
                            cell,
                            experiment_id: database.nodes[entry.node].program.experiment_id,
                            fitness: entry.fitness,
                            migrant: entry.migrant,
                        })
                        .collect();
                    elites.sort_by(|a, b| a.fitness.total_cmp(&b.fitness));
                    IslandArchive {
                        island: island as i64,
                        programs: database
                            .nodes
                            .iter()
                            .skip(1)
                            .filter(|n| n.island == island)
                            .count(),
                        elites,
                    }
                })
                .collect(),
        }
    }
}

impl Planner for EvolvePlanner {
    fn name(&self) -> &'static str {
        PLANNER_NAME
    }

    fn propose(
        &mut self,
        view: &PlannerView<'_>,
    ) -> impl Future<Output = Result<Turn, LabError>> + Send {
        std::future::ready(Ok(self.plan(view)))
    }
}

/// A gene the search moves.
#[derive(Clone, Debug)]
struct Gene {
    name: String,
    kind: Kind,
    prior: f64,
    /// The switch (a gene index) it acts through, if any.
    switch: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Switch,
    Number {
        min: f64,
        max: f64,
        integer: bool,
        log_scale: bool,
    },
}

impl Kind {
    /// Position in the range, 0 to 1 (on the log scale for wide ranges).
    fn position(self, value: f64) -> f64 {
        match self {
            Kind::Switch => value,
            Kind::Number {
                min,
                max,
                log_scale: true,
                ..
            } => (value / min).ln() / (max / min).ln(),
            Kind::Number { min, max, .. } => (value - min) / (max - min),
        }
    }

    /// The value at a position, clamped to the range and rounded to the gene's resolution.
    fn value_at(self, unit: f64) -> f64 {
        match self {
            Kind::Switch => unit.round().clamp(0.0, 1.0),
            Kind::Number {
                min,
                max,
                integer,
                log_scale,
            } => {
                let unit = unit.clamp(0.0, 1.0);
                let value = if log_scale {
                    min * (max / min).powf(unit)
                } else {
                    min + unit * (max - min)
                };
                round_to(value.clamp(min, max), integer)
            }
        }
    }

    /// `value` moved by `step` (signed, in range units); an integer moves at least one unit.
    /// `None` when it cannot move that way.
    fn stepped(self, value: f64, step: f64) -> Option<f64> {
        let Kind::Number {
            min, max, integer, ..
        } = self
        else {
            return Some(1.0 - value);
        };
        let mut moved = self.value_at(self.position(value) + step);
        if integer && moved == value {
            moved = (value + step.signum()).clamp(min, max);
        }
        (moved != value).then_some(moved)
    }

    fn is_number(self) -> bool {
        matches!(self, Kind::Number { .. })
    }
}

fn round_to(value: f64, integer: bool) -> f64 {
    if integer {
        value.round()
    } else {
        (value / REAL_RESOLUTION).round() * REAL_RESOLUTION
    }
}

/// The genes of [`Genome`]: its switches and its ranged numbers, in the order of its JSON fields.
#[derive(Clone, Debug)]
struct Space {
    genes: Vec<Gene>,
}

impl Space {
    fn new() -> Space {
        let shipped = serde_json::to_value(Genome::default()).unwrap_or_default();
        let mut genes = shipped
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| {
                let kind = if value.is_boolean() {
                    Kind::Switch
                } else {
                    let range = Genome::RANGES.iter().find(|r| r.name == name)?;
                    Kind::Number {
                        min: range.min,
                        max: range.max,
                        integer: !value.is_f64(),
                        log_scale: range.min > 0.0 && range.max / range.min >= LOG_SCALE_RATIO,
                    }
                };
                let prior = PRIORS
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(DEFAULT_PRIOR, |(_, p)| *p);
                Some(Gene {
                    name: name.clone(),
                    kind,
                    prior,
                    switch: None,
                })
            })
            .collect::<Vec<Gene>>();
        let names: Vec<String> = genes.iter().map(|g| g.name.clone()).collect();
        for gene in &mut genes {
            gene.switch = SWITCHED
                .iter()
                .find(|(name, _)| *name == gene.name)
                .and_then(|(_, switch)| names.iter().position(|n| n == switch));
        }
        Space { genes }
    }

    /// `to` with every gene whose switch is off there back at its value in `from`.
    fn settled(&self, from: &[f64], to: &[f64]) -> Vec<f64> {
        self.genes
            .iter()
            .enumerate()
            .map(|(g, gene)| match gene.switch {
                Some(switch) if to[switch] < 0.5 => from[g],
                _ => to[g],
            })
            .collect()
    }

    fn values(&self, genome: &Genome) -> Vec<f64> {
        let json = serde_json::to_value(genome).unwrap_or_default();
        self.genes
            .iter()
            .map(|gene| match json.get(&gene.name) {
                Some(Value::Bool(on)) => f64::from(u8::from(*on)),
                Some(value) => value.as_f64().unwrap_or(f64::NAN),
                None => f64::NAN,
            })
            .collect()
    }

    /// `base` with the genes set to `values`; `None` unless the result is a valid genome.
    fn genome(&self, base: &Genome, values: &[f64]) -> Option<Genome> {
        let Value::Object(mut fields) = serde_json::to_value(base).ok()? else {
            return None;
        };
        for (gene, &value) in self.genes.iter().zip(values) {
            let json = match gene.kind {
                Kind::Switch => Value::Bool(value >= 0.5),
                Kind::Number { integer: true, .. } => Value::from(value.round() as i64),
                Kind::Number { .. } => Value::from(serde_json::Number::from_f64(value)?),
            };
            fields.insert(gene.name.clone(), json);
        }
        let genome: Genome = serde_json::from_value(Value::Object(fields)).ok()?;
        genome.validate().ok()?;
        Some(genome)
    }

    /// The genes that differ between two value vectors.
    fn changed(&self, from: &[f64], to: &[f64]) -> Vec<usize> {
        (0..self.genes.len())
            .filter(|&g| from.get(g) != to.get(g))
            .collect()
    }

    fn describe_value(&self, gene: usize, value: f64) -> String {
        match self.genes[gene].kind {
            Kind::Switch if value >= 0.5 => "on".into(),
            Kind::Switch => "off".into(),
            Kind::Number { integer: true, .. } => format!("{value:.0}"),
            Kind::Number { .. } => format!("{value:.3}"),
        }
    }

    /// "name old → new and name old → new".
    fn describe_changes(&self, from: &[f64], to: &[f64]) -> String {
        let parts: Vec<String> = self
            .changed(from, to)
            .into_iter()
            .map(|g| {
                format!(
                    "{} {} → {}",
                    self.genes[g].name,
                    self.describe_value(g, from[g]),
                    self.describe_value(g, to[g])
                )
            })
            .collect();
        match parts.split_last() {
            None => "no change".into(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }
}

/// Direction of a change: 1 up (or a switch turned on), 0 down (or off).
fn direction(from: f64, to: f64) -> usize {
    usize::from(to > from)
}

/// A program of the view with what the search derives from it.
struct Node<'a> {
    program: &'a Program,
    values: Vec<f64>,
    /// Index of the parent node; the reference's parent is itself (index 0 has none).
    parent: usize,
    /// Genes that differ from the parent.
    changed: Vec<usize>,
    island: usize,
}

impl Node<'_> {
    fn fitness(&self) -> Option<f64> {
        match self.program.outcome {
            Outcome::Measured { fitness, .. } if fitness.is_finite() => Some(fitness),
            _ => None,
        }
    }

    fn failed(&self) -> bool {
        matches!(self.program.outcome, Outcome::Failed { .. })
    }

    fn pending(&self) -> bool {
        matches!(self.program.outcome, Outcome::Pending)
    }

    fn cell(&self) -> Cell {
        let (effort, decoder) = match &self.program.outcome {
            Outcome::Measured { features, .. } => (
                features.encoder_effort,
                features.decoder_instructions_per_pixel,
            ),
            _ => (encoder_effort(&self.program.genome), None),
        };
        Cell {
            effort_bin: log_bin(effort, EFFORT_BINS_PER_OCTAVE).unwrap_or(0),
            decoder_bin: decoder.and_then(|ipp| log_bin(ipp, DECODER_BINS_PER_OCTAVE)),
        }
    }
}

fn log_bin(value: f64, per_octave: f64) -> Option<i32> {
    (value.is_finite() && value > 0.0).then(|| (value.log2() * per_octave).floor() as i32)
}

/// One archive cell's current elite.
#[derive(Clone, Copy, Debug)]
struct Entry {
    node: usize,
    fitness: f64,
    migrant: bool,
}

/// What the history says about each gene: per direction, changes that improved on their parent,
/// changes measured, and changes that failed; and the mutation step it implies.
#[derive(Clone, Debug)]
struct Learning {
    successes: Vec<[f64; 2]>,
    trials: Vec<[f64; 2]>,
    failures: Vec<[f64; 2]>,
    sigma: f64,
    children: usize,
    improved: usize,
}

impl Learning {
    fn weight(&self, gene: usize, prior: f64) -> f64 {
        let s = self.successes[gene][0] + self.successes[gene][1];
        let t = self.trials[gene][0] + self.trials[gene][1];
        let f = self.failures[gene][0] + self.failures[gene][1];
        // Squared, so that two failed trials outweigh a higher prior.
        prior * ((s + 1.0) / (t + 2.0)).powi(2) * 0.5f64.powf(f)
    }

    fn direction_weight(&self, gene: usize, direction: usize) -> f64 {
        (self.successes[gene][direction] + 1.0) / (self.trials[gene][direction] + 2.0)
            * 0.5f64.powf(self.failures[gene][direction])
    }

    fn rates(&self, gene: usize) -> (f64, f64) {
        (
            self.successes[gene][0] + self.successes[gene][1],
            self.trials[gene][0] + self.trials[gene][1],
        )
    }
}

/// A single-gene change from the reference.
struct Probe {
    gene: usize,
    value: f64,
    /// For the opposite direction of a numeric gene: the first direction's value.
    after: Option<f64>,
}

/// A proposal before it is written out.
struct Draft {
    parent_id: Option<i64>,
    island: usize,
    /// The genome's gene values (what the proposal's texts describe).
    values: Vec<f64>,
    genome: Genome,
    edits: Vec<Edit>,
    hypothesis: String,
    reasoning: String,
    expected_effect: String,
}

impl Draft {
    fn into_proposal(self) -> Proposal {
        Proposal {
            parent: self.parent_id,
            island: self.island as i64,
            genome: self.genome,
            edits: self.edits,
            hypothesis: self.hypothesis,
            reasoning: self.reasoning,
            expected_effect: self.expected_effect,
            log_id: None,
        }
    }
}

/// The program database, rebuilt from a view.
struct Database<'a> {
    space: Space,
    /// The reference first (when the view has one), then every program in submission order.
    nodes: Vec<Node<'a>>,
    /// The reference's values (the shipped genome's when the view is empty).
    reference_values: Vec<f64>,
    reference_fitness: f64,
    islands: usize,
    /// The most learned multiply–accumulates per pixel a proposal may declare.
    learned_mac_cap: Option<f64>,
}

impl<'a> Database<'a> {
    fn new(programs: &'a [Program], islands: usize, goals: &[Goal]) -> Database<'a> {
        let space = Space::new();
        let index: BTreeMap<i64, usize> = programs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.experiment_id, i))
            .rev()
            .collect();
        let reference_values = programs.first().map_or_else(
            || space.values(&Genome::default()),
            |p| space.values(&p.genome),
        );
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity(programs.len());
        for (i, program) in programs.iter().enumerate() {
            let values = space.values(&program.genome);
            // Only earlier programs can be parents; anything else derives from the reference.
            let parent = program
                .parent
                .and_then(|id| index.get(&id).copied())
                .filter(|&p| p < i)
                .unwrap_or(0);
            let changed = if i == 0 {
                Vec::new()
            } else {
                space.changed(&nodes[parent].values, &values)
            };
            nodes.push(Node {
                program,
                values,
                parent,
                changed,
                island: program.island.rem_euclid(islands as i64) as usize,
            });
        }
        let reference_fitness = nodes.first().and_then(Node::fitness).unwrap_or(0.0);
        Database {
            space,
            nodes,
            reference_values,
            reference_fitness,
            islands,
            learned_mac_cap: learned_mac_cap(goals),
        }
    }

    /// The fitness a child is compared with: its parent's (the reference's counts as measured).
    fn parent_fitness(&self, node: usize) -> Option<f64> {
        let parent = self.nodes[node].parent;
        if parent == 0 {
            Some(self.reference_fitness)
        } else {
            self.nodes[parent].fitness()
        }
    }

    /// The island the next proposal goes to: round robin over the proposals made so far.
    fn next_island(&self) -> usize {
        self.nodes.len().saturating_sub(1) % self.islands
    }

    fn is_duplicate(&self, genome: &Genome) -> bool {
        self.nodes.iter().any(|n| &n.program.genome == genome)
    }

    /// Whether `values` repeat a failed program's change: its switches set the same way and its
    /// numeric genes at least as far in the same direction from the failed program's parent.
    fn repeats_failure(&self, values: &[f64]) -> bool {
        self.nodes
            .iter()
            .skip(1)
            .filter(|n| n.failed())
            .any(|failed| {
                let pivot = &self.nodes[failed.parent].values;
                !failed.changed.is_empty()
                    && failed.changed.iter().all(|&g| {
                        let (from, to, candidate) = (pivot[g], failed.values[g], values[g]);
                        if self.space.genes[g].kind.is_number() {
                            (to - from) * (candidate - from) > 0.0
                                && (candidate - from).abs() >= (to - from).abs()
                        } else {
                            candidate == to
                        }
                    })
            })
    }

    fn describe_parent(&self, node: usize) -> String {
        let id = self.nodes[node].program.experiment_id;
        if node == 0 {
            format!("the reference #{id}")
        } else {
            match self.nodes[node].fitness() {
                Some(f) => format!("#{id} ({f:+.2} %)"),
                None => format!("#{id}"),
            }
        }
    }

    /// A draft deriving `values` from node `parent` (genes their switch turns off keep the
    /// parent's values; a learned filter beyond the goals' bound is shrunk to fit), if they make
    /// a new, valid genome that does not repeat a failure.
    fn draft(&self, parent: usize, values: &[f64], island: usize) -> Option<Draft> {
        let (base, edits, parent_id) = match self.nodes.get(parent) {
            Some(node) => (
                node.program.genome.clone(),
                node.program.edits.clone(),
                Some(node.program.experiment_id),
            ),
            None => (Genome::default(), Vec::new(), None),
        };
        let values = self.space.settled(&self.space.values(&base), values);
        let mut genome = self.space.genome(&base, &values)?;
        if let Some(cap) = self.learned_mac_cap {
            genome = fit_learned_filter(genome, cap)?;
        }
        let values = self.space.values(&genome);
        if genome == base || self.is_duplicate(&genome) || self.repeats_failure(&values) {
            return None;
        }
        Some(Draft {
            parent_id,
            island,
            values,
            genome,
            edits,
            hypothesis: String::new(),
            reasoning: String::new(),
            expected_effect: String::new(),
        })
    }

    // ---- Stage 1: probes -------------------------------------------------------------------

    /// Probes in order of their key: the gene's prior (shuffled a little by the seed) for its
    /// first direction (a seeded choice), half of it for the opposite one, which is worth a probe
    /// only after the first did not help.
    fn probe_plan(&self, seed: u64) -> Vec<Probe> {
        let mut rng = SplitMix::new(mix(&[seed, 0x9e37_79b9]));
        let mut plan = Vec::new();
        for (gene, spec) in self.space.genes.iter().enumerate() {
            let key = spec.prior * (1.0 + 0.5 * rng.f64());
            let mut steps = [-PROBE_STEP, PROBE_STEP];
            if rng.f64() < 0.5 {
                steps.swap(0, 1);
            }
            if key <= 0.0 {
                continue;
            }
            let value = self.reference_values[gene];
            let first = spec.kind.stepped(value, steps[0]);
            let second = spec
                .kind
                .stepped(value, steps[1])
                .filter(|_| spec.kind.is_number());
            match (first, second) {
                (Some(first), Some(second)) => {
                    plan.push((
                        key,
                        Probe {
                            gene,
                            value: first,
                            after: None,
                        },
                    ));
                    plan.push((
                        key / 2.0,
                        Probe {
                            gene,
                            value: second,
                            after: Some(first),
                        },
                    ));
                }
                (Some(only), None) | (None, Some(only)) => {
                    plan.push((
                        key,
                        Probe {
                            gene,
                            value: only,
                            after: None,
                        },
                    ));
                }
                (None, None) => {}
            }
        }
        plan.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.gene.cmp(&b.1.gene)));
        plan.into_iter().map(|(_, probe)| probe).collect()
    }

    /// Nodes that change exactly one gene of the reference.
    fn probes(&self) -> impl Iterator<Item = (usize, &Node<'a>)> {
        self.nodes
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, n)| n.parent == 0 && n.changed.len() == 1)
    }

    /// The probe of `gene` in the direction of `value`, if one was made.
    fn probe_of(&self, gene: usize, value: f64) -> Option<usize> {
        let wanted = direction(self.reference_values[gene], value);
        self.probes()
            .find(|(_, n)| {
                n.changed[0] == gene
                    && direction(self.reference_values[gene], n.values[gene]) == wanted
            })
            .map(|(i, _)| i)
    }

    fn next_probe(&self, seed: u64, remaining: u64) -> Option<Draft> {
        if self.nodes.is_empty() {
            return None;
        }
        let made = self.nodes.len() - 1;
        let run = made as f64 + remaining as f64;
        let plan = self.probe_plan(seed);
        let budget = ((run * PROBE_SHARE).round() as usize)
            .max(MIN_PROBES)
            .min(plan.len());
        let issued = self.probes().count();
        if issued >= budget {
            return None;
        }
        for probe in &plan {
            let gene = probe.gene;
            if self.probe_of(gene, probe.value).is_some() {
                continue;
            }
            if let Some(first) = probe.after {
                // The opposite direction waits for the first one and is skipped if it helped.
                let Some(done) = self.probe_of(gene, first) else {
                    continue;
                };
                let node = &self.nodes[done];
                if node.pending() || node.fitness().is_some_and(|f| f < self.reference_fitness) {
                    continue;
                }
            }
            let value = probe.value;
            let mut values = self.reference_values.clone();
            values[gene] = value;
            let Some(mut draft) = self.draft(0, &values, self.next_island()) else {
                continue;
            };
            let name = &self.space.genes[gene].name;
            draft.hypothesis = format!(
                "{} alone, from {}: measures this gene's own effect on the BD-rate, so that the \
                 genes that help can be combined",
                self.space
                    .describe_changes(&self.reference_values, &draft.values),
                self.describe_parent(0)
            );
            draft.reasoning = format!(
                "Coordinate probe {} of {budget}: single-gene changes from the reference, genes \
                 in order of prior relevance ({name}: {:.1}); a numeric gene's opposite \
                 direction comes later, and only when the first did not help.",
                issued + 1,
                self.space.genes[gene].prior
            );
            draft.expected_effect = format!(
                "A BD-rate change attributable to {name} alone; below the reference's it joins \
                 the combinations."
            );
            return Some(draft);
        }
        None
    }

    // ---- Stage 2: combination --------------------------------------------------------------

    /// The next step of the greedy chain over the improving probes; `None` when the chain is
    /// complete or waits for a measurement.
    fn next_combination(&self) -> Option<Draft> {
        let mut winners: Vec<(usize, f64)> = self
            .probes()
            .filter_map(|(i, n)| n.fitness().map(|f| (i, f)))
            .filter(|(_, f)| *f < self.reference_fitness)
            .collect();
        winners.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let (&(first, first_fitness), rest) = winners.split_first()?;
        let (mut current, mut current_fitness) = (first, first_fitness);
        for &(winner, winner_fitness) in rest {
            let gene = self.nodes[winner].changed[0];
            let mut values = self.nodes[current].values.clone();
            if values[gene] != self.reference_values[gene] {
                continue;
            }
            values[gene] = self.nodes[winner].values[gene];
            if let Some(existing) = self.nodes.iter().position(|n| n.values == values) {
                let node = &self.nodes[existing];
                if node.pending() {
                    return None;
                }
                if let Some(f) = node.fitness().filter(|f| *f < current_fitness) {
                    (current, current_fitness) = (existing, f);
                }
                continue;
            }
            let Some(mut draft) = self.draft(current, &values, self.next_island()) else {
                continue;
            };
            let gain = winner_fitness - self.reference_fitness;
            draft.hypothesis = format!(
                "{} added to {}: probe #{} found it worth {gain:+.2} % alone, and the gains \
                 should add up",
                self.space
                    .describe_changes(&self.nodes[current].values, &draft.values),
                self.describe_parent(current),
                self.nodes[winner].program.experiment_id
            );
            draft.reasoning = format!(
                "Greedy combination of the {} improving probes, best first: each is added to \
                 the best combination so far and kept only if it improves it.",
                winners.len()
            );
            draft.expected_effect = format!(
                "About {:+.2} % if the effects are additive; worse than {} means the two \
                 changes interact.",
                current_fitness + gain,
                self.describe_parent(current)
            );
            return Some(draft);
        }
        None
    }

    // ---- Stage 3: refinement -----------------------------------------------------------------

    fn learning(&self) -> Learning {
        let genes = self.space.genes.len();
        let mut learning = Learning {
            successes: vec![[0.0; 2]; genes],
            trials: vec![[0.0; 2]; genes],
            failures: vec![[0.0; 2]; genes],
            sigma: SIGMA_START,
            children: 0,
            improved: 0,
        };
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            let pivot = &self.nodes[node.parent].values;
            let outcome = if node.failed() {
                None
            } else {
                match (node.fitness(), self.parent_fitness(i)) {
                    (Some(child), Some(parent)) => Some(child < parent),
                    _ => continue,
                }
            };
            for &g in &node.changed {
                let d = direction(pivot[g], node.values[g]);
                match outcome {
                    None => learning.failures[g][d] += 1.0,
                    Some(improved) => {
                        learning.trials[g][d] += 1.0;
                        if improved {
                            learning.successes[g][d] += 1.0;
                        }
                    }
                }
            }
            // The step size answers to the steps it sized: probes and combination steps (fixed
            // moves) do not count.
            let sized = node.parent != 0
                && !self.is_combination_step(node)
                && node
                    .changed
                    .iter()
                    .any(|&g| self.space.genes[g].kind.is_number());
            if let Some(improved) = outcome
                && sized
            {
                learning.children += 1;
                if improved {
                    learning.improved += 1;
                    learning.sigma *= SIGMA_GROWTH;
                } else {
                    learning.sigma /= SIGMA_GROWTH.powf(0.25);
                }
                learning.sigma = learning.sigma.clamp(SIGMA_MIN, SIGMA_MAX);
            }
        }
        learning
    }

    /// Whether a node adds one probe's change to its parent (what the combination stage does).
    fn is_combination_step(&self, node: &Node<'_>) -> bool {
        let [gene] = node.changed[..] else {
            return false;
        };
        node.parent != 0
            && self.probes().any(|(_, probe)| {
                probe.changed[0] == gene && probe.values[gene] == node.values[gene]
            })
    }

    /// Each island's cells and their elites: its own measured programs, the reference, and the
    /// migrants it received (every [`MIGRATION_INTERVAL`] proposals per island, each island's best
    /// so far moves to the next island).
    fn archives(&self) -> Vec<BTreeMap<Cell, Entry>> {
        let mut archives = vec![BTreeMap::new(); self.islands];
        let offer = |archive: &mut BTreeMap<Cell, Entry>, node: usize, migrant: bool| {
            let Some(fitness) = (if node == 0 {
                Some(self.reference_fitness)
            } else {
                self.nodes[node].fitness()
            }) else {
                return;
            };
            let cell = self.nodes[node].cell();
            let better = archive
                .get(&cell)
                .is_none_or(|e: &Entry| fitness < e.fitness);
            if better {
                archive.insert(
                    cell,
                    Entry {
                        node,
                        fitness,
                        migrant,
                    },
                );
            }
        };
        if self.nodes.is_empty() {
            return archives;
        }
        for archive in &mut archives {
            offer(archive, 0, false);
        }
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            offer(&mut archives[node.island], i, false);
        }
        if self.islands > 1 {
            let epoch = MIGRATION_INTERVAL * self.islands;
            let proposals = self.nodes.len() - 1;
            for end in (1..=proposals / epoch).map(|k| 1 + k * epoch) {
                for source in 0..self.islands {
                    let best = (1..end)
                        .filter(|&i| self.nodes[i].island == source)
                        .filter_map(|i| self.nodes[i].fitness().map(|f| (i, f)))
                        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                    if let Some((node, _)) = best {
                        offer(&mut archives[(source + 1) % self.islands], node, true);
                    }
                }
            }
        }
        archives
    }

    fn refinement(&self, rng: &mut SplitMix) -> Option<Draft> {
        if self.nodes.is_empty() {
            let values = self.reference_values.clone();
            return self.mutation_from(None, &values, rng, &self.learning());
        }
        let learning = self.learning();
        let archives = self.archives();
        let island = self.next_island();
        let mut elites: Vec<Entry> = archives[island].values().copied().collect();
        elites.sort_by(|a, b| a.fitness.total_cmp(&b.fitness).then(a.node.cmp(&b.node)));
        if elites.is_empty() {
            elites.push(Entry {
                node: 0,
                fitness: self.reference_fitness,
                migrant: false,
            });
        }
        if rng.f64() < EXTRAPOLATION_RATE
            && let Some(draft) = self.extrapolation(&elites, island)
        {
            return Some(draft);
        }
        for attempt in 0..ATTEMPTS {
            let draw = rng.f64();
            let (parent, selection) = if draw < SELECT_BEST {
                (elites[0], "the island's best".to_owned())
            } else if draw < SELECT_TOURNAMENT {
                let winner = (0..TOURNAMENT_SIZE)
                    .map(|_| elites[rng.below(elites.len())])
                    .min_by(|a, b| a.fitness.total_cmp(&b.fitness))
                    .unwrap_or(elites[0]);
                (
                    winner,
                    format!(
                        "a tournament of {TOURNAMENT_SIZE} among its {} elites",
                        elites.len()
                    ),
                )
            } else {
                (
                    elites[rng.below(elites.len())],
                    format!("a random one of its {} elites (exploration)", elites.len()),
                )
            };
            let origin = if parent.migrant {
                format!("{selection}, a migrant from another island")
            } else {
                selection
            };
            let mut draft = if rng.f64() < CROSSOVER_RATE {
                self.crossover(parent.node, island, &archives, rng)
            } else {
                // Duplicates mean the neighbourhood is exhausted: widen the steps as attempts go.
                let widen = 1.0 + attempt as f64 / 16.0;
                let mut widened = learning.clone();
                widened.sigma = (learning.sigma * widen).min(SIGMA_MAX);
                self.mutation_from(
                    Some(parent.node),
                    &self.nodes[parent.node].values,
                    rng,
                    &widened,
                )
            };
            if let Some(draft) = draft.as_mut() {
                let cell = self.nodes[parent.node].cell();
                let decoder = cell
                    .decoder_bin
                    .map_or_else(|| "not counted".to_owned(), |b| b.to_string());
                draft.reasoning = format!(
                    "Island {island}: parent {} chosen as {origin}, in cell (effort bin {}, \
                     decoder bin {decoder}). {}",
                    self.describe_parent(parent.node),
                    cell.effort_bin,
                    draft.reasoning
                );
                draft.island = island;
            }
            if draft.is_some() {
                return draft;
            }
        }
        None
    }

    /// A successful step taken again: the first of the island's best elites that improved on
    /// its parent by moving numeric genes gets the same move once more (a line search along
    /// directions that paid).
    fn extrapolation(&self, elites: &[Entry], island: usize) -> Option<Draft> {
        for elite in elites.iter().take(EXTRAPOLATED_ELITES) {
            let node = &self.nodes[elite.node];
            let Some(parent_fitness) = self.parent_fitness(elite.node) else {
                continue;
            };
            if elite.node == 0 || elite.fitness >= parent_fitness {
                continue;
            }
            let pivot = &self.nodes[node.parent].values;
            let mut values = node.values.clone();
            for &g in &node.changed {
                let kind = self.space.genes[g].kind;
                if let Kind::Number { .. } = kind {
                    let moved = kind
                        .value_at(kind.position(node.values[g]) * 2.0 - kind.position(pivot[g]));
                    values[g] = moved;
                }
            }
            if values == node.values {
                continue;
            }
            let Some(mut draft) = self.draft(elite.node, &values, island) else {
                continue;
            };
            let gain = elite.fitness - parent_fitness;
            draft.hypothesis = format!(
                "{}, from {}: the same move that took it from {} ({gain:+.2} %), once more",
                self.space.describe_changes(&node.values, &draft.values),
                self.describe_parent(elite.node),
                self.describe_parent(node.parent)
            );
            draft.reasoning = format!(
                "Island {island}: extrapolation from one of its {EXTRAPOLATED_ELITES} best \
                 elites, a line search along a direction that improved."
            );
            draft.expected_effect = format!(
                "Up to another {gain:+.2} % if the optimum lies further that way; worse means \
                 it was passed."
            );
            return Some(draft);
        }
        None
    }

    /// The parent with one to three genes mutated: genes drawn by learned weight, numbers moved
    /// in the direction that has helped more, by the adapted step.
    fn mutation_from(
        &self,
        parent: Option<usize>,
        parent_values: &[f64],
        rng: &mut SplitMix,
        learning: &Learning,
    ) -> Option<Draft> {
        let weights: Vec<f64> = self
            .space
            .genes
            .iter()
            .enumerate()
            .map(|(g, gene)| learning.weight(g, gene.prior))
            .collect();
        let count = match rng.f64() {
            x if x < 0.6 => 1,
            x if x < 0.9 => 2,
            _ => 3,
        };
        let mut values = parent_values.to_vec();
        let mut chosen = Vec::new();
        for _ in 0..count {
            let available: Vec<f64> = weights
                .iter()
                .enumerate()
                .map(|(g, w)| if chosen.contains(&g) { 0.0 } else { *w })
                .collect();
            let Some(gene) = rng.weighted(&available) else {
                break;
            };
            chosen.push(gene);
            let kind = self.space.genes[gene].kind;
            let value = values[gene];
            let up = learning.direction_weight(gene, 1);
            let down = learning.direction_weight(gene, 0);
            let sign = if rng.f64() * (up + down) < up {
                1.0
            } else {
                -1.0
            };
            let step = sign * learning.sigma * (0.5 + rng.f64());
            if let Some(moved) = kind
                .stepped(value, step)
                .or_else(|| kind.stepped(value, -step))
            {
                values[gene] = moved;
            }
        }
        let parent_node = parent.unwrap_or(usize::MAX);
        let mut draft = self.draft(parent_node, &values, self.next_island())?;
        let described = self.space.describe_changes(parent_values, &draft.values);
        let parent_text = parent.map_or_else(
            || "the shipped genome".to_owned(),
            |p| self.describe_parent(p),
        );
        let rates: Vec<String> = self
            .space
            .changed(parent_values, &draft.values)
            .into_iter()
            .map(|g| {
                let (s, t) = learning.rates(g);
                format!("{} improved {s:.0} of {t:.0}", self.space.genes[g].name)
            })
            .collect();
        draft.hypothesis = format!(
            "{described}, from {parent_text}: a step around an elite, along the genes with the \
             best record of improving their parents"
        );
        draft.reasoning = format!(
            "Mutation of {} gene(s) drawn by learned weight ({}); step {:.3} of the range, set \
             by the 1/5th-success rule over {} measured children ({} improved).",
            rates.len(),
            rates.join("; "),
            learning.sigma,
            learning.children,
            learning.improved
        );
        draft.expected_effect = match parent.and_then(|p| self.nodes.get(p)?.fitness()) {
            Some(f) => format!(
                "Close to the parent's {f:+.2} %; an improvement would widen the step and raise \
                 these genes' weights."
            ),
            None => "A small change of BD-rate from the reference.".to_owned(),
        };
        Some(draft)
    }

    /// The parent with some of the genes of an elite of another island (or, with one island,
    /// another elite): each differing gene is taken with even odds, at least one.
    fn crossover(
        &self,
        parent: usize,
        island: usize,
        archives: &[BTreeMap<Cell, Entry>],
        rng: &mut SplitMix,
    ) -> Option<Draft> {
        let donors: Vec<Entry> = archives
            .iter()
            .enumerate()
            .filter(|(i, _)| self.islands == 1 || *i != island)
            .flat_map(|(_, archive)| archive.values().copied())
            .filter(|e| e.node != parent && e.node != 0)
            .collect();
        if donors.is_empty() {
            return None;
        }
        // The best donor half the time, any donor otherwise.
        let donor = if rng.f64() < 0.5 {
            donors
                .iter()
                .copied()
                .min_by(|a, b| a.fitness.total_cmp(&b.fitness).then(a.node.cmp(&b.node)))?
        } else {
            donors[rng.below(donors.len())]
        };
        let parent_values = &self.nodes[parent].values;
        let donor_values = &self.nodes[donor.node].values;
        let differing: Vec<usize> = self
            .space
            .changed(parent_values, donor_values)
            .into_iter()
            .filter(|&g| self.space.genes[g].prior > 0.0)
            .collect();
        if differing.is_empty() {
            return None;
        }
        let mut values = parent_values.clone();
        let forced = differing[rng.below(differing.len())];
        for &g in &differing {
            if g == forced || rng.f64() < 0.5 {
                values[g] = donor_values[g];
            }
        }
        let mut draft = self.draft(parent, &values, island)?;
        draft.hypothesis = format!(
            "{}, from {}: genes of {} (another island's elite), whose strengths may combine",
            self.space.describe_changes(parent_values, &draft.values),
            self.describe_parent(parent),
            self.describe_parent(donor.node)
        );
        draft.reasoning = format!(
            "Crossover: of the {} genes where the donor differs, each is taken with even odds.",
            differing.len()
        );
        draft.expected_effect = format!(
            "Between the parent's {:+.2} % and the donor's {:+.2} %, or better if their gains \
             are independent.",
            self.nodes[parent]
                .fitness()
                .unwrap_or(self.reference_fitness),
            donor.fitness
        );
        Some(draft)
    }
}

/// SplitMix64: a small, fully specified generator, so that the proposals of a seed do not
/// depend on a library's version.
struct SplitMix {
    state: u64,
}

impl SplitMix {
    fn new(seed: u64) -> SplitMix {
        SplitMix { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        ((self.f64() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// An index drawn with probability proportional to its weight; `None` if all are zero.
    fn weighted(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
        if total <= 0.0 {
            return None;
        }
        let mut target = self.f64() * total;
        let mut last = None;
        for (i, &w) in weights.iter().enumerate() {
            if !(w.is_finite() && w > 0.0) {
                continue;
            }
            last = Some(i);
            if target < w {
                return Some(i);
            }
            target -= w;
        }
        last
    }
}

/// A seed from several numbers.
fn mix(parts: &[u64]) -> u64 {
    parts.iter().fold(0x6a09_e667_f3bc_c909, |acc, &part| {
        SplitMix::new(acc ^ part).next_u64()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gene_space_covers_every_ranged_number_and_switch() {
        let space = Space::new();
        for range in Genome::RANGES {
            assert!(
                space.genes.iter().any(|g| g.name == range.name),
                "{}",
                range.name
            );
        }
        let shipped = serde_json::to_value(Genome::default()).unwrap();
        let switches = shipped
            .as_object()
            .unwrap()
            .values()
            .filter(|v| v.is_boolean())
            .count();
        assert_eq!(space.genes.len(), Genome::RANGES.len() + switches);
        for (name, _) in PRIORS {
            assert!(space.genes.iter().any(|g| g.name == *name), "{name}");
        }
        let values = space.values(&Genome::default());
        assert_eq!(
            space.genome(&Genome::default(), &values),
            Some(Genome::default())
        );
    }

    #[test]
    fn steps_stay_in_range_and_move_integers_by_at_least_one() {
        let kind = Kind::Number {
            min: 1.0,
            max: 4.0,
            integer: true,
            log_scale: false,
        };
        assert_eq!(kind.stepped(1.0, 0.01), Some(2.0));
        assert_eq!(kind.stepped(1.0, -0.5), None);
        assert_eq!(kind.stepped(3.0, 5.0), Some(4.0));
        let lambda = Kind::Number {
            min: 0.1,
            max: 4.0,
            integer: false,
            log_scale: true,
        };
        let down = lambda.stepped(1.0, -PROBE_STEP).unwrap();
        assert!(down > 0.7 && down < 1.0, "{down}");
        assert_eq!(Kind::Switch.stepped(1.0, 0.3), Some(0.0));
    }

    #[test]
    fn effort_is_one_for_the_default_and_grows_with_the_work() {
        let default = Genome::default();
        assert!((encoder_effort(&default) - 1.0).abs() < 1e-12);
        let more_references = Genome {
            reference_frames: 3,
            ..Genome::default()
        };
        let no_shortcuts = Genome {
            early_skip: false,
            skip_stops_split: false,
            skip_intra_after_clean_inter: false,
            ..Genome::default()
        };
        let small_blocks = Genome {
            max_block_log2: 4,
            ..Genome::default()
        };
        assert!(encoder_effort(&more_references) > 1.3);
        assert!(encoder_effort(&no_shortcuts) > encoder_effort(&more_references));
        assert!(encoder_effort(&small_blocks) < 0.7);
        let filtered = Genome {
            learned_filter: true,
            ..Genome::default()
        };
        let filter = |change: fn(&mut Genome)| {
            let mut genome = filtered.clone();
            change(&mut genome);
            encoder_effort(&genome)
        };
        // Measured: 29x.
        assert!((20.0..35.0).contains(&encoder_effort(&filtered)));
        assert!(filter(|g| g.filter_training_steps = 0) < 1.5);
        assert!(filter(|g| g.filter_channels = 16) > encoder_effort(&filtered));
        assert!(filter(|g| g.keyint = 60) > 1.8 * encoder_effort(&filtered));
        // Off, the shape and training cost nothing.
        let off = Genome {
            filter_training_steps: 2000,
            filter_channels: 16,
            ..Genome::default()
        };
        assert!((encoder_effort(&off) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_learned_filter_beyond_the_bound_is_shrunk_to_fit_or_not_made() {
        let filtered = Genome {
            learned_filter: true,
            filter_kernel_radius: 2,
            ..Genome::default()
        };
        // 5x5 kernels over 1 → 8 → 8 → 8 → 1 planes: 25 · 144.
        assert_eq!(learned_mac_per_pixel(&filtered), 3600.0);
        let fitted = fit_learned_filter(filtered.clone(), 300.0).unwrap();
        // 3x3 kernels first, then channels down to 3: 9 · (3 + 9 + 9 + 3) = 216.
        assert_eq!(
            (
                fitted.filter_kernel_radius,
                fitted.filter_channels,
                fitted.filter_layers
            ),
            (1, 3, 4)
        );
        assert_eq!(learned_mac_per_pixel(&fitted), 216.0);
        assert_eq!(
            fit_learned_filter(filtered.clone(), 3600.0),
            Some(filtered.clone())
        );
        // The smallest filter, 2 layers of 3x3 over 2 channels, declares 36.
        assert_eq!(fit_learned_filter(filtered.clone(), 35.0), None);
        assert_eq!(
            learned_mac_per_pixel(&fit_learned_filter(filtered, 36.0).unwrap()),
            36.0
        );
        assert_eq!(
            fit_learned_filter(Genome::default(), 0.0),
            Some(Genome::default())
        );
    }

    #[test]
    fn the_generator_is_fixed_and_weighted_draws_skip_zero_weights() {
        let mut a = SplitMix::new(7);
        let mut b = SplitMix::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        for _ in 0..100 {
            let i = a.weighted(&[0.0, 1.0, 0.0, 2.0]).unwrap();
            assert!(i == 1 || i == 3);
        }
        assert_eq!(a.weighted(&[0.0, 0.0]), None);
    }
}
