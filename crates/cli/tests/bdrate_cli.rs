//! `codeclab bdrate` run as a user would: curve files in, numbers or a clear error out.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// The `bjontegaard_readme` curves of `shared/bdrate/vectors.json`, and the package's figures.
fn reference_vector() -> Value {
    let shared = codeclab_video::shared::shared_dir().expect("the shared data folder is missing");
    let text = std::fs::read_to_string(shared.join("bdrate/vectors.json"))
        .expect("cannot read vectors.json");
    let file: Value = serde_json::from_str(&text).expect("vectors.json does not parse");
    file["vectors"]
        .as_array()
        .and_then(|vectors| {
            vectors
                .iter()
                .find(|v| v["name"] == "bjontegaard_readme")
                .cloned()
        })
        .expect("vectors.json lacks the bjontegaard_readme vector")
}

fn points(curve: &Value) -> Vec<(f64, f64)> {
    curve
        .as_array()
        .expect("a curve is a list")
        .iter()
        .map(|p| (p["rate"].as_f64().unwrap(), p["psnr"].as_f64().unwrap()))
        .collect()
}

fn write_csv(path: &Path, header: &str, points: &[(f64, f64)]) {
    let mut text = format!("# written by the bdrate CLI test\n{header}\n");
    for (rate, quality) in points {
        text.push_str(&format!("{rate},{quality}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn write_json(path: &Path, points: &[(f64, f64)]) {
    let list: Vec<Value> = points
        .iter()
        .map(|&(rate, quality)| serde_json::json!({"rate": rate, "psnr": quality}))
        .collect();
    std::fs::write(path, serde_json::to_string(&list).unwrap()).unwrap();
}

fn codeclab(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codeclab"))
        .arg("bdrate")
        .args(args)
        .args(extra)
        .output()
        .expect("the codeclab binary runs")
}

fn assert_close(json: &Value, key: &str, expected: f64) {
    let got = json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {json}"));
    assert!(
        (got - expected).abs() < 1e-4,
        "{key}: {got} instead of {expected}"
    );
}

#[test]
fn csv_anchor_and_json_test_give_the_reference_numbers() {
    let vector = reference_vector();
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("anchor.csv");
    let test = dir.path().join("test.json");
    let (anchor_points, test_points) = (points(&vector["anchor"]), points(&vector["test"]));
    write_csv(&anchor, "kbps,psnr_y", &anchor_points);
    write_json(&test, &test_points);

    let output = codeclab(&[&anchor, &test], &["--json"]);
    assert!(output.status.success(), "{output:?}");
    let json: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    for method in ["pchip", "akima", "cubic"] {
        let expected = vector["expected_bd_rate_percent"][method].as_f64().unwrap();
        assert_close(&json, method, expected);
    }
    let expected_bd_psnr = vector["expected_bd_psnr_db_pchip"].as_f64().unwrap();
    assert_close(&json, "bd_quality_pchip", expected_bd_psnr);
    // The shared PSNR interval over the anchor's PSNR range.
    let range = |curve: &[(f64, f64)]| {
        let qualities = curve.iter().map(|&(_, quality)| quality);
        let low = qualities.clone().fold(f64::INFINITY, f64::min);
        (low, qualities.fold(f64::NEG_INFINITY, f64::max))
    };
    let ((anchor_low, anchor_high), (test_low, test_high)) =
        (range(&anchor_points), range(&test_points));
    let shared = anchor_high.min(test_high) - anchor_low.max(test_low);
    assert_close(&json, "overlap", shared / (anchor_high - anchor_low));
    assert_eq!(json["low_overlap"], Value::Bool(false));

    let summary = codeclab(&[&anchor, &test], &[]);
    assert!(summary.status.success(), "{summary:?}");
    let text = String::from_utf8(summary.stdout).unwrap();
    let expected_pchip = vector["expected_bd_rate_percent"]["pchip"]
        .as_f64()
        .unwrap();
    assert!(
        text.contains(&format!("{expected_pchip:+9.4} %")),
        "no PCHIP figure in:\n{text}"
    );
}

#[test]
fn low_overlap_is_flagged_and_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("anchor.csv");
    let test = dir.path().join("test.csv");
    write_csv(
        &anchor,
        "rate,vmaf",
        &[(100.0, 60.0), (200.0, 70.0), (400.0, 80.0), (800.0, 90.0)],
    );
    write_csv(
        &test,
        "rate,vmaf",
        &[(100.0, 75.0), (200.0, 85.0), (400.0, 92.0), (800.0, 96.0)],
    );
    let output = codeclab(&[&anchor, &test], &["--json"]);
    assert!(output.status.success(), "{output:?}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    // Shared [75, 90] over the anchor's [60, 90].
    assert_close(&json, "overlap", 0.5);
    assert_eq!(json["low_overlap"], Value::Bool(true));
    assert!(json["pchip"].as_f64().unwrap() < 0.0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("50.0 %"), "no overlap warning in: {stderr}");
}

#[test]
fn a_three_point_curve_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("anchor.csv");
    let test = dir.path().join("test.csv");
    let curve = [(100.0, 30.0), (200.0, 32.0), (400.0, 34.0), (800.0, 36.0)];
    write_csv(&anchor, "rate,psnr", &curve);
    write_csv(&test, "rate,psnr", &curve[..3]);
    let output = codeclab(&[&anchor, &test], &["--json"]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the test curve has 3 point(s); at least 4 are needed"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_file_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("anchor.csv");
    std::fs::write(&anchor, "qp,psnr\n22,40\n").unwrap();
    let missing = dir.path().join("missing.csv");
    let output = codeclab(&[&anchor, &missing], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no rate column"), "{stderr}");
}
