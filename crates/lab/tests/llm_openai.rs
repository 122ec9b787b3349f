//! The OpenAI-compatible client against a local server speaking the chat-completions wire
//! format: choices, finish reasons, usage, error objects of OpenAI/vLLM and of Ollama.

mod llm_support;

use codeclab_lab::candidate::Rejection;
use codeclab_lab::llm::{
    ChatRequest, LlmClient, LlmConfig, LlmErrorKind, LlmProvider, Message, ProposalRejection,
    ProposedChange, ProviderKind, RetryPolicy, Role, StopReason, Usage, parse_proposal,
};
use llm_support::{Reply, serve};
use serde_json::json;
use std::time::Duration;

fn config(base_url: &str) -> LlmConfig {
    LlmConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        },
        max_tokens: 2048,
        ..LlmConfig::openai_compatible("qwen2.5-coder", format!("{base_url}/v1"))
    }
}

fn completion(content: &str, finish_reason: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "qwen2.5-coder",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish_reason
        }],
        "usage": {"prompt_tokens": 812, "completion_tokens": 95, "total_tokens": 907}
    })
}

const EDIT_PROPOSAL: &str = r#"{"hypothesis": "Wider motion search finds better vectors",
 "reasoning": "Fast pans exceed the current range",
 "expected_effect": "-3% BD-rate on the pan clips",
 "edits": [{"block": "motion_search", "search": "let range = 16;", "replace": "let range = 32;"}]}"#;

fn conversation() -> ChatRequest {
    ChatRequest {
        system: Some("You evolve a video codec.".into()),
        messages: vec![
            Message {
                role: Role::User,
                content: "Propose a change.".into(),
            },
            Message {
                role: Role::Assistant,
                content: "{}".into(),
            },
            Message {
                role: Role::User,
                content: "That was rejected: no change. Try again.".into(),
            },
        ],
    }
}

#[tokio::test]
async fn a_reply_is_parsed_and_the_conversation_sent_in_order_without_a_key() {
    let server = serve(vec![Reply::json(200, completion(EDIT_PROPOSAL, "stop"))]).await;
    let client = LlmClient::from_config(config(&server.base_url)).unwrap();
    let reply = client.complete(&conversation()).await.unwrap();
    assert_eq!(reply.provider, ProviderKind::OpenaiCompatible);
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    assert_eq!(
        reply.usage,
        Some(Usage {
            input_tokens: 812,
            output_tokens: 95
        })
    );
    // No price configured: the cost is not measured rather than zero.
    assert_eq!(reply.cost_usd, None);

    let received = server.received.lock().unwrap().clone();
    let sent = &received[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(sent.header("authorization"), None);
    let roles: Vec<_> = sent.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(sent.body["max_tokens"], 2048);

    let proposal = parse_proposal(&reply).unwrap();
    let ProposedChange::Edits(edits) = proposal.change else {
        panic!("expected edits");
    };
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].block, "motion_search");
    assert_eq!(edits[0].replace, "let range = 32;");
}

#[tokio::test]
async fn a_configured_key_is_sent_as_a_bearer_token() {
    let server = serve(vec![Reply::json(200, completion(EDIT_PROPOSAL, "stop"))]).await;
    let client = LlmClient::from_config(LlmConfig {
        api_key_env: Some("CARGO_PKG_NAME".into()),
        ..config(&server.base_url)
    })
    .unwrap();
    client.complete(&conversation()).await.unwrap();
    let expected = format!("Bearer {}", std::env::var("CARGO_PKG_NAME").unwrap());
    assert_eq!(
        server.received.lock().unwrap()[0].header("authorization"),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn a_length_stop_is_a_truncated_reply() {
    let server = serve(vec![Reply::json(
        200,
        completion(&EDIT_PROPOSAL[..60], "length"),
    )])
    .await;
    let client = LlmClient::from_config(config(&server.base_url)).unwrap();
    let reply = client.complete(&conversation()).await.unwrap();
    assert_eq!(reply.stop_reason, StopReason::MaxTokens);
    assert_eq!(
        parse_proposal(&reply).unwrap_err(),
        ProposalRejection::Truncated {
            output_tokens: Some(95)
        }
    );
}

#[tokio::test]
async fn invalid_json_becomes_a_recorded_rejection_with_its_position() {
    let broken = "{\"hypothesis\": \"x\",\n \"reasoning\": \"y\" \"expected_effect\": \"z\"}";
    let server = serve(vec![Reply::json(200, completion(broken, "stop"))]).await;
    let client = LlmClient::from_config(config(&server.base_url)).unwrap();
    let reply = client.complete(&conversation()).await.unwrap();
    let rejection = Rejection::from(parse_proposal(&reply).unwrap_err());
    let Rejection::Reply(ProposalRejection::InvalidJson { line, column, .. }) = &rejection else {
        panic!("{rejection}");
    };
    assert_eq!((*line, *column), (2, 19));
    assert!(rejection.to_string().contains("line 2"));
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = serve(vec![
        Reply::json(
            500,
            json!({"error": {"message": "internal", "type": "server_error"}}),
        ),
        Reply::json(
            503,
            json!({"error": {"message": "loading model", "type": "unavailable"}}),
        )
        .with_header("retry-after-ms", "30"),
        Reply::json(200, completion(EDIT_PROPOSAL, "stop")),
    ])
    .await;
    let client = LlmClient::from_config(config(&server.base_url)).unwrap();
    let reply = client.complete(&conversation()).await.unwrap();
    let statuses: Vec<_> = reply.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert!((2..=5).contains(&reply.attempts[0].wait_before_next_ms.unwrap()));
    assert_eq!(reply.attempts[1].retry_after_ms, Some(30));
    assert_eq!(reply.attempts[1].wait_before_next_ms, Some(30));
}

#[tokio::test]
async fn a_rate_limit_that_asks_for_too_long_a_wait_ends_the_call() {
    let server = serve(vec![
        Reply::json(
            429,
            json!({"error": {"message": "quota", "type": "rate_limit"}}),
        )
        .with_header("retry-after", "3600"),
    ])
    .await;
    let client = LlmClient::from_config(config(&server.base_url)).unwrap();
    let failure = client.complete(&conversation()).await.unwrap_err();
    assert_eq!(
        failure.kind,
        LlmErrorKind::RateLimited {
            status: 429,
            message: "quota".into()
        }
    );
    assert_eq!(failure.attempts.len(), 1);
    assert_eq!(failure.attempts[0].retry_after_ms, Some(3_600_000));
}

#[tokio::test]
async fn an_ollama_error_string_is_understood() {
    let server = serve(vec![Reply::json(
        404,
        json!({"error": "model \"qwen2.5-coder\" not found, try pulling it first"}),
    )])
    .await;
    let client = LlmClient::from_config(config(&server.base_url)).unwrap();
    let failure = client.complete(&conversation()).await.unwrap_err();
    let LlmErrorKind::Api {
        status, message, ..
    } = &failure.kind
    else {
        panic!("{failure}");
    };
    assert_eq!(*status, 404);
    assert!(message.contains("not found"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error_after_the_retries() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = LlmClient::from_config(config(&format!("http://127.0.0.1:{port}"))).unwrap();
    let failure = client.complete(&conversation()).await.unwrap_err();
    assert!(
        matches!(failure.kind, LlmErrorKind::Transport { .. }),
        "{failure}"
    );
    assert_eq!(failure.attempts.len(), 3);
    assert!(failure.attempts.iter().all(|a| a.status.is_none()));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    // Accept connections and hold them open without a word.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = LlmClient::from_config(LlmConfig {
        request_timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_attempts: 2,
            ..config(&base_url).retry
        },
        ..config(&base_url)
    })
    .unwrap();
    let failure = client.complete(&conversation()).await.unwrap_err();
    holder.abort();
    assert!(
        matches!(failure.kind, LlmErrorKind::Transport { .. }),
        "{failure}"
    );
    assert_eq!(failure.attempts.len(), 2);
    assert!(failure.attempts[0].wait_before_next_ms.is_some());
    assert!(failure.attempts.iter().all(|a| a.status.is_none()));
}

#[tokio::test]
async fn a_reasoning_model_gets_max_completion_tokens_and_no_temperature() {
    let mut reply = completion(EDIT_PROPOSAL, "stop");
    reply["choices"][0]["message"]["reasoning_content"] = json!("The pans move 20 pixels a frame.");
    let server = serve(vec![Reply::json(200, reply)]).await;
    let client = LlmClient::from_config(LlmConfig {
        temperature: Some(0.2),
        reasoning_budget_tokens: Some(4096),
        ..config(&server.base_url)
    })
    .unwrap();
    let reply = client.complete(&conversation()).await.unwrap();
    assert_eq!(
        reply.reasoning.as_deref(),
        Some("The pans move 20 pixels a frame.")
    );
    let sent = server.received.lock().unwrap()[0].body.clone();
    assert_eq!(sent["max_completion_tokens"], 2048);
    assert!(sent.get("max_tokens").is_none(), "{sent}");
    assert!(sent.get("temperature").is_none(), "{sent}");

    // Any other model: `max_tokens` and the temperature, as compatible servers expect.
    let server = serve(vec![Reply::json(200, completion(EDIT_PROPOSAL, "stop"))]).await;
    let client = LlmClient::from_config(LlmConfig {
        temperature: Some(0.2),
        ..config(&server.base_url)
    })
    .unwrap();
    assert_eq!(
        client.complete(&conversation()).await.unwrap().reasoning,
        None
    );
    let sent = server.received.lock().unwrap()[0].body.clone();
    assert_eq!(sent["max_tokens"], 2048);
    assert_eq!(sent["temperature"], json!(0.2f32));
    assert!(sent.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn a_refusal_is_recorded_as_one_with_its_explanation() {
    let mut reply = completion("", "stop");
    reply["choices"][0]["message"]["content"] = serde_json::Value::Null;
    reply["choices"][0]["message"]["refusal"] = json!("I can't help with that request.");
    let server = serve(vec![Reply::json(200, reply)]).await;
    let client = LlmClient::from_config(config(&server.base_url)).unwrap();
    let reply = client.complete(&conversation()).await.unwrap();
    assert_eq!(reply.stop_reason, StopReason::Refusal);
    assert_eq!(reply.text, "I can't help with that request.");
    assert_eq!(parse_proposal(&reply), Err(ProposalRejection::Refused));
}
