//! The LLM planner: each turn builds a bounded prompt from the planner's view (goals, the
//! measurement contract, the genome's parameters, a parent with its scores, the best and the most
//! different relatives, recent failures with their reasons, and the parent's evolvable blocks),
//! calls the model, logs the call whatever happens, and validates the reply into a full
//! [`Proposal`] or a [`Turn::Rejected`] whose reason goes back to the model next turn.
//!
//! A model's misbehaviour (a failed call, a cut-off or malformed reply, edits that do not apply
//! or break the policy) is a rejected turn; only the lab's own failures (the store) are errors.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use codeclab_codec::Genome;
use serde_json::Value;

use super::{Feedback, Outcome, Planner, PlannerView, Program, Proposal, Turn, novelty};
use crate::LabError;
use crate::candidate::{self, Edit, EditRejection, Policy, Rejection, SourceTree};
use crate::config::Goal;
use crate::llm::{
    Attempt, ChatRequest, Completion, LlmClient, LlmConfig, LlmError, LlmErrorKind, LlmProvider,
    ProposedChange, apply_genome_change, parse_proposal,
};
use crate::secrets::Secrets;
use crate::store::{PlannerLogEntry, Store};

/// The name recorded as the proposer and in the planner log.
pub const PLANNER_NAME: &str = "llm";

/// How much of the history and of the sources one prompt carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptLimits {
    /// Ceiling of the system and user prompts together, in bytes: the evolvable blocks that do
    /// not fit are named but not shown.
    pub max_prompt_bytes: usize,
    /// Best programs shown besides the parent.
    pub best_relatives: usize,
    /// Programs most different from the parent shown besides the best.
    pub diverse_relatives: usize,
    /// Most recent failures and rejections shown.
    pub feedback_items: usize,
    /// Longest reason shown per failure (compiler output can be long); longer ones are cut.
    pub feedback_item_bytes: usize,
    /// Longest hypothesis shown per program.
    pub hypothesis_bytes: usize,
}

impl Default for PromptLimits {
    fn default() -> Self {
        PromptLimits {
            max_prompt_bytes: 96 * 1024,
            best_relatives: 5,
            diverse_relatives: 3,
            feedback_items: 8,
            feedback_item_bytes: 2048,
            hypothesis_bytes: 240,
        }
    }
}

/// Elites among which every third turn picks a parent other than the best, for diversity.
const ELITES: usize = 4;

/// The LLM planner.
#[derive(Debug)]
pub struct LlmPlanner {
    client: LlmClient,
    /// The API key and the lab's other secrets, scrubbed from everything stored or fed back.
    secrets: Secrets,
    store: Store,
    /// The shipped codec sources: edits apply to them, and their blocks are shown.
    sources: SourceTree,
    policy: Policy,
    limits: PromptLimits,
}

/// The parent a turn derives from.
struct Parent<'a> {
    program: Option<&'a Program>,
    genome: Genome,
    edits: Vec<Edit>,
}

/// A prompt and the parent it was built around.
struct Prompt<'a> {
    request: ChatRequest,
    parent: Parent<'a>,
}

impl LlmPlanner {
    /// A planner calling the model `config` names (the lab's configuration gives it with
    /// [`crate::config::LlmSection::client_config`]).
    pub fn new(
        config: LlmConfig,
        store: Store,
        sources: SourceTree,
        policy: Policy,
    ) -> Result<Self, LlmErrorKind> {
        let secrets = Secrets::from_environment(config.api_key_env.as_deref(), []);
        Ok(LlmPlanner {
            client: LlmClient::from_config(config)?,
            secrets,
            store,
            sources,
            policy,
            limits: PromptLimits::default(),
        })
    }

    /// Scrubs these secrets too (the lab's: its database password, its object-store keys).
    pub fn with_secrets(mut self, secrets: &Secrets) -> Self {
        self.secrets.extend(secrets);
        self
    }

    pub fn with_limits(mut self, limits: PromptLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The request this planner would send for `view`.
    pub fn request(&self, view: &PlannerView<'_>) -> ChatRequest {
        self.prompt(view).request
    }

    fn prompt<'a>(&self, view: &PlannerView<'a>) -> Prompt<'a> {
        let parent = choose_parent(view);
        let system = system_prompt(view, &self.policy);
        let mut user = String::new();
        // The loop passes `u64::MAX` when the run has no experiment budget.
        if view.remaining != u64::MAX {
            let _ = writeln!(
                user,
                "Proposals this run may still make: {}.\n",
                view.remaining
            );
        }
        self.write_parent(&mut user, &parent);
        self.write_relatives(&mut user, view, &parent);
        self.write_feedback(&mut user, view.feedback);
        let closing = match parent.program {
            Some(program) => format!(
                "\nPropose the next experiment, derived from program #{}. Reply with the JSON \
                 object only.\n",
                program.experiment_id
            ),
            None => "\nPropose the first experiment, derived from the shipped codec. Reply with \
                     the JSON object only.\n"
                .to_owned(),
        };
        let budget = self
            .limits
            .max_prompt_bytes
            .saturating_sub(system.len() + user.len() + closing.len());
        user.push_str(&self.blocks_section(&parent, view.programs.len(), budget));
        user.push_str(&closing);
        Prompt {
            request: ChatRequest::single(Some(system), user),
            parent,
        }
    }

    fn write_parent(&self, out: &mut String, parent: &Parent<'_>) {
        match parent.program {
            Some(program) => {
                let _ = writeln!(
                    out,
                    "## Parent: program #{} (island {})",
                    program.experiment_id, program.island
                );
                let _ = writeln!(out, "Scores: {}", scores(program));
                let _ = writeln!(
                    out,
                    "Hypothesis behind it: {}",
                    shortened(&program.hypothesis, self.limits.hypothesis_bytes)
                );
            }
            None => {
                let _ = writeln!(out, "## Parent: the shipped codec (nothing measured yet)");
            }
        }
        let genome = serde_json::to_string(&parent.genome).unwrap_or_default();
        let _ = writeln!(out, "Genome: {genome}");
        let changed = genome_changes(&parent.genome);
        if !changed.is_empty() {
            let _ = writeln!(out, "Changed from the shipped genome: {changed}");
        }
        if parent.edits.is_empty() {
            let _ = writeln!(out, "Code edits: none (the shipped sources)");
        } else {
            let _ = writeln!(
                out,
                "Code edits: {} in blocks {} (already applied in the sources below)",
                parent.edits.len(),
                edited_blocks(&parent.edits)
            );
        }
        out.push('\n');
    }

    fn write_relatives(&self, out: &mut String, view: &PlannerView<'_>, parent: &Parent<'_>) {
        let parent_id = parent.program.map(|p| p.experiment_id);
        let ranked = view.ranked();
        let best: Vec<&Program> = ranked
            .iter()
            .copied()
            .filter(|p| Some(p.experiment_id) != parent_id)
            .take(self.limits.best_relatives)
            .collect();
        if !best.is_empty() {
            let _ = writeln!(out, "## Best programs (lower fitness is better)");
            for program in &best {
                self.write_program(out, program);
            }
            out.push('\n');
        }
        // The most different programs from the parent, among the measured ones not shown yet.
        let shown: BTreeSet<i64> = best
            .iter()
            .map(|p| p.experiment_id)
            .chain(parent_id)
            .collect();
        let mut others: Vec<(usize, &Program)> = ranked
            .iter()
            .copied()
            .filter(|p| !shown.contains(&p.experiment_id))
            .map(|p| (distance(p, &parent.genome, &parent.edits), p))
            .collect();
        // Most different first; the better one first among equals (the sort is stable).
        others.sort_by_key(|(distance, _)| std::cmp::Reverse(*distance));
        let diverse: Vec<&Program> = others
            .into_iter()
            .filter(|(distance, _)| *distance > 0)
            .take(self.limits.diverse_relatives)
            .map(|(_, p)| p)
            .collect();
        if !diverse.is_empty() {
            let _ = writeln!(out, "## Programs most different from the parent");
            for program in diverse {
                self.write_program(out, program);
            }
            out.push('\n');
        }
    }

    fn write_program(&self, out: &mut String, program: &Program) {
        let lineage = program
            .parent
            .map_or_else(|| "no parent".to_owned(), |id| format!("parent #{id}"));
        let _ = writeln!(
            out,
            "- #{} ({lineage}, island {}): {}",
            program.experiment_id,
            program.island,
            scores(program)
        );
        let changed = genome_changes(&program.genome);
        let _ = writeln!(
            out,
            "  genome: {}",
            if changed.is_empty() {
                "shipped".to_owned()
            } else {
                changed
            }
        );
        if !program.edits.is_empty() {
            let _ = writeln!(
                out,
                "  code edits: {} in blocks {}",
                program.edits.len(),
                edited_blocks(&program.edits)
            );
        }
        if !program.hypothesis.trim().is_empty() {
            let _ = writeln!(
                out,
                "  hypothesis: {}",
                shortened(&program.hypothesis, self.limits.hypothesis_bytes)
            );
        }
    }

    fn write_feedback(&self, out: &mut String, feedback: &[Feedback]) {
        let start = feedback.len().saturating_sub(self.limits.feedback_items);
        let recent = &feedback[start..];
        if recent.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "## Recent failures and rejections (newest last; do not repeat them)"
        );
        for item in recent {
            let what = match (item.experiment_id, item.log_id) {
                (Some(experiment), _) => format!("experiment #{experiment}"),
                (None, Some(turn)) => format!("turn {turn}"),
                (None, None) => "a turn".to_owned(),
            };
            let _ = writeln!(
                out,
                "- {what}: {}",
                shortened(&item.reason, self.limits.feedback_item_bytes)
            );
        }
        out.push('\n');
    }

    /// The parent's evolvable blocks within `budget` bytes: the blocks its edits touched first,
    /// then the others from a position that moves with the run, so that a tight budget still
    /// shows every block over several turns.
    fn blocks_section(&self, parent: &Parent<'_>, rotation: usize, budget: usize) -> String {
        let tree = match candidate::apply(&self.sources, &parent.edits) {
            Ok(tree) => tree,
            Err(rejection) => {
                return format!(
                    "## Evolvable blocks\nThe parent's edits no longer apply to the shipped \
                     sources ({rejection}); propose a genome change.\n"
                );
            }
        };
        let blocks = match tree.blocks() {
            Ok(blocks) => blocks,
            Err(error) => {
                return format!(
                    "## Evolvable blocks\nThe block markers cannot be read ({error}); propose a \
                     genome change.\n"
                );
            }
        };
        if blocks.is_empty() {
            return String::new();
        }
        let touched: BTreeSet<&str> = parent.edits.iter().map(|e| e.block.as_str()).collect();
        let start = rotation % blocks.len();
        let mut order: Vec<usize> = (0..blocks.len())
            .map(|i| (start + i) % blocks.len())
            .collect();
        // Stable: touched blocks first, each group in rotated order.
        order.sort_by_key(|&i| !touched.contains(blocks[i].name.as_str()));

        let heading = "## Evolvable blocks of the parent (the current text SEARCH must match)\n";
        let omitted_heading = "Not shown for size (shown on other turns): ";
        let mut shown = String::new();
        let mut omitted = Vec::new();
        // Room kept for the list of omitted blocks, were every block omitted.
        let names_bytes =
            omitted_heading.len() + blocks.iter().map(|b| b.name.len() + 2).sum::<usize>() + 1;
        let mut room = budget.saturating_sub(heading.len() + names_bytes);
        for index in order {
            let block = &blocks[index];
            let text = tree
                .files
                .get(&block.file)
                .and_then(|file| file.get(block.content.clone()))
                .unwrap_or_default();
            let rendered = format!(
                "### `{}` ({}:{}-{})\n```rust\n{text}```\n",
                block.name,
                block.file.display(),
                block.start_line,
                block.end_line
            );
            if rendered.len() <= room {
                room -= rendered.len();
                shown.push_str(&rendered);
            } else {
                omitted.push(block.name.as_str());
            }
        }
        let mut section = String::from(heading);
        section.push_str(&shown);
        if !omitted.is_empty() {
            let _ = writeln!(section, "{omitted_heading}{}", omitted.join(", "));
        }
        if section.len() > budget {
            return String::new();
        }
        section
    }

    /// Turns a reply into the full program to measure, or the reason it cannot be one.
    fn validate(
        &self,
        change: ProposedChange,
        parent: &Parent<'_>,
        view: &PlannerView<'_>,
    ) -> Result<(Genome, Vec<Edit>), String> {
        let (genome, edits) = match change {
            ProposedChange::Genome(fields) => {
                let genome = apply_genome_change(&parent.genome, &fields)
                    .map_err(|rejection| Rejection::from(rejection).to_string())?;
                (genome, parent.edits.clone())
            }
            ProposedChange::Edits(new) => {
                let inherited = parent.edits.len();
                let mut edits = parent.edits.clone();
                edits.extend(new);
                if let Err(rejection) = candidate::prepare(&self.sources, &edits, &self.policy) {
                    return Err(renumbered(rejection, inherited).to_string());
                }
                (parent.genome.clone(), edits)
            }
        };
        let state = |twin: &Program| match &twin.outcome {
            Outcome::Pending => "it is being measured".to_owned(),
            Outcome::Measured { fitness, .. } => format!("fitness {fitness:+.2} %"),
            Outcome::Failed { reason } => format!("it failed: {}", shortened(reason, 200)),
        };
        if let Some(twin) = view
            .programs
            .iter()
            .find(|p| p.genome == genome && p.edits == edits)
        {
            return Err(format!(
                "the proposal is identical to program #{} ({}); change something",
                twin.experiment_id,
                state(twin)
            ));
        }
        if let Some(twin) = view
            .programs
            .iter()
            .find(|p| novelty::near_duplicate((&genome, &edits), (&p.genome, &p.edits)))
        {
            return Err(format!(
                "the proposal is a near duplicate of program #{} ({}): every gene within {} % \
                 of its range of that program's and the same code but for comments, layout and \
                 numbers within {} %, which no measurement tells apart; change something that \
                 matters",
                twin.experiment_id,
                state(twin),
                novelty::GENE_TOLERANCE * 100.0,
                novelty::NUMBER_TOLERANCE * 100.0
            ));
        }
        Ok((genome, edits))
    }

    /// `text` with the API key and the lab's secrets scrubbed: a server may quote the key it
    /// refused, and nothing stored or fed back may hold it.
    fn redacted(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }

    async fn log(&self, mut entry: PlannerLogEntry) -> Result<i64, LabError> {
        for field in [&mut entry.prompt, &mut entry.reply, &mut entry.reasoning] {
            *field = self.redacted(field);
        }
        for field in [&mut entry.hypothesis, &mut entry.detail] {
            *field = field.as_deref().map(|text| self.redacted(text));
        }
        Ok(self.store.log_planner(&entry).await?)
    }
}

impl Planner for LlmPlanner {
    fn name(&self) -> &'static str {
        PLANNER_NAME
    }

    async fn propose(&mut self, view: &PlannerView<'_>) -> Result<Turn, LabError> {
        let Prompt { request, parent } = self.prompt(view);
        let prompt = prompt_text(&request);
        let model_of = |body: &Value| body.get("model").and_then(Value::as_str).map(String::from);
        let completion = match self.client.complete(&request).await {
            Ok(completion) => completion,
            Err(failure) => {
                let reason = self.redacted(&format!("the model call failed: {failure}"));
                let log_id = self
                    .log(PlannerLogEntry {
                        model: model_of(&failure.request),
                        prompt,
                        reply: failure.raw_reply.clone().unwrap_or_default(),
                        detail: Some(with_attempts(&reason, &failure)),
                        ..PlannerLogEntry::new(PLANNER_NAME, "error")
                    })
                    .await?;
                return Ok(Turn::Rejected {
                    log_id: Some(log_id),
                    reason,
                });
            }
        };
        let model = Some(completion.model.clone());
        let tokens = |count: Option<u64>| count.and_then(|n| i64::try_from(n).ok());
        let mut entry = PlannerLogEntry {
            model,
            prompt,
            reply: completion.raw_reply.clone(),
            reasoning: turn_reasoning(completion.reasoning.as_deref(), ""),
            input_tokens: tokens(completion.usage.map(|u| u.input_tokens)),
            output_tokens: tokens(completion.usage.map(|u| u.output_tokens)),
            cost_usd: completion.cost_usd,
            ..PlannerLogEntry::new(PLANNER_NAME, "rejected")
        };
        let parsed = match parse_proposal(&completion) {
            Ok(parsed) => parsed,
            Err(rejection) => {
                let reason = Rejection::from(rejection).to_string();
                entry.detail = Some(attempts_note(&reason, &completion));
                let log_id = self.log(entry).await?;
                return Ok(Turn::Rejected {
                    log_id: Some(log_id),
                    reason,
                });
            }
        };
        entry.hypothesis = Some(parsed.hypothesis.clone());
        entry.reasoning = turn_reasoning(completion.reasoning.as_deref(), &parsed.reasoning);
        match self.validate(parsed.change, &parent, view) {
            Err(reason) => {
                entry.detail = Some(attempts_note(&reason, &completion));
                let log_id = self.log(entry).await?;
                Ok(Turn::Rejected {
                    log_id: Some(log_id),
                    reason,
                })
            }
            Ok((genome, edits)) => {
                entry.outcome = "proposed".into();
                let note = attempts_note("", &completion);
                entry.detail = (!note.is_empty()).then_some(note);
                let log_id = self.log(entry).await?;
                Ok(Turn::Propose(Proposal {
                    parent: parent.program.map(|p| p.experiment_id),
                    island: parent.program.map_or(0, |p| p.island),
                    genome,
                    edits,
                    hypothesis: parsed.hypothesis,
                    reasoning: parsed.reasoning,
                    expected_effect: parsed.expected_effect,
                    log_id: Some(log_id),
                }))
            }
        }
    }
}

/// A turn's reasoning as the log keeps it: what the model reasoned before answering (its
/// thinking, when the server returns it), then the reasoning its proposal states.
fn turn_reasoning(thinking: Option<&str>, stated: &str) -> String {
    match (
        thinking.map(str::trim).filter(|t| !t.is_empty()),
        stated.trim(),
    ) {
        (None, stated) => stated.to_owned(),
        (Some(thinking), "") => format!("model reasoning:\n{thinking}"),
        (Some(thinking), stated) => {
            format!("model reasoning:\n{thinking}\n\nstated reasoning:\n{stated}")
        }
    }
}

/// The best measured program; every third turn (by the run's size, so the choice is a function
/// of the view) another of the elites. Before anything is measured: the first program (the
/// reference), or the shipped codec.
fn choose_parent<'a>(view: &PlannerView<'a>) -> Parent<'a> {
    let ranked = view.ranked();
    let program = if ranked.is_empty() {
        view.programs.first()
    } else {
        let elites = ranked.len().min(ELITES);
        let turn = view.programs.len();
        let index = if elites > 1 && turn % 3 == 2 {
            1 + (turn / 3) % (elites - 1)
        } else {
            0
        };
        Some(ranked[index])
    };
    Parent {
        program,
        genome: program.map_or_else(Genome::default, |p| p.genome.clone()),
        edits: program.map_or_else(Vec::new, |p| p.edits.clone()),
    }
}

fn system_prompt(view: &PlannerView<'_>, policy: &Policy) -> String {
    let mut out = String::from(
        "You are the research planner of a laboratory that evolves a hybrid block video codec \
         (I and P frames, quadtree partitions, intra and inter prediction with sub-pixel motion, \
         integer transforms, dead-zone quantisation with RDOQ, an adaptive arithmetic coder, \
         in-loop deblocking, rate-distortion optimised decisions). Each turn you propose one \
         experiment: a change of the genome (encoder parameters, no rebuild) or SEARCH/REPLACE \
         edits to the codec's evolvable blocks (rebuilt, sandboxed, checked bit-exact on a \
         smoke clip, then measured). State a hypothesis the measurement can refute.\n\n",
    );
    let _ = writeln!(
        out,
        "## How programs are measured\n{}\n",
        view.contract.trim()
    );
    if !view.goals.is_empty() {
        let _ = writeln!(out, "## Goals");
        for goal in view.goals {
            let _ = writeln!(out, "- {}", goal_text(goal));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "## Genome\n| parameter | values | shipped | meaning |\n|---|---|---|---|"
    );
    for gene in Genome::default().genes() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            gene.name, gene.values, gene.value, gene.meaning
        );
    }
    let _ = writeln!(
        out,
        "\n## Code edits\n\
         - Only the text between `// EVOLVE-BLOCK-START <name>` and `// EVOLVE-BLOCK-END` can \
         change; each edit names its block.\n\
         - SEARCH must match the block's current text (as shown below) exactly once, whitespace \
         included; REPLACE takes its place. Edits apply in order, after the parent's own edits.\n\
         - The decoder must reproduce the encoder's reconstruction bit for bit.\n\
         - Forbidden: `unsafe`, `extern`, linkage or path attributes, `include!`/`env!`/`asm!`, \
         std::fs/net/process/env/os/thread, new dependencies. A block may hold at most {} bytes, \
         a literal at most {} bytes.\n",
        policy.max_block_bytes, policy.max_literal_bytes
    );
    out.push_str(
        "## Reply\nAnswer with exactly one JSON object (a ```json fence around it is fine) and \
         nothing else:\n\
         {\"hypothesis\": \"...\", \"reasoning\": \"...\", \"expected_effect\": \"...\", \
         \"genome\": {\"lambda_scale\": 1.1}}\n\
         or the same with \"edits\": [{\"block\": \"...\", \"search\": \"...\", \"replace\": \
         \"...\"}] instead of \"genome\". Give either genome or edits, not both. `genome` lists \
         only the parameters to change; the others keep the parent's values. Keep it short: a \
         reply cut off at the output limit is rejected.\n",
    );
    out
}

fn goal_text(goal: &Goal) -> String {
    match goal {
        Goal::BdRate {
            anchor,
            metric,
            sets,
            at_most,
        } => format!(
            "mean BD-rate ({}) of the best program against `{anchor}` at most {at_most} % on \
             the {} clips",
            metric.key(),
            sets.join(" and ")
        ),
        Goal::DecoderInstructionsPerPixel { at_most } => {
            format!("decoder instructions per pixel of the best program at most {at_most}")
        }
        Goal::LearnedMacPerPixel { at_most } => format!(
            "multiply-accumulates per pixel of the best program's learned tools (as its streams \
             declare them) at most {at_most}"
        ),
    }
}

/// A program's scores in one line.
fn scores(program: &Program) -> String {
    match &program.outcome {
        Outcome::Pending => "not measured yet".to_owned(),
        Outcome::Failed { reason } => format!("failed: {}", shortened(reason, 300)),
        Outcome::Measured {
            fitness,
            per_clip,
            features,
        } => {
            let clips: Vec<String> = per_clip
                .iter()
                .map(|(clip, bd)| format!("{clip} {bd:+.2} %"))
                .collect();
            let measured = |value: Option<f64>| {
                value.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.1}"))
            };
            format!(
                "fitness {fitness:+.2} % BD-rate vs the reference [{}]; decoder instructions \
                 per pixel {}; learned multiply-accumulates per pixel {}; encoder effort {:.2}x",
                clips.join(", "),
                measured(features.decoder_instructions_per_pixel),
                measured(features.learned_mac_per_pixel),
                features.encoder_effort
            )
        }
    }
}

/// The genome's differences from the shipped one, `name: old -> new`.
fn genome_changes(genome: &Genome) -> String {
    let shipped = serde_json::to_value(Genome::default()).unwrap_or_default();
    let current = serde_json::to_value(genome).unwrap_or_default();
    let Some(fields) = current.as_object() else {
        return String::new();
    };
    fields
        .iter()
        .filter(|(name, value)| shipped.get(name.as_str()) != Some(value))
        .map(|(name, value)| {
            let old = shipped.get(name.as_str()).map(Value::to_string);
            format!("{name} {} -> {value}", old.unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How far a program is from a genome and edits: differing genome fields plus differing edits.
fn distance(program: &Program, genome: &Genome, edits: &[Edit]) -> usize {
    let a = serde_json::to_value(&program.genome).unwrap_or_default();
    let b = serde_json::to_value(genome).unwrap_or_default();
    let fields = match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => a
            .iter()
            .filter(|(k, v)| b.get(k.as_str()) != Some(v))
            .count(),
        _ => 0,
    };
    let edits_differ = program.edits.iter().filter(|e| !edits.contains(e)).count()
        + edits.iter().filter(|e| !program.edits.contains(e)).count();
    fields + edits_differ
}

fn edited_blocks(edits: &[Edit]) -> String {
    let names: BTreeSet<&str> = edits.iter().map(|e| e.block.as_str()).collect();
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// An edit rejection numbered as the model numbered its edits (the parent's come first).
fn renumbered(rejection: Rejection, inherited: usize) -> Rejection {
    match rejection {
        Rejection::Edit(edit) if edit.index > inherited => Rejection::Edit(EditRejection {
            index: edit.index - inherited,
            ..edit
        }),
        Rejection::Edit(edit) => Rejection::Edit(EditRejection {
            reason: edit.reason,
            block: format!("{} (an edit of the parent)", edit.block),
            index: edit.index,
        }),
        other => other,
    }
}

/// At most `max` bytes of `text`, cut on a character boundary and marked.
fn shortened(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_owned();
    }
    let cut = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{} [cut]", &text[..cut])
}

/// The prompt as the model reads it.
fn prompt_text(request: &ChatRequest) -> String {
    let mut text = String::new();
    if let Some(system) = &request.system {
        let _ = write!(text, "[system]\n{system}\n");
    }
    for message in &request.messages {
        let role = match message.role {
            crate::llm::Role::User => "user",
            crate::llm::Role::Assistant => "assistant",
        };
        let _ = write!(text, "[{role}]\n{}\n", message.content);
    }
    text
}

fn attempt_line(attempt: &Attempt) -> String {
    let mut line = format!("attempt {}: ", attempt.number);
    match (attempt.status, &attempt.error) {
        (_, Some(error)) => line.push_str(error),
        (Some(status), None) => {
            let _ = write!(line, "HTTP {status}");
        }
        (None, None) => line.push_str("no response"),
    }
    let _ = write!(line, " after {} ms", attempt.latency_ms);
    if let Some(wait) = attempt.wait_before_next_ms {
        let _ = write!(line, ", waited {wait} ms");
    }
    line
}

/// `reason` with the call's attempts appended when it took more than one.
fn attempts_note(reason: &str, completion: &Completion) -> String {
    if completion.attempts.len() < 2 {
        return reason.to_owned();
    }
    let lines: Vec<String> = completion.attempts.iter().map(attempt_line).collect();
    let calls = format!("call: {}", lines.join("; "));
    if reason.is_empty() {
        calls
    } else {
        format!("{reason}\n{calls}")
    }
}

fn with_attempts(reason: &str, failure: &LlmError) -> String {
    let lines: Vec<String> = failure.attempts.iter().map(attempt_line).collect();
    if lines.is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}\ncall: {}", lines.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turns_reasoning_keeps_the_models_thinking_before_what_its_proposal_states() {
        assert_eq!(turn_reasoning(None, " stated "), "stated");
        assert_eq!(turn_reasoning(Some("  "), "stated"), "stated");
        assert_eq!(
            turn_reasoning(Some("thought"), ""),
            "model reasoning:\nthought"
        );
        assert_eq!(
            turn_reasoning(Some("thought"), "stated"),
            "model reasoning:\nthought\n\nstated reasoning:\nstated"
        );
    }

    #[test]
    fn shortened_cuts_on_a_character_boundary_and_says_so() {
        assert_eq!(shortened("  short  ", 10), "short");
        assert_eq!(shortened("ééé", 3), "é [cut]");
        assert_eq!(shortened("abcdef", 4), "abcd [cut]");
    }

    #[test]
    fn an_edit_rejection_is_numbered_as_the_model_numbered_its_edits() {
        let rejection = Rejection::Edit(EditRejection {
            index: 3,
            block: "lambda".into(),
            reason: candidate::EditFailure::NotFound,
        });
        let text = renumbered(rejection, 2).to_string();
        assert!(
            text.starts_with("the edits were rejected: edit 1 (block `lambda`)"),
            "{text}"
        );
    }
}
