//! The dashboard's routes in-process (`tower::ServiceExt::oneshot`) against a lab with a real,
//! measured experiment: admin checks, recorded actions, error pages, and that the API shows the
//! store's numbers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use codeclab_lab::Lab;
use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::experiment::ExperimentSpec;
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::control::RunState;
use codeclab_lab::store::{ExperimentState, Store};
use codeclab_lab::worker::{WorkerConfig, run_worker};
use codeclab_video::corpus::{ClipLabel, ClipSet, Corpus, Silent};
use codeclab_video::{GeneratorSpec, Pattern, Rational};
use codeclab_web::{AdminToken, WebConfig};
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789";
const CLIP: &str = "api-shapes";

struct Fixture {
    lab: Arc<Lab>,
    app: Router,
    experiment: i64,
    _dir: tempfile::TempDir,
}

/// A lab with one clip and one analysed experiment of the lab's codec, measured by a worker.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    corpus
        .generate(
            &GeneratorSpec {
                pattern: Pattern::Shapes,
                width: 64,
                height: 48,
                frames: 4,
                fps: Rational { num: 30, den: 1 },
                seed: 3,
                bit_depth: 8,
            },
            ClipLabel {
                id: CLIP.into(),
                class: "synthetic:shapes".into(),
                source: "test".into(),
                set: ClipSet::Dev,
            },
            &mut Silent,
        )
        .unwrap();
    corpus.save().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let artifacts = Artifacts::open(&dir.path().join("artifacts").display().to_string()).unwrap();
    let lab = Arc::new(Lab::new(store, artifacts, dir.path().to_path_buf()));
    let spec = ExperimentSpec {
        codec: serde_json::json!({"kind": "lab"}),
        parents: vec![],
        proposer: "test".into(),
        hypothesis: "the default genome".into(),
        clips: vec![CLIP.into()],
        rate_points: [24, 30, 36, 42].map(RatePoint::Qp).to_vec(),
        anchors: vec!["x265-medium".into()],
    };
    let experiment = lab.submit(&spec, None).await.unwrap().id;
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let mut config = WorkerConfig::new(0);
    config.exit_when_idle = true;
    run_worker(lab.clone(), config, stop, None).await.unwrap();
    let record = lab.store.experiment(experiment).await.unwrap().unwrap();
    assert_eq!(record.state, ExperimentState::Analysed, "{record:?}");
    let app = codeclab_web::router(lab.clone(), WebConfig::new(AdminToken::from_secret(TOKEN)));
    Fixture {
        lab,
        app,
        experiment,
        _dir: dir,
    }
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, content_type, body)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String, Vec<u8>) {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn get_json(app: &Router, uri: &str) -> serde_json::Value {
    let (status, _, body) = get(app, uri).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

fn admin(uri: &str) -> axum::http::request::Builder {
    Request::post(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("x-codeclab-actor", "tester")
        .header("content-type", "application/json")
}

async fn post_admin(app: &Router, uri: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let (status, _, reply) =
        send(app, admin(uri).body(Body::from(body.to_string())).unwrap()).await;
    (status, serde_json::from_slice(&reply).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_store_and_guards_admin_actions() {
    let f = fixture().await;
    let app = &f.app;
    let id = f.experiment;

    // --- The API's numbers are the store's, shaped as `experiment show --json` prints them.
    let detail = get_json(app, &format!("/api/experiments/{id}")).await;
    let expected = serde_json::json!({
        "experiment": f.lab.store.experiment(id).await.unwrap(),
        "jobs": f.lab.store.job_counts(id).await.unwrap(),
        "analysis": f.lab.store.analysis(id).await.unwrap(),
    });
    for key in ["experiment", "jobs", "analysis"] {
        assert_eq!(detail[key], expected[key], "{key}");
    }
    let overview = get_json(app, "/api/overview").await;
    assert_eq!(overview["counts"]["analysed"], 1);
    assert_eq!(overview["total"], 1);
    let table = get_json(
        app,
        "/api/experiments?state=analysed&sort=bd_psnr_y&dir=asc",
    )
    .await;
    assert_eq!(table["total"], 1);
    assert_eq!(table["rows"][0]["id"], id);
    let empty = get_json(app, "/api/experiments?state=failed").await;
    assert_eq!(empty["total"], 0);
    let (status, _, _) = get(app, "/api/experiments?sort=nonsense").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let by_mac = get_json(app, "/api/experiments?sort=learned_mac").await;
    assert_eq!(by_mac["rows"][0]["summary"]["learned_mac_per_pixel"], 0.0);

    // The Pareto front against either complexity figure; the default is instructions.
    let evolution = get_json(app, "/api/evolution").await;
    assert_eq!(evolution["complexity"], "decoder_instructions_per_pixel");
    let evolution = get_json(app, "/api/evolution?complexity=learned_mac_per_pixel").await;
    assert_eq!(evolution["complexity"], "learned_mac_per_pixel");
    let program = &evolution["programs"][0];
    assert_eq!(program["experiment_id"], id);
    assert_eq!(program["learned_mac_per_pixel"], 0.0);
    let (status, _, page) = get(app, "/evolution?complexity=learned_mac_per_pixel").await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("data-field=\"complexity\" data-value=\"learned_mac_per_pixel\""));
    assert!(page.contains("data-complexity=\"decoder_instructions_per_pixel\""));
    assert!(page.contains(&format!("data-field=\"program:{id}:learned-mac\"")));
    for uri in [
        "/evolution?complexity=nonsense",
        "/api/evolution?complexity=nonsense",
    ] {
        let (status, _, body) = get(app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(
            String::from_utf8_lossy(&body).contains("unknown complexity `nonsense`"),
            "{uri}"
        );
    }

    // The experiment page carries the stored kbps of every point in its hooks.
    let (status, _, page) = get(app, &format!("/experiments/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    for point in f.lab.store.points(id).await.unwrap() {
        let hook = format!(
            "data-field=\"rd:{CLIP}:{}:kbps\" data-value=\"{}\"",
            point.rate_index,
            serde_json::json!(point.record.kbps)
        );
        assert!(page.contains(&hook), "missing {hook}");
        // The shipped genome's streams declare no learned tool.
        let hook = format!(
            "data-field=\"rd:{CLIP}:{}:learned_mac\" data-value=\"0.0\"",
            point.rate_index
        );
        assert!(page.contains(&hook), "missing {hook}");
    }
    assert!(page.contains("id=\"rerun\""));
    // Per-frame quality is drawn from each point's stored per-frame scores.
    assert!(
        page.contains("data-field=\"per-frame\" data-value=\"measured\""),
        "no per-frame charts"
    );
    assert!(page.contains(&format!("psnr_y per frame on {CLIP}")));
    for uri in [
        "/",
        "/experiments",
        "/evolution",
        "/api/evolution",
        "/api/planner",
    ] {
        let (status, _, body) = get(app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(!String::from_utf8_lossy(&body).contains(TOKEN), "{uri}");
    }
    let (status, content_type, csv) = get(app, &format!("/api/experiments/{id}/rd.csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/csv"));
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 5);

    // The frame viewer decodes the stored bitstream and answers PNGs.
    for view in ["source", "decoded", "diff"] {
        let (status, content_type, png) = get(
            app,
            &format!("/api/experiments/{id}/frame.png?clip={CLIP}&rate=1&frame=2&view={view}"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{view}: {}",
            String::from_utf8_lossy(&png)
        );
        assert_eq!(content_type, "image/png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
    let (status, _, _) = get(
        app,
        &format!("/api/experiments/{id}/frame.png?clip={CLIP}&rate=1&frame=4&view=source"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // --- Unknown ids: a clear 404 page, and a 404 in the API.
    let (status, content_type, body) = get(app, "/experiments/987654").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(content_type.starts_with("text/html"));
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("data-field=\"error-status\">404"), "{body}");
    assert!(body.contains("experiment 987654 does not exist"), "{body}");
    let (status, _, _) = get(app, "/experiments/not-a-number").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, content_type, _) = get(app, "/api/experiments/987654").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(content_type.starts_with("application/json"));

    // --- Refused: no token, a wrong token, a cross-site request, a cross-site form post.
    let refused = [
        Request::post("/api/admin/pause")
            .body(Body::empty())
            .unwrap(),
        Request::post("/api/admin/pause")
            .header("authorization", "Bearer wrong")
            .body(Body::empty())
            .unwrap(),
        Request::post("/api/admin/pause")
            .header("x-codeclab-token", "wrong")
            .body(Body::empty())
            .unwrap(),
        Request::post("/api/admin/pause")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("host", "127.0.0.1:8080")
            .header("origin", "http://evil.example")
            .body(Body::empty())
            .unwrap(),
        Request::post("/api/admin/pause")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .unwrap(),
        Request::post(format!("/api/admin/experiments/{id}/rerun"))
            .header("host", "127.0.0.1:8080")
            .header("origin", "http://evil.example")
            .header("sec-fetch-site", "cross-site")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={TOKEN}")))
            .unwrap(),
        Request::post(format!("/api/admin/experiments/{id}/rerun"))
            .header("cookie", format!("token={TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    ];
    for request in refused {
        let (status, _, body) = send(app, request).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert!(!String::from_utf8_lossy(&body).contains(TOKEN));
    }
    assert!(f.lab.store.admin_actions(10).await.unwrap().is_empty());
    assert_eq!(f.lab.store.experiments(None, 10).await.unwrap().len(), 1);
    assert_eq!(
        f.lab.store.lab_status().await.unwrap().state,
        RunState::Stopped
    );

    // --- Accepted, each recorded with its actor: same-origin browser requests pass too.
    let (status, _, _) = send(
        app,
        admin("/api/admin/pause")
            .header("host", "127.0.0.1:8080")
            .header("origin", "http://127.0.0.1:8080")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(r#"{"reason": "looking at frames"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let paused = f.lab.store.lab_status().await.unwrap();
    assert_eq!(paused.state, RunState::Paused);
    assert_eq!(paused.by, "admin:tester");
    assert_eq!(paused.reason.as_deref(), Some("looking at frames"));
    assert_eq!(
        post_admin(app, "/api/admin/resume", "").await.0,
        StatusCode::OK
    );
    assert_eq!(
        f.lab.store.lab_status().await.unwrap().state,
        RunState::Running
    );
    assert_eq!(
        post_admin(app, "/api/admin/stop", "").await.0,
        StatusCode::OK
    );
    assert_eq!(
        f.lab.store.lab_status().await.unwrap().state,
        RunState::Stopping
    );
    let (status, reply) = post_admin(app, &format!("/api/admin/experiments/{id}/rerun"), "").await;
    assert_eq!(status, StatusCode::OK);
    let rerun = reply["submitted"]["id"].as_i64().unwrap();
    assert_eq!(
        f.lab
            .store
            .experiment(rerun)
            .await
            .unwrap()
            .unwrap()
            .rerun_of,
        Some(id)
    );
    let (status, _) = post_admin(app, &format!("/api/admin/experiments/{rerun}/cancel"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        f.lab.store.experiment(rerun).await.unwrap().unwrap().state,
        ExperimentState::Cancelled
    );
    let (status, _) = post_admin(app, &format!("/api/admin/experiments/{rerun}/cancel"), "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = post_admin(app, &format!("/api/admin/experiments/{id}/promote"), "").await;
    assert_eq!(status, StatusCode::OK);
    let promoted = f
        .lab
        .store
        .setting("promoted_codec")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(promoted["experiment_id"], id);
    assert!(promoted["genome"].is_object());
    let (status, _) = post_admin(
        app,
        "/api/admin/budget",
        r#"{"llm_usd_per_day": 2.5, "max_experiments_per_day": 100}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        f.lab.store.setting("budget").await.unwrap().unwrap()["llm_usd_per_day"],
        2.5
    );
    let (status, _) = post_admin(app, "/api/admin/budget", r#"{"llm_usd_per_day": -1}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post_admin(app, "/api/admin/budget", r#"{"llm_dollars": 1}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post_admin(
        app,
        "/api/admin/goals",
        r#"[{"kind": "learned_mac_per_pixel", "at_most": -1}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let goals = r#"[{"kind": "decoder_instructions_per_pixel", "at_most": 300.0},
                    {"kind": "learned_mac_per_pixel", "at_most": 0}]"#;
    assert_eq!(
        post_admin(app, "/api/admin/goals", goals).await.0,
        StatusCode::OK
    );
    let overview = get_json(app, "/api/overview").await;
    assert_eq!(
        overview["goals"][1]["goal"]["kind"],
        "learned_mac_per_pixel"
    );
    let (status, _) = post_admin(
        app,
        "/api/admin/notes",
        &format!(r#"{{"body": "sharp edges", "experiment_id": {id}}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        f.lab.store.notes(Some(id)).await.unwrap()[0].body,
        "sharp edges"
    );

    let actions = f.lab.store.admin_actions(50).await.unwrap();
    let names: Vec<&str> = actions.iter().rev().map(|a| a.action.as_str()).collect();
    assert_eq!(
        names,
        [
            "pause", "resume", "stop", "rerun", "cancel", "promote", "budget", "goals", "note"
        ]
    );
    assert!(actions.iter().all(|a| a.actor == "tester"));
    let listed = get_json(app, "/api/actions").await;
    assert_eq!(listed["admin_actions"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn a_new_admin_token_is_stored_only_as_its_hash() {
    if std::env::var_os(codeclab_web::auth::TOKEN_ENV).is_some() {
        eprintln!("skipped: {} is set", codeclab_web::auth::TOKEN_ENV);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let (token, shown) = AdminToken::ensure(&store).await.unwrap();
    let secret = shown.expect("the first start makes a token");
    assert!(token.verify(&secret));
    let stored = store
        .setting(codeclab_web::auth::TOKEN_HASH_SETTING)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored.as_str().unwrap(), secret);
    assert_eq!(stored.as_str().unwrap().len(), 64);
    let (again, shown_again) = AdminToken::ensure(&store).await.unwrap();
    assert_eq!(shown_again, None);
    assert!(again.verify(&secret));
    assert!(!again.verify("something else"));
}

/// Processes starting at once on a lab without a token (separate stores, as separate
/// processes have) end with one token: exactly one of them shows it, and all accept it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_starting_at_once_agree_on_one_admin_token() {
    if std::env::var_os(codeclab_web::auth::TOKEN_ENV).is_some() {
        eprintln!("skipped: {} is set", codeclab_web::auth::TOKEN_ENV);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open_data_dir(dir.path()).await.unwrap());
    let processes = 8;
    let together = Arc::new(tokio::sync::Barrier::new(processes));
    let mut starts = Vec::new();
    for _ in 0..processes {
        let path = dir.path().to_path_buf();
        let together = together.clone();
        starts.push(tokio::spawn(async move {
            let store = Store::open_data_dir(&path).await.unwrap();
            together.wait().await;
            AdminToken::ensure(&store).await.unwrap()
        }));
    }
    let mut tokens = Vec::new();
    for start in starts {
        tokens.push(start.await.unwrap());
    }
    let shown: Vec<&String> = tokens.iter().filter_map(|(_, s)| s.as_ref()).collect();
    assert_eq!(shown.len(), 1, "one process shows the new token");
    for (token, _) in &tokens {
        assert!(token.verify(shown[0]));
    }
}

/// The data line of the next server-sent `update` event.
async fn next_update(
    stream: &mut (impl futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
) -> serde_json::Value {
    use futures::StreamExt;
    let mut text = String::new();
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
            .await
            .expect("an update within 30 s")
            .expect("the stream stays open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(end) = text.find("\n\n") {
            let event = text[..end].to_string();
            text.drain(..end + 2);
            if event.lines().any(|l| l == "event: update") {
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("a data line");
                return serde_json::from_str(data).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn the_live_stream_sends_the_status_and_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let artifacts = Artifacts::open(&dir.path().join("artifacts").display().to_string()).unwrap();
    let lab = Arc::new(Lab::new(store, artifacts, dir.path().to_path_buf()));
    let app = codeclab_web::router(lab.clone(), WebConfig::new(AdminToken::from_secret(TOKEN)));
    let response = app
        .oneshot(Request::get("/api/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut stream = response.into_body().into_data_stream();
    let first = next_update(&mut stream).await;
    assert_eq!(first["status"]["state"], "stopped");
    assert_eq!(first["total"], 0);
    lab.store
        .set_lab_status(&codeclab_lab::store::control::LabStatus::new(
            RunState::Paused,
            Some("for the test".into()),
            "admin:tester",
        ))
        .await
        .unwrap();
    let second = next_update(&mut stream).await;
    assert_eq!(second["status"]["state"], "paused");
    assert_eq!(second["status"]["reason"], "for the test");
}
