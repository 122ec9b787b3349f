//! The decoder reproduces the encoder's reconstruction bit for bit on every frame of the real
//! corpus clips (decoded from the shared folder with ffmpeg, once, into the test scratch dir).

mod common;

use std::path::PathBuf;

use codeclab_codec::{Genome, RateMode};
use codeclab_video::ffmpeg::{DecodeRequest, decode_to_y4m};
use codeclab_video::{AnyFrame, Frame, Y4mReader};
use common::{psnr_y, round_trip};

/// The clip as 8-bit frames; `None` (with the reason printed) when the shared corpus or ffmpeg is
/// missing outside CI. Under CI both must be there.
fn corpus_clip(name: &str) -> Option<(codeclab_video::VideoFormat, Vec<Frame<u8>>)> {
    let source = codeclab_video::shared::corpus_dir().map(|dir| dir.join(name));
    let usable =
        source.as_ref().is_some_and(|s| s.is_file()) && codeclab_video::ffmpeg::available();
    if !usable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the shared corpus clip {name} and ffmpeg are required in CI"
        );
        eprintln!("skipped: {name} or ffmpeg is not available");
        return None;
    }
    let source = source.expect("checked above");
    let y4m = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.codec.y4m"));
    if !y4m.is_file() {
        decode_to_y4m(&DecodeRequest {
            input: &source,
            output: &y4m,
            frames: None,
            pix_fmt: "yuv420p",
        })
        .expect("ffmpeg decodes the corpus clip");
    }
    let mut reader = Y4mReader::open(&y4m).expect("the decoded clip opens");
    let format = *reader.format();
    let mut frames = Vec::new();
    while let Some(frame) = reader.read_frame().expect("the decoded clip reads") {
        match frame {
            AnyFrame::U8(f) => frames.push(f),
            AnyFrame::U16(_) => panic!("{name} decoded to more than 8 bits"),
        }
    }
    Some((format, frames))
}

fn check_clip(name: &str, expected_frames: usize) {
    let Some((format, clip)) = corpus_clip(name) else {
        return;
    };
    assert_eq!(clip.len(), expected_frames, "{name}: frame count");
    let (_, recons, decoded) =
        round_trip(format, &clip, Genome::default(), RateMode::ConstantQp(32));
    assert_eq!(decoded.len(), clip.len(), "{name}: decoded frame count");
    for (i, (r, d)) in recons.iter().zip(&decoded).enumerate() {
        assert!(
            r == d,
            "{name} frame {i}: the decoder differs from the encoder"
        );
    }
    for (i, (s, r)) in clip.iter().zip(&recons).enumerate() {
        let psnr = psnr_y(s, r);
        assert!(
            psnr > 28.0,
            "{name} frame {i}: PSNR-Y {psnr:.2} dB at QP 32"
        );
    }
}

#[test]
fn carphone_round_trips_bit_exactly() {
    check_clip("carphone_qcif.mp4", 120);
}

#[test]
fn bikes_round_trips_bit_exactly() {
    check_clip("bikes_640x272.mp4", 250);
}
