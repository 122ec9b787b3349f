//! Threads change how fast frames are coded, never what is coded: the stream and the decoded
//! frames are the same at any thread count, whatever the structure of the pictures.

mod common;

use codeclab_codec::{Decoder, Genome, RateMode};
use common::{
    decode_threaded, format, format_deep, round_trip_threaded, synthetic_clip, synthetic_clip_deep,
};

/// Structures whose frames depend on each other differently: hierarchical mini-GOPs of 16 and
/// of 8 with two references per direction and carried contexts, adaptive lengths with key
/// frames every 7 frames, and low delay.
fn genomes() -> Vec<Genome> {
    vec![
        Genome::default(),
        Genome {
            mini_gop: 8,
            reference_frames: 2,
            context_carry: true,
            ..Genome::default()
        },
        Genome {
            adaptive_gop: true,
            keyint: 7,
            ..Genome::default()
        },
        Genome {
            mini_gop: 1,
            ..Genome::default()
        },
    ]
}

#[test]
fn streams_and_frames_are_the_same_at_any_thread_count() {
    let format = format(72, 40);
    let clip = synthetic_clip(&format, 37, 5);
    let modes = [
        RateMode::ConstantQp(30),
        RateMode::ConstantQuality { crf: 28.0 },
        RateMode::TargetBitrate { kbps: 300.0 },
    ];
    for genome in genomes() {
        for mode in modes {
            let (stream, recons, decoded) =
                round_trip_threaded(format, &clip, genome.clone(), mode, 1);
            assert!(recons == decoded);
            for threads in [2, 3, 8] {
                let (other, _, decoded) =
                    round_trip_threaded(format, &clip, genome.clone(), mode, threads);
                assert!(
                    other == stream,
                    "{threads} threads changed the stream of {genome:?} at {mode:?}"
                );
                assert!(decoded == recons, "{threads} threads changed the frames");
            }
        }
    }
}

#[test]
fn deep_video_decodes_the_same_at_any_thread_count() {
    let format = format_deep(40, 24, 10);
    let clip = synthetic_clip_deep(&format, 20, 3);
    let (stream, recons, _) = round_trip_threaded(
        format,
        &clip,
        Genome::default(),
        RateMode::ConstantQp(27),
        2,
    );
    for threads in [1, 2, 5] {
        assert!(decode_threaded::<u16>(&stream, threads) == recons);
    }
}

/// Reading ahead to decode in parallel must not turn a damaged stream into a panic, a hang or
/// a clean decode.
#[test]
fn damaged_streams_are_errors_on_several_threads() {
    let format = format(40, 24);
    let clip = synthetic_clip(&format, 19, 9);
    let (stream, _, _) = round_trip_threaded(
        format,
        &clip,
        Genome::default(),
        RateMode::ConstantQp(30),
        1,
    );
    let decode = |bytes: &[u8]| -> Result<usize, codeclab_codec::CodecError> {
        let mut decoder = Decoder::new(bytes)?;
        decoder.set_threads(3);
        let mut frames = 0;
        while decoder.next_frame()?.is_some() {
            frames += 1;
        }
        Ok(frames)
    };
    assert_eq!(decode(&stream).unwrap(), 19);
    for len in (0..stream.len()).step_by(7) {
        assert!(decode(&stream[..len]).is_err(), "truncated to {len} bytes");
    }
    for bit in (0..stream.len() * 8).step_by(13) {
        let mut flipped = stream.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            decode(&flipped).is_err(),
            "bit {bit} flipped decoded cleanly"
        );
    }
}
