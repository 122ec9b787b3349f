//! The Anthropic Messages client against a local server speaking its wire format: content
//! blocks, usage, stop reasons, error objects, 429 with retry-after and 529 overloaded.

mod llm_support;

use codeclab_lab::candidate::{EditFailure, Rejection, SourceTree, apply};
use codeclab_lab::llm::{
    AnthropicClient, ChatRequest, LlmConfig, LlmErrorKind, LlmProvider, Pricing, ProposalRejection,
    ProposedChange, RetryPolicy, StopReason, Usage, parse_proposal,
};
use llm_support::{Reply, serve};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// A variable cargo sets for every test process, standing in for the key's variable.
const KEY_VARIABLE: &str = "CARGO_PKG_NAME";

fn config(base_url: &str) -> LlmConfig {
    LlmConfig {
        base_url: base_url.into(),
        api_key_env: Some(KEY_VARIABLE.into()),
        max_tokens: 1024,
        temperature: Some(0.7),
        pricing: Some(Pricing {
            input_usd_per_million: 3.0,
            output_usd_per_million: 15.0,
        }),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        },
        ..LlmConfig::anthropic("claude-test")
    }
}

fn message(text: &str, stop_reason: &str, input: u64, output: u64) -> serde_json::Value {
    json!({
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": output}
    })
}

fn error(kind: &str, text: &str) -> serde_json::Value {
    json!({"type": "error", "error": {"type": kind, "message": text}})
}

const PROPOSAL: &str = r#"Here is my proposal.
```json
{"hypothesis": "A stronger deblocking filter lowers blockiness at low rates",
 "reasoning": "Artifacts dominate at QP 40",
 "expected_effect": "-2% BD-rate on VMAF",
 "genome": {"deblock_strength": 3}}
```"#;

fn request() -> ChatRequest {
    ChatRequest::single(
        Some("You are a codec researcher.".into()),
        "Propose the next experiment.",
    )
}

#[tokio::test]
async fn a_reply_carries_text_usage_stop_reason_cost_and_the_request_as_sent() {
    let server = serve(vec![Reply::json(
        200,
        message(PROPOSAL, "end_turn", 1200, 300),
    )])
    .await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let completion = client.complete(&request()).await.unwrap();

    assert_eq!(completion.text, PROPOSAL);
    assert_eq!(completion.stop_reason, StopReason::EndTurn);
    assert_eq!(
        completion.usage,
        Some(Usage {
            input_tokens: 1200,
            output_tokens: 300
        })
    );
    let cost = completion.cost_usd.unwrap();
    assert!((cost - (1200.0 * 3.0 + 300.0 * 15.0) / 1e6).abs() < 1e-12);
    assert_eq!(completion.attempts.len(), 1);
    assert_eq!(completion.attempts[0].status, Some(200));

    let received = server.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let sent = &received[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(
        sent.header("x-api-key"),
        Some(std::env::var(KEY_VARIABLE).unwrap().as_str())
    );
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["model"], "claude-test");
    assert_eq!(sent.body["max_tokens"], 1024);
    assert_eq!(sent.body["system"], "You are a codec researcher.");
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "user", "content": "Propose the next experiment."})
    );
    assert_eq!(completion.request, sent.body);
    // The key is in no record.
    let record = serde_json::to_string(&completion).unwrap();
    assert!(!record.contains(&std::env::var(KEY_VARIABLE).unwrap()));

    let proposal = parse_proposal(&completion).unwrap();
    assert_eq!(proposal.expected_effect, "-2% BD-rate on VMAF");
    let ProposedChange::Genome(fields) = proposal.change else {
        panic!("expected a genome change");
    };
    assert_eq!(fields["deblock_strength"], 3);
}

#[tokio::test]
async fn rate_limits_and_overload_are_retried_honouring_retry_after() {
    let server = serve(vec![
        Reply::json(429, error("rate_limit_error", "slow down")).with_header("retry-after", "1"),
        Reply::json(529, error("overloaded_error", "Overloaded")),
        Reply::json(200, message(PROPOSAL, "end_turn", 10, 20)),
    ])
    .await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let completion = client.complete(&request()).await.unwrap();
    let statuses: Vec<_> = completion.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(429), Some(529), Some(200)]);
    assert_eq!(completion.attempts[0].retry_after_ms, Some(1000));
    assert_eq!(completion.attempts[0].wait_before_next_ms, Some(1000));
    // Without retry-after: exponential backoff with jitter, within [base, 2·base] after attempt 2.
    let backoff = completion.attempts[1].wait_before_next_ms.unwrap();
    assert!((5..=10).contains(&backoff), "{backoff}");
    assert!(
        completion.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("rate_limit_error")
    );
    assert_eq!(server.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn persistent_overload_ends_in_a_recorded_error_after_the_last_attempt() {
    let overloaded = || Reply::json(529, error("overloaded_error", "Overloaded"));
    let server = serve(vec![overloaded(), overloaded(), overloaded()]).await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let failure = client.complete(&request()).await.unwrap_err();
    assert_eq!(
        failure.kind,
        LlmErrorKind::RateLimited {
            status: 529,
            message: "Overloaded".into()
        }
    );
    assert_eq!(failure.attempts.len(), 3);
    assert_eq!(failure.attempts[2].wait_before_next_ms, None);
    assert_eq!(failure.request["model"], "claude-test");
    assert!(failure.raw_reply.unwrap().contains("overloaded_error"));
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let server = serve(vec![Reply::json(
        400,
        error("invalid_request_error", "max_tokens: too large"),
    )])
    .await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let failure = client.complete(&request()).await.unwrap_err();
    assert_eq!(
        failure.kind,
        LlmErrorKind::Api {
            status: 400,
            error_type: "invalid_request_error".into(),
            message: "max_tokens: too large".into()
        }
    );
    assert_eq!(failure.attempts.len(), 1);
}

#[tokio::test]
async fn a_missing_key_fails_before_any_request() {
    let server = serve(Vec::new()).await;
    let client = AnthropicClient::new(LlmConfig {
        api_key_env: Some("CODECLAB_TEST_VARIABLE_THAT_IS_NEVER_SET".into()),
        ..config(&server.base_url)
    })
    .unwrap();
    let failure = client.complete(&request()).await.unwrap_err();
    assert_eq!(
        failure.kind,
        LlmErrorKind::MissingApiKey {
            variable: "CODECLAB_TEST_VARIABLE_THAT_IS_NEVER_SET".into()
        }
    );
    assert!(server.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_truncated_reply_becomes_a_recorded_rejection() {
    let cut = &PROPOSAL[..PROPOSAL.len() / 2];
    let server = serve(vec![Reply::json(
        200,
        message(cut, "max_tokens", 900, 1024),
    )])
    .await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let completion = client.complete(&request()).await.unwrap();
    assert_eq!(completion.stop_reason, StopReason::MaxTokens);
    let rejection = Rejection::from(parse_proposal(&completion).unwrap_err());
    assert_eq!(
        rejection,
        Rejection::Reply(ProposalRejection::Truncated {
            output_tokens: Some(1024)
        })
    );
    let stored = serde_json::to_value(&rejection).unwrap();
    assert_eq!(stored["stage"], "reply");
    assert!(rejection.to_string().contains("cut off"));
}

#[tokio::test]
async fn a_diff_that_does_not_apply_becomes_a_recorded_rejection() {
    let reply = r#"{"hypothesis": "Rounding toward zero saves bits",
        "reasoning": "Dead-zone quantisers do this",
        "expected_effect": "-1% BD-rate",
        "edits": [{"block": "transform", "search": "byte.wrapping_add(7)", "replace": "byte"}]}"#;
    let server = serve(vec![Reply::json(200, message(reply, "end_turn", 50, 60))]).await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let completion = client.complete(&request()).await.unwrap();
    let proposal = parse_proposal(&completion).unwrap();
    let ProposedChange::Edits(edits) = proposal.change else {
        panic!("expected edits");
    };
    let tree = SourceTree::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/candidates/codec_like"),
    )
    .unwrap();
    let rejection = Rejection::from(apply(&tree, &edits).unwrap_err());
    let Rejection::Edit(edit) = &rejection else {
        panic!("{rejection}");
    };
    assert_eq!((edit.index, edit.block.as_str()), (1, "transform"));
    assert_eq!(edit.reason, EditFailure::NotFound);
    assert_eq!(serde_json::to_value(&rejection).unwrap()["stage"], "edit");
}

#[tokio::test]
async fn a_success_status_with_a_body_that_is_not_a_message_is_an_invalid_response() {
    let server = serve(vec![Reply {
        status: 200,
        headers: Vec::new(),
        body: "<html>gateway</html>".into(),
    }])
    .await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let failure = client.complete(&request()).await.unwrap_err();
    assert!(
        matches!(failure.kind, LlmErrorKind::InvalidResponse { .. }),
        "{failure}"
    );
    assert_eq!(failure.raw_reply.as_deref(), Some("<html>gateway</html>"));
}

#[tokio::test]
async fn an_oversized_reply_is_refused_without_being_held() {
    let huge = "x".repeat(64 * 1024);
    let server = serve(vec![Reply::json(200, message(&huge, "end_turn", 1, 1))]).await;
    let client = AnthropicClient::new(LlmConfig {
        max_reply_bytes: 4096,
        ..config(&server.base_url)
    })
    .unwrap();
    let failure = client.complete(&request()).await.unwrap_err();
    assert_eq!(
        failure.kind,
        LlmErrorKind::InvalidResponse {
            reason: "the reply is larger than 4096 bytes".into()
        }
    );
    assert_eq!(failure.raw_reply, None);
    assert_eq!(failure.attempts.len(), 1);
}

#[tokio::test]
async fn extended_thinking_is_requested_without_a_temperature_and_its_blocks_are_the_reasoning() {
    let mut reply = message(PROPOSAL, "end_turn", 900, 2400);
    reply["content"] = json!([
        {"type": "thinking", "thinking": "QP 40 shows ringing.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": PROPOSAL}
    ]);
    let server = serve(vec![Reply::json(200, reply)]).await;
    let client = AnthropicClient::new(LlmConfig {
        reasoning_budget_tokens: Some(2048),
        ..config(&server.base_url)
    })
    .unwrap();
    let completion = client.complete(&request()).await.unwrap();
    assert_eq!(completion.text, PROPOSAL, "thinking is not the answer");
    assert_eq!(
        completion.reasoning.as_deref(),
        Some("QP 40 shows ringing.\n\n[redacted thinking]")
    );
    assert!(parse_proposal(&completion).is_ok());
    let sent = server.received.lock().unwrap()[0].body.clone();
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert!(sent.get("temperature").is_none(), "{sent}");

    // Without a budget: no thinking asked for, the configured temperature sent, no reasoning.
    let server = serve(vec![Reply::json(200, message(PROPOSAL, "end_turn", 9, 9))]).await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let completion = client.complete(&request()).await.unwrap();
    assert_eq!(completion.reasoning, None);
    let sent = server.received.lock().unwrap()[0].body.clone();
    assert!(sent.get("thinking").is_none());
    assert_eq!(sent["temperature"], json!(0.7f32));
}

#[tokio::test]
async fn a_retry_after_given_as_an_http_date_is_honoured() {
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let server = serve(vec![
        Reply::json(429, error("rate_limit_error", "slow down"))
            .with_header("retry-after", &httpdate::fmt_http_date(at)),
        Reply::json(200, message(PROPOSAL, "end_turn", 10, 10)),
    ])
    .await;
    let client = AnthropicClient::new(config(&server.base_url)).unwrap();
    let completion = client.complete(&request()).await.unwrap();
    assert_eq!(completion.attempts.len(), 2);
    // The date has whole seconds: the wait is the rest of the second now plus one to two more.
    let asked = completion.attempts[0].retry_after_ms.unwrap();
    assert!((900..=2000).contains(&asked), "asked for {asked} ms");
    assert_eq!(completion.attempts[0].wait_before_next_ms, Some(asked));
}
