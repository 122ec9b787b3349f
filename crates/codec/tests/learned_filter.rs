//! The learned in-loop filter end to end: a key frame trains and sends a model that lowers its
//! error, and the stream decodes to the encoder's reconstruction at any thread count and depth;
//! damaged filter streams are errors.

mod common;

use codeclab_codec::{Decoder, Genome, RateMode};
use common::{
    format, format_deep, psnr_y, round_trip_threaded, synthetic_clip, synthetic_clip_deep,
};

/// A small network trained briefly: enough to pay for its bits on a 480x320 key frame.
fn filter_genome() -> Genome {
    Genome {
        learned_filter: true,
        filter_layers: 2,
        filter_channels: 4,
        filter_training_steps: 150,
        filter_weight_bits: 6,
        keyint: 4,
        mini_gop: 2,
        ..Genome::default()
    }
}

#[test]
fn key_frames_send_a_model_that_lowers_their_error_and_decoding_is_exact_at_any_thread_count() {
    let format = format(480, 320);
    let clip = synthetic_clip(&format, 6, 11);
    let mode = RateMode::ConstantQp(34);
    let (stream, recons, decoded) = round_trip_threaded(format, &clip, filter_genome(), mode, 1);
    assert!(recons == decoded, "the decoder reproduces the encoder");
    let without = Genome {
        learned_filter: false,
        ..filter_genome()
    };
    let (_, plain, _) = round_trip_threaded(format, &clip, without, mode, 1);
    // Everything before the filter codes the first key frame alike: only the filter, applied
    // where it lowers the error, tells them apart.
    let (filtered, unfiltered) = (psnr_y(&recons[0], &clip[0]), psnr_y(&plain[0], &clip[0]));
    assert!(
        filtered > unfiltered + 0.05,
        "key frame PSNR-Y {unfiltered:.3} dB without the filter, {filtered:.3} dB with it"
    );
    let (other, _, decoded) = round_trip_threaded(format, &clip, filter_genome(), mode, 3);
    assert!(other == stream, "3 threads changed the stream");
    assert!(decoded == recons, "3 threads changed the frames");
}

#[test]
fn deep_video_with_the_filter_decodes_to_the_reconstruction() {
    let format = format_deep(128, 96, 10);
    let clip = synthetic_clip_deep(&format, 5, 3);
    let (_, recons, decoded) =
        round_trip_threaded(format, &clip, filter_genome(), RateMode::ConstantQp(40), 2);
    assert!(recons == decoded);
}

#[test]
fn damaged_filter_streams_are_errors() {
    let format = format(128, 96);
    let clip = synthetic_clip(&format, 3, 5);
    let (stream, _, _) =
        round_trip_threaded(format, &clip, filter_genome(), RateMode::ConstantQp(40), 1);
    let decode_all = |bytes: &[u8]| -> Result<usize, codeclab_codec::CodecError> {
        let mut decoder = Decoder::new(bytes)?;
        let mut frames = 0;
        while decoder.next_frame()?.is_some() {
            frames += 1;
        }
        Ok(frames)
    };
    assert_eq!(decode_all(&stream).unwrap(), 3);
    for len in (0..stream.len()).step_by(5) {
        assert!(
            decode_all(&stream[..len]).is_err(),
            "truncated to {len} bytes decoded"
        );
    }
    for at in (0..stream.len()).step_by(7) {
        let mut damaged = stream.clone();
        damaged[at] ^= 0x10;
        assert!(decode_all(&damaged).is_err(), "a flip at byte {at} decoded");
    }
}
