//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI, vLLM,
//! llama.cpp's server, Ollama.

use super::config::{ApiKey, LlmConfig};
use super::transport::{ParsedReply, Wire, call, http_client};
use super::{
    ChatRequest, Completion, LlmError, LlmErrorKind, LlmProvider, Role, StopReason, Usage,
};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct OpenAiCompatibleClient {
    config: LlmConfig,
    http: reqwest::Client,
}

impl OpenAiCompatibleClient {
    pub fn new(config: LlmConfig) -> Result<Self, LlmErrorKind> {
        let http = http_client(&config)?;
        Ok(Self { config, http })
    }

    /// The request body for a chat request: the system prompt becomes the first message. A
    /// reasoning model takes its limit as `max_completion_tokens` and no temperature (OpenAI
    /// refuses `max_tokens` and a temperature for them).
    pub fn request_body(&self, request: &ChatRequest) -> serde_json::Value {
        let system = request
            .system
            .iter()
            .map(|system| json!({ "role": "system", "content": system }));
        let turns = request.messages.iter().map(|message| {
            let role = match message.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({ "role": role, "content": message.content })
        });
        let mut body = json!({
            "model": self.config.model,
            "messages": system.chain(turns).collect::<Vec<_>>(),
        });
        if self.config.reasoning_budget_tokens.is_some() {
            body["max_completion_tokens"] = json!(self.config.max_tokens);
        } else {
            body["max_tokens"] = json!(self.config.max_tokens);
            if let Some(temperature) = self.config.temperature {
                body["temperature"] = json!(temperature);
            }
        }
        body
    }
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    /// OpenAI: the model's explanation when it declines (the content is then empty).
    refusal: Option<String>,
    /// vLLM, DeepSeek and other reasoning servers: the reasoning before the answer.
    reasoning_content: Option<String>,
}

#[derive(Deserialize)]
struct ChatUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

struct OpenAiWire;

impl Wire for OpenAiWire {
    fn endpoint(&self, config: &LlmConfig) -> String {
        format!("{}/chat/completions", config.base_url.trim_end_matches('/'))
    }

    fn headers(
        &self,
        request: reqwest::RequestBuilder,
        key: Option<&ApiKey>,
    ) -> reqwest::RequestBuilder {
        match key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    fn parse_success(&self, body: &str) -> Result<ParsedReply, String> {
        let response: ChatResponse = serde_json::from_str(body)
            .map_err(|error| format!("not a chat-completions response: {error}"))?;
        let choice = response
            .choices
            .into_iter()
            .next()
            .ok_or("the response has no choices")?;
        let stop_reason = match choice.finish_reason.as_deref() {
            Some("stop") => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("content_filter") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_owned()),
            None => StopReason::Other("none".into()),
        };
        let usage = response.usage.map(|usage| Usage {
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
        });
        let ChoiceMessage {
            content,
            refusal,
            reasoning_content,
        } = choice.message;
        let (text, stop_reason) = match refusal.filter(|r| !r.trim().is_empty()) {
            Some(refusal) => (refusal, StopReason::Refusal),
            None => (content.unwrap_or_default(), stop_reason),
        };
        Ok(ParsedReply {
            text,
            reasoning: reasoning_content.filter(|r| !r.trim().is_empty()),
            stop_reason,
            usage,
        })
    }

    fn parse_error(&self, body: &str) -> (String, String) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            return ("unknown".into(), body.chars().take(500).collect());
        };
        match &value["error"] {
            // OpenAI and vLLM: {"error": {"message", "type", "code"}}.
            serde_json::Value::Object(error) => (
                error
                    .get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("unknown")
                    .to_owned(),
                error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            // Ollama: {"error": "message"}.
            serde_json::Value::String(message) => ("error".into(), message.clone()),
            _ => ("unknown".into(), body.chars().take(500).collect()),
        }
    }
}

impl LlmProvider for OpenAiCompatibleClient {
    async fn complete(&self, request: &ChatRequest) -> Result<Completion, LlmError> {
        call(
            &OpenAiWire,
            &self.http,
            &self.config,
            self.request_body(request),
        )
        .await
    }
}
