//! `codeclab genome` run as a user would: every gene with its value, values and meaning.

use serde_json::Value;
use std::process::Command;

fn genome(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_codeclab"))
        .arg("genome")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn lists_every_gene_of_the_default_or_a_given_genome() {
    let output = genome(&["--json"]);
    assert!(output.status.success());
    let genes: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let default = serde_json::to_value(codeclab_codec::Genome::default()).unwrap();
    assert_eq!(genes.len(), default.as_object().unwrap().len());
    let mini_gop = genes.iter().find(|g| g["name"] == "mini_gop").unwrap();
    assert_eq!(mini_gop["value"], default["mini_gop"]);
    assert_eq!(mini_gop["values"], "1 to 16");
    assert!(mini_gop["meaning"].as_str().unwrap().contains("B frames"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genome.json");
    std::fs::write(&path, r#"{"mini_gop": 4, "sao": false}"#).unwrap();
    let output = genome(&["--genome", path.to_str().unwrap()]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap()
            .to_owned()
    };
    assert_eq!(line("mini_gop").split_whitespace().nth(1), Some("4"));
    assert_eq!(line("sao").split_whitespace().nth(1), Some("false"));

    std::fs::write(&path, r#"{"mini_gop": 17}"#).unwrap();
    let output = genome(&["--genome", path.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("mini_gop"));
}

#[test]
fn a_preset_gives_its_genome_and_a_genome_file_overrides_it() {
    let value = |output: std::process::Output, name: &str| {
        assert!(output.status.success(), "{output:?}");
        let genes: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        genes.into_iter().find(|g| g["name"] == name).unwrap()["value"].clone()
    };
    let faster = codeclab_codec::Preset::Faster.genome();
    assert_ne!(faster.rdoq, codeclab_codec::Genome::default().rdoq);
    let rdoq = value(genome(&["--preset", "faster", "--json"]), "rdoq");
    assert_eq!(rdoq, Value::Bool(faster.rdoq));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genome.json");
    std::fs::write(&path, r#"{"rdoq": true}"#).unwrap();
    let path = path.to_str().unwrap();
    let args = ["--preset", "faster", "--genome", path, "--json"];
    assert_eq!(value(genome(&args), "rdoq"), Value::Bool(true));
    assert_eq!(
        value(genome(&args), "me_range"),
        serde_json::json!(faster.me_range)
    );

    std::fs::write(path, r#"{"preset": "slow"}"#).unwrap();
    let output = genome(&["--preset", "faster", "--genome", path]);
    assert!(!output.status.success());
    let output = genome(&["--preset", "glacial"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("faster, fast, medium or slow"));
}
