//! The dashboard in headless Chromium, against a lab with real experiments (see
//! `support/fixture.rs`): every page loads, the numbers it shows equal what
//! `codeclab experiment show --json` prints, the admin buttons answer 403 and change nothing
//! without the token (or with a wrong one) and act with it, an unknown experiment gets a clear
//! error page, no page or API reply holds the token or an API key, and every page is saved as
//! a PNG under `CARGO_TARGET_TMPDIR/screenshots/`.
//!
//! Skipped, with the reason printed, where Chromium is not installed (outside CI: CI installs
//! it through `scripts/setup-deps.sh --for-tests`, and there a missing Chromium fails).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use codeclab_lab::Lab;
use codeclab_lab::store::ExperimentState;
use codeclab_lab::store::control::RunState;
use codeclab_lab::store::listing::SUMMARY_ANCHOR;
use codeclab_web::{AdminToken, WebConfig};
use serde_json::Value;
use support::cdp::{Browser, Page, find_chromium};
use support::fixture::{self, FixtureLab};

/// The admin token the server is started with (through `CODECLAB_ADMIN_TOKEN`).
const TOKEN: &str = "browser-test-token-7d41c9e2b8";
/// Put in every API-key variable of the server's environment; no reply may contain it.
const API_KEY_SENTINEL: &str = "sk-sentinel-never-shown-3f9a61";
const API_KEY_VARIABLES: [&str; 3] = [
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "CODECLAB_LLM_API_KEY",
];
/// Set in the child process that runs the checks (see `dashboard_in_headless_chromium`).
const CHILD_MARKER: &str = "CODECLAB_BROWSER_TEST_CHILD";
const TEST_NAME: &str = "dashboard_in_headless_chromium";

#[test]
fn dashboard_in_headless_chromium() {
    let Some(chromium) = find_chromium() else {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "chromium is not installed: CI must install it (scripts/setup-deps.sh --for-tests)"
        );
        eprintln!("skipped: chromium is not installed (scripts/setup-deps.sh --for-tests)");
        return;
    };
    if std::env::var_os(CHILD_MARKER).is_none() {
        // The checks run in a child process of this test binary whose environment holds the
        // token and the API-key sentinels from the start: a process cannot safely change its
        // own environment once threads run.
        let mut child = Command::new(std::env::current_exe().expect("the test binary's path"));
        child
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_MARKER, "1")
            .env(codeclab_web::auth::TOKEN_ENV, TOKEN);
        for variable in API_KEY_VARIABLES {
            child.env(variable, API_KEY_SENTINEL);
        }
        let status = child.status().expect("running the browser checks");
        assert!(status.success(), "the browser checks failed ({status})");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let data_dir = tmp.join("browser-lab");
    let _ = std::fs::remove_dir_all(&data_dir);
    let fixture = runtime.block_on(fixture::build(&data_dir));
    let base = runtime.block_on(start_server(fixture.lab.clone()));
    let screenshots = tmp.join("screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).expect("creating the screenshot folder");

    let mut browser = Browser::launch(&chromium).expect("starting chromium");
    let mut page = browser.new_page().expect("opening a tab");
    let mut check = Checks {
        page: &mut page,
        runtime: &runtime,
        fixture: &fixture,
        base,
        screenshots,
        shots: Vec::new(),
    };
    check.overview();
    check.experiments_table();
    check.experiment_page(fixture.child, "experiment-child");
    check.experiment_page(fixture.parent, "experiment-parent");
    if let Some(&anchor) = fixture.anchors.first() {
        check.experiment_page(anchor, "experiment-anchor");
    }
    check.evolution();
    check.unknown_experiment();
    check.admin_flow();
    check.no_secret_in_api();
    check.screenshots_are_pictures();
}

/// Serves the dashboard on a free loopback port; returns its base URL.
async fn start_server(lab: Arc<Lab>) -> String {
    let (token, shown) = AdminToken::ensure(&lab.store)
        .await
        .expect("the admin token");
    assert!(
        shown.is_none(),
        "a token from the environment is never generated"
    );
    let router = codeclab_web::router(lab, WebConfig::new(token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let address = listener.local_addr().expect("the bound address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the dashboard server");
    });
    format!("http://{address}")
}

/// `[data-field="NAME"]`.
fn field(name: &str) -> String {
    format!("[data-field=\"{}\"]", name.replace('"', "\\\""))
}

/// Equal up to the last bits a decimal round trip may change.
fn same_number(shown: f64, expected: f64) -> bool {
    (shown - expected).abs() <= 1e-9 * expected.abs().max(1.0)
}

struct Checks<'p, 'b> {
    page: &'p mut Page<'b>,
    runtime: &'p tokio::runtime::Runtime,
    fixture: &'p FixtureLab,
    base: String,
    screenshots: PathBuf,
    shots: Vec<PathBuf>,
}

impl Checks<'_, '_> {
    fn lab(&self) -> &Lab {
        &self.fixture.lab
    }

    /// Loads a page, checks that it holds no secret, and saves its screenshot as `name`.
    fn visit(&mut self, path: &str, ready: &str, name: &str) {
        let url = format!("{}{path}", self.base);
        self.page
            .goto(&url)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        self.page
            .wait_for(ready)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        self.assert_no_secret(path);
        self.screenshot(name);
    }

    fn screenshot(&mut self, name: &str) {
        let png = self.page.screenshot().expect("a screenshot");
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing a screenshot");
        self.shots.push(path);
    }

    fn assert_no_secret(&mut self, what: &str) {
        let html = self.page.html().expect("the page's HTML");
        assert!(!html.contains(TOKEN), "{what} shows the admin token");
        assert!(!html.contains(API_KEY_SENTINEL), "{what} shows an API key");
    }

    fn text(&mut self, name: &str) -> String {
        self.page
            .text(&field(name))
            .unwrap_or_else(|e| panic!("field {name}: {e}"))
    }

    /// The full-precision number of a field (`None`: shown as not measured).
    fn number(&mut self, name: &str) -> Option<f64> {
        let value = self
            .page
            .attribute(&field(name), "data-value")
            .unwrap_or_else(|e| panic!("field {name}: {e}"))?;
        Some(
            value
                .parse()
                .unwrap_or_else(|_| panic!("field {name} has data-value {value:?}")),
        )
    }

    /// A field shows `expected`, or says "not measured" when there is none.
    fn assert_number(&mut self, name: &str, expected: Option<f64>) {
        let shown = self.number(name);
        match expected {
            Some(expected) => {
                let shown = shown.unwrap_or_else(|| panic!("field {name} shows no number"));
                assert!(
                    same_number(shown, expected),
                    "field {name} shows {shown}, experiment show --json says {expected}"
                );
            }
            None => {
                assert_eq!(
                    shown, None,
                    "field {name} shows a number where none was measured"
                );
                let text = self.text(name);
                assert!(
                    text.contains("not measured"),
                    "field {name} says {text:?} for a value that was not measured"
                );
            }
        }
    }

    fn show_json(&self, id: i64) -> Value {
        self.runtime.block_on(fixture::show_json(self.lab(), id))
    }

    fn experiments(&self) -> Vec<codeclab_lab::store::ExperimentRecord> {
        self.runtime
            .block_on(self.lab().store.experiments(None, 100_000))
            .expect("listing experiments")
    }

    fn overview(&mut self) {
        self.visit("/", &field("status"), "overview");
        let status = self.text("status");
        assert!(status.contains("running"), "the overview says {status:?}");
        let experiments = self.experiments();
        let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
        for record in &experiments {
            *by_state.entry(record.state.name()).or_default() += 1;
        }
        for state in [
            ExperimentState::Queued,
            ExperimentState::Running,
            ExperimentState::Completed,
            ExperimentState::Failed,
            ExperimentState::Analysed,
            ExperimentState::Cancelled,
        ] {
            let expected = by_state.get(state.name()).copied().unwrap_or(0) as f64;
            self.assert_number(&format!("count:{}", state.name()), Some(expected));
        }
        self.assert_number("count:total", Some(experiments.len() as f64));
        let hypothesis = self.text("planner:hypothesis");
        assert!(
            hypothesis.contains(fixture::HYPOTHESIS),
            "the overview's planner hypothesis is {hypothesis:?}"
        );
    }

    fn experiments_table(&mut self) {
        self.visit("/experiments", &field("experiments-total"), "experiments");
        let experiments = self.experiments();
        self.assert_number("experiments-total", Some(experiments.len() as f64));
        for record in &experiments {
            let id = record.id;
            assert!(
                self.page.exists(&format!("tr[data-id=\"{id}\"]")).unwrap(),
                "experiment {id} has no row"
            );
            let state = self.text(&format!("row:{id}:state"));
            assert!(
                state.contains(record.state.name()),
                "row {id} says {state:?}"
            );
            let proposer = self.text(&format!("row:{id}:proposer"));
            assert!(
                proposer.contains(&record.spec.proposer),
                "row {id} says {proposer:?}"
            );
        }
        // The table's BD-rate columns compare with the summary anchor.
        for id in [self.fixture.parent, self.fixture.child] {
            let show = self.show_json(id);
            for (column, metric) in [
                ("bd_psnr_y", "psnr_y"),
                ("bd_vmaf", "vmaf"),
                ("bd_ssim", "ssim"),
            ] {
                let expected = bd_mean(&show, SUMMARY_ANCHOR, metric);
                self.assert_number(&format!("row:{id}:{column}"), expected);
            }
        }

        // Sorting by a column orders the rows by it.
        self.page.click("a[data-sort=\"bd_psnr_y\"]").unwrap();
        self.page
            .wait_until(
                "location.search.includes('sort=bd_psnr_y')",
                "the sorted table",
            )
            .unwrap();
        self.page.wait_for(&field("experiments-total")).unwrap();
        let descending = self
            .page
            .eval("new URLSearchParams(location.search).get('dir') === 'desc'")
            .unwrap()
            == Value::Bool(true);
        let ids = self.row_ids();
        let values: Vec<f64> = ids
            .iter()
            .filter_map(|id| self.number(&format!("row:{id}:bd_psnr_y")))
            .collect();
        let ordered = values.windows(2).all(|pair| {
            if descending {
                pair[0] >= pair[1]
            } else {
                pair[0] <= pair[1]
            }
        });
        assert!(
            ordered,
            "sorted by PSNR-Y BD-rate, the rows show {values:?}"
        );
        self.screenshot("experiments-sorted");

        // Filtering by proposer leaves the planner's candidate alone.
        let filtered = format!("/experiments?proposer={}", fixture::PLANNER);
        self.visit(
            &filtered,
            &field("experiments-total"),
            "experiments-filtered",
        );
        self.assert_number("experiments-total", Some(1.0));
        assert_eq!(self.row_ids(), vec![self.fixture.child]);

        // One row per page: the pager walks through them.
        self.visit(
            "/experiments?per_page=1",
            &field("page"),
            "experiments-paged",
        );
        let first = self.row_ids();
        assert_eq!(first.len(), 1, "one row per page, got {first:?}");
        let total = experiments.len();
        let pager = self.text("page");
        assert!(
            pager.contains(&format!("1 of {total}")),
            "the pager says {pager:?}"
        );
        self.page.click("#page-next").unwrap();
        self.page
            .wait_until(
                &format!(
                    "(e => e && e.innerText.includes('2 of {total}'))(document.querySelector('{}'))",
                    field("page").replace('\'', "\\'")
                ),
                "the second page",
            )
            .unwrap();
        let second = self.row_ids();
        assert_eq!(second.len(), 1);
        assert_ne!(first, second, "the next page shows the same row");
    }

    fn row_ids(&mut self) -> Vec<i64> {
        let ids = self
            .page
            .eval("Array.from(document.querySelectorAll('tr[data-id]'), r => Number(r.dataset.id))")
            .unwrap();
        serde_json::from_value(ids).expect("row ids")
    }

    fn experiment_page(&mut self, id: i64, name: &str) {
        self.visit(&format!("/experiments/{id}"), &field("experiment:id"), name);
        let show = self.show_json(id);
        let record = &show["experiment"];
        self.assert_number("experiment:id", Some(id as f64));
        let state = self.text("experiment:state");
        assert_eq!(
            state.trim(),
            record["state"].as_str().unwrap(),
            "experiment {id}"
        );
        let proposer = self.text("experiment:proposer");
        assert!(proposer.contains(record["spec"]["proposer"].as_str().unwrap()));
        for (state, count) in show["jobs"].as_object().unwrap() {
            self.assert_number(&format!("jobs:{state}"), count.as_f64());
        }

        let analysis = &show["analysis"];
        assert!(
            analysis.is_object(),
            "the fixture's experiment {id} is analysed"
        );
        // The RD table: every point of every clip, every number.
        for (clip, points) in analysis["curves"].as_object().unwrap() {
            for (index, point) in points.as_array().unwrap().iter().enumerate() {
                let metric = |key: &str| point["metrics"][key].as_f64();
                let expected = [
                    ("kbps", point["kbps"].as_f64()),
                    ("bytes", point["bytes"].as_f64()),
                    ("psnr_y", metric("psnr_y")),
                    ("psnr_yuv", metric("psnr_yuv")),
                    ("ssim", metric("ssim")),
                    ("ms_ssim", metric("ms_ssim")),
                    ("vmaf", metric("vmaf")),
                    ("encode_s", point["encode"]["wall_seconds"].as_f64()),
                    ("decode_s", point["decode"]["wall_seconds"].as_f64()),
                    (
                        "decoder_ipp",
                        point["decoder_instructions_per_pixel"].as_f64(),
                    ),
                    ("learned_mac", point["learned_mac_per_pixel"].as_f64()),
                ];
                for (key, value) in expected {
                    self.assert_number(&format!("rd:{clip}:{index}:{key}"), value);
                }
            }
        }
        // BD-rates: the mean and each clip, for every anchor and metric compared.
        for bd in analysis["bd_rates"].as_array().unwrap() {
            let anchor = bd["anchor"].as_str().unwrap();
            let metric = bd["metric"].as_str().unwrap();
            let mean = format!("bd-rate:{anchor}:{metric}:mean");
            let required = ["psnr_y", "vmaf", "ssim"].contains(&metric);
            if !required && !self.page.exists(&field(&mean)).unwrap() {
                continue;
            }
            let report = &bd["report"];
            self.assert_number(&mean, report["mean"]["pchip"].as_f64());
            for clip in report["clips"].as_array().into_iter().flatten() {
                let name = clip["clip"].as_str().unwrap();
                self.assert_number(
                    &format!("bd-rate:{anchor}:{metric}:{name}"),
                    clip["report"]["pchip"].as_f64(),
                );
            }
        }
        // The runner keeps every point's per-frame scores: the plot is drawn from them.
        let per_frame = self
            .page
            .attribute(&field("per-frame"), "data-value")
            .unwrap();
        assert_eq!(per_frame.as_deref(), Some("measured"), "experiment {id}");
        assert!(
            self.page.exists("[data-chart]").unwrap(),
            "experiment {id} has no chart"
        );

        // The frame viewer decodes the stored bitstream: all three pictures load.
        for image in ["#frame-source", "#frame-decoded", "#frame-diff"] {
            self.page
                .wait_until(
                    &format!(
                        "(i => i && i.complete && i.naturalWidth > 0)(document.querySelector('{image}'))"
                    ),
                    &format!("{image} of experiment {id}"),
                )
                .unwrap();
        }

        if id == self.fixture.child {
            // textContent: the planner's texts may sit in collapsed sections.
            let body = self.page.eval("document.body.textContent").unwrap();
            let body = body.as_str().unwrap_or_default();
            // The genome diff against the parent and the planner turn behind it.
            assert!(
                body.contains("deblock_beta_offset"),
                "no genome diff on {id}"
            );
            assert!(body.contains(fixture::HYPOTHESIS), "no hypothesis on {id}");
            assert!(
                body.contains("loosen the filter thresholds"),
                "no reasoning on {id}"
            );
            assert!(body.contains("Propose a genome"), "no prompt on {id}");
        }
        // The page was complete before the screenshot of `visit`; take it again now that the
        // charts and frames have drawn.
        self.screenshot(name);
    }

    fn evolution(&mut self) {
        self.visit("/evolution", &field("programs-total"), "evolution");
        self.assert_number("programs-total", Some(2.0));
        assert!(
            self.page
                .exists(&format!("tr[data-id=\"{}\"]", self.fixture.child))
                .unwrap(),
            "the lineage has no row for the candidate"
        );
    }

    fn unknown_experiment(&mut self) {
        let unknown = 987_654;
        self.visit(
            &format!("/experiments/{unknown}"),
            &field("error-status"),
            "experiment-unknown",
        );
        let status = self.text("error-status");
        assert!(status.contains("404"), "the error page says {status:?}");
        let message = self.text("error-message");
        assert!(
            message.contains(&unknown.to_string()),
            "the error page does not name the id: {message:?}"
        );
        let code = self
            .page
            .eval(&format!(
                "fetch('/experiments/{unknown}').then(r => r.status)"
            ))
            .unwrap();
        assert_eq!(code, Value::from(404));
    }

    /// Clicks an admin button and returns the HTTP status the page reports.
    fn admin_click(&mut self, button: &str) -> u16 {
        self.page
            .eval("document.querySelector('#admin-message').removeAttribute('data-status')")
            .unwrap();
        self.page.click(button).unwrap();
        self.page
            .wait_until(
                "document.querySelector('#admin-message').hasAttribute('data-status')",
                &format!("the answer to {button}"),
            )
            .unwrap();
        let status = self
            .page
            .attribute("#admin-message", "data-status")
            .unwrap()
            .unwrap_or_default();
        status
            .parse()
            .unwrap_or_else(|_| panic!("#admin-message has data-status {status:?}"))
    }

    fn save_token(&mut self, token: &str) {
        self.page.type_into("#token-input", token).unwrap();
        self.page.click("#token-save").unwrap();
    }

    fn lab_state(&self) -> RunState {
        self.runtime
            .block_on(self.lab().store.lab_status())
            .expect("the lab status")
            .state
    }

    fn admin_actions(&self) -> Vec<codeclab_lab::store::control::AdminAction> {
        self.runtime
            .block_on(self.lab().store.admin_actions(1000))
            .expect("the admin actions")
    }

    fn wait_for_status(&mut self, word: &str) {
        self.page
            .wait_until(
                &format!(
                    "(e => e && e.innerText.includes('{word}'))(document.querySelector('{}'))",
                    field("status").replace('\'', "\\'")
                ),
                &format!("the status to show {word}"),
            )
            .unwrap();
    }

    fn admin_flow(&mut self) {
        let parent = self.fixture.parent;
        let experiments_before = self.experiments().len();
        let actions_before = self.admin_actions().len();

        // No token: refused, and nothing changes.
        self.visit("/", &field("status"), "overview-before-admin");
        self.page.eval("sessionStorage.clear()").unwrap();
        assert_eq!(self.admin_click("#pause"), 403);
        self.screenshot("overview-403");
        self.visit(
            &format!("/experiments/{parent}"),
            "#rerun",
            "experiment-before-rerun",
        );
        assert_eq!(self.admin_click("#rerun"), 403);
        // A wrong token: the same.
        self.visit("/", &field("status"), "overview-wrong-token");
        self.save_token("not-the-token");
        assert_eq!(self.admin_click("#pause"), 403);
        assert_eq!(self.lab_state(), RunState::Running);
        assert_eq!(self.admin_actions().len(), actions_before);
        assert_eq!(self.experiments().len(), experiments_before);

        // The token: pause, resume and rerun act and are recorded.
        self.save_token(TOKEN);
        let status = self.admin_click("#pause");
        assert!((200..300).contains(&status), "pause answered {status}");
        assert_eq!(self.lab_state(), RunState::Paused);
        self.wait_for_status("paused");
        self.screenshot("overview-paused");
        let status = self.admin_click("#resume");
        assert!((200..300).contains(&status), "resume answered {status}");
        assert_eq!(self.lab_state(), RunState::Running);
        self.wait_for_status("running");

        // The token stays with the tab from page to page.
        self.visit(
            &format!("/experiments/{parent}"),
            "#rerun",
            "experiment-rerun",
        );
        let status = self.admin_click("#rerun");
        assert!((200..300).contains(&status), "rerun answered {status}");
        let experiments = self.experiments();
        assert_eq!(experiments.len(), experiments_before + 1);
        let rerun = experiments
            .iter()
            .find(|e| e.rerun_of == Some(parent))
            .expect("the rerun is a new experiment linked to its original");
        self.visit(
            "/experiments",
            &field("experiments-total"),
            "experiments-after-rerun",
        );
        assert!(
            self.page
                .exists(&format!("tr[data-id=\"{}\"]", rerun.id))
                .unwrap(),
            "the rerun is not in the table"
        );

        let actions = self.admin_actions();
        let new: Vec<_> = actions[..actions.len() - actions_before]
            .iter()
            .rev()
            .collect();
        let names: Vec<&str> = new.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(new.len(), 3, "recorded admin actions: {names:?}");
        assert!(names[0].contains("pause"), "{names:?}");
        assert!(names[1].contains("resume"), "{names:?}");
        assert!(names[2].contains("rerun"), "{names:?}");
        assert_eq!(new[2].experiment_id, Some(parent));
        assert!(new.iter().all(|a| !a.actor.is_empty() && a.created_at > 0));
    }

    /// The JSON API, read from the page (same origin), holds no secret either.
    fn no_secret_in_api(&mut self) {
        let child = self.fixture.child;
        for path in [
            "/api/overview".to_string(),
            "/api/experiments".to_string(),
            format!("/api/experiments/{child}"),
            "/api/evolution".to_string(),
            "/api/planner".to_string(),
            "/api/events".to_string(),
            "/api/actions".to_string(),
        ] {
            let reply = self
                .page
                .eval(&format!(
                    "fetch('{path}').then(r => r.text().then(t => [r.status, t]))"
                ))
                .unwrap();
            assert_eq!(reply[0], Value::from(200), "{path}: {reply}");
            let text = reply[1].as_str().unwrap_or_default();
            assert!(!text.contains(TOKEN), "{path} holds the admin token");
            assert!(!text.contains(API_KEY_SENTINEL), "{path} holds an API key");
        }
    }

    /// Every screenshot is a real picture of a page: a PNG of at least 1280x900 with
    /// more than a handful of colours.
    fn screenshots_are_pictures(&mut self) {
        assert!(
            self.shots.len() >= 8,
            "only {} screenshots",
            self.shots.len()
        );
        for path in &self.shots {
            let bytes = std::fs::read(path).unwrap();
            let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
            let mut reader = decoder
                .read_info()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut pixels = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut pixels).unwrap();
            assert!(
                info.width >= 1280 && info.height >= 900,
                "{} is {}x{}",
                path.display(),
                info.width,
                info.height
            );
            assert_eq!(info.bit_depth, png::BitDepth::Eight);
            let samples = info.color_type.samples();
            let mut colours: BTreeMap<&[u8], usize> = BTreeMap::new();
            for pixel in pixels[..info.buffer_size()].chunks_exact(samples) {
                *colours.entry(pixel).or_default() += 1;
            }
            let total = (info.width * info.height) as usize;
            let commonest = colours.values().copied().max().unwrap_or(total);
            assert!(
                colours.len() >= 16 && commonest < total * 99 / 100,
                "{} is nearly blank: {} colours, the commonest on {commonest} of {total} pixels",
                path.display(),
                colours.len()
            );
        }
    }
}

/// The mean PCHIP BD-rate against `anchor` on `metric` in a `show --json` value.
fn bd_mean(show: &Value, anchor: &str, metric: &str) -> Option<f64> {
    show["analysis"]["bd_rates"]
        .as_array()?
        .iter()
        .find(|bd| bd["anchor"] == anchor && bd["metric"] == metric)?["report"]["mean"]["pchip"]
        .as_f64()
}
