//! Planners: who proposes the next experiment, and the loop that runs them.
//!
//! A [`Planner`] sees a [`PlannerView`] of its run (the programs measured on the dev clips, with
//! lineage, fitness and diversity features, and the recent rejections and failures with their
//! reasons; never a holdout score) and answers with a [`Turn`]: a [`Proposal`] (a full genome and,
//! for code candidates, SEARCH/REPLACE edits from the shipped sources) or a rejection the loop
//! records and feeds back. The loop turns proposals into experiments, measures them, computes
//! their fitness and keeps the program database in the store.
//!
//! - [`evolve`]: the offline planner, an evolutionary search over the genome.
//! - [`llm`]: the LLM planner (Anthropic or OpenAI-compatible models).

use std::future::Future;

use codeclab_codec::Genome;
use serde::{Deserialize, Serialize};

use crate::LabError;
use crate::candidate::Edit;
use crate::config::Goal;

pub mod evolve;
pub mod llm;
pub mod novelty;
pub mod run_loop;

/// What a planner proposes: one program to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The program it derives from (an experiment id); `None` for the first of a lineage.
    pub parent: Option<i64>,
    pub island: i64,
    /// The complete genome to measure.
    pub genome: Genome,
    /// SEARCH/REPLACE edits from the shipped codec sources (the parent's edits plus the new
    /// ones); empty: the built-in codec.
    pub edits: Vec<Edit>,
    pub hypothesis: String,
    pub reasoning: String,
    pub expected_effect: String,
    /// The planner log row of the turn, linked to the experiment once it is submitted.
    pub log_id: Option<i64>,
}

/// A planner's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Turn {
    Propose(Proposal),
    /// The turn produced nothing usable (a failed call, an invalid reply, edits that do not
    /// apply): already in the planner log as `log_id`; the reason goes back to the planner.
    Rejected {
        log_id: Option<i64>,
        reason: String,
    },
}

/// Where a program is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    /// Queued or being measured.
    Pending,
    Measured {
        /// Lower is better: the mean BD-rate (PSNR-Y, percent) against the run's reference.
        fitness: f64,
        /// BD-rate against the reference per dev clip, percent.
        per_clip: std::collections::BTreeMap<String, f64>,
        features: Features,
    },
    Failed {
        reason: String,
    },
}

/// Diversity features of a measured program, from deterministic measurements only (so that the
/// same results lead to the same choices).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Decoder instructions per pixel (callgrind), mean over points; `None` when not counted.
    pub decoder_instructions_per_pixel: Option<f64>,
    /// Multiply–accumulates per pixel of the learned tools its streams declare, mean over
    /// points; `None` when not measured.
    pub learned_mac_per_pixel: Option<f64>,
    /// The encoder's effort implied by the genome, relative to the shipped default (1.0).
    pub encoder_effort: f64,
}

/// One program of the run, as planners see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub experiment_id: i64,
    pub parent: Option<i64>,
    pub island: i64,
    pub genome: Genome,
    pub edits: Vec<Edit>,
    pub hypothesis: String,
    pub outcome: Outcome,
}

/// A turn or an experiment that went wrong, with the reason fed back to the planner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub experiment_id: Option<i64>,
    pub log_id: Option<i64>,
    pub reason: String,
}

/// What a planner sees of its run.
#[derive(Clone, Copy, Debug)]
pub struct PlannerView<'a> {
    /// The reference (shipped default) first, then every program in submission order.
    pub programs: &'a [Program],
    /// Newest last.
    pub feedback: &'a [Feedback],
    pub goals: &'a [Goal],
    /// How experiments are measured, in words (for prompts).
    pub contract: &'a str,
    /// Proposals this run may still make.
    pub remaining: u64,
}

impl<'a> PlannerView<'a> {
    /// The measured programs, best (lowest fitness) first; ties keep submission order.
    pub fn ranked(&self) -> Vec<&'a Program> {
        let mut measured: Vec<&Program> = self
            .programs
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Measured { .. }))
            .collect();
        measured.sort_by(|a, b| fitness(a).total_cmp(&fitness(b)));
        measured
    }
}

/// A program's fitness (`+inf` unless measured).
pub fn fitness(program: &Program) -> f64 {
    match program.outcome {
        Outcome::Measured { fitness, .. } => fitness,
        _ => f64::INFINITY,
    }
}

/// Proposes experiments.
pub trait Planner: Send {
    /// The name recorded as the experiments' proposer.
    fn name(&self) -> &'static str;
    fn propose(
        &mut self,
        view: &PlannerView<'_>,
    ) -> impl Future<Output = Result<Turn, LabError>> + Send;
}
