//! Work run under `stop_children_when` has its children killed, with their whole process group,
//! as soon as it is abandoned, instead of running on to their time limit.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use codeclab_sandbox::{Ending, Input, Io, Output, stop_children_when, supervise};

fn quiet() -> Io {
    Io {
        stdin: Input::Null,
        stdout: Output::Null,
        stderr: Output::Null,
    }
}

/// Whether process `pid` is gone (or a zombie waiting for its new parent to reap it).
fn is_gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn abandoned_work_kills_its_child_and_the_child_s_own_children() {
    let dir = tempfile::tempdir().unwrap();
    let grandchild = dir.path().join("grandchild.pid");
    let mut command = Command::new("sh");
    command.arg("-c").arg(format!(
        "sleep 60 & echo $! > {}; wait",
        grandchild.display()
    ));
    let abandoned = Arc::new(AtomicBool::new(false));
    let abandon = {
        let abandoned = abandoned.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            abandoned.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    let finished = stop_children_when(abandoned, || {
        supervise(&mut command, quiet(), Duration::from_secs(120))
    })
    .unwrap();
    abandon.join().unwrap();
    assert_eq!(finished.ending, Ending::Stopped);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let pid = std::fs::read_to_string(&grandchild).unwrap();
    let pid = pid.trim();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        is_gone(pid),
        "the grandchild {pid} outlived the abandoned work"
    );
}

#[test]
fn children_outside_abandonable_work_run_to_their_end() {
    let mut command = Command::new("sh");
    command.arg("-c").arg("sleep 0.2");
    let abandoned = Arc::new(AtomicBool::new(true));
    // The flag of earlier work does not reach supervision after it.
    let mut long = Command::new("sleep");
    long.arg("30");
    let stopped = stop_children_when(abandoned, || {
        supervise(&mut long, quiet(), Duration::from_secs(60))
    })
    .unwrap();
    assert_eq!(stopped.ending, Ending::Stopped);
    let finished = supervise(&mut command, quiet(), Duration::from_secs(10)).unwrap();
    assert_eq!(finished.ending, Ending::Exited);
    assert!(finished.status.success());
}
