//! LLM clients for the planner: the Anthropic Messages API and OpenAI-compatible chat
//! completions, with retries and backoff, usage and cost accounting, and the parser that turns a
//! reply into a validated [`Proposal`] or a typed [`ProposalRejection`].
//!
//! Every call, successful or not, yields a record (the request as sent, the raw reply, usage,
//! cost, latency, each attempt) that the loop stores in its planner log.
//!
//! How a planner turn fits together (the prompt's wording is the planner's):
//!
//! ```no_run
//! use codeclab_lab::candidate::Rejection;
//! use codeclab_lab::llm::{ChatRequest, LlmClient, LlmConfig, LlmProvider, parse_proposal};
//!
//! # async fn turn() -> Result<(), Box<dyn std::error::Error>> {
//! let client = LlmClient::from_config(LlmConfig::anthropic("claude-sonnet-4-5"))?;
//! let request = ChatRequest::single(Some("You evolve a video codec.".into()), "Next experiment?");
//! match client.complete(&request).await {
//!     // Store `completion` (prompt, reply, usage, cost, attempts) whatever happens next.
//!     Ok(completion) => match parse_proposal(&completion) {
//!         Ok(proposal) => println!("try: {}", proposal.hypothesis),
//!         // Store it and quote it in the next prompt.
//!         Err(rejection) => println!("{}", Rejection::from(rejection)),
//!     },
//!     // Store the failed call (`LlmError` keeps the request and every attempt).
//!     Err(failure) => println!("{failure}"),
//! }
//! # Ok(())
//! # }
//! ```

mod anthropic;
mod config;
mod openai;
mod proposal;
mod transport;

pub use anthropic::AnthropicClient;
pub use config::{LlmConfig, Pricing, ProviderKind, RetryPolicy};
pub use openai::OpenAiCompatibleClient;
pub use proposal::{
    Proposal, ProposalRejection, ProposedChange, apply_genome_change, parse_proposal,
    parse_proposal_text,
};

use serde::{Deserialize, Serialize};
use std::future::Future;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// What the planner sends: an optional system prompt and the turns, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
}

impl ChatRequest {
    /// A request of one user turn.
    pub fn single(system: Option<String>, user: impl Into<String>) -> Self {
        Self {
            system,
            messages: vec![Message {
                role: Role::User,
                content: user.into(),
            }],
        }
    }
}

/// Why the model stopped, in one vocabulary for both providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Finished its answer (`end_turn`, `stop`).
    EndTurn,
    /// Hit the output token limit: the reply is truncated (`max_tokens`, `length`).
    MaxTokens,
    StopSequence,
    ToolUse,
    /// The model declined (`refusal`, `content_filter`).
    Refusal,
    /// A value this client does not know, kept verbatim.
    Other(String),
}

/// Tokens billed for one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// One HTTP attempt of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// HTTP status, when a response came.
    pub status: Option<u16>,
    /// What went wrong, when something did.
    pub error: Option<String>,
    pub latency_ms: u64,
    /// The server's `retry-after`, when it sent one.
    pub retry_after_ms: Option<u64>,
    /// How long the client waited before the next attempt, when there was one.
    pub wait_before_next_ms: Option<u64>,
}

/// A successful call: the reply and everything the planner log keeps about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub provider: ProviderKind,
    pub model: String,
    /// The request body exactly as sent (it holds no key).
    pub request: serde_json::Value,
    /// The response body exactly as received.
    pub raw_reply: String,
    /// The reply's text content (for a refusal, the model's explanation, when it gave one).
    pub text: String,
    /// What the model reasoned before answering, when the server returned it (Anthropic's
    /// thinking blocks, the `reasoning_content` of OpenAI-compatible reasoning servers).
    #[serde(default)]
    pub reasoning: Option<String>,
    pub stop_reason: StopReason,
    /// `None` when the server reported no usage.
    pub usage: Option<Usage>,
    /// `None` when usage or the price is unknown.
    pub cost_usd: Option<f64>,
    pub latency_ms: u64,
    pub attempts: Vec<Attempt>,
}

/// Why a call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LlmErrorKind {
    #[error("the API key variable {variable} is not set")]
    MissingApiKey { variable: String },
    #[error("rate limited or overloaded (HTTP {status}) after every retry: {message}")]
    RateLimited { status: u16, message: String },
    #[error("the server answered HTTP {status} ({error_type}): {message}")]
    Api {
        status: u16,
        error_type: String,
        message: String,
    },
    #[error("the request failed: {message}")]
    Transport { message: String },
    #[error("the server's reply is not a valid response: {reason}")]
    InvalidResponse { reason: String },
    #[error("could not set up the HTTP client: {message}")]
    Client { message: String },
}

/// A failed call, with what was sent and every attempt, for the planner log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind} ({} attempts)", attempts.len())]
pub struct LlmError {
    pub kind: LlmErrorKind,
    pub request: serde_json::Value,
    /// The last response body received, if any.
    pub raw_reply: Option<String>,
    pub attempts: Vec<Attempt>,
}

/// A chat model the planner can call.
pub trait LlmProvider: Send + Sync {
    fn complete(
        &self,
        request: &ChatRequest,
    ) -> impl Future<Output = Result<Completion, LlmError>> + Send;
}

/// The client a configuration names.
#[derive(Debug, Clone)]
pub enum LlmClient {
    Anthropic(AnthropicClient),
    OpenaiCompatible(OpenAiCompatibleClient),
}

impl LlmClient {
    pub fn from_config(config: LlmConfig) -> Result<Self, LlmErrorKind> {
        Ok(match config.provider {
            ProviderKind::Anthropic => LlmClient::Anthropic(AnthropicClient::new(config)?),
            ProviderKind::OpenaiCompatible => {
                LlmClient::OpenaiCompatible(OpenAiCompatibleClient::new(config)?)
            }
        })
    }
}

impl LlmProvider for LlmClient {
    async fn complete(&self, request: &ChatRequest) -> Result<Completion, LlmError> {
        match self {
            LlmClient::Anthropic(client) => client.complete(request).await,
            LlmClient::OpenaiCompatible(client) => client.complete(request).await,
        }
    }
}
