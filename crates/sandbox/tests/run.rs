//! Runtime containment: purpose-made programs, each trying one forbidden thing, built through the
//! confined builder and run through the sandbox. Each must end in a typed, readable outcome.

use codeclab_sandbox::{BuildConfig, Limits, Outcome, RunReport, RunRequest, Stream, build, run};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const PROBES: &str = "tests/fixtures/probes";
const PROBE_NAMES: &[&str] = &[
    "echo",
    "open_file",
    "open_socket",
    "spawn_process",
    "read_env",
    "loop_forever",
    "allocate_64g",
    "flood_stdout",
    "fork_bomb",
    "sleep_forever",
    "raise_limits",
    "signal_other",
    "exec_again",
    "probe_paths",
    "inherited_fds",
    "lock_memory",
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Every probe, built once per test run into a cache under the target dir.
fn probes() -> &'static Vec<(String, PathBuf)> {
    static BUILT: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-probes");
        // Built from a copy, so that cargo leaves no lock file in the source tree.
        let project = cache.join("project");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(PROBES),
            &project,
        );
        let config = BuildConfig::new(cache.join("target"));
        PROBE_NAMES
            .iter()
            .map(|name| {
                let binary = cache.join("binaries").join(name);
                build(&project, name, &config, &binary)
                    .unwrap_or_else(|failure| panic!("building probe {name}: {failure}"));
                (name.to_string(), binary)
            })
            .collect()
    })
}

fn probe(name: &str) -> PathBuf {
    probes()
        .iter()
        .find(|(probe, _)| probe == name)
        .map(|(_, path)| path.clone())
        .unwrap()
}

fn limits() -> Limits {
    Limits {
        wall_clock: Duration::from_secs(20),
        cpu_seconds: 20,
        address_space_bytes: 1 << 30,
        stdout_cap_bytes: 1 << 20,
        ..Limits::default()
    }
}

fn run_probe(name: &str, stdin: &[u8], limits: Limits) -> RunReport {
    run_probe_with(name, &["--flag", "value"], stdin, limits)
}

fn run_probe_with(name: &str, args: &[&str], stdin: &[u8], limits: Limits) -> RunReport {
    run(&RunRequest {
        program: probe(name),
        args: args.iter().map(Into::into).collect(),
        stdin: stdin.to_vec(),
        limits,
    })
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_well_behaved_program_reads_stdin_and_arguments_and_writes_its_output() {
    let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let report = run_probe("echo", &input, limits());
    assert_eq!(
        report.outcome,
        Outcome::Ok,
        "stderr: {}",
        text(&report.stderr)
    );
    assert_eq!(report.stdout, input);
    assert_eq!(text(&report.stderr).trim(), "args: --flag value");
    // The kernel's accounting comes back with the output.
    assert!(report.peak_memory_bytes > 0);
}

#[test]
fn opening_a_file_is_refused() {
    let report = run_probe("open_file", b"", limits());
    assert_eq!(report.outcome, Outcome::Failed { code: 3 });
    assert!(report.stdout.is_empty());
    assert!(
        text(&report.stderr).contains("Permission denied"),
        "{}",
        text(&report.stderr)
    );
}

#[test]
fn opening_a_socket_kills_the_program() {
    let report = run_probe("open_socket", b"", limits());
    assert_eq!(report.outcome, Outcome::ForbiddenSyscall);
    assert!(report.stdout.is_empty(), "{}", text(&report.stdout));
    assert!(report.outcome.to_string().contains("allowlist"));
}

#[test]
fn spawning_a_process_kills_the_program() {
    let report = run_probe("spawn_process", b"", limits());
    assert_eq!(report.outcome, Outcome::ForbiddenSyscall);
    assert!(report.stdout.is_empty(), "{}", text(&report.stdout));
}

#[test]
fn a_fork_bomb_is_stopped_at_its_first_fork() {
    let report = run_probe("fork_bomb", b"", limits());
    assert_eq!(report.outcome, Outcome::ForbiddenSyscall);
}

#[test]
fn raising_its_own_limits_kills_the_program() {
    let report = run_probe("raise_limits", b"", limits());
    assert_eq!(report.outcome, Outcome::ForbiddenSyscall);
    assert!(report.stdout.is_empty(), "{}", text(&report.stdout));
}

#[test]
fn a_signal_to_another_process_kills_the_sender_and_the_target_lives_on() {
    let mut canary = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = canary.id().to_string();
    for call in ["kill", "tgkill", "owner", "affinity", "limits"] {
        let report = run_probe_with("signal_other", &[&pid, call], b"", limits());
        assert_eq!(report.outcome, Outcome::ForbiddenSyscall, "{call}");
        assert!(report.stdout.is_empty(), "{call}: {}", text(&report.stdout));
    }
    assert!(
        canary.try_wait().unwrap().is_none(),
        "the canary was killed"
    );
    canary.kill().unwrap();
    canary.wait().unwrap();
}

#[test]
fn a_program_can_execute_nothing_once_started() {
    let report = run_probe_with(
        "exec_again",
        &["/proc/self/exe", "/bin/true", "/nonexistent"],
        b"",
        limits(),
    );
    assert_eq!(report.outcome, Outcome::ForbiddenSyscall);
    let stdout = text(&report.stdout);
    // Its own binary's descriptor closed when it started (EBADF)...
    assert!(
        stdout.contains("execveat on its descriptor returned -1 (errno 9)"),
        "{stdout}"
    );
    // ...and every path resolves in its empty root, existing outside or not (ENOENT).
    for path in ["/proc/self/exe", "/bin/true", "/nonexistent"] {
        assert!(
            stdout.contains(&format!("execveat of {path:?} returned -1 (errno 2)")),
            "{stdout}"
        );
    }
    assert!(!stdout.contains("execv returned"), "{stdout}");
}

#[test]
fn descriptors_the_lab_inherited_are_closed_before_the_program_starts() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("inherited");
    std::fs::write(&secret, "inherited-canary").unwrap();
    let file = std::fs::File::open(&secret).unwrap();
    // As a descriptor the lab's own parent left open would be: not closed at exec.
    // SAFETY: fcntl on a descriptor this test owns, with integer arguments.
    let rc = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_SETFD, 0) };
    assert_eq!(rc, 0);
    let report = run_probe("inherited_fds", b"", limits());
    assert_eq!(report.outcome, Outcome::Ok, "{}", text(&report.stderr));
    assert_eq!(text(&report.stdout).trim(), "0 descriptors open:");
    drop(file);
}

#[test]
fn paths_are_neither_read_nor_probed() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary");
    std::fs::write(&canary, "canary-content").unwrap();
    let missing = dir.path().join("missing");
    let (canary, missing) = (canary.display().to_string(), missing.display().to_string());
    let report = run_probe_with(
        "probe_paths",
        &[&canary, &missing, "/proc/self/environ", "/"],
        b"",
        limits(),
    );
    assert_eq!(report.outcome, Outcome::Ok, "{}", text(&report.stderr));
    let refused = "exists false, metadata Err(PermissionDenied), read Err(PermissionDenied)";
    let stdout = text(&report.stdout);
    // An existing file and a missing one get the same answer: nothing to tell them apart.
    for path in [&canary, &missing, "/proc/self/environ", "/"] {
        assert!(
            stdout.contains(&format!("{path}: {refused}")),
            "{path}:\n{stdout}"
        );
    }
}

#[test]
fn a_program_holds_no_capability_even_when_the_lab_runs_as_root() {
    let report = run_probe("lock_memory", b"", limits());
    assert_eq!(report.outcome, Outcome::Ok, "{}", text(&report.stderr));
    assert_eq!(text(&report.stdout).trim(), "locking 256 MiB failed");
}

#[test]
fn the_environment_is_empty() {
    let report = run_probe("read_env", b"", limits());
    assert_eq!(report.outcome, Outcome::Ok);
    assert_eq!(text(&report.stdout).trim(), "0 variables:");
}

#[test]
fn an_endless_loop_is_killed_at_the_wall_clock_limit() {
    let report = run_probe(
        "loop_forever",
        b"",
        Limits {
            wall_clock: Duration::from_millis(500),
            ..limits()
        },
    );
    assert_eq!(report.outcome, Outcome::Timeout { limit_ms: 500 });
    assert!(report.outcome.to_string().contains("wall-clock"));
}

#[test]
fn an_endless_loop_is_stopped_by_the_cpu_limit() {
    let report = run_probe(
        "loop_forever",
        b"",
        Limits {
            cpu_seconds: 1,
            ..limits()
        },
    );
    assert_eq!(report.outcome, Outcome::CpuLimit { limit_seconds: 1 });
    // The kernel stops it after its second of CPU time; the accounting it reports is sampled
    // per tick, so it lands near that second rather than on it.
    assert!(
        report.cpu_time >= Duration::from_millis(500),
        "{:?}",
        report.cpu_time
    );
}

#[test]
fn a_sleeping_program_is_killed_at_the_wall_clock_limit() {
    let report = run_probe(
        "sleep_forever",
        b"",
        Limits {
            wall_clock: Duration::from_millis(300),
            ..limits()
        },
    );
    assert_eq!(report.outcome, Outcome::Timeout { limit_ms: 300 });
}

#[test]
fn allocating_64_gib_runs_out_of_memory() {
    let report = run_probe("allocate_64g", b"", limits());
    assert_eq!(
        report.outcome,
        Outcome::OutOfMemory {
            limit_bytes: 1 << 30
        },
        "stderr: {}",
        text(&report.stderr)
    );
    assert!(report.stdout.is_empty());
}

#[test]
fn flooding_stdout_is_cut_at_the_cap() {
    let report = run_probe("flood_stdout", b"", limits());
    assert_eq!(
        report.outcome,
        Outcome::OutputCap {
            stream: Stream::Stdout,
            cap_bytes: 1 << 20
        }
    );
    assert_eq!(report.stdout.len(), 1 << 20);
}

#[test]
fn a_relative_program_path_is_an_error_of_the_caller() {
    let result = run(&RunRequest {
        program: PathBuf::from("echo"),
        args: Vec::new(),
        stdin: Vec::new(),
        limits: limits(),
    });
    assert!(result.is_err());
}

#[test]
fn outcomes_serialise_with_their_kind() {
    let json = serde_json::to_value(Outcome::OutputCap {
        stream: Stream::Stdout,
        cap_bytes: 7,
    })
    .unwrap();
    assert_eq!(json["kind"], "output_cap");
    assert_eq!(json["stream"], "stdout");
}
