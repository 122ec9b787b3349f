//! Alerts reach a webhook server the test starts on 127.0.0.1 as Slack-compatible JSON, are
//! recorded as events, never fail when the webhook is dead or refuses them, come once per
//! failure streak, and once per budget threshold, cap and period (across a restart).

use std::sync::{Arc, Mutex};

use codeclab_lab::alerts::{self, Alerter};
use codeclab_lab::budget::{BudgetState, CapUsage, Spend};
use codeclab_lab::config::AlertConfig;
use codeclab_lab::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A webhook that records each request body and answers with `status`.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Webhook {
    async fn start(status: u16) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/alert", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    if let Some(body) = read_request(&mut socket).await {
                        seen.lock().unwrap().push(body);
                    }
                    let response = format!(
                        "HTTP/1.1 {status} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Webhook { url, bodies }
    }

    fn texts(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|body| body["text"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Reads one HTTP request and returns its JSON body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<serde_json::Value> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                assert!(text.starts_with("POST /hooks/alert "), "{text}");
                return serde_json::from_slice(&buffer[end + 4..end + 4 + length]).ok();
            }
        }
    }
}

fn config(url: Option<String>) -> AlertConfig {
    AlertConfig {
        webhook_url: url,
        ..AlertConfig::default()
    }
}

async fn store(dir: &tempfile::TempDir) -> Store {
    Store::open_data_dir(dir.path()).await.unwrap()
}

async fn event_kinds(store: &Store) -> Vec<String> {
    let mut kinds: Vec<String> = store
        .events(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    kinds.reverse();
    kinds
}

#[tokio::test]
async fn an_alert_is_posted_as_slack_json_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let hook = Webhook::start(200).await;
    let alerter = Alerter::new(config(Some(hook.url.clone())));
    alerter
        .send(&store, "test", Some(7), "something to know")
        .await
        .unwrap();
    alerter
        .new_best(&store, 9, -3.5, Some(-1.25))
        .await
        .unwrap();
    assert_eq!(
        hook.texts(),
        [
            "codeclab test (experiment 7): something to know",
            "codeclab new_best (experiment 9): new best program: experiment 9, fitness -3.50 % \
             (mean BD-rate against the reference) (was -1.25 %)"
        ]
    );
    let events = store.events(10).await.unwrap();
    assert_eq!(events[1].kind, "alert:test");
    assert_eq!(events[1].experiment_id, Some(7));
    assert_eq!(events[1].message, "something to know");
    assert_eq!(events[0].kind, "alert:new_best");
}

#[tokio::test]
async fn a_dead_or_refusing_webhook_never_fails_send() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    // A port nobody listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/hooks/alert", closed.local_addr().unwrap());
    drop(closed);
    Alerter::new(config(Some(dead_url)))
        .send(&store, "first", None, "to a dead webhook")
        .await
        .unwrap();
    let refusing = Webhook::start(500).await;
    Alerter::new(config(Some(refusing.url.clone())))
        .send(&store, "second", None, "to a refusing webhook")
        .await
        .unwrap();
    assert_eq!(refusing.texts(), ["codeclab second: to a refusing webhook"]);
    assert_eq!(
        event_kinds(&store).await,
        [
            "alert:first",
            alerts::WEBHOOK_FAILED,
            "alert:second",
            alerts::WEBHOOK_FAILED
        ]
    );
    let failures = store
        .events_of_kind(alerts::WEBHOOK_FAILED, 10)
        .await
        .unwrap();
    assert!(failures[0].message.contains("500"), "{failures:?}");
    // Without a webhook, the alert is still recorded.
    Alerter::new(config(None))
        .send(&store, "third", None, "log only")
        .await
        .unwrap();
    assert_eq!(
        store.events_of_kind("alert:", 10).await.unwrap().len(),
        3,
        "{:?}",
        event_kinds(&store).await
    );
}

#[tokio::test]
async fn failures_in_a_row_alert_once_per_streak() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let hook = Webhook::start(200).await;
    let mut alerter = Alerter::new(AlertConfig {
        failures_in_a_row: 3,
        ..config(Some(hook.url.clone()))
    });
    let mut alerted = Vec::new();
    for (index, success) in [
        false, false, true, false, false, false, false, false, true, false, false, false,
    ]
    .into_iter()
    .enumerate()
    {
        let detail = format!("outcome {index}");
        if alerter
            .observe_outcome(&store, success, Some(index as i64), &detail)
            .await
            .unwrap()
        {
            alerted.push(index);
        }
    }
    assert_eq!(alerted, [5, 11]);
    assert_eq!(
        hook.texts(),
        [
            "codeclab failures (experiment 5): 3 failures in a row; the last: outcome 5",
            "codeclab failures (experiment 11): 3 failures in a row; the last: outcome 11"
        ]
    );
}

fn usage(name: &str, period: &str, window_start: i64, used: f64, cap: f64) -> CapUsage {
    CapUsage {
        name: name.into(),
        period: period.into(),
        window_start,
        used,
        cap,
        unit: if name.starts_with("llm_usd") {
            "usd"
        } else {
            "requests"
        }
        .into(),
        fraction: used / cap,
        note: None,
    }
}

fn state(usage: Vec<CapUsage>) -> BudgetState {
    BudgetState {
        checked_at: 0,
        usage,
        spend: Spend::default(),
        blocked: None,
        wait: None,
    }
}

async fn observe(alerter: &Alerter, store: &Store, usage: Vec<CapUsage>) -> Vec<String> {
    alerter.observe_budget(store, &state(usage)).await.unwrap()
}

#[tokio::test]
async fn budget_thresholds_alert_once_per_cap_and_period_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let hook = Webhook::start(200).await;
    let day = 1_000 * 86_400_000;
    let next_day = day + 86_400_000;
    let month = 990 * 86_400_000;
    let alerter = Alerter::new(config(Some(hook.url.clone())));
    let daily = |window, used| usage("llm_usd_per_day", "day", window, used, 5.0);
    let monthly = |used| usage("llm_usd_per_month", "month", month, used, 100.0);
    let per_minute = usage("max_llm_requests_per_minute", "minute", day, 10.0, 10.0);

    assert!(
        observe(&alerter, &store, vec![daily(day, 3.0), monthly(10.0)])
            .await
            .is_empty()
    );
    assert_eq!(
        observe(&alerter, &store, vec![daily(day, 3.6), monthly(10.0)]).await,
        ["daily LLM budget at 70 %: $3.60 of $5.00"]
    );
    assert!(
        observe(&alerter, &store, vec![daily(day, 3.7), monthly(10.0)])
            .await
            .is_empty()
    );
    // Two thresholds crossed at once: one alert, for the higher; rate limits never alert.
    assert_eq!(
        observe(
            &alerter,
            &store,
            vec![daily(day, 3.7), monthly(96.0), per_minute.clone()]
        )
        .await,
        ["monthly LLM budget at 95 %: $96.00 of $100.00"]
    );
    // A restarted loop remembers what it already said.
    let restarted = Alerter::new(config(Some(hook.url.clone())));
    assert!(
        observe(&restarted, &store, vec![daily(day, 3.8), monthly(97.0)])
            .await
            .is_empty()
    );
    assert_eq!(
        observe(&restarted, &store, vec![daily(day, 4.5), monthly(97.0)]).await,
        ["daily LLM budget at 85 %: $4.50 of $5.00"]
    );
    // A new day starts over.
    assert_eq!(
        observe(
            &restarted,
            &store,
            vec![daily(next_day, 3.5), monthly(97.0)]
        )
        .await,
        ["daily LLM budget at 70 %: $3.50 of $5.00"]
    );
    assert_eq!(hook.texts().len(), 4);
    assert!(
        hook.texts()
            .iter()
            .all(|t| t.starts_with("codeclab budget: "))
    );
    assert_eq!(
        store
            .events_of_kind("alert:budget", 10)
            .await
            .unwrap()
            .len(),
        4
    );
}
