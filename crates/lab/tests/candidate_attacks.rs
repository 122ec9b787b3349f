//! Hostile code candidates. Each is a SEARCH/REPLACE proposal inside an evolvable block of a
//! miniature codec with the lab codec's command line (`y4m_codec`), taken through the whole
//! pipeline: edit rules → static policy → offline build → sandboxed smoke test. Every attack must
//! end in a rejection whose text says what went wrong, and the pipeline must go on to build and
//! run the next, well-behaved candidate. Attacks the static policy stops are also built with the
//! policy bypassed, to show that the sandbox contains them as well.

mod common;
mod fixture_project;

use codeclab_lab::adapter::{AdapterConfig, CandidateLimits, adapter_for, bitstream_cap};
use codeclab_lab::candidate::{
    CodecCandidates, Edit, MIN_SMOKE_PSNR_Y, Policy, Rejection, SmokeFailure, SmokeReport,
    SourceTree, apply, prepare, smoke_test,
};
use codeclab_lab::runner::{RunnerConfig, SourceClip, run_point};
use codeclab_lab::sandbox::{Limits, Outcome, Stream};
use codeclab_lab::spec::RatePoint;
use codeclab_video::{VideoFormat, Y4mReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use codeclab_codec::Genome;
use codeclab_lab::LabError;
use codeclab_lab::config::LabConfig;
use codeclab_lab::planner::run_loop::LoopOptions;
use codeclab_lab::planner::{Planner, PlannerView, Proposal, Turn};
use codeclab_lab::store::programs::ProgramRole;
use fixture_project::FixtureProject;

const Y4M_CODEC: FixtureProject = FixtureProject {
    name: "y4m_codec",
    binary: "y4m-codec",
};
/// The smoke clip: a few tiny frames.
const WIDTH: usize = 64;
const HEIGHT: usize = 48;
const FRAMES: u64 = 3;
const QP: u8 = 32;

fn original() -> SourceTree {
    Y4M_CODEC.original()
}

/// A small 4:2:0 clip with texture and motion, written as Y4M into `dir`.
fn write_clip(dir: &Path) -> PathBuf {
    let mut y4m = format!("YUV4MPEG2 W{WIDTH} H{HEIGHT} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for frame in 0..FRAMES as usize {
        y4m.extend_from_slice(b"FRAME\n");
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                y4m.push(((x + frame) * 3 + y * 2 + (x * y) % 7) as u8);
            }
        }
        for plane in 0..2 {
            for y in 0..HEIGHT / 2 {
                for x in 0..WIDTH / 2 {
                    y4m.push((100 + plane * 40 + (x + y + frame) % 16) as u8);
                }
            }
        }
    }
    let path = dir.join("clip.y4m");
    std::fs::write(&path, y4m).unwrap();
    path
}

fn smoke_limits() -> Limits {
    Limits {
        wall_clock: Duration::from_secs(2),
        // Above the wall clock, so a runaway loop is stopped by the deadline, never by the
        // CPU limit first.
        cpu_seconds: 20,
        address_space_bytes: 1 << 30,
        ..Limits::default()
    }
}

fn build_sources(sources: &SourceTree) -> Result<PathBuf, Rejection> {
    Ok(Y4M_CODEC.build("attacks", sources, Duration::from_secs(300))?)
}

/// The lab's cascade up to the dev experiment: edits and policy, build, smoke test.
fn evaluate(edits: &[Edit], clip: &Path) -> Result<SmokeReport, Rejection> {
    let patched = prepare(&original(), edits, &Policy::default())?;
    smoke(&build_sources(&patched)?, clip)
}

/// The same with the static policy bypassed: only the edit rules, then build and smoke test.
fn evaluate_without_policy(edits: &[Edit], clip: &Path) -> Result<SmokeReport, Rejection> {
    let patched = apply(&original(), edits)?;
    smoke(&build_sources(&patched)?, clip)
}

fn smoke(binary: &Path, clip: &Path) -> Result<SmokeReport, Rejection> {
    smoke_test(
        binary,
        clip,
        FRAMES,
        QP,
        &serde_json::json!({}),
        &smoke_limits(),
    )
    .expect("the lab itself must not fail")
}

/// Replaces the body of the quantizer block's `step` function, which every encode calls.
fn quantizer(body: &str) -> Vec<Edit> {
    vec![Edit {
        block: "quantizer".into(),
        search: "    1 + qp / 8\n".into(),
        replace: body.into(),
    }]
}

/// A proposal that tries one hostile thing and what its rejection must say.
struct Attack {
    name: &'static str,
    edits: Vec<Edit>,
    check: fn(&Rejection) -> bool,
    says: &'static str,
}

fn attacks() -> Vec<Attack> {
    let huge_table = format!(
        "    const TABLE: &[u8] = b\"{}\";\n    TABLE[usize::from(qp)]\n",
        "7".repeat(64 * 1024)
    );
    vec![
        Attack {
            name: "open a file",
            edits: quantizer(
                "    let secret = std::fs::read_to_string(\"/etc/hostname\").unwrap_or_default();\n    1 + qp / 8 + secret.len() as u8\n",
            ),
            check: |r| matches!(r, Rejection::Policy(_)),
            says: "`std::fs` is not allowed",
        },
        Attack {
            name: "open a socket",
            edits: quantizer(
                "    let _ = std::net::TcpStream::connect(\"127.0.0.1:9\");\n    1 + qp / 8\n",
            ),
            check: |r| matches!(r, Rejection::Policy(_)),
            says: "`std::net` is not allowed",
        },
        Attack {
            name: "spawn a process",
            edits: quantizer(
                "    let _ = std::process::Command::new(\"/bin/sh\").status();\n    1 + qp / 8\n",
            ),
            check: |r| matches!(r, Rejection::Policy(_)),
            says: "`std::process` is not allowed",
        },
        Attack {
            name: "read an environment variable",
            edits: quantizer(
                "    let home = std::env::var(\"HOME\").unwrap_or_default();\n    1 + qp / 8 + home.len() as u8\n",
            ),
            check: |r| matches!(r, Rejection::Policy(_)),
            says: "`std::env` is not allowed",
        },
        Attack {
            name: "use unsafe",
            edits: quantizer("    let level = &qp as *const u8;\n    1 + unsafe { *level } / 8\n"),
            check: |r| matches!(r, Rejection::Policy(_)),
            says: "`unsafe` is not allowed",
        },
        Attack {
            name: "fork-bomb",
            edits: quantizer(
                "    loop {\n        let _ = std::process::Command::new(\"/proc/self/exe\").spawn();\n    }\n",
            ),
            check: |r| matches!(r, Rejection::Policy(_)),
            says: "`std::process` is not allowed",
        },
        Attack {
            name: "embed a huge table",
            edits: quantizer(&huge_table),
            check: |r| matches!(r, Rejection::Policy(_)),
            says: "compute tables instead of embedding them",
        },
        Attack {
            name: "edit outside an evolvable block",
            edits: vec![Edit {
                block: "quantizer".into(),
                search: "const MAGIC: &[u8; 4] = b\"YQC1\";".into(),
                replace: "const MAGIC: &[u8; 4] = b\"EVIL\";".into(),
            }],
            check: |r| matches!(r, Rejection::Edit(_)),
            says: "only evolvable blocks can change",
        },
        Attack {
            name: "loop forever",
            edits: quantizer(
                "    let mut spin = qp;\n    loop {\n        spin = std::hint::black_box(spin.wrapping_add(1));\n    }\n",
            ),
            check: |r| {
                matches!(
                    r,
                    Rejection::Run {
                        outcome: Outcome::Timeout { limit_ms: 2000 },
                        ..
                    }
                )
            },
            says: "killed after the wall-clock limit of 2000 ms",
        },
        Attack {
            name: "allocate 64 GiB",
            edits: quantizer(
                "    let huge = vec![qp; 64 << 30];\n    1 + huge[huge.len() - 1] / 8\n",
            ),
            check: |r| {
                matches!(
                    r,
                    Rejection::Run {
                        outcome: Outcome::OutOfMemory {
                            limit_bytes: 1073741824
                        },
                        ..
                    }
                )
            },
            says: "ran out of memory under the address-space limit of 1073741824 bytes",
        },
        Attack {
            name: "write 10 GiB to stdout",
            edits: quantizer(
                "    use std::io::Write as _;\n    let chunk = vec![qp; 1 << 20];\n    for _ in 0..10 << 10 {\n        let _ = std::io::stdout().write_all(&chunk);\n    }\n    1 + qp / 8\n",
            ),
            check: |r| {
                let cap = bitstream_cap(&clip_format(), FRAMES);
                matches!(
                    r,
                    Rejection::Run {
                        outcome: Outcome::OutputCap { stream: Stream::Stdout, cap_bytes },
                        ..
                    } if *cap_bytes == cap
                )
            },
            says: "killed for writing more than",
        },
    ]
}

fn clip_format() -> VideoFormat {
    let dir = tempfile::tempdir().unwrap();
    *Y4mReader::open(&write_clip(dir.path())).unwrap().format()
}

/// A proposal a planner could well make: a finer quantizer.
fn good_candidate() -> Vec<Edit> {
    quantizer("    1 + qp / 16\n")
}

fn assert_good(report: &SmokeReport) {
    assert_eq!(report.frames, FRAMES);
    assert_eq!((report.width, report.height), (WIDTH, HEIGHT));
    assert!(report.bitstream_bytes > 0);
    assert!(report.psnr_y > MIN_SMOKE_PSNR_Y, "{report:?}");
    // Both steps ran in the sandbox, which measured them.
    assert!(report.encode.cpu_seconds.is_some());
    assert!(report.decode.peak_memory_bytes.unwrap() > 0);
}

#[test]
fn every_attack_is_rejected_or_contained_and_the_next_candidate_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let clip = write_clip(dir.path());
    for attack in attacks() {
        let rejection = match evaluate(&attack.edits, &clip) {
            Ok(report) => panic!("`{}` was accepted: {report:?}", attack.name),
            Err(rejection) => rejection,
        };
        let text = rejection.to_string();
        assert!(
            (attack.check)(&rejection),
            "`{}` ended in the wrong stage: {text}",
            attack.name
        );
        assert!(
            text.contains(attack.says),
            "`{}`: the reason does not say \"{}\":\n{text}",
            attack.name,
            attack.says
        );
        // The reason survives the trip through the store.
        let stored: Rejection =
            serde_json::from_str(&serde_json::to_string(&rejection).unwrap()).unwrap();
        assert_eq!(stored, rejection);
    }
    let report = evaluate(&good_candidate(), &clip).unwrap_or_else(|r| panic!("{r}"));
    assert_good(&report);
}

#[test]
fn a_decoder_that_ignores_the_bitstream_fails_the_smoke_test_on_quality() {
    let dir = tempfile::tempdir().unwrap();
    let clip = write_clip(dir.path());
    let edits = [Edit {
        block: "reconstruction".into(),
        search: "    value.min(255) as u8\n".into(),
        replace: "    let _ = value;\n    0\n".into(),
    }];
    let rejection = evaluate(&edits, &clip).unwrap_err();
    let Rejection::Smoke(SmokeFailure::Quality { psnr_y, .. }) = &rejection else {
        panic!("expected a quality failure, got {rejection}");
    };
    assert!(psnr_y.0 < MIN_SMOKE_PSNR_Y);
    assert!(
        rejection
            .to_string()
            .contains("the decoder does not reproduce what was encoded"),
        "{rejection}"
    );
}

#[test]
fn with_the_policy_bypassed_the_sandbox_refuses_to_open_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let clip = write_clip(dir.path());
    let secret_file = dir.path().join("secret.txt");
    std::fs::write(&secret_file, "the-secret-value").unwrap();
    // The file is there, and this process can read it.
    assert!(std::fs::read_to_string(&secret_file).is_ok());
    let rejection = evaluate_without_policy(
        &quantizer(&format!(
            "    let secret = std::fs::read_to_string({:?}).expect(\"reading the secret\");\n    panic!(\"read {{secret}}\")\n",
            secret_file.display().to_string()
        )),
        &clip,
    )
    .unwrap_err();
    let Rejection::Run {
        outcome: Outcome::Failed { code: 101 },
        stderr_tail,
    } = &rejection
    else {
        panic!("expected the candidate to fail on the refused open, got {rejection}");
    };
    assert!(stderr_tail.contains("reading the secret"), "{stderr_tail}");
    assert!(stderr_tail.contains("Permission denied"), "{stderr_tail}");
    assert!(!stderr_tail.contains("the-secret-value"), "{stderr_tail}");
}

#[test]
fn with_the_policy_bypassed_the_sandbox_kills_a_candidate_that_opens_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let clip = write_clip(dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let rejection = evaluate_without_policy(
        &quantizer(&format!(
            "    use std::io::Write as _;\n    let mut peer = std::net::TcpStream::connect(\"{address}\").expect(\"connecting\");\n    let _ = peer.write_all(b\"leak\");\n    1 + qp / 8\n"
        )),
        &clip,
    )
    .unwrap_err();
    assert!(
        matches!(
            rejection,
            Rejection::Run {
                outcome: Outcome::ForbiddenSyscall,
                ..
            }
        ),
        "{rejection}"
    );
    assert!(
        rejection
            .to_string()
            .contains("outside the sandbox allowlist")
    );
    // Nothing reached the listener.
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "{accepted:?}"
    );
}

#[test]
fn with_the_policy_bypassed_the_sandbox_kills_a_process_spawn_and_a_fork_bomb() {
    let dir = tempfile::tempdir().unwrap();
    let clip = write_clip(dir.path());
    let marker = dir.path().join("spawned");
    let spawn = quantizer(&format!(
        "    let _ = std::process::Command::new(\"/bin/touch\").arg({:?}).status();\n    1 + qp / 8\n",
        marker.display().to_string()
    ));
    let fork_bomb = quantizer(
        "    loop {\n        let _ = std::process::Command::new(\"/proc/self/exe\").spawn();\n    }\n",
    );
    for edits in [spawn, fork_bomb] {
        let rejection = evaluate_without_policy(&edits, &clip).unwrap_err();
        assert!(
            matches!(
                rejection,
                Rejection::Run {
                    outcome: Outcome::ForbiddenSyscall,
                    ..
                }
            ),
            "{rejection}"
        );
    }
    assert!(!marker.exists(), "the spawned process ran");
}

#[test]
fn with_the_policy_bypassed_a_candidate_finds_the_environment_empty() {
    let dir = tempfile::tempdir().unwrap();
    let clip = write_clip(dir.path());
    // The lab's own environment is not empty: there is something to leak.
    assert!(std::env::var_os("PATH").is_some());
    // The candidate fails the smoke test if it can see any variable at all.
    let edits = quantizer(
        "    if let Some((name, _)) = std::env::vars_os().next() {\n        panic!(\"the environment leaks {name:?}\");\n    }\n    1 + qp / 8\n",
    );
    let report = evaluate_without_policy(&edits, &clip).unwrap_or_else(|r| panic!("{r}"));
    assert_good(&report);
}

/// A built candidate's `lab_binary` spec, as the loop submits it to the dev experiment.
fn lab_binary_spec(binary: &Path) -> serde_json::Value {
    serde_json::json!({
        "kind": "lab_binary",
        "binary": binary.display().to_string(),
        "genome": {},
    })
}

fn source_clip(path: &Path) -> SourceClip {
    SourceClip {
        id: "attacks".into(),
        path: path.to_path_buf(),
        sha256: codeclab_lab::spec::sha256_hex(&std::fs::read(path).unwrap()),
        format: clip_format(),
        frames: FRAMES,
    }
}

fn fast_candidate_limits() -> AdapterConfig {
    AdapterConfig {
        candidate_limits: CandidateLimits {
            base_time: Duration::from_secs(1),
            ..CandidateLimits::default()
        },
        ..AdapterConfig::default()
    }
}

#[test]
fn the_dev_experiment_measures_a_candidate_binary_through_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let clip = source_clip(&write_clip(dir.path()));
    let binary =
        build_sources(&prepare(&original(), &good_candidate(), &Policy::default()).unwrap())
            .unwrap_or_else(|r| panic!("{r}"));
    let adapter = adapter_for(&lab_binary_spec(&binary), &AdapterConfig::default()).unwrap();
    let mut config = RunnerConfig::new(dir.path().join("work"));
    config.callgrind_frames = 0;
    let output = run_point(
        adapter.as_ref(),
        &clip,
        RatePoint::Qp(u32::from(QP)),
        &config,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let record = &output.record;
    assert_eq!(record.frames, FRAMES);
    assert!(record.bytes > 0);
    assert!(record.metrics["psnr_y"] > MIN_SMOKE_PSNR_Y, "{record:?}");
    // The sandbox measured each step of the separate process.
    assert!(record.encode.cpu_seconds.is_some());
    assert!(record.decode.peak_memory_bytes.unwrap() > 0);
    // Untrusted code never runs under valgrind, outside the sandbox.
    assert_eq!(record.decoder_instructions_per_pixel, None);
}

#[test]
fn the_dev_experiment_stops_a_runaway_or_flooding_candidate_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let clip = source_clip(&write_clip(dir.path()));
    let mut config = RunnerConfig::new(dir.path().join("work"));
    config.callgrind_frames = 0;
    let runaway = quantizer("    loop {\n        std::hint::black_box(qp);\n    }\n");
    let flood = quantizer(
        "    use std::io::Write as _;\n    let chunk = vec![qp; 1 << 20];\n    loop {\n        let _ = std::io::stdout().write_all(&chunk);\n    }\n",
    );
    let cap = bitstream_cap(&clip.format, FRAMES);
    for (edits, says) in [
        (
            runaway,
            "the candidate was killed: wall-clock limit of 2 s".to_string(),
        ),
        (
            flood,
            format!("the candidate was killed: it wrote more than {cap} bytes to stdout"),
        ),
    ] {
        let binary = build_sources(&prepare(&original(), &edits, &Policy::default()).unwrap())
            .unwrap_or_else(|r| panic!("{r}"));
        let adapter = adapter_for(&lab_binary_spec(&binary), &fast_candidate_limits()).unwrap();
        let error = run_point(
            adapter.as_ref(),
            &clip,
            RatePoint::Qp(u32::from(QP)),
            &config,
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("encoder: "), "{error}");
        assert!(error.contains(&says), "{error}");
    }
}

/// The lab codec's candidates, for every test of this file: one cached workspace (the one
/// `candidate_codec.rs` uses: test binaries run one after another), one build at a time.
fn lab_codec_candidates() -> Arc<CodecCandidates> {
    static CANDIDATES: OnceLock<Arc<CodecCandidates>> = OnceLock::new();
    CANDIDATES
        .get_or_init(|| {
            let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("candidate-codec");
            Arc::new(CodecCandidates::new(&repository, &cache, Policy::default()).unwrap())
        })
        .clone()
}

/// The first evolvable block of the lab codec: its name and content.
fn first_codec_block() -> (String, String) {
    let candidates = lab_codec_candidates();
    let original = candidates.original();
    let block = original.blocks().unwrap().into_iter().next().unwrap();
    let content = original.files[&block.file][block.content.clone()].to_owned();
    (block.name, content)
}

/// The very edit of `candidate_codec.rs`, so that whichever test builds it second finds the
/// build done: a comment that changes no bitstream.
fn harmless_codec_edit() -> Edit {
    let (block, content) = first_codec_block();
    Edit {
        block,
        search: content.clone(),
        replace: format!("// Candidate edit under test.\n{content}"),
    }
}

/// The lab's own codec built as a candidate.
fn lab_codec_candidate() -> PathBuf {
    let binary = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("candidate-codec")
        .join("lab-binary-under-test");
    lab_codec_candidates()
        .build(&[harmless_codec_edit()], &binary)
        .unwrap()
        .unwrap_or_else(|rejection| panic!("{rejection}"));
    binary
}

#[test]
fn the_lab_codec_as_a_sandboxed_binary_gets_its_genome_and_matches_the_codec_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let clip = source_clip(&write_clip(dir.path()));
    let mut config = RunnerConfig::new(dir.path().join("work"));
    config.callgrind_frames = 0;
    let measure = |codec: serde_json::Value| {
        let adapter = adapter_for(&codec, &AdapterConfig::default()).unwrap();
        run_point(adapter.as_ref(), &clip, RatePoint::Qp(30), &config)
            .unwrap_or_else(|e| panic!("{codec}: {e}"))
            .record
    };
    // Every frame a key frame: a genome the bitstream shows, unlike the default.
    let genome = serde_json::json!({"keyint": 1});
    let binary = lab_codec_candidate();
    let sandboxed = measure(serde_json::json!({
        "kind": "lab_binary",
        "binary": binary.display().to_string(),
        "genome": genome,
    }));
    let in_process = measure(serde_json::json!({"kind": "lab", "genome": genome}));
    let default_genome = measure(serde_json::json!({"kind": "lab"}));
    assert_eq!(sandboxed.bitstream_sha256, in_process.bitstream_sha256);
    assert_ne!(sandboxed.bitstream_sha256, default_genome.bitstream_sha256);
    assert_eq!(sandboxed.metrics, in_process.metrics);
    assert!(sandboxed.encode.peak_memory_bytes.unwrap() > 0);
}

/// Proposes the scripted code candidates in order, then the default genome with a growing
/// Lagrange multiplier.
struct ScriptedAttacker {
    proposals: Vec<Vec<Edit>>,
}

impl Planner for ScriptedAttacker {
    fn name(&self) -> &'static str {
        "scripted-attacker"
    }

    async fn propose(&mut self, view: &PlannerView<'_>) -> Result<Turn, LabError> {
        let (edits, genome) = if self.proposals.is_empty() {
            let genome = Genome {
                lambda_scale: 1.0 + 0.1 * view.programs.len() as f64,
                ..Genome::default()
            };
            (Vec::new(), genome)
        } else {
            (self.proposals.remove(0), Genome::default())
        };
        Ok(Turn::Propose(Proposal {
            parent: None,
            island: 0,
            genome,
            edits,
            hypothesis: "scripted".into(),
            reasoning: "a test".into(),
            expected_effect: "none".into(),
            log_id: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_loop_records_attacking_candidates_as_rejections_and_measures_the_next_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let lab = common::tiny_lab(dir.path()).await;
    let (block, content) = first_codec_block();
    let open_a_file = Edit {
        block: block.clone(),
        search: content.clone(),
        replace: format!(
            "{content}\nfn leak() -> usize {{ std::fs::read(\"/etc/passwd\").map_or(0, |d| d.len()) }}\n"
        ),
    };
    // The file's first line lies before every block.
    let file = &lab_codec_candidates().original().blocks().unwrap()[0]
        .file
        .clone();
    let first_line = lab_codec_candidates().original().files[file]
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let outside_the_blocks = Edit {
        block,
        search: first_line.clone(),
        replace: format!("{first_line} (changed)"),
    };
    let mut planner = ScriptedAttacker {
        proposals: vec![
            vec![open_a_file],
            vec![outside_the_blocks],
            vec![harmless_codec_edit()],
        ],
    };
    let mut config = LabConfig::from_toml("", "test").unwrap();
    // The anchors are not part of this run.
    config.evaluation.anchors = vec!["x264-medium".into()];
    let options = LoopOptions {
        // The reference, one candidate, and the two holdout measurements held in reserve.
        max_experiments: Some(4),
        parallel: 1,
        candidates: Some(lab_codec_candidates()),
        binaries_dir: dir.path().join("binaries"),
        poll: Duration::from_millis(100),
    };

    let summary = common::drive(&lab, &mut planner, &config, options, None)
        .await
        .unwrap();

    // Both attacks were refused before any build, with the reason recorded for the planner.
    assert_eq!(summary.rejected, 2, "{summary:?}");
    let log = lab.store.planner_log(50).await.unwrap();
    let rejected: Vec<String> = log
        .iter()
        .filter(|row| row.entry.outcome == "rejected")
        .filter_map(|row| row.entry.detail.clone())
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected
            .iter()
            .any(|d| d.contains("`std::fs` is not allowed")),
        "{rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|d| d.contains("only evolvable blocks can change")),
        "{rejected:?}"
    );
    // The good code candidate that followed was built and measured through the sandbox.
    assert_eq!(summary.failed, 0, "{summary:?}");
    let programs = lab.store.programs(Some(&summary.run_id)).await.unwrap();
    let candidate = programs
        .iter()
        .find(|p| p.role == ProgramRole::Candidate)
        .expect("the good candidate became an experiment");
    assert_eq!(candidate.edits.as_array().map(Vec::len), Some(1));
    let experiment = lab
        .store
        .experiment(candidate.experiment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(experiment.spec.codec["kind"], "lab_binary");
    let points = lab.store.points(candidate.experiment_id).await.unwrap();
    assert_eq!(points.len(), config.evaluation.qps.len());
    assert!(candidate.fitness.is_some(), "{candidate:?}");
}
