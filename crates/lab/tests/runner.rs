//! The runner's honesty rules, each with a codec that breaks it, and the lab's codec measured
//! end to end.

mod common;

use std::path::Path;

use codeclab_lab::adapter::{AdapterConfig, AdapterError, CodecAdapter, adapter_for};
use codeclab_lab::process::StepCost;
use codeclab_lab::runner::{RunError, RunnerConfig, SourceClip, run_point};
use codeclab_lab::spec::RatePoint;
use codeclab_video::corpus::Corpus;
use codeclab_video::{AnyFrame, Y4mReader, Y4mWriter};

/// A fake codec whose "bitstream" is the source file itself; its decoder copies frames out,
/// optionally misbehaving.
struct FakeCodec {
    behaviour: Behaviour,
}

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Honest,
    /// The encoder leaves the source beside the bitstream and the decoder reads it from there.
    ReadsEncoderSideFile,
    DropsLastFrame,
    RepeatsLastFrame,
}

impl CodecAdapter for FakeCodec {
    fn version(&self) -> Result<String, AdapterError> {
        Ok("fake".into())
    }

    fn bitstream_extension(&self) -> &'static str {
        "fake"
    }

    fn encode(
        &self,
        source: &Path,
        _point: RatePoint,
        bitstream: &Path,
        workdir: &Path,
        _log: &Path,
    ) -> Result<StepCost, AdapterError> {
        std::fs::copy(source, bitstream)?;
        std::fs::copy(source, workdir.join("side.y4m"))?;
        Ok(StepCost::default())
    }

    fn decode(
        &self,
        bitstream: &Path,
        output: &Path,
        workdir: &Path,
        _log: &Path,
    ) -> Result<StepCost, AdapterError> {
        let input = if self.behaviour == Behaviour::ReadsEncoderSideFile {
            workdir.join("../encode/side.y4m")
        } else {
            bitstream.to_path_buf()
        };
        let mut reader =
            Y4mReader::open(&input).map_err(|e| AdapterError::Decode(e.to_string()))?;
        let mut frames: Vec<AnyFrame> = Vec::new();
        while let Some(frame) = reader
            .read_frame()
            .map_err(|e| AdapterError::Decode(e.to_string()))?
        {
            frames.push(frame);
        }
        match self.behaviour {
            Behaviour::DropsLastFrame => {
                frames.pop();
            }
            Behaviour::RepeatsLastFrame => {
                let last = frames.last().cloned().unwrap();
                frames.push(last);
            }
            _ => {}
        }
        let file = std::io::BufWriter::new(std::fs::File::create(output)?);
        let mut writer = Y4mWriter::new(file, reader.format())
            .map_err(|e| AdapterError::Decode(e.to_string()))?;
        for frame in &frames {
            writer
                .write_frame(frame)
                .map_err(|e| AdapterError::Decode(e.to_string()))?;
        }
        writer
            .finish()
            .map_err(|e| AdapterError::Decode(e.to_string()))?;
        Ok(StepCost::default())
    }

    fn prefix_decode_command(&self, _: &Path, _: &Path, _: u64) -> Option<std::process::Command> {
        None
    }

    fn learned_mac_per_pixel(&self, _: &[u8]) -> Option<f64> {
        None
    }
}

fn setup(frames: u64) -> (tempfile::TempDir, SourceClip, RunnerConfig) {
    let dir = tempfile::tempdir().unwrap();
    common::add_generated_clip(dir.path(), "shapes", frames);
    let corpus = Corpus::open(dir.path()).unwrap();
    let clip = corpus.clip("shapes").unwrap();
    let source = SourceClip {
        id: clip.id.clone(),
        path: corpus.clip_path(clip),
        sha256: clip.sha256.clone(),
        format: *Y4mReader::open(&corpus.clip_path(clip)).unwrap().format(),
        frames: clip.frames,
    };
    let config = RunnerConfig::new(dir.path().join("work"));
    (dir, source, config)
}

fn run_fake(behaviour: Behaviour) -> Result<codeclab_lab::runner::RunOutput, RunError> {
    let (_dir, clip, config) = setup(6);
    run_point(&FakeCodec { behaviour }, &clip, RatePoint::Qp(30), &config)
}

#[test]
fn rule_1_the_decoder_gets_only_the_bitstream() {
    let honest = run_fake(Behaviour::Honest).unwrap();
    // Lossless: PSNR is capped at 60 dB at 8 bits.
    assert_eq!(honest.record.metrics["psnr_y"], 60.0);
    let err = run_fake(Behaviour::ReadsEncoderSideFile)
        .unwrap_err()
        .to_string();
    assert!(err.contains("side.y4m"), "{err}");
}

#[test]
fn rule_2_a_missing_or_extra_frame_fails() {
    let err = run_fake(Behaviour::DropsLastFrame).unwrap_err().to_string();
    assert!(err.contains("returned 5 frames; the source has 6"), "{err}");
    let err = run_fake(Behaviour::RepeatsLastFrame)
        .unwrap_err()
        .to_string();
    assert!(err.contains("returned 7 frames; the source has 6"), "{err}");
}

#[test]
fn lab_codec_in_process_is_measured_by_the_contract() {
    let (_dir, clip, mut config) = setup(8);
    let adapters = AdapterConfig {
        lab_prefix_decoder: Some(env!("CARGO_BIN_EXE_codeclab-lab-decode").into()),
        ..AdapterConfig::default()
    };
    let adapter = adapter_for(&serde_json::json!({"kind": "lab"}), &adapters).unwrap();
    let output = run_point(adapter.as_ref(), &clip, RatePoint::Qp(32), &config).unwrap();
    let record = &output.record;
    assert_eq!(record.frames, 8);
    assert_eq!(
        record.bytes,
        std::fs::metadata(&output.bitstream).unwrap().len()
    );
    // Bitrate from the source's fps (30) and frame count, never from the codec.
    assert!((record.kbps - record.bytes as f64 * 8.0 * 30.0 / 8.0 / 1000.0).abs() < 1e-9);
    let psnr = record.metrics["psnr_y"];
    assert!(psnr > 20.0 && psnr < 60.0, "psnr {psnr}");
    assert!(record.metrics.contains_key("ssim"));
    // The shipped genome declares no learned tool: 0 multiply-accumulates, read from the stream.
    assert_eq!(record.learned_mac_per_pixel, Some(0.0));
    // Rule 6: one step of a shared process has no memory figure of its own: null, not 0.
    assert_eq!(record.encode.peak_memory_bytes, None);
    let json = serde_json::to_value(record).unwrap();
    assert!(json["encode"]["peak_memory_bytes"].is_null());
    match &config.valgrind {
        Some(_) => {
            let per_pixel = record.decoder_instructions_per_pixel.unwrap();
            assert!(per_pixel > 1.0, "{per_pixel} instructions per pixel");
        }
        None => assert_eq!(record.decoder_instructions_per_pixel, None),
    }
    // Without valgrind the count is null, never estimated.
    config.valgrind = None;
    let output = run_point(adapter.as_ref(), &clip, RatePoint::Qp(32), &config).unwrap();
    assert_eq!(output.record.decoder_instructions_per_pixel, None);
    assert!(
        serde_json::to_value(&output.record).unwrap()["decoder_instructions_per_pixel"].is_null()
    );
}

#[test]
fn lab_codec_on_two_threads_codes_the_same_stream_and_times_only_the_wall_clock() {
    let (_dir, clip, mut config) = setup(8);
    config.valgrind = None;
    let measure = |spec: serde_json::Value| {
        let adapter = adapter_for(&spec, &AdapterConfig::default()).unwrap();
        let output = run_point(adapter.as_ref(), &clip, RatePoint::Qp(32), &config).unwrap();
        (adapter.version().unwrap(), output.record)
    };
    let (one_version, one) = measure(serde_json::json!({"kind": "lab"}));
    let (two_version, two) = measure(serde_json::json!({"kind": "lab", "threads": 2}));
    assert_eq!(one.bitstream_sha256, two.bitstream_sha256);
    assert_eq!(one.metrics, two.metrics);
    assert!(one.encode.cpu_seconds.is_some() && one.decode.cpu_seconds.is_some());
    // The workers' CPU time is not the calling thread's: null, never a part of it.
    assert_eq!(two.encode.cpu_seconds, None);
    assert_eq!(two.decode.cpu_seconds, None);
    assert!(two.encode.wall_seconds > 0.0 && two.decode.wall_seconds > 0.0);
    assert_ne!(one_version, two_version);
    assert!(two_version.ends_with(" threads 2"), "{two_version}");
    let err = adapter_for(
        &serde_json::json!({"kind": "lab", "threads": 0}),
        &AdapterConfig::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("threads 0"), "{err}");
}

#[test]
fn a_dynamically_linked_binary_fails_the_point_saying_why_it_cannot_start() {
    let (_dir, clip, config) = setup(3);
    let adapter = adapter_for(
        &serde_json::json!({"kind": "lab_binary", "binary": "/bin/false"}),
        &AdapterConfig::default(),
    )
    .unwrap();
    let err = run_point(adapter.as_ref(), &clip, RatePoint::Qp(30), &config)
        .unwrap_err()
        .to_string();
    // A dynamically linked program cannot start in the sandbox: its loader is out of reach.
    assert!(err.starts_with("encoder: "), "{err}");
    assert!(
        err.contains("/bin/false cannot start in the sandbox: it is dynamically linked"),
        "{err}"
    );
}

#[test]
fn x265_through_ffmpeg_round_trips() {
    if !codeclab_video::ffmpeg::available() {
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let (_dir, clip, mut config) = setup(6);
    config.callgrind_frames = 0;
    let adapter = adapter_for(
        &serde_json::json!({"kind": "ffmpeg", "encoder": "x265", "preset": "ultrafast"}),
        &AdapterConfig::default(),
    )
    .unwrap();
    let output = run_point(adapter.as_ref(), &clip, RatePoint::Crf(30), &config).unwrap();
    assert_eq!(output.record.frames, 6);
    assert!(output.record.metrics["psnr_y"] > 20.0);
    assert!(output.record.encode.peak_memory_bytes.unwrap() > 0);
    assert!(output.record.encode.cpu_seconds.is_some());
    assert_eq!(output.record.decoder_instructions_per_pixel, None);
    // An anchor's format declares no learned tools: not applicable (null), never 0.
    assert_eq!(output.record.learned_mac_per_pixel, None);
    assert!(serde_json::to_value(&output.record).unwrap()["learned_mac_per_pixel"].is_null());
}
