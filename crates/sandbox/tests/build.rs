//! The confined build: projects written here whose build script (arbitrary code, run by cargo
//! inside the confinement) and whose compile-time macros try to reach what a build must not:
//! a file outside the view, the lab's environment, another process's environment, the network.

use codeclab_sandbox::{BuildConfig, BuildFailure, build};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CANARY_VARIABLE: &str = "CODECLAB_TEST_BUILD_CANARY";
const CANARY_VALUE: &str = "build-canary-5d1e7f03-never-seen";
const CANARY_CONTENT: &str = "file-canary-92b4c6e1-never-read";

/// The variables a build is given, and those cargo adds for its compilers and build scripts.
const ALLOWED: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "CARGO_NET_OFFLINE",
    "CARGO_TERM_COLOR",
    "RUSTC",
    "RUSTFLAGS",
    "CARGO",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "PROFILE",
    "DEBUG",
    "RUSTDOC",
    "RUSTC_LINKER",
    "LD_LIBRARY_PATH",
    // Where cargo found the system's certificates (it never connects in an offline build).
    "SSL_CERT_DIR",
    "SSL_CERT_FILE",
];

/// A project in `dir`: a manifest, `files` (relative path, content), built through the sandbox
/// into its own target folder.
fn build_project(
    dir: &Path,
    files: &[(&str, String)],
    time_limit: Duration,
) -> Result<PathBuf, BuildFailure> {
    let project = dir.join("project");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();
    for (path, content) in files {
        std::fs::write(project.join(path), content).unwrap();
    }
    let config = BuildConfig {
        time_limit,
        ..BuildConfig::new(dir.join("target"))
    };
    let binary = dir.join("probe-binary");
    build(&project, "probe", &config, &binary)?;
    Ok(binary)
}

/// A build script that records its environment and tries every forbidden read and connection,
/// with a `main` that prints the record.
fn reporting_project(canary_file: &Path, port: u16, lab_pid: u32) -> Vec<(&'static str, String)> {
    let build_script = format!(
        r#"use std::fmt::Write as _;
fn attempt<T: std::fmt::Debug, E: std::fmt::Debug>(result: Result<T, E>) -> String {{
    match result {{
        Ok(value) => format!("ok {{value:?}}"),
        Err(error) => format!("denied {{error:?}}"),
    }}
}}
fn main() {{
    let mut report = String::new();
    for (name, value) in std::env::vars() {{
        writeln!(report, "env {{name}}={{value}}").unwrap();
    }}
    writeln!(report, "canary {{}}", attempt(std::fs::read_to_string({canary:?}))).unwrap();
    writeln!(report, "passwd {{}}", attempt(std::fs::read_to_string("/etc/passwd"))).unwrap();
    writeln!(report, "lab-environ {{}}", attempt(std::fs::read("/proc/{lab_pid}/environ"))).unwrap();
    writeln!(report, "connect {{}}", attempt(std::net::TcpStream::connect("127.0.0.1:{port}"))).unwrap();
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(format!("{{out}}/report.txt"), report).unwrap();
}}
"#,
        canary = canary_file.display().to_string(),
    );
    vec![
        ("build.rs", build_script),
        (
            "src/main.rs",
            "fn main() { print!(\"{}\", include_str!(concat!(env!(\"OUT_DIR\"), \"/report.txt\"))); }\n".into(),
        ),
    ]
}

/// Runs in a child test process with the canary variable set (setting it here would race with
/// the other tests' threads).
#[test]
fn a_build_reads_no_file_outside_its_view_sees_only_its_environment_and_reaches_no_network() {
    if std::env::var(CANARY_VARIABLE).is_err() {
        let name = "a_build_reads_no_file_outside_its_view_sees_only_its_environment_and_reaches_no_network";
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1", "--nocapture"])
            .env(CANARY_VARIABLE, CANARY_VALUE)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && text.contains("1 passed"),
            "{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary.txt");
    std::fs::write(&canary, CANARY_CONTENT).unwrap();
    // This process can read what the build may not.
    assert!(std::fs::read(format!("/proc/{}/environ", std::process::id())).is_ok());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let files = reporting_project(&canary, port, std::process::id());
    let binary = build_project(dir.path(), &files, Duration::from_secs(300))
        .unwrap_or_else(|failure| panic!("{failure}"));
    let mut report = String::new();
    std::process::Command::new(&binary)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .stdout
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();

    let line = |prefix: &str| {
        report
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{report}"))
            .to_owned()
    };
    for read in ["canary ", "passwd ", "lab-environ "] {
        let result = line(read);
        assert!(
            result.starts_with(&format!("{read}denied")) && result.contains("PermissionDenied"),
            "{report}"
        );
    }
    assert!(line("connect ").starts_with("connect denied"), "{report}");
    assert!(
        matches!(&listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the build reached the listener"
    );
    assert!(!report.contains(CANARY_CONTENT), "{report}");
    assert!(!report.contains(CANARY_VALUE), "{report}");
    let names: Vec<&str> = report
        .lines()
        .filter_map(|line| line.strip_prefix("env "))
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(names.contains(&"PATH"), "{names:?}");
    for name in &names {
        assert!(
            ALLOWED.contains(name) || name.starts_with("CARGO_"),
            "the build sees {name}:\n{report}"
        );
    }
    let home = line("env HOME=");
    assert!(home.ends_with("/target/sandbox-home/home"), "{home}");
}

#[test]
fn a_compile_time_read_of_a_file_outside_the_view_fails_the_build_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary.txt");
    std::fs::write(&canary, CANARY_CONTENT).unwrap();
    let main = format!(
        "static LEAK: &[u8] = include_bytes!({:?});\nfn main() {{ println!(\"{{}}\", LEAK.len()); }}\n",
        canary.display().to_string()
    );
    let failure = build_project(
        dir.path(),
        &[("src/main.rs", main)],
        Duration::from_secs(300),
    )
    .unwrap_err();
    let BuildFailure::Compile { diagnostics } = &failure else {
        panic!("expected a compile error, got {failure}");
    };
    assert!(diagnostics.contains("Permission denied"), "{diagnostics}");
    assert!(
        diagnostics.contains(&canary.display().to_string()),
        "{diagnostics}"
    );
    assert!(!diagnostics.contains(CANARY_CONTENT), "{diagnostics}");
}

#[test]
fn a_build_given_relative_paths_builds_where_they_point() {
    let dir = tempfile::tempdir().unwrap();
    // The same folder, spelled from this process's working directory.
    let depth = std::env::current_dir().unwrap().components().count() - 1;
    let relative = std::iter::repeat_n(Path::new(".."), depth)
        .collect::<PathBuf>()
        .join(dir.path().strip_prefix("/").unwrap());
    assert!(relative.is_relative() && relative.join(".").is_dir());
    let binary = build_project(
        &relative,
        &[("src/main.rs", "fn main() {}\n".to_string())],
        Duration::from_secs(300),
    )
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(
        binary
            .canonicalize()
            .unwrap()
            .starts_with(dir.path().canonicalize().unwrap()),
        "{}",
        binary.display()
    );
}

#[test]
fn builds_sharing_a_target_folder_take_turns_and_each_gets_its_own_binary() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    // The same package and binary name in every project: only the turn-taking keeps one
    // build's binary from being copied out as another's.
    let builds: Vec<_> = (0..4)
        .map(|number| {
            let project = dir.path().join(format!("project-{number}"));
            let binary = dir.path().join(format!("binary-{number}"));
            let target = target.clone();
            std::thread::spawn(move || {
                std::fs::create_dir_all(project.join("src")).unwrap();
                std::fs::write(
                    project.join("Cargo.toml"),
                    "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n",
                )
                .unwrap();
                std::fs::write(
                    project.join("src/main.rs"),
                    format!("fn main() {{ println!(\"{number}\"); }}\n"),
                )
                .unwrap();
                build(&project, "probe", &BuildConfig::new(target), &binary).map(|()| binary)
            })
        })
        .collect();
    for (number, build) in builds.into_iter().enumerate() {
        let binary = build
            .join()
            .unwrap()
            .unwrap_or_else(|failure| panic!("{failure}"));
        let output = std::process::Command::new(&binary).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            number.to_string()
        );
    }
}

#[test]
fn a_build_that_never_ends_is_killed_at_its_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "build.rs",
            "fn main() { loop { std::hint::spin_loop(); } }\n".to_string(),
        ),
        ("src/main.rs", "fn main() {}\n".to_string()),
    ];
    let failure = build_project(dir.path(), &files, Duration::from_secs(3)).unwrap_err();
    assert_eq!(failure, BuildFailure::TimedOut { limit_ms: 3000 });
}
