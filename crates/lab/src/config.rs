//! The lab's configuration: planner, evaluation, budget and rate limits, goals, alerts and
//! reports. Read from TOML (`DATA_DIR/codeclab.toml` or `--config`); every field has a default,
//! so an empty file is the embedded default configuration. API keys are never here: the LLM
//! section names the environment variable that holds the key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::llm::{LlmConfig, Pricing, ProviderKind};
use crate::runner::QualityMetric;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabConfig {
    pub planner: PlannerConfig,
    pub evaluation: EvaluationConfig,
    pub llm: LlmSection,
    pub budget: BudgetConfig,
    pub goals: Vec<Goal>,
    pub alerts: AlertConfig,
    pub report: ReportConfig,
}

impl LabConfig {
    /// Parses a TOML configuration (`what` names it in messages).
    pub fn from_toml(text: &str, what: &str) -> Result<LabConfig, ConfigError> {
        let mut config: LabConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: what.into(),
            message: e.to_string(),
        })?;
        if config.goals.is_empty() {
            config.goals = Goal::defaults();
        }
        Ok(config)
    }

    /// Reads a TOML file; a missing file is the default configuration.
    pub fn load(path: &Path) -> Result<LabConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => LabConfig::from_toml(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                LabConfig::from_toml("", "the default configuration")
            }
            Err(source) => Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

/// Which planner proposes, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannerKind {
    /// Offline evolutionary search over the genome (no network).
    Evolve,
    /// A language model through the `[llm]` section.
    Llm,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlannerConfig {
    pub kind: PlannerKind,
    /// Seed of every random choice: the same seed and the same results give the same proposals.
    pub seed: u64,
    /// Islands of the program database (sub-populations that evolve apart and exchange their
    /// best now and then).
    pub islands: u32,
    /// Proposals measured at once (0: one per local worker).
    pub parallel: u32,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            kind: PlannerKind::Evolve,
            seed: 1,
            islands: 2,
            parallel: 0,
        }
    }
}

/// How the loop measures programs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Constant-QP ladder of every program.
    pub qps: Vec<u32>,
    /// Dev clips (corpus ids); empty: every dev clip of the corpus.
    pub dev_clips: Vec<String>,
    /// Holdout clips; empty: every holdout clip of the corpus.
    pub holdout_clips: Vec<String>,
    /// The quality metric of the fitness (BD-rate against the run's reference).
    pub metric: QualityMetric,
    /// Anchors every program's analysis compares with (empty: all standard anchors).
    pub anchors: Vec<String>,
    /// Frames of the smoke test a code candidate passes before its dev experiment.
    pub smoke_frames: u32,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            qps: vec![22, 27, 32, 37],
            dev_clips: Vec::new(),
            holdout_clips: Vec::new(),
            metric: QualityMetric::PsnrY,
            anchors: Vec::new(),
            smoke_frames: 8,
        }
    }
}

/// The LLM planner's model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSection {
    pub provider: ProviderKind,
    pub model: String,
    /// Empty: the provider's public API root.
    pub base_url: String,
    /// Environment variable holding the API key (empty: none, for local servers).
    pub api_key_env: String,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// For a model that reasons before answering: Anthropic's thinking budget (tokens of
    /// `max_tokens`); for an OpenAI reasoning model any value (its limit is then sent as
    /// `max_completion_tokens`, without a temperature).
    pub reasoning_budget_tokens: Option<u32>,
    pub request_timeout_seconds: u64,
}

impl Default for LlmSection {
    fn default() -> Self {
        LlmSection {
            provider: ProviderKind::Anthropic,
            model: "claude-sonnet-4-5".into(),
            base_url: String::new(),
            api_key_env: "ANTHROPIC_API_KEY".into(),
            max_tokens: 8192,
            temperature: None,
            reasoning_budget_tokens: None,
            request_timeout_seconds: 600,
        }
    }
}

impl LlmSection {
    /// The client configuration, priced from the budget's table.
    pub fn client_config(&self, prices: &BTreeMap<String, Pricing>) -> LlmConfig {
        let mut config = match self.provider {
            ProviderKind::Anthropic => LlmConfig::anthropic(&self.model),
            ProviderKind::OpenaiCompatible => LlmConfig::openai_compatible(
                &self.model,
                if self.base_url.is_empty() {
                    "https://api.openai.com/v1"
                } else {
                    &self.base_url
                },
            ),
        };
        if !self.base_url.is_empty() {
            config.base_url = self.base_url.clone();
        }
        config.api_key_env = (!self.api_key_env.is_empty()).then(|| self.api_key_env.clone());
        config.max_tokens = self.max_tokens;
        config.temperature = self.temperature;
        config.reasoning_budget_tokens = self.reasoning_budget_tokens;
        config.request_timeout = std::time::Duration::from_secs(self.request_timeout_seconds);
        config.pricing = prices.get(&self.model).cloned();
        config
    }
}

/// Spending caps and rate limits. `None` means no cap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    pub llm_usd_per_day: Option<f64>,
    pub llm_usd_per_month: Option<f64>,
    /// Compute: worker seconds spent measuring (encode, decode, metrics), in hours.
    pub compute_hours_per_day: Option<f64>,
    pub compute_hours_per_month: Option<f64>,
    pub max_experiments_per_day: Option<u64>,
    /// Shortest time between two proposals, in seconds.
    pub min_interval_seconds: Option<f64>,
    pub max_llm_requests_per_minute: Option<u32>,
    /// Model name → price per million tokens.
    pub prices: BTreeMap<String, Pricing>,
}

/// A target the loop works towards; it stops when every goal is met.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Goal {
    /// Mean BD-rate of the best program against an anchor (or `default`, the shipped genome)
    /// on each named clip set, at most `at_most` percent.
    BdRate {
        anchor: String,
        metric: QualityMetric,
        /// `dev`, `holdout`.
        sets: Vec<String>,
        at_most: f64,
    },
    /// Decoder instructions per pixel of the best program, at most `at_most`.
    DecoderInstructionsPerPixel { at_most: f64 },
    /// Multiply–accumulates per pixel of the best program's learned tools, as its streams
    /// declare them, at most `at_most` (0: no learned tool).
    LearnedMacPerPixel { at_most: f64 },
}

impl Goal {
    /// The goals when the configuration names none.
    pub fn defaults() -> Vec<Goal> {
        vec![
            Goal::BdRate {
                anchor: crate::anchors::PSNR_ANCHOR.into(),
                metric: QualityMetric::PsnrY,
                sets: vec!["dev".into(), "holdout".into()],
                at_most: -10.0,
            },
            Goal::DecoderInstructionsPerPixel { at_most: 400.0 },
        ]
    }
}

/// Where alerts go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// Slack-compatible incoming webhook (`{"text": ...}` is posted); none: the log only.
    pub webhook_url: Option<String>,
    /// Consecutive failed experiments or rejected turns that raise an alert.
    pub failures_in_a_row: u32,
    /// Fractions of a budget cap that raise an alert when first crossed.
    pub budget_thresholds: Vec<f64>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            webhook_url: None,
            failures_in_a_row: 3,
            budget_thresholds: vec![0.70, 0.85, 0.95],
        }
    }
}

/// The periodic report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// Minutes between stored reports (0: only at the end of a run).
    pub interval_minutes: u64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            interval_minutes: 30,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_and_fields_parse() {
        let default = LabConfig::from_toml("", "empty").unwrap();
        assert_eq!(default.goals, Goal::defaults());
        assert_eq!(default.planner.kind, PlannerKind::Evolve);
        let config = LabConfig::from_toml(
            r#"
            [planner]
            kind = "llm"
            seed = 7
            [llm]
            provider = "openai_compatible"
            model = "local"
            base_url = "http://127.0.0.1:9/v1"
            api_key_env = ""
            [budget]
            llm_usd_per_day = 2.5
            [budget.prices.local]
            input_usd_per_million = 1.0
            output_usd_per_million = 2.0
            [[goals]]
            kind = "decoder_instructions_per_pixel"
            at_most = 100.0
            [[goals]]
            kind = "learned_mac_per_pixel"
            at_most = 500.0
            "#,
            "test",
        )
        .unwrap();
        assert_eq!(config.planner.seed, 7);
        assert_eq!(config.budget.llm_usd_per_day, Some(2.5));
        assert_eq!(
            config.goals,
            vec![
                Goal::DecoderInstructionsPerPixel { at_most: 100.0 },
                Goal::LearnedMacPerPixel { at_most: 500.0 }
            ]
        );
        let client = config.llm.client_config(&config.budget.prices);
        assert_eq!(client.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(client.api_key_env, None);
        assert!(client.pricing.is_some());
        let error = LabConfig::from_toml("[planner]\nkidn = 1", "bad.toml").unwrap_err();
        assert!(error.to_string().starts_with("bad.toml:"), "{error}");
    }
}
