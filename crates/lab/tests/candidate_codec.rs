//! The real codec as a candidate: its sources, with an edit inside an evolvable block, copied into
//! the cached workspace, built offline, statically and confined, smoke-tested (its decode equals
//! its encoder's reconstruction bit for bit), then run through the sandbox. The sandboxed encoder
//! must produce the very bitstream the in-process library produces, and the sandboxed decoder
//! must read it back: the allowlist lets the codec do its work.

use codeclab_codec::{EncodeSettings, Genome, RateMode, decode_to_y4m, encode_y4m};
use codeclab_lab::candidate::{Candidates, Edit, Policy, Project, Rejection, SmokeSpec};
use codeclab_sandbox::{Limits, Outcome, RunRequest, run};
use std::path::Path;
use std::time::Duration;

/// A small 4:2:0 clip with motion: a diagonal gradient sliding one pixel per frame.
fn clip(width: usize, height: usize, frames: usize) -> Vec<u8> {
    let mut y4m = format!("YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for frame in 0..frames {
        y4m.extend_from_slice(b"FRAME\n");
        for y in 0..height {
            for x in 0..width {
                y4m.push(((x + frame) * 3 + y * 2) as u8);
            }
        }
        for plane in 0..2 {
            for y in 0..height / 2 {
                for x in 0..width / 2 {
                    y4m.push((128 + plane * 20 + (x + y + frame) % 16) as u8);
                }
            }
        }
    }
    y4m
}

fn limits() -> Limits {
    Limits {
        wall_clock: Duration::from_secs(60),
        cpu_seconds: 60,
        address_space_bytes: 2 << 30,
        ..Limits::default()
    }
}

#[test]
fn a_codec_candidate_builds_offline_and_encodes_and_decodes_in_the_sandbox() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("candidate-codec");
    let candidates =
        Candidates::new(Project::LabCodec { repository }, &cache, Policy::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = clip(64, 48, 3);
    let smoke = SmokeSpec {
        clip: dir.path().join("clip.y4m"),
        frames: 3,
        qp: 32,
        genome: serde_json::json!({}),
        limits: limits(),
    };
    std::fs::write(&smoke.clip, &source).unwrap();
    // Prepend a comment to the first block: a real edit that changes nothing the bitstream
    // depends on.
    let original = candidates.original();
    let block = original.blocks().unwrap().into_iter().next().unwrap();
    let content = original.files[&block.file][block.content.clone()].to_owned();
    let edits = [Edit {
        block: block.name.clone(),
        search: content.clone(),
        replace: format!("// Candidate edit under test.\n{content}"),
    }];
    let binary = cache.join("candidate-under-test");
    let report = candidates
        .evaluate(&edits, &binary, &smoke)
        .unwrap()
        .unwrap_or_else(|rejection| panic!("{rejection}"));
    assert_eq!(report.frames, 3);
    assert!(
        std::fs::read_to_string(cache.join("workspace/crates/codec").join(&block.file))
            .unwrap()
            .contains("// Candidate edit under test.")
    );

    // A forbidden edit through the same door is refused before any build.
    let forbidden = [Edit {
        block: block.name.clone(),
        search: content.clone(),
        replace: format!(
            "{content}\nfn leak() -> usize {{ std::fs::read(\"/etc/passwd\").map_or(0, |d| d.len()) }}\n"
        ),
    }];
    let refused = candidates
        .evaluate(&forbidden, &cache.join("never-built"), &smoke)
        .unwrap()
        .unwrap_err();
    assert!(matches!(refused, Rejection::Policy(_)), "{refused}");
    assert!(!cache.join("never-built").exists());

    let encoded = run(&RunRequest {
        program: binary.clone(),
        args: ["encode", "--qp", "30", "-", "-o", "-"]
            .map(Into::into)
            .to_vec(),
        stdin: source.clone(),
        limits: limits(),
    })
    .unwrap();
    assert_eq!(
        encoded.outcome,
        Outcome::Ok,
        "{}",
        String::from_utf8_lossy(&encoded.stderr)
    );

    let mut expected = Vec::new();
    encode_y4m(
        source.as_slice(),
        "-",
        &mut expected,
        EncodeSettings::new(Genome::default(), RateMode::ConstantQp(30)),
        &mut |_: u64, _: Option<u64>| {},
    )
    .unwrap();
    assert_eq!(encoded.stdout, expected);

    let decoded = run(&RunRequest {
        program: binary,
        args: ["decode", "-", "-o", "-"].map(Into::into).to_vec(),
        stdin: encoded.stdout.clone(),
        limits: limits(),
    })
    .unwrap();
    assert_eq!(
        decoded.outcome,
        Outcome::Ok,
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let mut expected_decode = Vec::new();
    decode_to_y4m(
        expected.as_slice(),
        &mut expected_decode,
        1,
        &mut |_: u64, _: Option<u64>| {},
    )
    .unwrap();
    assert_eq!(decoded.stdout, expected_decode);
    assert_eq!(decoded.stdout.len(), source.len());
}
