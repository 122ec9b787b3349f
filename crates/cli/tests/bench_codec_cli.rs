//! `codeclab bench codec` run as a user would, on a tiny generated clip: its JSON holds measured
//! figures that agree with each other, and nulls for what it could not measure.

use codeclab_video::{Generator, GeneratorSpec, Pattern, Rational};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tiny_clip(dir: &Path) -> PathBuf {
    let spec = GeneratorSpec {
        pattern: Pattern::Pan,
        width: 64,
        height: 48,
        frames: 4,
        fps: Rational::new(25, 1),
        seed: 7,
        bit_depth: 8,
    };
    let path = dir.join("tiny.y4m");
    let file = std::fs::File::create(&path).unwrap();
    Generator::new(&spec).unwrap().write_y4m(file).unwrap();
    path
}

/// Runs the benchmark on the first 3 frames of the tiny clip with `extra` arguments and
/// `path_env` as PATH (`None`: this process's); returns its stdout and JSON.
fn bench(dir: &Path, extra: &[&str], path_env: Option<&Path>) -> (String, Value) {
    let clip = tiny_clip(dir);
    let json = dir.join("out.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_codeclab"));
    command
        .args(["bench", "codec", "--clip"])
        .arg(&clip)
        .args([
            "--frames",
            "3",
            "--presets",
            "faster",
            "--threads",
            "2",
            "--json",
        ])
        .arg(&json)
        .args(extra);
    if let Some(path) = path_env {
        command.env("PATH", path);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (String::from_utf8(output.stdout).unwrap(), report)
}

fn x265_available() -> bool {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libx265"))
}

fn fps(speed: &Value) -> f64 {
    let fps = speed["fps"].as_f64().unwrap();
    assert!(fps > 0.0 && fps.is_finite(), "{speed}");
    fps
}

/// The point's kbps is its bytes over the clip's duration.
fn check_point(point: &Value, clip: &Value) {
    let bytes = point["bytes"].as_f64().unwrap();
    assert!(bytes > 0.0);
    let expected =
        bytes * 8.0 * clip["fps"].as_f64().unwrap() / clip["frames"].as_f64().unwrap() / 1000.0;
    let kbps = point["kbps"].as_f64().unwrap();
    assert!((kbps - expected).abs() < 1e-9 * expected, "{point}");
    let psnr = point["psnr_y"].as_f64().unwrap();
    assert!(psnr > 20.0 && psnr <= 60.0, "{point}");
}

fn check_lab_speed(report: &Value) -> &Value {
    let clip = &report["clip"];
    assert_eq!(clip["frames"], 3);
    assert_eq!(
        (clip["width"].as_u64(), clip["height"].as_u64()),
        (Some(64), Some(48))
    );
    assert_eq!(report["threads"], 2);
    assert!(report["machine"]["logical_cores"].as_u64().unwrap() >= 1);
    let lab = report["lab"].as_array().unwrap();
    assert_eq!(lab.len(), 1);
    let row = &lab[0];
    assert_eq!(row["name"], "faster");
    assert_eq!(row["point"]["qp"], 32);
    check_point(&row["point"], clip);
    let encode_1 = fps(&row["encode_1_thread"]);
    let encode_2 = fps(&row["encode_n_threads"]);
    fps(&row["decode_1_thread"]);
    fps(&row["decode_n_threads"]);
    assert_eq!(row["identical_stream"], true);
    assert_eq!(row["identical_frames"], true);
    let speedup = row["encode_speedup"].as_f64().unwrap();
    assert!((speedup - encode_2 / encode_1).abs() < 1e-9 * speedup);
    row
}

#[test]
fn measures_the_lab_preset_and_x265_when_present() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = bench(dir.path(), &["--no-bd-rate", "--runs", "1"], None);
    assert_eq!(report["runs"], 1);
    let row = check_lab_speed(&report);
    assert!(stdout.contains("identical"), "{stdout}");
    assert!(row["rate_points"].is_null());
    assert!(row["bd_rate_vs_x265_medium"].is_null());
    let x265 = &report["x265"];
    if !x265_available() {
        assert!(x265["not_measured"].is_string());
        assert!(x265["medium"].is_null());
        assert!(row["encode_vs_x265_medium"].is_null());
        return;
    }
    assert!(x265["not_measured"].is_null());
    let medium = &x265["medium"];
    assert_eq!(medium["preset"], "medium");
    check_point(&medium["point"], &report["clip"]);
    let x265_fps = fps(&medium["encode"]);
    let decode_fps = fps(&x265["ffmpeg_hevc_decode"]);
    assert_eq!(x265["faster"]["preset"], "fast");
    fps(&x265["faster"]["encode"]);
    let ratio = row["encode_vs_x265_medium"].as_f64().unwrap();
    let expected = row["encode_1_thread"]["fps"].as_f64().unwrap() / x265_fps;
    assert!((ratio - expected).abs() < 1e-9 * expected);
    let ratio = row["decode_vs_ffmpeg_hevc"].as_f64().unwrap();
    let expected = row["decode_1_thread"]["fps"].as_f64().unwrap() / decode_fps;
    assert!((ratio - expected).abs() < 1e-9 * expected);
}

#[test]
fn without_ffmpeg_x265_is_null_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let (stdout, report) = bench(dir.path(), &[], Some(&empty));
    assert_eq!(report["runs"], 3);
    let row = check_lab_speed(&report);
    assert!(
        stdout.contains("not measured: ffmpeg/libx265 not found"),
        "{stdout}"
    );
    let x265 = &report["x265"];
    assert!(x265["not_measured"].is_string());
    for key in ["medium", "faster", "ffmpeg_hevc_decode", "ffmpeg_version"] {
        assert!(x265[key].is_null(), "{key}: {x265}");
    }
    assert!(row["encode_vs_x265_medium"].is_null());
    assert!(row["decode_vs_ffmpeg_hevc"].is_null());
    // The lab's own rate points are measured; the BD-rate needs x265's.
    let points = row["rate_points"].as_array().unwrap();
    let qps: Vec<u64> = points.iter().map(|p| p["qp"].as_u64().unwrap()).collect();
    assert_eq!(qps, [22, 27, 32, 37]);
    for point in points {
        check_point(point, &report["clip"]);
    }
    assert!(row["bd_rate_vs_x265_medium"].is_null());
}

#[test]
fn bd_rate_against_x265_medium() {
    if !x265_available() {
        eprintln!("skipped: ffmpeg with libx265 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = bench(dir.path(), &[], None);
    let row = check_lab_speed(&report);
    let medium = &report["x265"]["medium"];
    for points in [&row["rate_points"], &medium["rate_points"]] {
        let points = points.as_array().unwrap();
        assert_eq!(points.len(), 4);
        for point in points {
            check_point(point, &report["clip"]);
        }
        // Lower QP/CRF: more bits.
        let kbps: Vec<f64> = points.iter().map(|p| p["kbps"].as_f64().unwrap()).collect();
        assert!(kbps.windows(2).all(|w| w[0] > w[1]), "{kbps:?}");
    }
    // The point at --qp is the timed run's.
    assert_eq!(row["rate_points"][2]["bytes"], row["point"]["bytes"]);
    for bd in [
        &row["bd_rate_vs_x265_medium"],
        &report["x265"]["faster"]["bd_rate_vs_x265_medium"],
    ] {
        // A figure, or the reason there is none (tiny curves may not overlap or rise).
        match bd["pchip_percent"].as_f64() {
            Some(percent) => {
                assert!(percent.is_finite() && percent > -100.0, "{bd}");
                assert!(bd["overlap"].as_f64().unwrap() > 0.0);
            }
            None => assert!(bd["error"].is_string(), "{bd}"),
        }
    }
}
