//! The Anthropic Messages API (`POST /v1/messages`).

use super::config::{ApiKey, LlmConfig};
use super::transport::{ParsedReply, Wire, call, http_client};
use super::{
    ChatRequest, Completion, LlmError, LlmErrorKind, LlmProvider, Role, StopReason, Usage,
};
use serde::Deserialize;
use serde_json::json;

const API_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone)]
pub struct AnthropicClient {
    config: LlmConfig,
    http: reqwest::Client,
}

impl AnthropicClient {
    pub fn new(config: LlmConfig) -> Result<Self, LlmErrorKind> {
        let http = http_client(&config)?;
        Ok(Self { config, http })
    }

    /// The request body for a chat request. With a reasoning budget, extended thinking is on
    /// and no temperature is sent (the API takes none with thinking).
    pub fn request_body(&self, request: &ChatRequest) -> serde_json::Value {
        let messages: Vec<_> = request
            .messages
            .iter()
            .map(|message| {
                let role = match message.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({ "role": role, "content": message.content })
            })
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "messages": messages,
        });
        if let Some(system) = &request.system {
            body["system"] = json!(system);
        }
        match (self.config.reasoning_budget_tokens, self.config.temperature) {
            (Some(budget), _) => {
                body["thinking"] = json!({ "type": "enabled", "budget_tokens": budget });
            }
            (None, Some(temperature)) => body["temperature"] = json!(temperature),
            (None, None) => {}
        }
        body
    }
}

#[derive(Deserialize)]
struct MessageResponse {
    content: Vec<ContentBlock>,
    stop_reason: Option<String>,
    usage: Option<MessageUsage>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    /// The reasoning of a `thinking` block.
    #[serde(default)]
    thinking: String,
}

#[derive(Deserialize)]
struct MessageUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

struct AnthropicWire;

impl Wire for AnthropicWire {
    fn endpoint(&self, config: &LlmConfig) -> String {
        format!("{}/v1/messages", config.base_url.trim_end_matches('/'))
    }

    fn headers(
        &self,
        request: reqwest::RequestBuilder,
        key: Option<&ApiKey>,
    ) -> reqwest::RequestBuilder {
        let request = request.header("anthropic-version", API_VERSION);
        match key {
            Some(key) => request.header("x-api-key", key.expose()),
            None => request,
        }
    }

    fn parse_success(&self, body: &str) -> Result<ParsedReply, String> {
        let response: MessageResponse = serde_json::from_str(body)
            .map_err(|error| format!("not a Messages response: {error}"))?;
        let text: String = response
            .content
            .iter()
            .filter(|block| block.kind == "text")
            .map(|block| block.text.as_str())
            .collect();
        // Thinking blocks in order; a redacted one (encrypted by the provider) is marked, not
        // dropped, so the record shows that the model reasoned there.
        let thoughts: Vec<&str> = response
            .content
            .iter()
            .filter_map(|block| match block.kind.as_str() {
                "thinking" => Some(block.thinking.as_str()),
                "redacted_thinking" => Some("[redacted thinking]"),
                _ => None,
            })
            .collect();
        let reasoning = (!thoughts.is_empty()).then(|| thoughts.join("\n\n"));
        let stop_reason = match response.stop_reason.as_deref() {
            Some("end_turn") => StopReason::EndTurn,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("tool_use") => StopReason::ToolUse,
            Some("refusal") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_owned()),
            None => StopReason::Other("none".into()),
        };
        // Cached prompt tokens are input tokens too (billed at other rates the price table does
        // not distinguish).
        let usage = response.usage.map(|usage| Usage {
            input_tokens: usage.input_tokens
                + usage.cache_creation_input_tokens.unwrap_or(0)
                + usage.cache_read_input_tokens.unwrap_or(0),
            output_tokens: usage.output_tokens,
        });
        Ok(ParsedReply {
            text,
            reasoning,
            stop_reason,
            usage,
        })
    }

    fn parse_error(&self, body: &str) -> (String, String) {
        match serde_json::from_str::<ErrorResponse>(body) {
            Ok(response) => (response.error.kind, response.error.message),
            Err(_) => ("unknown".into(), body.chars().take(500).collect()),
        }
    }
}

impl LlmProvider for AnthropicClient {
    async fn complete(&self, request: &ChatRequest) -> Result<Completion, LlmError> {
        call(
            &AnthropicWire,
            &self.http,
            &self.config,
            self.request_body(request),
        )
        .await
    }
}
