//! Spending caps and rate limits: how much of each configured cap the lab has used in its window
//! (the UTC day, the UTC month, the last minute), whether a cap is reached, and how long the next
//! proposal has to wait.
//!
//! - LLM dollars: the recorded cost of each model call; calls logged without a cost are priced
//!   from the budget's price table when their model is in it, and otherwise reported as unpriced
//!   (never counted as free without saying so).
//! - Compute hours: encode plus decode wall time of every measured point (the workers' time
//!   spent measuring; metric time is not recorded per point, so it is not in the figure).
//! - Experiments per day: experiments submitted by planners (not by `user` or `baseline`).
//! - LLM requests per minute and the minimum interval between proposals give a wait, not a cap.
//!
//! Windows are UTC calendar days and months, computed here from Unix milliseconds.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::config::BudgetConfig;
use crate::store::usage::UnpricedModel;
use crate::store::{PlannerSpend, Result, Store, StoreError};

/// The setting an admin's budget is stored under (the whole [`BudgetConfig`] as JSON).
pub const SETTING: &str = "budget";

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// The configured budget, or the one an admin set (setting [`SETTING`]). An admin's budget
/// without prices keeps the configuration's price table, so that editing caps never makes a
/// priced model unpriced.
pub async fn effective(store: &Store, config: &BudgetConfig) -> Result<BudgetConfig> {
    let Some(value) = store.setting(SETTING).await? else {
        return Ok(config.clone());
    };
    let mut budget: BudgetConfig =
        serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
            what: format!("setting {SETTING}"),
            message: e.to_string(),
        })?;
    if budget.prices.is_empty() {
        budget.prices = config.prices.clone();
    }
    Ok(budget)
}

/// How much of one cap is used.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapUsage {
    /// The configuration field, e.g. `llm_usd_per_day`.
    pub name: String,
    /// `day`, `month` or `minute`.
    pub period: String,
    /// Start of the window (Unix ms): the UTC day or month start, or a minute ago.
    pub window_start: i64,
    pub used: f64,
    pub cap: f64,
    /// `usd`, `hours`, `experiments` or `requests`.
    pub unit: String,
    /// `used / cap` (1 when the cap is zero).
    pub fraction: f64,
    /// What the figure leaves out, in words (model calls of unknown price).
    pub note: Option<String>,
}

impl CapUsage {
    pub fn reached(&self) -> bool {
        self.used >= self.cap
    }
}

/// LLM spend over one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LlmSpend {
    /// Dollars of the calls whose price is known (recorded, or from the price table).
    pub usd: f64,
    pub turns: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Model calls whose price is unknown, by model (not in `usd`).
    pub unpriced: Vec<UnpricedModel>,
}

impl LlmSpend {
    pub fn unpriced_turns(&self) -> i64 {
        self.unpriced.iter().map(|m| m.turns).sum()
    }

    /// The unpriced calls in words, `None` when there are none.
    pub fn unpriced_note(&self) -> Option<String> {
        if self.unpriced.is_empty() {
            return None;
        }
        let models: Vec<String> = self
            .unpriced
            .iter()
            .map(|m| format!("{} ({} calls)", m.model, m.turns))
            .collect();
        Some(format!(
            "{} model calls of unknown price are not counted: {}",
            self.unpriced_turns(),
            models.join(", ")
        ))
    }
}

/// What the lab used in the current UTC day and month, whether a cap is configured or not.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Spend {
    pub llm_day: LlmSpend,
    pub llm_month: LlmSpend,
    pub compute_hours_day: f64,
    pub compute_hours_month: f64,
    pub planner_experiments_day: i64,
    pub llm_requests_last_minute: i64,
}

/// The budget at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetState {
    /// When it was computed (Unix ms).
    pub checked_at: i64,
    /// Every configured cap and rate limit, in the order of [`BudgetConfig`]'s fields.
    pub usage: Vec<CapUsage>,
    pub spend: Spend,
    /// The first cap reached, in words with the numbers: no new proposal until its window ends
    /// or the cap is raised.
    pub blocked: Option<String>,
    /// How long until the next proposal may go (minimum interval, requests per minute).
    #[serde(serialize_with = "seconds")]
    pub wait: Option<Duration>,
}

fn seconds<S: Serializer>(
    wait: &Option<Duration>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match wait {
        Some(wait) => serializer.serialize_some(&wait.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

/// The spend of the calls since `since_ms`, pricing unpriced calls from the price table where
/// it knows their model.
async fn llm_spend(store: &Store, budget: &BudgetConfig, since_ms: i64) -> Result<LlmSpend> {
    let PlannerSpend {
        usd,
        turns,
        input_tokens,
        output_tokens,
        ..
    } = store.planner_spend(since_ms).await?;
    let mut spend = LlmSpend {
        usd,
        turns,
        input_tokens,
        output_tokens,
        unpriced: Vec::new(),
    };
    for mut model in store.unpriced_turns(since_ms).await? {
        if let Some(price) = budget.prices.get(&model.model) {
            // Only calls that recorded their token counts can be priced afterwards.
            spend.usd += (model.input_tokens as f64 * price.input_usd_per_million
                + model.output_tokens as f64 * price.output_usd_per_million)
                / 1e6;
            model.turns -= model.turns_with_tokens;
            model.turns_with_tokens = 0;
            model.input_tokens = 0;
            model.output_tokens = 0;
        }
        if model.turns > 0 {
            spend.unpriced.push(model);
        }
    }
    Ok(spend)
}

fn cap(
    name: &str,
    period: &str,
    window_start: i64,
    used: f64,
    cap: f64,
    unit: &str,
    note: Option<String>,
) -> CapUsage {
    CapUsage {
        name: name.into(),
        period: period.into(),
        window_start,
        used,
        cap,
        unit: unit.into(),
        fraction: if cap > 0.0 { used / cap } else { 1.0 },
        note,
    }
}

/// A cap's name in words ("daily LLM budget").
pub fn cap_label(name: &str) -> &str {
    match name {
        "llm_usd_per_day" => "daily LLM budget",
        "llm_usd_per_month" => "monthly LLM budget",
        "compute_hours_per_day" => "daily compute budget",
        "compute_hours_per_month" => "monthly compute budget",
        "max_experiments_per_day" => "daily experiment limit",
        "max_llm_requests_per_minute" => "LLM requests per minute",
        other => other,
    }
}

fn blocked_message(usage: &CapUsage) -> String {
    format!(
        "{} reached: {}",
        cap_label(&usage.name),
        usage_figures(usage)
    )
}

/// `$5.02 of $5.00`, `2.01 h of 2.00 h`, `50 of 50 experiments`.
pub fn usage_figures(usage: &CapUsage) -> String {
    match usage.unit.as_str() {
        "usd" => format!("${:.2} of ${:.2}", usage.used, usage.cap),
        "hours" => format!("{:.2} h of {:.2} h", usage.used, usage.cap),
        unit => format!("{} of {} {unit}", usage.used, usage.cap),
    }
}

/// The budget at `now_ms`: usage of every configured cap, the first cap reached, and the wait
/// the rate limits impose.
pub async fn check(store: &Store, budget: &BudgetConfig, now_ms: i64) -> Result<BudgetState> {
    let day = utc_day_start(now_ms);
    let month = utc_month_start(now_ms);
    let minute_ago = now_ms - MINUTE_MS;
    let llm_day = llm_spend(store, budget, day).await?;
    let llm_month = llm_spend(store, budget, month).await?;
    let compute_hours_day = store.measuring_time(day).await?.seconds / 3600.0;
    let compute_hours_month = store.measuring_time(month).await?.seconds / 3600.0;
    let planner_experiments_day = store.planner_experiments_since(day).await?;
    // Calls logged after `now_ms` (a check for an earlier moment) are not in its last minute.
    let calls: Vec<i64> = store
        .model_call_times(minute_ago + 1)
        .await?
        .into_iter()
        .filter(|&at| at <= now_ms)
        .collect();
    let mut usage = Vec::new();
    if let Some(limit) = budget.llm_usd_per_day {
        usage.push(cap(
            "llm_usd_per_day",
            "day",
            day,
            llm_day.usd,
            limit,
            "usd",
            llm_day.unpriced_note(),
        ));
    }
    if let Some(limit) = budget.llm_usd_per_month {
        usage.push(cap(
            "llm_usd_per_month",
            "month",
            month,
            llm_month.usd,
            limit,
            "usd",
            llm_month.unpriced_note(),
        ));
    }
    if let Some(limit) = budget.compute_hours_per_day {
        usage.push(cap(
            "compute_hours_per_day",
            "day",
            day,
            compute_hours_day,
            limit,
            "hours",
            None,
        ));
    }
    if let Some(limit) = budget.compute_hours_per_month {
        usage.push(cap(
            "compute_hours_per_month",
            "month",
            month,
            compute_hours_month,
            limit,
            "hours",
            None,
        ));
    }
    if let Some(limit) = budget.max_experiments_per_day {
        usage.push(cap(
            "max_experiments_per_day",
            "day",
            day,
            planner_experiments_day as f64,
            limit as f64,
            "experiments",
            None,
        ));
    }
    let blocked = usage.iter().find(|u| u.reached()).map(blocked_message);

    let mut wait = Duration::ZERO;
    if let Some(limit) = budget.max_llm_requests_per_minute {
        usage.push(cap(
            "max_llm_requests_per_minute",
            "minute",
            minute_ago,
            calls.len() as f64,
            f64::from(limit),
            "requests",
            None,
        ));
        // Newest first: once the `limit`-th newest call is a minute old, one more may go.
        if let Some(&oldest_counted) = calls.get((limit as usize).saturating_sub(1)) {
            wait = wait.max(millis(oldest_counted + MINUTE_MS - now_ms));
        }
    }
    if let Some(interval) = budget.min_interval_seconds
        && let Some(last) = store.last_planner_turn_at().await?
    {
        let interval_ms = (interval.max(0.0) * 1000.0).ceil() as i64;
        wait = wait.max(millis(last + interval_ms - now_ms));
    }
    Ok(BudgetState {
        checked_at: now_ms,
        usage,
        spend: Spend {
            llm_day,
            llm_month,
            compute_hours_day,
            compute_hours_month,
            planner_experiments_day,
            llm_requests_last_minute: calls.len() as i64,
        },
        blocked,
        wait: (!wait.is_zero()).then_some(wait),
    })
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

// ---- UTC calendar ----

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Start (Unix ms) of the UTC day holding `ms`.
pub fn utc_day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// Start (Unix ms) of the UTC month holding `ms`.
pub fn utc_month_start(ms: i64) -> i64 {
    let (year, month, _) = civil_from_days(ms.div_euclid(DAY_MS));
    days_from_civil(year, month, 1) * DAY_MS
}

/// `ms` as an RFC 3339 UTC timestamp with seconds, e.g. `2026-11-21T08:30:00Z`.
pub fn utc_timestamp(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    let second_of_day = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Parses an RFC 3339 timestamp (`2026-11-21T08:30:00Z`, `2026-11-21 08:30:00.5+01:00`) into
/// Unix ms; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let year = number(0..4)?;
    let month = u32::try_from(number(5..7)?).ok()?;
    let day = u32::try_from(number(8..10)?).ok()?;
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Milliseconds: the first three digits, padded.
        let kept: String = fraction[..digits]
            .chars()
            .chain("00".chars())
            .take(3)
            .collect();
        millis = kept.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = rest.get(1..)?;
            let (hours, minutes) = offset.split_once(':')?;
            if hours.len() != 2 || minutes.len() != 2 {
                return None;
            }
            let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 60 + minutes)
        }
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-800_000, -1, 0, 59, 60, 11_016, 20_000, 20_513, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        // 2024-02-29T23:59:59.999Z
        let leap = parse_rfc3339("2024-02-29T23:59:59.999Z").unwrap();
        assert_eq!(utc_timestamp(leap), "2024-02-29T23:59:59Z");
        assert_eq!(
            utc_day_start(leap),
            parse_rfc3339("2024-02-29T00:00:00Z").unwrap()
        );
        assert_eq!(
            utc_month_start(leap),
            parse_rfc3339("2024-02-01T00:00:00Z").unwrap()
        );
        assert_eq!(utc_month_start(leap + 1), leap + 1);
        assert_eq!(
            parse_rfc3339("2026-11-21T09:30:00+01:30"),
            parse_rfc3339("2026-11-21T08:00:00Z")
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
        for bad in [
            "",
            "2026-11-21",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T08:00:00",
            "2026-11-21T08:00:00.Z",
            "2026-11-21T08:00:00+1:00",
            "２026-11-21T08:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
