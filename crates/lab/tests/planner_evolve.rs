//! The offline evolutionary planner against synthetic fitness landscapes over the genome: a small
//! driver plays the loop (a reference first, proposals measured a few at a time by a
//! deterministic function of the genome), so every run is reproducible and fast.

use std::collections::{BTreeMap, VecDeque};

use codeclab_codec::Genome;
use codeclab_lab::candidate::Edit;
use codeclab_lab::config::{Goal, PlannerConfig};
use codeclab_lab::planner::evolve::{EvolvePlanner, encoder_effort};
use codeclab_lab::planner::{Features, Outcome, Planner, PlannerView, Program, Proposal, Turn};

/// Evaluations per run, as in a real run.
const EVALUATIONS: usize = 40;
/// Proposals measured at once.
const PARALLEL: usize = 2;
const SEEDS: [u64; 6] = [1, 2, 3, 4, 5, 6];

/// A deterministic landscape: the BD-rate-like cost of a genome (lower is better), or `None`
/// where the genome fails.
type Landscape = fn(&Genome) -> Option<f64>;

/// Costs every landscape shares: tools whose loss hurts, as in a real codec.
fn common_penalties(g: &Genome) -> f64 {
    let mut cost = 3.0 * f64::from(2 - g.subpel_precision);
    cost += 2.0 * f64::from(g.min_block_log2 - 3) + 1.5 * f64::from(6 - g.max_block_log2);
    cost += 0.3 * f64::from(5 - g.merge_candidates);
    if g.keyint < 120 {
        cost += f64::from(120 - g.keyint) / 10.0;
    }
    if !g.rdoq {
        cost += 2.0;
    }
    if !g.deblock {
        cost += 1.5;
    }
    if !g.intra_angular {
        cost += 1.0;
    }
    cost
}

/// Separable gains with an overlap between the two skip heuristics; the optimum is away from
/// the default in several genes (3 references, lambda 0.85, wider inter dead zone, P QP 2-3).
fn codec_like(g: &Genome) -> f64 {
    let r = f64::from(g.reference_frames) - 1.0;
    let mut cost = -2.5 * r + 0.6 * r * r;
    if !g.skip_stops_split {
        cost -= 4.0;
    }
    if !g.early_skip {
        cost -= 3.5;
    }
    if !g.skip_stops_split && !g.early_skip {
        cost += 1.5;
    }
    if !g.skip_intra_after_clean_inter {
        cost -= 0.8;
    }
    cost += 6.0 * (g.lambda_scale / 0.85).ln().powi(2);
    cost += 50.0 * (g.deadzone_inter - 0.2).powi(2);
    cost += 30.0 * (g.deadzone_intra - 0.3).powi(2);
    cost += 0.6 * (f64::from(g.p_frame_qp_offset) - 2.5).powi(2);
    cost += 0.2 * (f64::from(g.deblock_beta_offset) - 1.0).powi(2);
    cost += 0.2 * (f64::from(g.deblock_tc_offset) + 1.0).powi(2);
    cost -= 0.3 * (f64::from(g.intra_rdo_candidates) / 2.0).ln();
    cost + common_penalties(g)
}

/// Interactions: lambda's optimum moves with the P-frame QP offset, and early skip off only
/// pays with more than one reference.
fn coupled(g: &Genome) -> f64 {
    let p = f64::from(g.p_frame_qp_offset) - 1.0;
    let mut cost = 4.0 * (g.lambda_scale.ln() - 0.15 * p - 0.1).powi(2);
    cost -= 0.8 * p - 0.25 * p * p;
    let r = f64::from(g.reference_frames) - 1.0;
    cost -= 1.2 * r;
    if !g.early_skip {
        cost += if r >= 1.0 { -2.0 } else { 1.0 };
    }
    cost += 0.3 * (f64::from(g.deblock_tc_offset) - 2.0).powi(2);
    cost += 30.0 * (g.deadzone_inter - 0.12).powi(2);
    cost + common_penalties(g)
}

/// Gains only in genes of low prior relevance (intra candidates, deblocking threshold, merge
/// candidates lowered is a loss), the skip heuristics cost when turned off.
fn off_prior(g: &Genome) -> f64 {
    let n = f64::from(g.intra_rdo_candidates);
    let mut cost = -3.0 * (n / 2.0).ln() + 0.125 * (n - 2.0).max(0.0).powi(2);
    cost += 0.25 * (f64::from(g.deblock_beta_offset) + 3.0).powi(2);
    for on in [
        g.early_skip,
        g.skip_stops_split,
        g.skip_intra_after_clean_inter,
    ] {
        if !on {
            cost += 1.0;
        }
    }
    cost += 2.0 * (g.lambda_scale.ln()).powi(2);
    cost + common_penalties(g)
}

fn relative(cost: fn(&Genome) -> f64, genome: &Genome) -> f64 {
    cost(genome) - cost(&Genome::default())
}

fn codec_like_landscape(g: &Genome) -> Option<f64> {
    Some(relative(codec_like, g))
}

fn coupled_landscape(g: &Genome) -> Option<f64> {
    Some(relative(coupled, g))
}

fn off_prior_landscape(g: &Genome) -> Option<f64> {
    Some(relative(off_prior, g))
}

/// The codec-like landscape with a learned filter that pays, the more the larger it is.
fn filtered_landscape(g: &Genome) -> Option<f64> {
    let filter = if g.learned_filter {
        -5.0 - 0.4 * (f64::from(g.filter_channels) - 8.0) - 0.5 * (f64::from(g.filter_layers) - 4.0)
    } else {
        0.0
    };
    Some(relative(codec_like, g) + filter)
}

/// The codec-like landscape where three or more references always fail (the optimum's region).
fn failing_references(g: &Genome) -> Option<f64> {
    (g.reference_frames < 3).then(|| relative(codec_like, g))
}

const LANDSCAPES: [(&str, Landscape); 3] = [
    ("codec-like", codec_like_landscape),
    ("coupled", coupled_landscape),
    ("off-prior", off_prior_landscape),
];

/// A deterministic stand-in for the decoder's instructions per pixel; `None` (not counted) for
/// the coupled landscape, so that its archive uses the "not counted" bucket.
fn decoder_figure(genome: &Genome, counted: bool) -> Option<f64> {
    counted.then(|| {
        let mut ipp = 300.0;
        if !genome.deblock {
            ipp *= 0.75;
        }
        ipp *= 1.0 + 0.03 * f64::from(genome.deblock_tc_offset + genome.deblock_beta_offset);
        ipp *= 1.0 + 0.1 * f64::from(6 - genome.max_block_log2);
        ipp *= 1.0 + 0.06 * f64::from(genome.reference_frames - 1);
        ipp
    })
}

fn program(id: i64, parent: Option<i64>, island: i64, genome: Genome, edits: Vec<Edit>) -> Program {
    Program {
        experiment_id: id,
        parent,
        island,
        genome,
        edits,
        hypothesis: String::new(),
        outcome: Outcome::Pending,
    }
}

fn measure(program: &mut Program, landscape: Landscape, decoder_counted: bool) {
    program.outcome = match landscape(&program.genome) {
        Some(fitness) => Outcome::Measured {
            fitness,
            per_clip: BTreeMap::from([("synthetic".to_owned(), fitness)]),
            features: Features {
                decoder_instructions_per_pixel: decoder_figure(&program.genome, decoder_counted),
                learned_mac_per_pixel: Some(learned_mac(&program.genome)),
                encoder_effort: encoder_effort(&program.genome),
            },
        },
        None => Outcome::Failed {
            reason: "the encoder crashed".into(),
        },
    };
}

/// What the streams of a genome's programs declare: the learned filter's multiply–accumulates
/// per pixel, 0 without it.
fn learned_mac(genome: &Genome) -> f64 {
    genome
        .learned_filter_shape()
        .map_or(0.0, |shape| shape.mac_per_pixel() as f64)
}

fn view(programs: &[Program], remaining: u64) -> PlannerView<'_> {
    goal_view(programs, &[], remaining)
}

fn goal_view<'a>(programs: &'a [Program], goals: &'a [Goal], remaining: u64) -> PlannerView<'a> {
    PlannerView {
        programs,
        feedback: &[],
        goals,
        contract: "synthetic landscape",
        remaining,
    }
}

fn config(seed: u64, islands: u32) -> PlannerConfig {
    PlannerConfig {
        seed,
        islands,
        ..PlannerConfig::default()
    }
}

/// One run: the programs at the end and, per turn, the programs the planner saw and its answer.
struct Run {
    programs: Vec<Program>,
    turns: Vec<(Vec<Program>, Proposal)>,
}

impl Run {
    fn best(&self) -> f64 {
        self.programs
            .iter()
            .filter_map(|p| match p.outcome {
                Outcome::Measured { fitness, .. } => Some(fitness),
                _ => None,
            })
            .fold(f64::INFINITY, f64::min)
    }

    fn failures(&self) -> usize {
        self.programs
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Failed { .. }))
            .count()
    }
}

/// Plays the loop: the reference measured first, then `EVALUATIONS` proposals, at most
/// `PARALLEL` in flight, the oldest measured first. `seeded` programs come after the reference.
fn drive(
    config: &PlannerConfig,
    landscape: Landscape,
    decoder_counted: bool,
    seeded: Vec<Program>,
) -> Run {
    drive_towards(config, landscape, decoder_counted, seeded, &[])
}

/// [`drive`] with the planner shown `goals`.
fn drive_towards(
    config: &PlannerConfig,
    landscape: Landscape,
    decoder_counted: bool,
    seeded: Vec<Program>,
    goals: &[Goal],
) -> Run {
    let planner = EvolvePlanner::new(config);
    let mut reference = program(1, None, 0, Genome::default(), Vec::new());
    measure(&mut reference, landscape, decoder_counted);
    let mut programs = vec![reference];
    programs.extend(seeded);
    let mut turns = Vec::new();
    let mut in_flight = VecDeque::new();
    for made in 0..EVALUATIONS {
        let remaining = (EVALUATIONS - made) as u64;
        let proposal = match planner.plan(&goal_view(&programs, goals, remaining)) {
            Turn::Propose(proposal) => proposal,
            Turn::Rejected { reason, .. } => panic!("turn {made} rejected: {reason}"),
        };
        turns.push((programs.clone(), proposal.clone()));
        let id = programs.len() as i64 + 1;
        programs.push(program(
            id,
            proposal.parent,
            proposal.island,
            proposal.genome,
            proposal.edits,
        ));
        in_flight.push_back(programs.len() - 1);
        while in_flight.len() >= PARALLEL {
            if let Some(oldest) = in_flight.pop_front() {
                measure(&mut programs[oldest], landscape, decoder_counted);
            }
        }
    }
    for index in in_flight {
        measure(&mut programs[index], landscape, decoder_counted);
    }
    Run { programs, turns }
}

fn proposals(run: &Run) -> Vec<&Proposal> {
    run.turns.iter().map(|(_, p)| p).collect()
}

/// A genome drawn uniformly over the ranges (the chroma offset held, as the planner holds it).
fn uniform_genome(rng: &mut fastrand::Rng) -> Genome {
    let mut genome = Genome::default();
    for gene in 0..GENES {
        randomize(&mut genome, gene, rng);
    }
    genome
}

/// Genes the baselines draw (every one but the chroma offset).
const GENES: usize = 45;

/// Gives gene `gene` a value drawn uniformly over its range.
fn randomize(g: &mut Genome, gene: usize, rng: &mut fastrand::Rng) {
    match gene {
        0 => g.keyint = rng.u32(1..=1000),
        1 => g.reference_frames = rng.u8(1..=4),
        2 => g.min_block_log2 = rng.u8(3..=5),
        3 => g.max_block_log2 = rng.u8(3..=6),
        4 => g.intra_angular = rng.bool(),
        5 => g.intra_rdo_candidates = rng.u8(1..=8),
        6 => g.merge_candidates = rng.u8(1..=5),
        7 => g.me_range = rng.u16(1..=64),
        8 => g.subpel_precision = rng.u8(0..=2),
        9 => g.lambda_scale = 0.1 + 3.9 * rng.f64(),
        10 => g.deadzone_intra = 0.5 * rng.f64(),
        11 => g.deadzone_inter = 0.5 * rng.f64(),
        12 => g.rdoq = rng.bool(),
        13 => g.deblock = rng.bool(),
        14 => g.deblock_beta_offset = rng.i8(-6..=6),
        15 => g.deblock_tc_offset = rng.i8(-6..=6),
        16 => g.early_skip = rng.bool(),
        17 => g.skip_stops_split = rng.bool(),
        18 => g.skip_intra_after_clean_inter = rng.bool(),
        19 => g.sao = rng.bool(),
        20 => g.scene_cut_threshold = rng.f64(),
        21 => g.mini_gop = rng.u8(1..=16),
        22 => g.b_layer_qp_offset = rng.i8(0..=4),
        23 => g.bipred = rng.bool(),
        24 => g.temporal_rd = rng.bool(),
        25 => g.temporal_rd_strength = 4.0 * rng.f64(),
        26 => g.lookahead = rng.u8(0..=48),
        27 => g.sign_hiding = rng.bool(),
        28 => g.intra_dst = rng.bool(),
        29 => g.transform_skip = rng.bool(),
        30 => g.residual_quadtree = rng.bool(),
        31 => g.context_carry = rng.bool(),
        32 => g.adaptive_gop = rng.bool(),
        33 => g.temporal_mvp = rng.bool(),
        34 => g.bi_merge = rng.bool(),
        35 => g.inter_rd_candidates = rng.u8(1..=9),
        36 => g.clean_inter_stops_split = rng.bool(),
        37 => g.inter_rd_margin = rng.f64(),
        38 => g.learned_filter = rng.bool(),
        39 => g.filter_layers = rng.u8(2..=6),
        40 => g.filter_channels = rng.u8(2..=16),
        41 => g.filter_kernel_radius = rng.u8(1..=2),
        42 => g.filter_weight_bits = rng.u8(6..=10),
        43 => g.filter_training_steps = rng.u16(0..=2000),
        _ => g.p_frame_qp_offset = rng.i8(0..=6),
    }
}

/// Best of `EVALUATIONS` valid genomes from `draw` (the reference scores 0).
fn best_of_draws(seed: u64, landscape: Landscape, draw: fn(&mut fastrand::Rng) -> Genome) -> f64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut best = landscape(&Genome::default()).unwrap_or(f64::INFINITY);
    let mut drawn = 0;
    while drawn < EVALUATIONS {
        let genome = draw(&mut rng);
        if genome.validate().is_err() {
            continue;
        }
        drawn += 1;
        if let Some(fitness) = landscape(&genome) {
            best = best.min(fitness);
        }
    }
    best
}

/// The shipped genome with one to three genes drawn uniformly: random search near the default.
fn perturbed_genome(rng: &mut fastrand::Rng) -> Genome {
    let mut genome = Genome::default();
    for _ in 0..rng.usize(1..=3) {
        randomize(&mut genome, rng.usize(0..GENES), rng);
    }
    genome
}

#[test]
fn the_same_seed_gives_the_same_proposals_and_other_seeds_differ() {
    let first = drive(&config(3, 2), codec_like_landscape, true, Vec::new());
    let again = drive(&config(3, 2), codec_like_landscape, true, Vec::new());
    assert_eq!(proposals(&first), proposals(&again));
    let other = drive(&config(4, 2), codec_like_landscape, true, Vec::new());
    let same_genomes = proposals(&first)
        .iter()
        .zip(proposals(&other))
        .filter(|(a, b)| a.genome == b.genome)
        .count();
    assert!(
        same_genomes < EVALUATIONS / 2,
        "{same_genomes} of {EVALUATIONS} proposals coincide"
    );
}

#[test]
fn a_rebuilt_planner_given_the_same_view_proposes_the_same() {
    let run = drive(&config(5, 3), coupled_landscape, false, Vec::new());
    for (made, (seen, proposal)) in run.turns.iter().enumerate().step_by(7) {
        let rebuilt = EvolvePlanner::new(&config(5, 3));
        let remaining = (EVALUATIONS - made) as u64;
        assert_eq!(
            rebuilt.plan(&view(seen, remaining)),
            Turn::Propose(proposal.clone()),
            "turn {made}"
        );
    }
}

#[tokio::test]
async fn the_planner_trait_answers_what_plan_answers() {
    let mut planner = EvolvePlanner::new(&config(9, 2));
    assert_eq!(planner.name(), "evolve");
    let run = drive(&config(9, 2), codec_like_landscape, true, Vec::new());
    let (seen, proposal) = &run.turns[20];
    let turn = planner.propose(&view(seen, 20)).await.unwrap();
    assert_eq!(turn, Turn::Propose(proposal.clone()));
}

#[test]
fn proposals_are_new_valid_explained_and_keep_their_parents_edits() {
    for (name, landscape) in LANDSCAPES {
        for seed in SEEDS {
            let run = drive(&config(seed, 2), landscape, true, Vec::new());
            for (made, (seen, proposal)) in run.turns.iter().enumerate() {
                proposal.genome.validate().unwrap();
                assert!(
                    seen.iter().all(|p| p.genome != proposal.genome),
                    "{name} seed {seed} turn {made}: a duplicate genome"
                );
                let parent = seen
                    .iter()
                    .find(|p| Some(p.experiment_id) == proposal.parent)
                    .unwrap_or_else(|| panic!("{name} seed {seed} turn {made}: unknown parent"));
                assert_eq!(proposal.edits, parent.edits);
                assert!(!proposal.hypothesis.is_empty());
                assert!(!proposal.reasoning.is_empty());
                assert!(!proposal.expected_effect.is_empty());
                assert_eq!(proposal.log_id, None);
            }
        }
    }
}

#[test]
fn children_of_a_code_candidate_carry_its_edits() {
    let edits = vec![Edit {
        block: "lambda".into(),
        search: "1.0".into(),
        replace: "0.9".into(),
    }];
    let mut candidate = program(2, Some(1), 0, Genome::default(), edits.clone());
    candidate.genome.reference_frames = 2;
    // Far better than anything the genome alone reaches, so the search builds on it.
    candidate.outcome = Outcome::Measured {
        fitness: -30.0,
        per_clip: BTreeMap::new(),
        features: Features {
            decoder_instructions_per_pixel: None,
            learned_mac_per_pixel: Some(0.0),
            encoder_effort: encoder_effort(&candidate.genome),
        },
    };
    let run = drive(&config(1, 1), codec_like_landscape, true, vec![candidate]);
    let children: Vec<&Proposal> = proposals(&run)
        .into_iter()
        .filter(|p| p.parent == Some(2))
        .collect();
    assert!(!children.is_empty());
    for child in children {
        assert_eq!(child.edits, edits);
    }
}

#[test]
fn the_search_beats_random_search_on_every_landscape() {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    for (name, landscape) in LANDSCAPES {
        let evolve: Vec<f64> = SEEDS
            .iter()
            .map(|&seed| drive(&config(seed, 2), landscape, true, Vec::new()).best())
            .collect();
        let uniform: Vec<f64> = SEEDS
            .iter()
            .map(|&seed| best_of_draws(seed, landscape, uniform_genome))
            .collect();
        let nearby: Vec<f64> = SEEDS
            .iter()
            .map(|&seed| best_of_draws(seed, landscape, perturbed_genome))
            .collect();
        let (evolve, uniform, nearby) = (mean(&evolve), mean(&uniform), mean(&nearby));
        eprintln!(
            "{name}: evolve {evolve:.2}, uniform random {uniform:.2}, random near the default {nearby:.2}"
        );
        assert!(
            evolve < uniform - 1.0,
            "{name}: evolve {evolve:.2} vs uniform {uniform:.2}"
        );
        assert!(
            evolve < nearby - 1.0,
            "{name}: evolve {evolve:.2} vs random near the default {nearby:.2}"
        );
    }
}

#[test]
fn a_region_that_always_fails_is_avoided_after_a_few_failures() {
    for seed in SEEDS {
        let run = drive(&config(seed, 2), failing_references, true, Vec::new());
        let failures = run.failures();
        eprintln!("seed {seed}: {failures} failures, best {:.2}", run.best());
        assert!(failures <= 3, "seed {seed}: {failures} failures");
        // It still improves elsewhere.
        assert!(run.best() < -5.0, "seed {seed}: best {:.2}", run.best());
    }
}

#[test]
fn islands_and_archive_cells_are_populated() {
    let run = drive(&config(2, 2), codec_like_landscape, true, Vec::new());
    let planner = EvolvePlanner::new(&config(2, 2));
    let archive = planner.archive(&view(&run.programs, 0));
    assert_eq!(archive.islands.len(), 2);
    for island in &archive.islands {
        assert!(island.programs >= EVALUATIONS / 2 - 1, "{island:?}");
        assert!(island.elites.len() >= 3, "{island:?}");
        for pair in island.elites.windows(2) {
            assert!(pair[0].fitness <= pair[1].fitness);
        }
        let efforts: std::collections::BTreeSet<i32> =
            island.elites.iter().map(|e| e.cell.effort_bin).collect();
        assert!(efforts.len() >= 2, "{island:?}");
        assert!(island.elites.iter().all(|e| e.cell.decoder_bin.is_some()));
    }
    assert!(
        archive
            .islands
            .iter()
            .flat_map(|i| &i.elites)
            .any(|e| e.migrant),
        "no migrant after {EVALUATIONS} proposals"
    );

    // Decoder figures not counted: every cell uses the "not counted" bucket.
    let uncounted = drive(&config(2, 3), coupled_landscape, false, Vec::new());
    let archive = EvolvePlanner::new(&config(2, 3)).archive(&view(&uncounted.programs, 0));
    assert_eq!(archive.islands.len(), 3);
    for island in &archive.islands {
        assert!(!island.elites.is_empty());
        assert!(island.elites.iter().all(|e| e.cell.decoder_bin.is_none()));
    }
}

#[test]
fn an_empty_view_gets_a_valid_proposal_from_the_shipped_genome() {
    let planner = EvolvePlanner::new(&config(1, 2));
    match planner.plan(&view(&[], 40)) {
        Turn::Propose(proposal) => {
            assert_eq!(proposal.parent, None);
            proposal.genome.validate().unwrap();
            assert_ne!(proposal.genome, Genome::default());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_learned_mac_goal_bounds_every_proposal() {
    let bound = 300.0;
    let goals = [Goal::LearnedMacPerPixel { at_most: bound }];
    let mut filtered_within = 0;
    let mut beyond_without_the_goal = 0;
    for seed in SEEDS {
        let bounded = drive_towards(
            &config(seed, 2),
            filtered_landscape,
            true,
            Vec::new(),
            &goals,
        );
        for proposal in proposals(&bounded) {
            let mac = learned_mac(&proposal.genome);
            assert!(mac <= bound, "seed {seed}: {mac} MAC/px proposed");
            if proposal.genome.learned_filter {
                filtered_within += 1;
            }
        }
        let free = drive(&config(seed, 2), filtered_landscape, true, Vec::new());
        beyond_without_the_goal += proposals(&free)
            .iter()
            .filter(|p| learned_mac(&p.genome) > bound)
            .count();
    }
    // The bound binds, and the filter is still tried in shapes within it.
    assert!(beyond_without_the_goal > 0);
    assert!(filtered_within > 0);
}

#[test]
fn the_learned_filters_shape_moves_only_with_the_filter_on() {
    for seed in SEEDS {
        let run = drive(&config(seed, 2), filtered_landscape, true, Vec::new());
        for (made, (seen, proposal)) in run.turns.iter().enumerate() {
            if proposal.genome.learned_filter {
                continue;
            }
            let parent = seen
                .iter()
                .find(|p| Some(p.experiment_id) == proposal.parent)
                .unwrap();
            let shape = |g: &Genome| {
                (
                    g.filter_layers,
                    g.filter_channels,
                    g.filter_kernel_radius,
                    g.filter_weight_bits,
                    g.filter_training_steps,
                )
            };
            assert_eq!(
                shape(&proposal.genome),
                shape(&parent.genome),
                "seed {seed} turn {made}: {}",
                proposal.hypothesis
            );
        }
    }
}
