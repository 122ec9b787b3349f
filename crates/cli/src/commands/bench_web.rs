//! `codeclab bench web`: server-side rendering time of the dashboard's experiments table and
//! overview with a large store. The store is filled through the store API with synthetic but
//! complete rows (experiments with their RD points, analyses against anchor curves, program
//! rows and planner turns); the pages are requested through the router in-process, so the
//! figures are rendering plus store queries, without network or browser time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use codeclab_lab::Lab;
use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::experiment::{self, AnchorCurves, ExperimentSpec};
use codeclab_lab::process::StepCost;
use codeclab_lab::runner::{PointRecord, QualityMetric};
use codeclab_lab::spec::{RatePoint, sha256_hex};
use codeclab_lab::store::programs::{ProgramRecord, ProgramRole};
use codeclab_lab::store::{AnchorRecord, ClipRecord, PlannerLogEntry, Store, now_ms};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct BenchWebArgs {
    /// Experiments in the store (besides the anchor curves).
    #[arg(long, default_value_t = 10_000)]
    experiments: usize,
    /// Timed requests per page (after warm-up requests).
    #[arg(long, default_value_t = 40)]
    iterations: usize,
    #[arg(long)]
    json: bool,
}

/// The clips the synthetic experiments measure: (id, width, height, frames, kbps at QP 22).
const CLIPS: [(&str, usize, usize, u64, f64); 2] = [
    ("bench-qcif", 176, 144, 30, 260.0),
    ("bench-cif", 352, 288, 30, 900.0),
];
const QPS: [u32; 4] = [22, 27, 32, 37];
const ANCHORS: [&str; 2] = ["x264-medium", "x265-medium"];
const FPS: f64 = 30.0;

/// A small deterministic generator (xorshift64*), so every run fills the same store.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

/// One synthetic RD point: quality falls and rate halves every ~5.5 QP; `skill` shifts the
/// quality of a whole codec (dB), `efficiency` scales its rate; `learned_mac_per_pixel` is what
/// its streams declare (`None` for an anchor).
fn point(
    clip: usize,
    qp: u32,
    skill: f64,
    efficiency: f64,
    learned_mac_per_pixel: Option<f64>,
    rng: &mut Rng,
) -> PointRecord {
    let (id, width, height, frames, base_kbps) = CLIPS[clip];
    let step = f64::from(qp - QPS[0]);
    let kbps = base_kbps * efficiency * 2f64.powf(-step / 5.5) * rng.range(0.98, 1.02);
    let psnr_y = 44.0 - 0.52 * step + skill - clip as f64 * 1.5 + rng.range(-0.05, 0.05);
    let ssim = 1.0 - 0.9 * 10f64.powf(-(psnr_y - 20.0) / 18.0);
    let mut metrics = BTreeMap::new();
    metrics.insert("psnr_y".to_string(), psnr_y);
    metrics.insert("psnr_u".to_string(), psnr_y + 2.1);
    metrics.insert("psnr_v".to_string(), psnr_y + 2.4);
    metrics.insert(
        "psnr_yuv".to_string(),
        (6.0 * psnr_y + psnr_y + 2.1 + psnr_y + 2.4) / 8.0,
    );
    metrics.insert("psnr_y_global".to_string(), psnr_y - 0.1);
    metrics.insert("ssim".to_string(), ssim);
    metrics.insert("ms_ssim".to_string(), 1.0 - 0.7 * (1.0 - ssim));
    metrics.insert(
        "vmaf".to_string(),
        (4.2 * (psnr_y - 24.0)).clamp(0.0, 100.0),
    );
    let bytes = (kbps * 1000.0 / 8.0 * frames as f64 / FPS).round() as u64;
    let pixels = (width * height) as f64 * frames as f64;
    PointRecord {
        rate_point: RatePoint::Qp(qp),
        clip_sha256: sha256_hex(id.as_bytes()),
        frames,
        width,
        height,
        fps: "30/1".into(),
        bytes,
        kbps,
        metrics,
        encode: StepCost {
            wall_seconds: pixels * rng.range(2e-7, 6e-7),
            cpu_seconds: Some(pixels * 4e-7),
            peak_memory_bytes: Some(48 << 20),
        },
        decode: StepCost {
            wall_seconds: pixels * rng.range(2e-8, 5e-8),
            cpu_seconds: Some(pixels * 3e-8),
            peak_memory_bytes: Some(24 << 20),
        },
        decoder_instructions_per_pixel: Some(rng.range(40.0, 140.0)),
        learned_mac_per_pixel,
        bitstream_sha256: sha256_hex(format!("{id}/{qp}/{}", rng.next_u64()).as_bytes()),
        codec_version: "synthetic".into(),
    }
}

fn spec(
    codec: serde_json::Value,
    proposer: &str,
    parents: Vec<i64>,
    hypothesis: &str,
) -> ExperimentSpec {
    ExperimentSpec {
        codec,
        parents,
        proposer: proposer.into(),
        hypothesis: hypothesis.into(),
        clips: CLIPS.iter().map(|c| c.0.to_string()).collect(),
        rate_points: QPS.map(RatePoint::Qp).to_vec(),
        anchors: ANCHORS.iter().map(|a| a.to_string()).collect(),
    }
}

/// Claims and hands in every queued job of the experiment just submitted, with synthetic
/// points; returns the experiment's curves.
async fn measure(
    store: &Store,
    skill: f64,
    efficiency: f64,
    learned_mac_per_pixel: Option<f64>,
    rng: &mut Rng,
) -> anyhow::Result<BTreeMap<String, Vec<PointRecord>>> {
    let mut curves: BTreeMap<String, Vec<PointRecord>> = BTreeMap::new();
    while let Some(job) = store.claim_job("bench", 60_000).await? {
        let clip = CLIPS
            .iter()
            .position(|c| c.0 == job.clip_id)
            .context("a job on an unknown clip")?;
        let qp = QPS[job.rate_index as usize];
        let record = point(clip, qp, skill, efficiency, learned_mac_per_pixel, rng);
        store.finish_job(&job, "bench", &record).await?;
        curves.entry(job.clip_id.clone()).or_default().push(record);
    }
    for points in curves.values_mut() {
        points.sort_by(|a, b| b.kbps.total_cmp(&a.kbps));
    }
    Ok(curves)
}

/// What the fill wrote.
#[derive(serde::Serialize)]
struct Filled {
    experiments: usize,
    anchors: usize,
    points: usize,
    planner_turns: usize,
    programs: usize,
    seconds: f64,
}

/// Fills an empty store with `count` experiments (plus the anchor curves): most analysed, some
/// failed, cancelled, running and queued; planner candidates with program rows in lineages,
/// and planner turns for the LLM's.
async fn fill(lab: &Lab, count: usize, progress: &ProgressBar) -> anyhow::Result<Filled> {
    let store = &lab.store;
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut filled = Filled {
        experiments: 0,
        anchors: 0,
        points: 0,
        planner_turns: 0,
        programs: 0,
        seconds: 0.0,
    };
    for (id, width, height, frames, _) in CLIPS {
        store
            .put_clip(&ClipRecord {
                id: id.into(),
                sha256: sha256_hex(id.as_bytes()),
                width: width as i64,
                height: height as i64,
                frames: frames as i64,
                fps: "30/1".into(),
                clip_set: if id == CLIPS[0].0 { "dev" } else { "holdout" }.into(),
                class: "synthetic".into(),
            })
            .await?;
    }

    // The anchors' curves, one experiment per (anchor, clip) as `baseline` makes them.
    let mut anchor_curves: AnchorCurves = BTreeMap::new();
    for (index, anchor) in ANCHORS.iter().enumerate() {
        for (clip, ..) in CLIPS {
            let codec = serde_json::json!({"kind": "ffmpeg", "encoder": anchor.split('-').next()});
            let mut anchor_spec = spec(
                codec,
                "baseline",
                vec![],
                &format!("anchor curve of {anchor} on {clip}"),
            );
            anchor_spec.clips = vec![clip.into()];
            anchor_spec.anchors.clear();
            let id = store.submit(&anchor_spec, None, Some(anchor), 3).await?;
            let curves = measure(store, index as f64 * 0.4, 1.0, None, &mut rng).await?;
            filled.points += curves.values().map(Vec::len).sum::<usize>();
            store
                .put_anchor(&AnchorRecord {
                    key: format!("{anchor}/{clip}/synthetic"),
                    name: anchor.to_string(),
                    clip_id: clip.into(),
                    experiment_id: id,
                })
                .await?;
            let analysis = experiment::analyse(curves.clone(), &BTreeMap::new());
            store
                .record_analysis(id, &serde_json::to_value(&analysis)?)
                .await?;
            for (clip_id, points) in curves {
                anchor_curves
                    .entry(anchor.to_string())
                    .or_default()
                    .insert(clip_id, Ok(points));
            }
            filled.anchors += 1;
        }
    }

    // The last few stay queued or running, as in a live lab.
    let open_tail = (count / 500).clamp(1, 20);
    let mut last_candidate: BTreeMap<&str, i64> = BTreeMap::new();
    for n in 0..count {
        let roll = rng.unit();
        let proposer = match n % 20 {
            0 | 1 => "user",
            2..=10 => "evolution",
            _ => "llm",
        };
        let skill = rng.range(-1.5, 1.0);
        let efficiency = rng.range(0.85, 1.25);
        let genome = serde_json::json!({
            "lambda_scale": (rng.range(0.6, 1.6) * 100.0).round() / 100.0,
            "me_range": 8 * (1 + rng.next_u64() % 8),
            "deblock": rng.unit() < 0.8,
            "rdoq": rng.unit() < 0.7,
        });
        let hypothesis = format!(
            "lambda {} with motion range {} trades rate for detail",
            genome["lambda_scale"], genome["me_range"]
        );
        let parents: Vec<i64> = last_candidate.get(proposer).copied().into_iter().collect();
        let experiment_spec = spec(
            serde_json::json!({"kind": "lab", "genome": genome}),
            proposer,
            parents.clone(),
            &hypothesis,
        );
        let planner_turn = if proposer == "llm" {
            let prompt = format!(
                "You evolve a video codec. Recent results (BD-rate vs x265-medium, PSNR-Y):\n{}\n\
                 Propose the next genome as JSON, with a one-line hypothesis.",
                (0..24)
                    .map(|i| format!(
                        "  experiment {}: {:+.2} %",
                        n.saturating_sub(i),
                        rng.range(-5.0, 15.0)
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            let reply = serde_json::json!({"hypothesis": hypothesis, "genome": genome}).to_string();
            let input_tokens = (prompt.len() / 4) as i64;
            let output_tokens = (reply.len() / 4) as i64;
            Some(
                store
                    .log_planner(&PlannerLogEntry {
                        experiment_id: None,
                        planner: "llm".into(),
                        model: Some("synthetic".into()),
                        prompt,
                        reply,
                        hypothesis: Some(hypothesis.clone()),
                        reasoning: "The last three candidates gained with a lower lambda; \
                                    widen the motion search to keep the gain on panning clips."
                            .into(),
                        outcome: "proposed".into(),
                        detail: None,
                        input_tokens: Some(input_tokens),
                        output_tokens: Some(output_tokens),
                        cost_usd: Some(input_tokens as f64 * 3e-6 + output_tokens as f64 * 15e-6),
                    })
                    .await?,
            )
        } else {
            None
        };
        let id = store.submit(&experiment_spec, None, None, 3).await?;
        filled.experiments += 1;
        if let Some(turn) = planner_turn {
            store.link_planner_turn(turn, id).await?;
            filled.planner_turns += 1;
        }
        if proposer != "user" {
            store
                .put_program(&ProgramRecord {
                    experiment_id: id,
                    run_id: "bench".into(),
                    planner: proposer.into(),
                    role: ProgramRole::Candidate,
                    parent: parents.first().copied(),
                    island: (n % 4) as i64,
                    stage: "dev".into(),
                    genome: experiment_spec.codec["genome"].clone(),
                    edits: serde_json::json!([]),
                    features: None,
                    fitness: None,
                    scores: None,
                    created_at: now_ms(),
                })
                .await?;
            filled.programs += 1;
            last_candidate.insert(proposer, id);
        }
        progress.inc(1);
        if n + open_tail >= count {
            // The last experiments stay open: every other one claims the oldest queued job,
            // so the earlier of them run and the later ones wait in the queue.
            if n % 2 == 0 {
                let job = store.claim_job("bench", 3_600_000).await?;
                anyhow::ensure!(job.is_some(), "a queued job vanished");
            }
            continue;
        }
        if roll < 0.06 {
            let job = store
                .claim_job("bench", 60_000)
                .await?
                .context("a queued job vanished")?;
            store
                .fail_job(
                    &job,
                    "decoded frame 3 differs from the encoder's reconstruction",
                )
                .await?;
            continue;
        }
        if roll < 0.08 {
            store.cancel(id, "cancelled by the operator").await?;
            continue;
        }
        // The synthetic genomes leave the learned filter off.
        let curves = measure(store, skill, efficiency, Some(0.0), &mut rng).await?;
        filled.points += curves.values().map(Vec::len).sum::<usize>();
        let analysis = experiment::analyse(curves, &anchor_curves);
        let fitness = analysis
            .bd_rates
            .iter()
            .find(|bd| bd.anchor == ANCHORS[1] && bd.metric == QualityMetric::PsnrY)
            .and_then(|bd| bd.report.as_ref())
            .and_then(|report| report["mean"]["pchip"].as_f64());
        if proposer != "user" {
            store
                .set_program_result(
                    id,
                    None,
                    fitness,
                    &serde_json::to_value(&analysis.bd_rates)?,
                )
                .await?;
        }
        store
            .record_analysis(id, &serde_json::to_value(&analysis)?)
            .await?;
    }
    filled.seconds = started.elapsed().as_secs_f64();
    Ok(filled)
}

/// Median and 95th percentile of request times for one page.
#[derive(serde::Serialize)]
struct PageTiming {
    page: String,
    path: String,
    bytes: usize,
    median_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn time_page(
    router: &axum::Router,
    page: &str,
    path: &str,
    iterations: usize,
) -> anyhow::Result<PageTiming> {
    use tower::ServiceExt;
    let mut times = Vec::with_capacity(iterations);
    let mut bytes = 0;
    for round in 0..iterations + 3 {
        let request = axum::http::Request::get(path).body(axum::body::Body::empty())?;
        let started = Instant::now();
        let response = router.clone().oneshot(request).await?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            status.is_success(),
            "{path} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(400)])
        );
        bytes = body.len();
        // The first requests warm the store's connections and caches.
        if round >= 3 {
            times.push(elapsed);
        }
    }
    times.sort();
    Ok(PageTiming {
        page: page.into(),
        path: path.into(),
        bytes,
        median_ms: percentile(&times, 0.5),
        p95_ms: percentile(&times, 0.95),
        max_ms: percentile(&times, 1.0),
    })
}

pub fn run(args: BenchWebArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.iterations > 0, "--iterations must be at least 1");
    super::run::runtime()?.block_on(async move {
        let dir = tempfile::Builder::new()
            .prefix("codeclab-bench-web-")
            .tempdir()?;
        let store = Store::open_data_dir(dir.path()).await?;
        let artifacts = Artifacts::open(&dir.path().join("artifacts").display().to_string())?;
        let lab = Arc::new(Lab::new(store, artifacts, dir.path().to_path_buf()));

        let progress = ProgressBar::new(args.experiments as u64);
        progress.set_style(ProgressStyle::with_template(
            "filling the store {bar:40} {pos}/{len} experiments ({per_sec}, eta {eta})",
        )?);
        let filled = fill(&lab, args.experiments, &progress).await?;
        progress.finish_and_clear();
        eprintln!(
            "filled in {:.1} s: {} experiments ({} anchor curves), {} RD points, {} program rows, {} planner turns (synthetic values)",
            filled.seconds,
            filled.experiments,
            filled.anchors,
            filled.points,
            filled.programs,
            filled.planner_turns
        );

        // The pages timed here are read-only: the token is never presented.
        let (token, _) = codeclab_web::AdminToken::ensure(&lab.store).await?;
        let router = codeclab_web::router(lab.clone(), codeclab_web::WebConfig::new(token));
        let pages = [
            ("overview", "/"),
            ("experiments, first page", "/experiments"),
            ("experiments, page 50", "/experiments?page=50"),
            ("experiments, sorted by PSNR-Y BD-rate", "/experiments?sort=bd_psnr_y&dir=asc"),
            ("experiments, filtered (llm, analysed)", "/experiments?proposer=llm&state=analysed"),
            ("overview API", "/api/overview"),
            ("experiments API", "/api/experiments"),
        ];
        let mut timings = Vec::new();
        for (page, path) in pages {
            timings.push(time_page(&router, page, path, args.iterations).await?);
        }
        lab.store.close().await;

        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "store": filled,
                    "iterations": args.iterations,
                    "pages": timings,
                }))?
            );
        } else {
            println!(
                "{} experiments in the store; {} timed requests per page (median / p95 / max, ms):",
                filled.experiments + filled.anchors,
                args.iterations
            );
            for t in &timings {
                println!(
                    "  {:<42} {:>8.2} {:>8.2} {:>8.2}   {:>8} bytes  {}",
                    t.page, t.median_ms, t.p95_ms, t.max_ms, t.bytes, t.path
                );
            }
        }
        Ok(())
    })
}
