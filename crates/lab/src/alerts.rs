//! Alerts: recorded as events (`alert:<kind>`), logged as warnings, and posted to a
//! Slack-compatible webhook (`{"text": ...}`) when one is configured. A webhook that fails is
//! recorded as a `webhook_failed` event and never stops the caller.
//!
//! The loop feeds the alerter what happens: a new best program, each outcome (an alert when
//! `failures_in_a_row` failures come in a row, once per streak), and each budget check (an alert
//! when a cap's use first crosses a threshold in its period, remembered in the setting
//! [`BUDGET_ALERTS_SETTING`] so that a restarted loop does not repeat it).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::budget::{BudgetState, cap_label, usage_figures};
use crate::config::AlertConfig;
use crate::store::{Result, Store, StoreError};

/// Prefix of the kinds of alert events.
pub const EVENT_PREFIX: &str = "alert:";
/// The event kind recording a webhook that could not be reached or refused the alert.
pub const WEBHOOK_FAILED: &str = "webhook_failed";
/// The setting that remembers which budget thresholds were already alerted, per cap and period.
pub const BUDGET_ALERTS_SETTING: &str = "budget_alerts";

/// A webhook gets this long to answer: an alert never holds the loop up for long.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends alerts and tracks what deserves one.
#[derive(Debug)]
pub struct Alerter {
    config: AlertConfig,
    client: Option<reqwest::Client>,
    failures_in_a_row: u32,
}

impl Alerter {
    pub fn new(config: AlertConfig) -> Alerter {
        let client = config.webhook_url.as_ref().and_then(|_| {
            reqwest::Client::builder()
                .timeout(WEBHOOK_TIMEOUT)
                .connect_timeout(WEBHOOK_TIMEOUT)
                .build()
                .map_err(|e| tracing::warn!("alert webhook disabled: {e}"))
                .ok()
        });
        Alerter {
            config,
            client,
            failures_in_a_row: 0,
        }
    }

    /// Records the alert (event `alert:<kind>`), logs it, and posts it to the webhook. Only a
    /// store error is an error; a webhook failure is recorded as a [`WEBHOOK_FAILED`] event.
    pub async fn send(
        &self,
        store: &Store,
        kind: &str,
        experiment_id: Option<i64>,
        message: &str,
    ) -> Result<()> {
        store
            .log_event(&format!("{EVENT_PREFIX}{kind}"), experiment_id, message)
            .await?;
        tracing::warn!(alert = kind, experiment = experiment_id, "{message}");
        if let (Some(client), Some(url)) = (&self.client, &self.config.webhook_url) {
            let text = match experiment_id {
                Some(id) => format!("codeclab {kind} (experiment {id}): {message}"),
                None => format!("codeclab {kind}: {message}"),
            };
            let outcome = client
                .post(url)
                .json(&serde_json::json!({ "text": text }))
                .send()
                .await
                .and_then(|response| response.error_for_status());
            if let Err(error) = outcome {
                // The URL may hold a secret token: only the error's kind and status are kept.
                let error = error.without_url();
                let detail = format!("alert `{kind}` not delivered to the webhook: {error}");
                tracing::warn!("{detail}");
                store
                    .log_event(WEBHOOK_FAILED, experiment_id, &detail)
                    .await?;
            }
        }
        Ok(())
    }

    /// A program became the run's best.
    pub async fn new_best(
        &self,
        store: &Store,
        experiment_id: i64,
        fitness: f64,
        previous: Option<f64>,
    ) -> Result<()> {
        let was = previous.map_or(String::new(), |p| format!(" (was {p:.2} %)"));
        self.send(
            store,
            "new_best",
            Some(experiment_id),
            &format!(
                "new best program: experiment {experiment_id}, fitness {fitness:.2} % \
                 (mean BD-rate against the reference){was}"
            ),
        )
        .await
    }

    /// Counts failures in a row (a failed experiment or a rejected turn; a success ends the
    /// streak) and alerts once when a streak reaches the configured length. Returns whether it
    /// alerted.
    pub async fn observe_outcome(
        &mut self,
        store: &Store,
        success: bool,
        experiment_id: Option<i64>,
        detail: &str,
    ) -> Result<bool> {
        if success {
            self.failures_in_a_row = 0;
            return Ok(false);
        }
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        let limit = self.config.failures_in_a_row;
        if limit == 0 || self.failures_in_a_row != limit {
            return Ok(false);
        }
        self.send(
            store,
            "failures",
            experiment_id,
            &format!("{limit} failures in a row; the last: {detail}"),
        )
        .await?;
        Ok(true)
    }

    /// Alerts each configured threshold a budget cap's use crosses, once per cap and period
    /// (rate limits per minute are waits, not budgets: they never alert). Several thresholds
    /// crossed at once give one alert, for the highest. Returns the alert messages sent.
    pub async fn observe_budget(&self, store: &Store, state: &BudgetState) -> Result<Vec<String>> {
        let mut thresholds: Vec<f64> = self
            .config
            .budget_thresholds
            .iter()
            .copied()
            .filter(|t| t.is_finite() && *t > 0.0)
            .collect();
        thresholds.sort_by(f64::total_cmp);
        if thresholds.is_empty() {
            return Ok(Vec::new());
        }
        let stored = store.setting(BUDGET_ALERTS_SETTING).await?;
        let alerted: BTreeMap<String, Vec<f64>> = match stored {
            Some(value) => serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
                what: format!("setting {BUDGET_ALERTS_SETTING}"),
                message: e.to_string(),
            })?,
            None => BTreeMap::new(),
        };
        // Keys name the cap and its window: earlier windows are dropped as they end.
        let mut remembered: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut sent = Vec::new();
        for usage in state.usage.iter().filter(|u| u.period != "minute") {
            let key = format!("{}@{}", usage.name, usage.window_start);
            let done = alerted.get(&key).cloned().unwrap_or_default();
            let crossed: Vec<f64> = thresholds
                .iter()
                .copied()
                .filter(|t| usage.fraction >= *t)
                .collect();
            let new: Vec<f64> = crossed
                .iter()
                .copied()
                .filter(|t| !done.contains(t))
                .collect();
            let mut all = done;
            all.extend(new.iter().copied());
            all.sort_by(f64::total_cmp);
            if !all.is_empty() {
                remembered.insert(key, all);
            }
            if let Some(highest) = new.last() {
                let message = format!(
                    "{} at {:.0} %: {}",
                    cap_label(&usage.name),
                    highest * 100.0,
                    usage_figures(usage)
                );
                sent.push(message);
            }
        }
        // Remember first: a restart between the two never repeats an alert.
        if remembered != alerted {
            let value = serde_json::to_value(&remembered).map_err(|e| StoreError::Corrupt {
                what: format!("setting {BUDGET_ALERTS_SETTING}"),
                message: e.to_string(),
            })?;
            store.put_setting(BUDGET_ALERTS_SETTING, &value).await?;
        }
        for message in &sent {
            self.send(store, "budget", None, message).await?;
        }
        Ok(sent)
    }
}
