//! Which provider and model a planner talks to, what it costs, and how hard to retry.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The two wire formats spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The Anthropic Messages API.
    Anthropic,
    /// Any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp, Ollama).
    OpenaiCompatible,
}

/// Price of a model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    pub input_usd_per_million: f64,
    pub output_usd_per_million: f64,
}

impl Pricing {
    pub fn cost_usd(&self, usage: &super::Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_usd_per_million
            + usage.output_tokens as f64 * self.output_usd_per_million)
            / 1e6
    }
}

/// Exponential backoff with jitter for rate limits, overload, server errors and timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Ceiling of the computed delay.
    pub max_delay: Duration,
    /// Ceiling of a server's `retry-after`: longer waits end the call instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Everything needed to call one model. Holds the *name* of the environment variable with the
/// key, never the key: the key is read at call time and never logged or stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmConfig {
    pub provider: ProviderKind,
    pub model: String,
    /// Anthropic: the host root (`https://api.anthropic.com`); OpenAI-compatible: the API root
    /// including its version (`https://api.openai.com/v1`, `http://localhost:11434/v1`).
    pub base_url: String,
    /// Environment variable holding the API key; `None` for local servers that need none.
    pub api_key_env: Option<String>,
    pub max_tokens: u32,
    /// Ignored for reasoning models, which take none.
    pub temperature: Option<f32>,
    /// `Some` for a model that reasons before it answers: Anthropic's extended thinking, given
    /// this many of `max_tokens` to think (at least 1,024); an OpenAI reasoning model, whose
    /// limit is sent as `max_completion_tokens` (it covers reasoning and answer; the budget is
    /// the server's to spend).
    pub reasoning_budget_tokens: Option<u32>,
    /// `None` when the price is unknown: the cost is then recorded as not measured.
    pub pricing: Option<Pricing>,
    pub request_timeout: Duration,
    /// Largest response body accepted, in bytes; a larger one is an invalid response.
    pub max_reply_bytes: usize,
    pub retry: RetryPolicy,
}

impl LlmConfig {
    pub fn anthropic(model: impl Into<String>) -> Self {
        Self {
            provider: ProviderKind::Anthropic,
            model: model.into(),
            base_url: "https://api.anthropic.com".into(),
            api_key_env: Some("ANTHROPIC_API_KEY".into()),
            max_tokens: 8192,
            temperature: None,
            reasoning_budget_tokens: None,
            pricing: None,
            request_timeout: Duration::from_secs(600),
            max_reply_bytes: 16 << 20,
            retry: RetryPolicy::default(),
        }
    }

    pub fn openai_compatible(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            provider: ProviderKind::OpenaiCompatible,
            model: model.into(),
            base_url: base_url.into(),
            api_key_env: None,
            max_tokens: 8192,
            temperature: None,
            reasoning_budget_tokens: None,
            pricing: None,
            request_timeout: Duration::from_secs(600),
            max_reply_bytes: 16 << 20,
            retry: RetryPolicy::default(),
        }
    }

    /// Reads the API key from the environment, now.
    pub(crate) fn api_key(&self) -> Result<Option<ApiKey>, super::LlmErrorKind> {
        let Some(variable) = &self.api_key_env else {
            return Ok(None);
        };
        match std::env::var(variable) {
            Ok(key) if !key.trim().is_empty() => Ok(Some(ApiKey(key.trim().to_owned()))),
            _ => Err(super::LlmErrorKind::MissingApiKey {
                variable: variable.clone(),
            }),
        }
    }
}

/// An API key in memory; its `Debug` never shows it.
pub(crate) struct ApiKey(String);

impl ApiKey {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}
