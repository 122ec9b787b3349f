//! The whole path of a code candidate: edits → policy → offline build → sandboxed run, on a
//! miniature of the codec crate. Compile errors and runaway candidates become rejections the
//! planner can read; a good candidate produces its output.

mod fixture_project;

use codeclab_lab::candidate::{Edit, Policy, Rejection, output_tail, prepare};
use codeclab_sandbox::{BuildFailure, Limits, Outcome, RunRequest, run};
use fixture_project::FixtureProject;
use std::time::Duration;

const CODEC_LIKE: FixtureProject = FixtureProject {
    name: "codec_like",
    binary: "codec-like",
};

/// Runs one candidate through every stage; Ok is the binary's stdout.
fn evaluate(edits: &[Edit], input: &[u8], limits: Limits) -> Result<Vec<u8>, Rejection> {
    let patched = prepare(&CODEC_LIKE.original(), edits, &Policy::default())?;
    let binary = CODEC_LIKE.build("pipeline", &patched, Duration::from_secs(300))?;
    let report = run(&RunRequest {
        program: binary,
        args: Vec::new(),
        stdin: input.to_vec(),
        limits,
    })
    .unwrap();
    match report.outcome {
        Outcome::Ok => Ok(report.stdout),
        outcome => Err(Rejection::Run {
            outcome,
            stderr_tail: output_tail(&report.stderr, 2000),
        }),
    }
}

fn edit(block: &str, search: &str, replace: &str) -> Edit {
    Edit {
        block: block.into(),
        search: search.into(),
        replace: replace.into(),
    }
}

fn limits() -> Limits {
    Limits {
        wall_clock: Duration::from_secs(10),
        cpu_seconds: 10,
        address_space_bytes: 1 << 30,
        ..Limits::default()
    }
}

#[test]
fn a_good_candidate_is_built_and_run_and_its_change_shows_in_the_output() {
    let output = evaluate(
        &[
            edit("transform", "byte.wrapping_add(1)", "byte ^ 0xff"),
            edit("weighting", "total * 2", "total + 1"),
        ],
        &[0, 1, 2],
        limits(),
    )
    .unwrap_or_else(|rejection| panic!("{rejection}"));
    let total = 255u64 + 254 + 253 + 1;
    let mut expected = vec![255, 254, 253];
    expected.extend_from_slice(&total.to_le_bytes());
    assert_eq!(output, expected);
}

#[test]
fn a_compile_error_comes_back_trimmed_for_the_planner() {
    let rejection = evaluate(
        &[edit(
            "transform",
            "byte.wrapping_add(1)",
            "byte.wrapping_add(1u64)",
        )],
        &[0],
        limits(),
    )
    .unwrap_err();
    let Rejection::Build(BuildFailure::Compile { diagnostics }) = &rejection else {
        panic!("expected a compile failure, got {rejection}");
    };
    assert!(diagnostics.starts_with("error"), "{diagnostics}");
    assert!(diagnostics.contains("src/lib.rs:8"), "{diagnostics}");
    assert!(!diagnostics.contains("Compiling"), "{diagnostics}");
}

#[test]
fn a_candidate_that_loops_forever_passes_the_policy_and_is_killed_at_the_deadline() {
    let rejection = evaluate(
        &[edit(
            "transform",
            "    byte.wrapping_add(1)\n",
            "    let mut b = byte;\n    loop {\n        b = std::hint::black_box(b.wrapping_add(1));\n    }\n",
        )],
        &[0],
        Limits {
            wall_clock: Duration::from_millis(800),
            ..limits()
        },
    )
    .unwrap_err();
    assert_eq!(
        rejection,
        Rejection::Run {
            outcome: Outcome::Timeout { limit_ms: 800 },
            stderr_tail: String::new()
        }
    );
    assert!(rejection.to_string().contains("wall-clock limit of 800 ms"));
}

#[test]
fn a_candidate_that_allocates_without_bound_runs_out_of_memory() {
    let rejection = evaluate(
        &[edit(
            "transform",
            "    byte.wrapping_add(1)\n",
            "    let big = vec![byte; 64 << 30];\n    big[big.len() - 1]\n",
        )],
        &[0],
        limits(),
    )
    .unwrap_err();
    assert!(
        matches!(
            rejection,
            Rejection::Run {
                outcome: Outcome::OutOfMemory { .. },
                ..
            }
        ),
        "{rejection}"
    );
}

#[test]
fn a_constant_too_big_for_the_build_memory_fails_the_build_not_the_machine() {
    // 16 GiB of static data: the compiler would materialise it; its address-space limit
    // (8 GiB by default) makes the build fail instead.
    let rejection = evaluate(
        &[edit(
            "transform",
            "    byte.wrapping_add(1)\n",
            "    static TABLE: [u8; 1 << 34] = [7; 1 << 34];\n    byte.wrapping_add(TABLE[usize::from(byte)])\n",
        )],
        &[0],
        limits(),
    )
    .unwrap_err();
    let Rejection::Build(BuildFailure::Compile { diagnostics }) = &rejection else {
        panic!("expected a failed build, got {rejection}");
    };
    assert!(diagnostics.contains("memory"), "{diagnostics}");
}

#[test]
fn a_build_over_its_time_limit_is_killed_and_reported() {
    // No cargo run can finish a build in a millisecond.
    let failure = CODEC_LIKE
        .build("timeout", &CODEC_LIKE.original(), Duration::from_millis(1))
        .unwrap_err();
    assert_eq!(failure, BuildFailure::TimedOut { limit_ms: 1 });
    assert!(
        Rejection::from(failure)
            .to_string()
            .contains("time limit of 1 ms")
    );
}
