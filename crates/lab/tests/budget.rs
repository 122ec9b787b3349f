//! Budget caps and rate limits over a store filled through its API: dollars per UTC day and
//! month (with a price table for calls logged without a cost, and unpriced calls reported),
//! compute hours from measured points, planner experiments per day, the wait the minimum
//! interval and the per-minute limit impose, and an admin's budget overriding the configuration.
//! Rows are moved to chosen times with plain SQL, and the check runs at a fixed moment.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use codeclab_lab::budget::{self, BudgetState};
use codeclab_lab::config::BudgetConfig;
use codeclab_lab::experiment::ExperimentSpec;
use codeclab_lab::llm::Pricing;
use codeclab_lab::process::StepCost;
use codeclab_lab::runner::PointRecord;
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::{PlannerLogEntry, Store, sqlite_url};
use sqlx::Connection;

/// The moment every check runs at.
fn now() -> i64 {
    budget::parse_rfc3339("2026-03-15T12:00:00Z").unwrap()
}

fn at(text: &str) -> i64 {
    budget::parse_rfc3339(text).unwrap()
}

/// A store and the URL a second connection reaches it by.
async fn sqlite_store(dir: &tempfile::TempDir) -> (Store, String) {
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    (store, sqlite_url(&dir.path().join("lab.sqlite")))
}

/// Moves a row to a time (the store stamps rows with the clock).
async fn set_time(url: &str, table: &str, id: i64, created_at: i64) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let key = if table == "rd_points" { "job_id" } else { "id" };
    let changed = sqlx::query(&format!(
        "UPDATE {table} SET created_at = $1 WHERE {key} = $2"
    ))
    .bind(created_at)
    .bind(id)
    .execute(&mut conn)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1, "{table} {id}");
    conn.close().await.unwrap();
}

fn turn(model: Option<&str>, tokens: Option<(i64, i64)>, cost: Option<f64>) -> PlannerLogEntry {
    PlannerLogEntry {
        experiment_id: None,
        planner: "llm".into(),
        model: model.map(str::to_string),
        prompt: "prompt".into(),
        reply: "reply".into(),
        hypothesis: Some("a hypothesis".into()),
        reasoning: String::new(),
        outcome: "proposed".into(),
        detail: None,
        input_tokens: tokens.map(|t| t.0),
        output_tokens: tokens.map(|t| t.1),
        cost_usd: cost,
    }
}

/// Logs a model call that cost `usd`, at `time`.
async fn paid_turn(store: &Store, url: &str, usd: f64, time: i64) -> i64 {
    let id = store
        .log_planner(&turn(Some("priced-model"), Some((1000, 100)), Some(usd)))
        .await
        .unwrap();
    set_time(url, "planner_log", id, time).await;
    id
}

fn usage<'a>(state: &'a BudgetState, name: &str) -> &'a budget::CapUsage {
    state
        .usage
        .iter()
        .find(|u| u.name == name)
        .unwrap_or_else(|| panic!("no usage for {name}: {state:?}"))
}

#[tokio::test]
async fn the_daily_llm_cap_is_reached_exactly_at_its_amount() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite_store(&dir).await;
    let config = BudgetConfig {
        llm_usd_per_day: Some(5.0),
        ..BudgetConfig::default()
    };
    let state = budget::check(&store, &config, now()).await.unwrap();
    assert_eq!(usage(&state, "llm_usd_per_day").used, 0.0);
    assert_eq!(state.blocked, None);
    assert_eq!(state.wait, None);

    for usd in [1.0, 1.5, 2.0] {
        paid_turn(&store, &url, usd, now() - 3_600_000).await;
    }
    let state = budget::check(&store, &config, now()).await.unwrap();
    let day = usage(&state, "llm_usd_per_day");
    assert_eq!((day.used, day.cap, day.period.as_str()), (4.5, 5.0, "day"));
    assert!((day.fraction - 0.9).abs() < 1e-12);
    assert_eq!(state.blocked, None);

    paid_turn(&store, &url, 0.5, now() - 60_000).await;
    let state = budget::check(&store, &config, now()).await.unwrap();
    assert_eq!(usage(&state, "llm_usd_per_day").used, 5.0);
    assert_eq!(
        state.blocked.as_deref(),
        Some("daily LLM budget reached: $5.00 of $5.00")
    );
    assert_eq!(state.spend.llm_day.turns, 4);
    assert_eq!(state.spend.llm_day.input_tokens, 4000);
}

#[tokio::test]
async fn day_and_month_windows_are_utc_calendar_periods() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite_store(&dir).await;
    paid_turn(&store, &url, 1.0, at("2026-03-15T00:00:00Z")).await;
    paid_turn(&store, &url, 3.0, at("2026-03-14T23:59:59Z")).await;
    paid_turn(&store, &url, 10.0, at("2026-02-28T23:59:59Z")).await;
    paid_turn(&store, &url, 0.25, at("2026-03-01T00:00:00Z")).await;
    let config = BudgetConfig {
        llm_usd_per_day: Some(2.0),
        llm_usd_per_month: Some(4.0),
        ..BudgetConfig::default()
    };
    let state = budget::check(&store, &config, now()).await.unwrap();
    assert_eq!(usage(&state, "llm_usd_per_day").used, 1.0);
    assert_eq!(
        usage(&state, "llm_usd_per_day").window_start,
        at("2026-03-15T00:00:00Z")
    );
    let month = usage(&state, "llm_usd_per_month");
    assert_eq!((month.used, month.period.as_str()), (4.25, "month"));
    assert_eq!(month.window_start, at("2026-03-01T00:00:00Z"));
    // The daily cap is not reached; the monthly one is, and says so with its numbers.
    assert_eq!(
        state.blocked.as_deref(),
        Some("monthly LLM budget reached: $4.25 of $4.00")
    );
}

#[tokio::test]
async fn unpriced_calls_are_priced_from_the_table_or_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite_store(&dir).await;
    let time = now() - 600_000;
    for entry in [
        // Logged before the table knew its price: 1M input at $1 + 0.5M output at $2 = $2.
        turn(Some("fake-model"), Some((1_000_000, 500_000)), None),
        // A call that failed before any usage was reported: its cost is unknown.
        turn(Some("fake-model"), None, None),
        // A model the table does not know.
        turn(Some("mystery-model"), Some((10, 10)), None),
        turn(Some("mystery-model"), Some((10, 10)), None),
        // An offline planner's turn: no model, nothing to price.
        turn(None, None, None),
        turn(Some("fake-model"), Some((1, 1)), Some(0.5)),
    ] {
        let id = store.log_planner(&entry).await.unwrap();
        set_time(&url, "planner_log", id, time).await;
    }
    let config = BudgetConfig {
        llm_usd_per_day: Some(10.0),
        prices: BTreeMap::from([(
            "fake-model".to_string(),
            Pricing {
                input_usd_per_million: 1.0,
                output_usd_per_million: 2.0,
            },
        )]),
        ..BudgetConfig::default()
    };
    let state = budget::check(&store, &config, now()).await.unwrap();
    let day = usage(&state, "llm_usd_per_day");
    assert!((day.used - 2.5).abs() < 1e-9, "{day:?}");
    let unpriced: Vec<(&str, i64)> = state
        .spend
        .llm_day
        .unpriced
        .iter()
        .map(|m| (m.model.as_str(), m.turns))
        .collect();
    assert_eq!(unpriced, [("fake-model", 1), ("mystery-model", 2)]);
    assert_eq!(state.spend.llm_day.unpriced_turns(), 3);
    let note = day.note.as_deref().unwrap();
    assert!(
        note.contains("3 model calls of unknown price") && note.contains("mystery-model"),
        "{note}"
    );

    // Without the table, the first call is unpriced too.
    let state = budget::check(
        &store,
        &BudgetConfig {
            llm_usd_per_day: Some(10.0),
            ..BudgetConfig::default()
        },
        now(),
    )
    .await
    .unwrap();
    assert_eq!(usage(&state, "llm_usd_per_day").used, 0.5);
    assert_eq!(state.spend.llm_day.unpriced_turns(), 4);
}

fn point(rate: RatePoint, encode: f64, decode: f64) -> PointRecord {
    PointRecord {
        rate_point: rate,
        clip_sha256: "00".into(),
        frames: 10,
        width: 96,
        height: 64,
        fps: "30/1".into(),
        bytes: 1000,
        kbps: 24.0,
        metrics: BTreeMap::from([("psnr_y".to_string(), 40.0)]),
        encode: StepCost {
            wall_seconds: encode,
            ..StepCost::default()
        },
        decode: StepCost {
            wall_seconds: decode,
            ..StepCost::default()
        },
        decoder_instructions_per_pixel: None,
        learned_mac_per_pixel: None,
        bitstream_sha256: "ab".into(),
        codec_version: "test".into(),
    }
}

fn spec(proposer: &str, points: usize) -> ExperimentSpec {
    ExperimentSpec {
        codec: serde_json::json!({"kind": "lab"}),
        parents: vec![],
        proposer: proposer.into(),
        hypothesis: String::new(),
        clips: vec!["clip".into()],
        rate_points: (0..points).map(|i| RatePoint::Qp(22 + i as u32)).collect(),
        anchors: vec![],
    }
}

/// Compute hours and planner experiments per day, on any backend.
async fn compute_and_experiment_caps(store: &Store, url: &str) {
    let today = now() - 3_600_000;
    let earlier_this_month = at("2026-03-02T10:00:00Z");
    // A planner's experiment measured today: 1800 + 1800 s over two points = 1 h.
    let planned = store
        .submit(&spec("evolve", 2), None, None, 3)
        .await
        .unwrap();
    set_time(url, "experiments", planned, today).await;
    for (encode, decode) in [(1500.0, 300.0), (1000.0, 800.0)] {
        let job = store.claim_job("w", 60_000).await.unwrap().unwrap();
        let record = point(job.rate_point, encode, decode);
        store.finish_job(&job, "w", &record).await.unwrap();
        set_time(url, "rd_points", job.id, today).await;
    }
    // A user's experiment measured earlier this month: 1.5 h, not a planner experiment.
    let manual = store.submit(&spec("user", 1), None, None, 3).await.unwrap();
    set_time(url, "experiments", manual, earlier_this_month).await;
    let job = store.claim_job("w", 60_000).await.unwrap().unwrap();
    store
        .finish_job(&job, "w", &point(job.rate_point, 5000.0, 400.0))
        .await
        .unwrap();
    set_time(url, "rd_points", job.id, earlier_this_month).await;
    // Two more planner experiments today (queued) and a baseline one (not counted).
    for proposer in ["llm", "evolve", "baseline"] {
        let id = store
            .submit(&spec(proposer, 1), None, None, 3)
            .await
            .unwrap();
        set_time(url, "experiments", id, today).await;
    }

    let mut config = BudgetConfig {
        compute_hours_per_day: Some(2.0),
        compute_hours_per_month: Some(2.5),
        max_experiments_per_day: Some(4),
        ..BudgetConfig::default()
    };
    let state = budget::check(store, &config, now()).await.unwrap();
    let day = usage(&state, "compute_hours_per_day");
    assert!(
        (day.used - 1.0).abs() < 1e-9 && day.unit == "hours",
        "{day:?}"
    );
    let month = usage(&state, "compute_hours_per_month");
    assert!((month.used - 2.5).abs() < 1e-9, "{month:?}");
    let experiments = usage(&state, "max_experiments_per_day");
    assert_eq!((experiments.used, experiments.cap), (3.0, 4.0));
    assert_eq!(
        state.blocked.as_deref(),
        Some("monthly compute budget reached: 2.50 h of 2.50 h")
    );

    config.compute_hours_per_month = None;
    config.max_experiments_per_day = Some(3);
    let state = budget::check(store, &config, now()).await.unwrap();
    assert_eq!(
        state.blocked.as_deref(),
        Some("daily experiment limit reached: 3 of 3 experiments")
    );
}

#[tokio::test]
async fn compute_hours_and_planner_experiments_count_per_day_and_month() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite_store(&dir).await;
    compute_and_experiment_caps(&store, &url).await;
}

#[tokio::test]
async fn compute_hours_and_planner_experiments_on_postgres() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let url = common::fresh_postgres(&admin).await;
    let store = Store::open(&url).await.unwrap();
    compute_and_experiment_caps(&store, &url).await;
}

#[tokio::test]
async fn rate_limits_give_the_wait_until_the_next_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite_store(&dir).await;
    let config = BudgetConfig {
        max_llm_requests_per_minute: Some(2),
        min_interval_seconds: Some(15.0),
        ..BudgetConfig::default()
    };
    // One call 50 s ago: under the per-minute limit, and the interval has passed.
    let first = store
        .log_planner(&turn(Some("m"), Some((1, 1)), Some(0.0)))
        .await
        .unwrap();
    set_time(&url, "planner_log", first, now() - 50_000).await;
    let state = budget::check(&store, &config, now()).await.unwrap();
    assert_eq!(state.wait, None);
    assert_eq!(state.spend.llm_requests_last_minute, 1);

    // A second call 10 s ago: the limit is reached until the first is a minute old (10 s),
    // and the interval since the newest asks for 5 s: the longer wait wins.
    let second = store
        .log_planner(&turn(Some("m"), Some((1, 1)), Some(0.0)))
        .await
        .unwrap();
    set_time(&url, "planner_log", second, now() - 10_000).await;
    let state = budget::check(&store, &config, now()).await.unwrap();
    assert_eq!(state.wait, Some(Duration::from_secs(10)));
    let minute = usage(&state, "max_llm_requests_per_minute");
    assert_eq!((minute.used, minute.period.as_str()), (2.0, "minute"));
    // A rate limit is a wait, not a cap that blocks.
    assert_eq!(state.blocked, None);

    let longer = BudgetConfig {
        min_interval_seconds: Some(45.0),
        ..config.clone()
    };
    let state = budget::check(&store, &longer, now()).await.unwrap();
    assert_eq!(state.wait, Some(Duration::from_secs(35)));
    // A minute after the first call, one more may go.
    let state = budget::check(&store, &config, now() + 10_000)
        .await
        .unwrap();
    assert_eq!(state.wait, None);
    // The JSON form gives the wait in seconds.
    let state = budget::check(&store, &config, now()).await.unwrap();
    assert_eq!(serde_json::to_value(&state).unwrap()["wait"], 10.0);
}

#[tokio::test]
async fn an_admins_budget_overrides_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = sqlite_store(&dir).await;
    let prices = BTreeMap::from([(
        "fake-model".to_string(),
        Pricing {
            input_usd_per_million: 3.0,
            output_usd_per_million: 15.0,
        },
    )]);
    let config = BudgetConfig {
        llm_usd_per_day: Some(5.0),
        prices: prices.clone(),
        ..BudgetConfig::default()
    };
    assert_eq!(budget::effective(&store, &config).await.unwrap(), config);
    let admin = BudgetConfig {
        llm_usd_per_day: Some(1.0),
        max_experiments_per_day: Some(20),
        ..BudgetConfig::default()
    };
    store
        .put_setting(budget::SETTING, &serde_json::to_value(&admin).unwrap())
        .await
        .unwrap();
    let effective = budget::effective(&store, &config).await.unwrap();
    assert_eq!(
        effective,
        BudgetConfig {
            prices,
            ..admin.clone()
        }
    );
    store
        .put_setting(
            budget::SETTING,
            &serde_json::json!({"llm_usd_per_day": "lots"}),
        )
        .await
        .unwrap();
    assert!(budget::effective(&store, &config).await.is_err());
}
