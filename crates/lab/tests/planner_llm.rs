//! The LLM planner against local servers speaking the Anthropic Messages and OpenAI chat
//! completions wire formats, with an SQLite store: proposals, rejections fed back into the next
//! prompt, retries and failed calls, and what the planner log keeps (never the key).

mod common;
mod llm_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use codeclab_codec::Genome;
use codeclab_lab::candidate::{Edit, Policy, SourceTree};
use codeclab_lab::config::LabConfig;
use codeclab_lab::config::{Goal, LlmSection};
use codeclab_lab::llm::{LlmConfig, Pricing, ProviderKind, RetryPolicy};
use codeclab_lab::planner::llm::{LlmPlanner, PLANNER_NAME, PromptLimits};
use codeclab_lab::planner::run_loop::{LoopOptions, run_loop};
use codeclab_lab::planner::{
    Features, Feedback, Outcome, Planner, PlannerView, Program, Proposal, Turn,
};
use codeclab_lab::runner::QualityMetric;
use codeclab_lab::store::ExperimentState;
use codeclab_lab::store::PlannerLogRecord;
use codeclab_lab::store::programs::{ProgramRecord, ProgramRole};
use codeclab_lab::{Lab, Store};
use codeclab_video::Pattern;
use codeclab_video::corpus::ClipSet;
use llm_support::{Reply, ScriptedServer, serve};
use serde_json::json;
use std::sync::Arc;

const CONTRACT: &str = "Every program encodes the dev clips dev-a and dev-b at QP 22/27/32/37; \
                        fitness is the mean BD-rate (psnr_y) against the reference.";
/// A clip the view never holds: no prompt may name it.
const HOLDOUT_CLIP: &str = "holdout-secret-clip";

/// The evolvable sources the planner edits: two blocks in two files, and code outside them.
fn sources() -> SourceTree {
    let mut files = BTreeMap::new();
    files.insert(
        PathBuf::from("src/lib.rs"),
        "pub mod quant;\n\npub fn lambda(qp: f64) -> f64 {\n    // EVOLVE-BLOCK-START lambda\n    \
         let scale = 0.85;\n    scale * 2f64.powf((qp - 12.0) / 3.0)\n    \
         // EVOLVE-BLOCK-END\n}\n\npub fn frames() -> u32 {\n    let frames = 3;\n    frames\n}\n"
            .to_owned(),
    );
    files.insert(
        PathBuf::from("src/quant.rs"),
        "pub fn deadzone(intra: bool) -> f64 {\n    // EVOLVE-BLOCK-START quantisation\n    \
         if intra { 1.0 / 3.0 } else { 1.0 / 6.0 }\n    // EVOLVE-BLOCK-END\n}\n"
            .to_owned(),
    );
    SourceTree { files }
}

fn measured(fitness: f64, clips: [f64; 2], ipp: Option<f64>, mac: Option<f64>) -> Outcome {
    Outcome::Measured {
        fitness,
        per_clip: BTreeMap::from([("dev-a".into(), clips[0]), ("dev-b".into(), clips[1])]),
        features: Features {
            decoder_instructions_per_pixel: ipp,
            learned_mac_per_pixel: mac,
            encoder_effort: 1.0,
        },
    }
}

fn best_genome() -> Genome {
    Genome {
        lambda_scale: 1.2,
        deadzone_inter: 0.125,
        ..Genome::default()
    }
}

fn best_edits() -> Vec<Edit> {
    vec![Edit {
        block: "lambda".into(),
        search: "let scale = 0.85;".into(),
        replace: "let scale = 0.9;".into(),
    }]
}

/// The reference, the best program (#2, with a code edit), a worse one and a failed one.
fn programs() -> Vec<Program> {
    vec![
        Program {
            experiment_id: 1,
            parent: None,
            island: 0,
            genome: Genome::default(),
            edits: Vec::new(),
            hypothesis: "the shipped codec".into(),
            outcome: measured(0.0, [0.0, 0.0], Some(310.5), Some(0.0)),
        },
        Program {
            experiment_id: 2,
            parent: Some(1),
            island: 0,
            genome: best_genome(),
            edits: best_edits(),
            hypothesis: "A larger lambda spends fewer bits on noise".into(),
            outcome: measured(-2.25, [-2.0, -2.5], Some(305.25), Some(144.0)),
        },
        Program {
            experiment_id: 3,
            parent: Some(1),
            island: 1,
            genome: Genome {
                me_range: 16,
                ..Genome::default()
            },
            edits: Vec::new(),
            hypothesis: "A narrower search costs little".into(),
            outcome: measured(-0.75, [-0.5, -1.0], None, None),
        },
        Program {
            experiment_id: 4,
            parent: Some(1),
            island: 1,
            genome: Genome {
                keyint: 1,
                ..Genome::default()
            },
            edits: Vec::new(),
            hypothesis: "All-intra".into(),
            outcome: Outcome::Failed {
                reason: "the decoder output differs from the encoder's reconstruction".into(),
            },
        },
    ]
}

fn view<'a>(
    programs: &'a [Program],
    feedback: &'a [Feedback],
    goals: &'a [Goal],
) -> PlannerView<'a> {
    PlannerView {
        programs,
        feedback,
        goals,
        contract: CONTRACT,
        remaining: 7,
    }
}

fn goals() -> Vec<Goal> {
    vec![
        Goal::BdRate {
            anchor: "x265-medium".into(),
            metric: QualityMetric::PsnrY,
            sets: vec!["dev".into()],
            at_most: -10.0,
        },
        Goal::LearnedMacPerPixel { at_most: 500.0 },
    ]
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    }
}

/// Prices of the test models, per million tokens.
fn price_table() -> BTreeMap<String, Pricing> {
    BTreeMap::from([
        (
            "claude-test".to_owned(),
            Pricing {
                input_usd_per_million: 3.0,
                output_usd_per_million: 15.0,
            },
        ),
        (
            "local-coder".to_owned(),
            Pricing {
                input_usd_per_million: 0.5,
                output_usd_per_million: 1.5,
            },
        ),
    ])
}

/// A model configured as the lab configures one: from its `[llm]` section and price table.
fn client(provider: ProviderKind, base_url: &str, key_variable: &str) -> LlmConfig {
    let section = LlmSection {
        provider,
        model: match provider {
            ProviderKind::Anthropic => "claude-test".into(),
            ProviderKind::OpenaiCompatible => "local-coder".into(),
        },
        base_url: match provider {
            ProviderKind::Anthropic => base_url.to_owned(),
            ProviderKind::OpenaiCompatible => format!("{base_url}/v1"),
        },
        api_key_env: key_variable.into(),
        max_tokens: 1024,
        temperature: None,
        reasoning_budget_tokens: None,
        request_timeout_seconds: 30,
    };
    LlmConfig {
        retry: fast_retries(),
        ..section.client_config(&price_table())
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    (dir, store)
}

/// The LLM planner with `config`, logging to `store`, over the shipped sources.
fn llm_planner(config: LlmConfig, store: &Store) -> LlmPlanner {
    LlmPlanner::new(config, store.clone(), sources(), Policy::default()).unwrap()
}

async fn planner(
    provider: ProviderKind,
    server: &ScriptedServer,
) -> (tempfile::TempDir, LlmPlanner, Store) {
    // A variable cargo sets for every test process stands in for the key's variable.
    let key = match provider {
        ProviderKind::Anthropic => "CARGO_PKG_NAME",
        ProviderKind::OpenaiCompatible => "",
    };
    let (dir, store) = store().await;
    let planner = llm_planner(client(provider, &server.base_url, key), &store);
    (dir, planner, store)
}

fn anthropic(text: &str, stop_reason: &str, input: u64, output: u64) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output}
        }),
    )
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

fn openai(content: &str, finish_reason: &str, prompt: u64, completion: u64) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "local-coder",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason
            }],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}
        }),
    )
}

fn openai_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

fn genome_reply(fields: serde_json::Value) -> String {
    format!(
        "```json\n{}\n```",
        json!({
            "hypothesis": "A still larger lambda keeps trading noise bits for rate",
            "reasoning": "The best program gained from lambda 1.2",
            "expected_effect": "-0.5 % BD-rate",
            "genome": fields,
        })
    )
}

fn edits_reply(edits: serde_json::Value) -> String {
    json!({
        "hypothesis": "Inter blocks tolerate a wider dead zone",
        "reasoning": "Residuals of P frames are mostly noise",
        "expected_effect": "-1 % BD-rate",
        "edits": edits,
    })
    .to_string()
}

/// The stored row of a turn.
async fn row(planner_store: &Store, log_id: Option<i64>) -> PlannerLogRecord {
    let id = log_id.expect("every turn is logged");
    planner_store
        .planner_log(1000)
        .await
        .unwrap()
        .into_iter()
        .find(|record| record.id == id)
        .unwrap()
}

fn proposal(turn: Turn) -> Proposal {
    match turn {
        Turn::Propose(proposal) => proposal,
        Turn::Rejected { reason, .. } => panic!("rejected: {reason}"),
    }
}

fn rejection(turn: Turn) -> (Option<i64>, String) {
    match turn {
        Turn::Rejected { log_id, reason } => (log_id, reason),
        Turn::Propose(proposal) => panic!("proposed: {proposal:?}"),
    }
}

#[tokio::test]
async fn a_good_anthropic_reply_is_a_proposal_on_the_best_parent_and_its_call_is_logged() {
    let reply = genome_reply(json!({"lambda_scale": 1.3}));
    let server = serve(vec![anthropic(&reply, "end_turn", 2000, 150)]).await;
    let (_dir, mut planner, store) = planner(ProviderKind::Anthropic, &server).await;
    let (programs, goals) = (programs(), goals());
    let turn = planner
        .propose(&view(&programs, &[], &goals))
        .await
        .unwrap();
    let proposal = proposal(turn);

    assert_eq!(proposal.parent, Some(2));
    assert_eq!(proposal.island, 0);
    assert_eq!(
        proposal.genome,
        Genome {
            lambda_scale: 1.3,
            ..best_genome()
        }
    );
    assert_eq!(proposal.edits, best_edits(), "the parent's code is kept");
    assert_eq!(proposal.expected_effect, "-0.5 % BD-rate");

    let record = row(&store, proposal.log_id).await;
    let entry = &record.entry;
    assert_eq!(entry.planner, PLANNER_NAME);
    assert_eq!(entry.model.as_deref(), Some("claude-test"));
    assert_eq!(entry.outcome, "proposed");
    assert_eq!(entry.experiment_id, None);
    assert_eq!(
        (entry.input_tokens, entry.output_tokens),
        (Some(2000), Some(150))
    );
    let cost = entry.cost_usd.unwrap();
    assert!(
        (cost - (2000.0 * 3.0 + 150.0 * 15.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    assert_eq!(
        entry.hypothesis.as_deref(),
        Some("A still larger lambda keeps trading noise bits for rate")
    );
    assert_eq!(entry.reasoning, "The best program gained from lambda 1.2");
    assert!(
        entry.reply.contains("\"stop_reason\":\"end_turn\""),
        "the raw body"
    );

    // The logged prompt is what the server received.
    let received = server.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let system = received[0].body["system"].as_str().unwrap();
    let user = received[0].body["messages"][0]["content"].as_str().unwrap();
    assert!(entry.prompt.contains(system) && entry.prompt.contains(user));
    // The parent's genome, scores and code; the contract, goals and the reply schema.
    let parent_genome = serde_json::to_string(&best_genome()).unwrap();
    for expected in [
        "## Parent: program #2 (island 0)",
        parent_genome.as_str(),
        "fitness -2.25 %",
        "dev-a -2.00 %",
        "dev-b -2.50 %",
        "decoder instructions per pixel 305.2",
        "learned multiply-accumulates per pixel 144.0",
        "let scale = 0.9;",
        "A larger lambda spends fewer bits on noise",
        "- #3 (parent #1, island 1): fitness -0.75 %",
        "me_range 32 -> 16",
        "decoder instructions per pixel not measured",
        "learned multiply-accumulates per pixel not measured",
    ] {
        assert!(
            user.contains(expected),
            "the prompt lacks {expected:?}:\n{user}"
        );
    }
    assert!(
        !user.contains("let scale = 0.85;"),
        "blocks are the parent's"
    );
    for expected in [
        CONTRACT,
        "against `x265-medium` at most -10 %",
        "learned tools (as its streams declare them) at most 500",
        "| lambda_scale | 0.1 to 4 | 1.0 |",
        "\"edits\": [{\"block\"",
    ] {
        assert!(
            system.contains(expected),
            "the system prompt lacks {expected:?}"
        );
    }
}

#[tokio::test]
async fn a_models_thinking_is_logged_as_the_turns_reasoning_even_when_its_reply_is_rejected() {
    let thinking = |text: &str| {
        let mut reply = anthropic(text, "end_turn", 500, 900);
        let mut body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        body["content"] = json!([
            {"type": "thinking", "thinking": "Lambda 1.2 paid; go further.", "signature": "s"},
            {"type": "text", "text": text}
        ]);
        reply.body = body.to_string();
        reply
    };
    let good = genome_reply(json!({"lambda_scale": 1.3}));
    let server = serve(vec![thinking(&good), thinking("no JSON at all")]).await;
    let (_dir, mut planner, store) = planner(ProviderKind::Anthropic, &server).await;
    let (programs, goals) = (programs(), goals());

    let proposed = proposal(
        planner
            .propose(&view(&programs, &[], &goals))
            .await
            .unwrap(),
    );
    assert_eq!(
        row(&store, proposed.log_id).await.entry.reasoning,
        "model reasoning:\nLambda 1.2 paid; go further.\n\n\
         stated reasoning:\nThe best program gained from lambda 1.2"
    );
    let (log_id, _) = rejection(
        planner
            .propose(&view(&programs, &[], &goals))
            .await
            .unwrap(),
    );
    let entry = row(&store, log_id).await.entry;
    assert_eq!(entry.outcome, "rejected");
    assert_eq!(
        entry.reasoning,
        "model reasoning:\nLambda 1.2 paid; go further."
    );
}

#[tokio::test]
async fn a_good_openai_reply_with_edits_is_a_proposal_priced_from_the_table() {
    let reply = edits_reply(json!([{
        "block": "quantisation",
        "search": "1.0 / 6.0",
        "replace": "0.2"
    }]));
    let server = serve(vec![openai(&reply, "stop", 900, 80)]).await;
    let (_dir, mut planner, store) = planner(ProviderKind::OpenaiCompatible, &server).await;
    let (programs, goals) = (programs(), goals());
    let proposal = proposal(
        planner
            .propose(&view(&programs, &[], &goals))
            .await
            .unwrap(),
    );

    let mut expected_edits = best_edits();
    expected_edits.push(Edit {
        block: "quantisation".into(),
        search: "1.0 / 6.0".into(),
        replace: "0.2".into(),
    });
    assert_eq!(
        proposal.edits, expected_edits,
        "the parent's edits, then the new one"
    );
    assert_eq!(proposal.genome, best_genome());
    assert_eq!(proposal.parent, Some(2));

    let entry = row(&store, proposal.log_id).await.entry;
    assert_eq!(entry.model.as_deref(), Some("local-coder"));
    assert_eq!(entry.outcome, "proposed");
    assert_eq!(
        (entry.input_tokens, entry.output_tokens),
        (Some(900), Some(80))
    );
    let cost = entry.cost_usd.unwrap();
    assert!(
        (cost - (900.0 * 0.5 + 80.0 * 1.5) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    let received = server.received.lock().unwrap().clone();
    assert_eq!(
        (received[0].method.as_str(), received[0].path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        received[0].header("authorization"),
        None,
        "no key configured"
    );
    assert_eq!(received[0].body["messages"][0]["role"], "system");
}

#[tokio::test]
async fn near_duplicates_of_a_program_are_refused_before_they_are_measured() {
    // #5 is #2 with one more edit and #6 one more change of the reference, both still being
    // measured (with six programs, #2, the best, is the parent).
    let mut programs = programs();
    let mut edits = best_edits();
    edits.push(Edit {
        block: "quantisation".into(),
        search: "1.0 / 6.0".into(),
        replace: "1.0 / 5.0".into(),
    });
    programs.push(Program {
        experiment_id: 5,
        parent: Some(2),
        island: 0,
        genome: best_genome(),
        edits,
        hypothesis: "A wider dead zone".into(),
        outcome: Outcome::Pending,
    });
    programs.push(Program {
        experiment_id: 6,
        parent: Some(1),
        island: 1,
        genome: Genome {
            keyint: 2,
            ..Genome::default()
        },
        edits: Vec::new(),
        hypothesis: "Key frames often".into(),
        outcome: Outcome::Pending,
    });
    let reformatted = edits_reply(json!([{"block": "quantisation", "search": "1.0 / 6.0",
                                          "replace": "1.0/5.0 /* a fifth */"}]));
    let nudged = edits_reply(json!([{"block": "quantisation", "search": "1.0 / 6.0",
                                     "replace": "1.0 / 5.01"}]));
    let server = serve(vec![
        // lambda_scale 1.205 against #2's 1.2: 0.13 % of its range.
        anthropic(
            &genome_reply(json!({"lambda_scale": 1.205})),
            "end_turn",
            10,
            10,
        ),
        anthropic(&reformatted, "end_turn", 10, 10),
        anthropic(&nudged, "end_turn", 10, 10),
        // 1.3 is 2.6 % of the range away: worth measuring.
        anthropic(
            &genome_reply(json!({"lambda_scale": 1.3})),
            "end_turn",
            10,
            10,
        ),
    ])
    .await;
    let (_dir, mut planner, _store) = planner(ProviderKind::Anthropic, &server).await;
    let goals = goals();
    for twin in [2, 5, 5] {
        let turn = planner
            .propose(&view(&programs, &[], &goals))
            .await
            .unwrap();
        let (_, reason) = rejection(turn);
        assert!(
            reason.contains(&format!("a near duplicate of program #{twin}")),
            "{reason}"
        );
    }
    let turn = planner
        .propose(&view(&programs, &[], &goals))
        .await
        .unwrap();
    assert_eq!(proposal(turn).genome.lambda_scale, 1.3);
}

#[tokio::test]
async fn unusable_replies_are_rejected_logged_and_quoted_in_the_next_prompt() {
    let edit = |block: &str, search: &str| {
        edits_reply(json!([{"block": block, "search": search, "replace": "0.2"}]))
    };
    let server = serve(vec![
        // Cut off at the output limit.
        anthropic("{\"hypothesis\": \"A wider", "max_tokens", 1000, 1024),
        // Not JSON.
        anthropic("{\"hypothesis\": \"x\", reasoning: }", "end_turn", 1000, 20),
        // SEARCH text that is not in the block (the parent changed it).
        anthropic(&edit("lambda", "let scale = 0.85;"), "end_turn", 1000, 40),
        // A place that is not evolvable.
        anthropic(&edit("frames", "let frames = 3;"), "end_turn", 1000, 40),
        anthropic(&edit("lambda", "let frames = 3;"), "end_turn", 1000, 40),
        // Forbidden code.
        anthropic(
            &edits_reply(json!([{"block": "quantisation", "search": "1.0 / 6.0",
                                 "replace": "unsafe { 0.2 }"}])),
            "end_turn",
            1000,
            40,
        ),
        // A genome value out of range.
        anthropic(
            &genome_reply(json!({"lambda_scale": 9.0})),
            "end_turn",
            1000,
            40,
        ),
        // The parent as it is.
        anthropic(
            &genome_reply(json!({"lambda_scale": 1.2})),
            "end_turn",
            1000,
            40,
        ),
        anthropic(
            &genome_reply(json!({"lambda_scale": 1.4})),
            "end_turn",
            1000,
            40,
        ),
    ])
    .await;
    let (_dir, mut planner, store) = planner(ProviderKind::Anthropic, &server).await;
    let (programs, goals) = (programs(), goals());
    let mut feedback: Vec<Feedback> = Vec::new();
    let expected_details = [
        "the reply was cut off at the output limit (Some(1024) tokens)",
        "the reply's JSON is invalid at line 1",
        "edit 1 (block `lambda`): the SEARCH text is not found anywhere",
        "edit 1 (block `frames`): there is no evolvable block of that name; the blocks are: \
         lambda, quantisation",
        "edit 1 (block `lambda`): the SEARCH text is found only outside evolvable blocks (at \
         src/lib.rs:11)",
        "rejected by the static policy:\n  src/quant.rs:3 (block `quantisation`): `unsafe` is not \
         allowed",
        "the genome change is not valid: genome parameter `lambda_scale` = 9 is outside 0.1..=4",
        "the proposal is identical to program #2",
    ];
    for expected in expected_details {
        let turn = planner
            .propose(&view(&programs, &feedback, &goals))
            .await
            .unwrap();
        let (log_id, reason) = rejection(turn);
        assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
        let entry = row(&store, log_id).await.entry;
        assert_eq!(entry.outcome, "rejected");
        assert_eq!(entry.detail.as_deref(), Some(reason.as_str()));
        assert_eq!(
            entry.input_tokens,
            Some(1000),
            "a rejected call still costs"
        );
        assert!(entry.cost_usd.is_some());
        feedback.push(Feedback {
            experiment_id: None,
            log_id,
            reason,
        });
    }
    let parsed_rejection = row(&store, feedback[2].log_id).await.entry;
    assert_eq!(
        parsed_rejection.hypothesis.as_deref(),
        Some("Inter blocks tolerate a wider dead zone"),
        "a reply that parsed keeps its hypothesis"
    );

    // The next turn sees the recent rejections, newest last, each quoted.
    let limits = PromptLimits::default();
    let turn = planner
        .propose(&view(&programs, &feedback, &goals))
        .await
        .unwrap();
    let entry = row(&store, proposal(turn).log_id).await.entry;
    let prompt = entry.prompt;
    let shown = &feedback[feedback.len() - limits.feedback_items.min(feedback.len())..];
    let mut previous = 0;
    for item in shown {
        let at = prompt
            .find(&item.reason)
            .unwrap_or_else(|| panic!("the prompt does not quote {:?}", item.reason));
        assert!(at > previous, "newest last");
        previous = at;
    }
}

#[tokio::test]
async fn an_openai_reply_cut_at_the_length_limit_is_rejected() {
    let server = serve(vec![openai("{\"hypothesis\": \"Wid", "length", 900, 1024)]).await;
    let (_dir, mut planner, store) = planner(ProviderKind::OpenaiCompatible, &server).await;
    let (programs, goals) = (programs(), goals());
    let (log_id, reason) = rejection(
        planner
            .propose(&view(&programs, &[], &goals))
            .await
            .unwrap(),
    );
    assert!(reason.contains("cut off at the output limit"), "{reason}");
    let entry = row(&store, log_id).await.entry;
    assert_eq!(entry.outcome, "rejected");
    assert_eq!(entry.output_tokens, Some(1024));
}

#[tokio::test]
async fn rate_limits_are_retried_and_a_persistent_server_error_is_an_error_turn() {
    let good = genome_reply(json!({"deblock_tc_offset": 1}));
    let server = serve(vec![
        anthropic_error(429, "rate_limit_error", "slow down").with_header("retry-after", "0"),
        anthropic_error(529, "overloaded_error", "Overloaded"),
        anthropic(&good, "end_turn", 1500, 60),
        anthropic_error(500, "api_error", "Internal server error"),
        anthropic_error(500, "api_error", "Internal server error"),
        anthropic_error(500, "api_error", "Internal server error"),
        anthropic(
            &genome_reply(json!({"deblock_tc_offset": 2})),
            "end_turn",
            1500,
            60,
        ),
    ])
    .await;
    let (_dir, mut planner, store) = planner(ProviderKind::Anthropic, &server).await;
    let (programs, goals) = (programs(), goals());
    let view = view(&programs, &[], &goals);

    let first = proposal(planner.propose(&view).await.unwrap());
    assert_eq!(first.genome.deblock_tc_offset, 1);
    let entry = row(&store, first.log_id).await.entry;
    assert_eq!(entry.outcome, "proposed");
    let detail = entry.detail.unwrap();
    for expected in [
        "attempt 1: HTTP 429: rate_limit_error: slow down",
        "waited 0 ms",
        "attempt 2: HTTP 529: overloaded_error: Overloaded",
        "attempt 3: HTTP 200",
    ] {
        assert!(detail.contains(expected), "{detail:?} lacks {expected:?}");
    }

    let (log_id, reason) = rejection(planner.propose(&view).await.unwrap());
    assert!(
        reason.contains("HTTP 500 (api_error): Internal server error"),
        "{reason}"
    );
    assert!(reason.contains("3 attempts"), "{reason}");
    let entry = row(&store, log_id).await.entry;
    assert_eq!(entry.outcome, "error");
    assert_eq!(entry.model.as_deref(), Some("claude-test"));
    assert_eq!((entry.input_tokens, entry.cost_usd), (None, None));
    assert!(
        entry.reply.contains("Internal server error"),
        "the last body"
    );
    assert!(entry.detail.unwrap().starts_with(&reason));

    let again = proposal(planner.propose(&view).await.unwrap());
    assert_eq!(
        again.genome.deblock_tc_offset, 2,
        "the planner keeps working"
    );
    assert_eq!(server.received.lock().unwrap().len(), 7);
}

#[tokio::test]
async fn an_openai_rate_limit_is_retried_and_an_unpriced_model_has_no_cost() {
    let server = serve(vec![
        openai_error(429, "rate_limit_exceeded", "Rate limit reached")
            .with_header("retry-after-ms", "1"),
        openai(&genome_reply(json!({"me_range": 48})), "stop", 700, 50),
        openai_error(502, "server_error", "Bad gateway"),
        openai_error(502, "server_error", "Bad gateway"),
        openai_error(502, "server_error", "Bad gateway"),
    ])
    .await;
    let (dir, store) = store().await;
    let config = LlmConfig {
        retry: fast_retries(),
        ..LlmConfig::openai_compatible("unpriced-model", format!("{}/v1", server.base_url))
    };
    let mut planner = llm_planner(config, &store);
    let (programs, goals) = (programs(), goals());
    let view = view(&programs, &[], &goals);
    let first = proposal(planner.propose(&view).await.unwrap());
    assert_eq!(first.genome.me_range, 48);
    let entry = row(&store, first.log_id).await.entry;
    assert_eq!(entry.cost_usd, None, "the price is unknown, not zero");
    assert_eq!(entry.input_tokens, Some(700));
    assert!(
        entry
            .detail
            .unwrap()
            .contains("attempt 1: HTTP 429: rate_limit_exceeded")
    );

    let (log_id, reason) = rejection(planner.propose(&view).await.unwrap());
    assert!(reason.contains("HTTP 502"), "{reason}");
    assert_eq!(row(&store, log_id).await.entry.outcome, "error");
    drop(dir);
}

#[tokio::test]
async fn the_prompt_is_bounded_and_every_third_turn_another_elite_is_the_parent() {
    let server = serve(Vec::new()).await;
    let (_dir, planner, store) = planner(ProviderKind::Anthropic, &server).await;
    let goals = goals();
    let mut programs = programs();
    let full = planner.request(&view(&programs, &[], &goals));
    let user = &full.messages[0].content;
    assert!(user.contains("### `lambda` (src/lib.rs:4-7)"), "{user}");
    assert!(user.starts_with("Proposals this run may still make: 7.\n"));
    assert!(user.contains("### `quantisation` (src/quant.rs:2-4)"));
    assert!(!user.contains("Not shown for size"));
    let full_bytes = full.system.as_ref().unwrap().len() + user.len();

    // Lower ceilings drop blocks (the parent's edited block is offered first) and are never
    // exceeded, down to the part that holds no source.
    let blocks_start = user.find("## Evolvable blocks").unwrap();
    let blocks_end = user.find("\nPropose the next experiment").unwrap();
    let fixed_bytes = full_bytes - (blocks_end - blocks_start);
    let mut edited_block_alone = false;
    for max_prompt_bytes in (fixed_bytes..full_bytes).rev().step_by(7) {
        let bounded = llm_planner(
            client(ProviderKind::Anthropic, &server.base_url, ""),
            &store,
        )
        .with_limits(PromptLimits {
            max_prompt_bytes,
            ..PromptLimits::default()
        });
        let request = bounded.request(&view(&programs, &[], &goals));
        let user = &request.messages[0].content;
        let bytes = request.system.as_ref().unwrap().len() + user.len();
        assert!(bytes <= max_prompt_bytes, "{bytes} > {max_prompt_bytes}");
        edited_block_alone |= user.contains("### `lambda`")
            && user.contains("Not shown for size (shown on other turns): quantisation\n");
    }
    assert!(edited_block_alone);

    // Five programs: this turn derives from another elite than the best.
    programs.push(Program {
        experiment_id: 5,
        parent: Some(2),
        island: 0,
        genome: best_genome(),
        edits: Vec::new(),
        hypothesis: "pending".into(),
        outcome: Outcome::Pending,
    });
    let user = planner.request(&view(&programs, &[], &goals)).messages[0]
        .content
        .clone();
    assert!(!user.contains("## Parent: program #2"), "{user}");
    assert!(user.contains("## Parent: program #"));
    // Nothing measured: the reference is the parent.
    let unmeasured: Vec<Program> = programs
        .iter()
        .cloned()
        .map(|mut p| {
            p.outcome = Outcome::Pending;
            p
        })
        .collect();
    let unlimited = PlannerView {
        remaining: u64::MAX,
        ..view(&unmeasured, &[], &goals)
    };
    let user = planner.request(&unlimited).messages[0].content.clone();
    assert!(user.contains("## Parent: program #1 (island 0)"), "{user}");
    assert!(
        !user.contains("may still make"),
        "a run without a budget names no count"
    );
}

#[tokio::test]
async fn a_missing_api_key_is_an_error_turn_that_names_the_variable() {
    let server = serve(Vec::new()).await;
    let (_dir, store) = store().await;
    let variable = "CODECLAB_TEST_PLANNER_KEY_NEVER_SET";
    let mut planner = llm_planner(
        client(ProviderKind::Anthropic, &server.base_url, variable),
        &store,
    );
    let (programs, goals) = (programs(), goals());
    let (log_id, reason) = rejection(
        planner
            .propose(&view(&programs, &[], &goals))
            .await
            .unwrap(),
    );
    assert!(
        reason.contains(&format!("the API key variable {variable} is not set")),
        "{reason}"
    );
    let entry = row(&store, log_id).await.entry;
    assert_eq!(entry.outcome, "error");
    assert_eq!(entry.model.as_deref(), Some("claude-test"));
    assert!(
        server.received.lock().unwrap().is_empty(),
        "nothing was sent"
    );
}

const KEY_VARIABLE: &str = "CODECLAB_TEST_PLANNER_KEY";
const SENTINEL_KEY: &str = "sk-sentinel-7f3a9c-never-stored";

/// Runs in a child test process with the key variable set (setting it here would race with the
/// other tests' threads): every kind of turn, then every stored row is searched for the key.
#[tokio::test]
async fn no_stored_row_holds_the_api_key_or_a_holdout_clip() {
    if std::env::var(KEY_VARIABLE).is_err() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "no_stored_row_holds_the_api_key_or_a_holdout_clip",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(KEY_VARIABLE, SENTINEL_KEY)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && text.contains("1 passed"),
            "{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let server = serve(vec![
        anthropic(
            &genome_reply(json!({"lambda_scale": 1.3})),
            "end_turn",
            100,
            10,
        ),
        anthropic("no JSON at all", "end_turn", 100, 10),
        // A server that quotes the key it refused.
        anthropic_error(
            401,
            "authentication_error",
            &format!("invalid x-api-key: {SENTINEL_KEY}"),
        ),
    ])
    .await;
    let (_dir, store) = store().await;
    // A holdout measurement in the store: the planner must not show it.
    store
        .put_program(&ProgramRecord {
            experiment_id: 9,
            run_id: "run".into(),
            planner: PLANNER_NAME.into(),
            role: ProgramRole::Holdout,
            parent: Some(2),
            island: 0,
            stage: "holdout".into(),
            genome: serde_json::to_value(best_genome()).unwrap(),
            edits: json!([]),
            features: None,
            fitness: Some(-1.75),
            scores: Some(json!({HOLDOUT_CLIP: -1.75})),
            created_at: 0,
        })
        .await
        .unwrap();
    let mut planner = llm_planner(
        client(ProviderKind::Anthropic, &server.base_url, KEY_VARIABLE),
        &store,
    );
    let (programs, goals) = (programs(), goals());
    let mut feedback = Vec::new();
    for _ in 0..3 {
        if let Turn::Rejected { log_id, reason } = planner
            .propose(&view(&programs, &feedback, &goals))
            .await
            .unwrap()
        {
            feedback.push(Feedback {
                experiment_id: None,
                log_id,
                reason,
            });
        }
    }
    let received = server.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.header("x-api-key") == Some(SENTINEL_KEY)),
        "the key was sent"
    );
    let rows = store.planner_log(100).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.entry.outcome.as_str())
            .collect::<Vec<_>>(),
        ["error", "rejected", "proposed"]
    );
    let stored = serde_json::to_string(&rows).unwrap();
    assert!(!stored.contains(SENTINEL_KEY), "a row holds the key");
    assert!(rows[0].entry.reply.contains("invalid x-api-key: [secret]"));
    assert!(
        feedback
            .iter()
            .all(|item| !item.reason.contains(SENTINEL_KEY))
    );
    assert!(
        !stored.contains(HOLDOUT_CLIP),
        "a prompt shows a holdout score"
    );
    assert!(!stored.contains("-1.75"), "a prompt shows a holdout score");
    for row in &rows {
        assert!(
            row.entry.prompt.contains("dev-a -2.00 %"),
            "dev scores are shown"
        );
    }
}

/// A lab whose corpus is one generated 16x16 dev clip of 2 frames.
async fn tiny_lab(dir: &std::path::Path) -> Arc<Lab> {
    common::generate_clips(
        dir,
        &[common::TestClip {
            id: "tiny_shapes",
            set: ClipSet::Dev,
            pattern: Pattern::Shapes,
            size: (16, 16),
            frames: 2,
            seed: 5,
        }],
    );
    Arc::new(common::lab(dir, None).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_loop_a_rejection_is_fed_back_and_a_proposal_becomes_a_queued_experiment() {
    let server = serve(vec![
        anthropic("I would rather not say.", "end_turn", 1100, 8),
        anthropic(
            &genome_reply(json!({"lambda_scale": 1.3})),
            "end_turn",
            1200,
            90,
        ),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lab = tiny_lab(dir.path()).await;
    let mut planner = llm_planner(
        client(ProviderKind::Anthropic, &server.base_url, "CARGO_PKG_NAME"),
        &lab.store,
    );
    let mut config = LabConfig::from_toml("", "test").unwrap();
    config.evaluation.anchors = vec!["x264-medium".into()];
    let options = LoopOptions {
        max_experiments: Some(2),
        parallel: 1,
        candidates: None,
        binaries_dir: dir.path().join("binaries"),
        poll: Duration::from_millis(20),
    };
    // No worker measures anything: once the candidate is queued the loop waits for it, and is
    // interrupted.
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let watcher = {
        let store = lab.store.clone();
        tokio::spawn(async move {
            loop {
                let programs = store.programs(None).await.unwrap();
                if programs.iter().any(|p| p.role == ProgramRole::Candidate) {
                    let _ = shutdown.send(true);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        run_loop(lab.clone(), &mut planner, &config, options, stop),
    )
    .await
    .expect("the loop stops once interrupted")
    .unwrap();
    watcher.await.unwrap();
    assert_eq!(summary.stop_reason, "interrupted");

    let programs = lab.store.programs(None).await.unwrap();
    let reference = programs
        .iter()
        .find(|p| p.role == ProgramRole::Reference)
        .unwrap();
    let candidate = programs
        .iter()
        .find(|p| p.role == ProgramRole::Candidate)
        .unwrap();
    assert_eq!(candidate.parent, Some(reference.experiment_id));
    let expected = Genome {
        lambda_scale: 1.3,
        ..Genome::default()
    };
    assert_eq!(candidate.genome, serde_json::to_value(&expected).unwrap());
    let experiment = lab
        .store
        .experiment(candidate.experiment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(experiment.state, ExperimentState::Queued);
    assert_eq!(experiment.spec.proposer, PLANNER_NAME);
    assert_eq!(experiment.spec.clips, ["tiny_shapes"]);

    let turns = lab
        .store
        .planner_turns(candidate.experiment_id)
        .await
        .unwrap();
    assert_eq!(turns.len(), 1, "the turn is linked to its experiment");
    let entry = &turns[0].entry;
    assert_eq!(entry.outcome, "proposed");
    assert_eq!(entry.model.as_deref(), Some("claude-test"));
    assert!(entry.prompt.contains("tiny_shapes"), "the loop's contract");
    assert!(
        entry
            .prompt
            .contains(&format!("## Parent: program #{}", reference.experiment_id))
    );
}
