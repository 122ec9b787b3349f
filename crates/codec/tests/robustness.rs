//! Corrupt streams: truncated or bit-flipped streams give errors, never panics or hangs.

mod common;

use codeclab_codec::{CodecError, Decoder, DecoderLimits, Genome, RateMode};
use common::{format, format_deep, round_trip, synthetic_clip, synthetic_clip_deep};

/// Frames of the streams below.
const FRAMES: [usize; 4] = [3, 3, 5, 3];

/// A small stream of 8-bit video, of 10-bit video, of 8-bit video whose B frames predict from
/// several references with temporal and bi-predicted merge candidates, and of 8-bit video with
/// context carrying switched the other way from the default.
fn streams() -> [Vec<u8>; 4] {
    let mode = RateMode::ConstantQp(30);
    let format = format(40, 24);
    let clip = synthetic_clip(&format, FRAMES[0], 7);
    let eight = round_trip(format, &clip, Genome::default(), mode).0;
    let carried = Genome {
        context_carry: !Genome::default().context_carry,
        ..Genome::default()
    };
    let carried = round_trip(format, &clip, carried, mode).0;
    let clip = synthetic_clip(&format, FRAMES[2], 7);
    let candidates = Genome {
        reference_frames: 2,
        temporal_mvp: true,
        bi_merge: true,
        ..Genome::default()
    };
    let merged = round_trip(format, &clip, candidates, mode).0;
    let format = format_deep(40, 24, 10);
    let clip = synthetic_clip_deep(&format, FRAMES[1], 7);
    let ten = round_trip(format, &clip, Genome::default(), mode).0;
    [eight, ten, merged, carried]
}

fn decode_all(bytes: &[u8]) -> Result<usize, CodecError> {
    let mut decoder = Decoder::with_limits(bytes, DecoderLimits::default())?;
    let mut frames = 0;
    while decoder.next_frame()?.is_some() {
        frames += 1;
    }
    Ok(frames)
}

#[test]
fn intact_stream_decodes() {
    for (bytes, frames) in streams().iter().zip(FRAMES) {
        assert_eq!(decode_all(bytes).unwrap(), frames);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for bytes in streams() {
        for len in 0..bytes.len() {
            assert!(
                decode_all(&bytes[..len]).is_err(),
                "truncated to {len} bytes decoded"
            );
        }
    }
}

#[test]
fn every_single_bit_flip_is_an_error() {
    for bytes in streams() {
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_all(&flipped).is_err(),
                "bit {bit} flipped decoded cleanly"
            );
        }
    }
}

#[test]
fn garbage_after_a_valid_header_is_an_error() {
    let [bytes, ..] = streams();
    let header_len = codeclab_codec::bitstream::header::HEADER_LEN;
    let mut state = 99u32;
    for trial in 0..200 {
        let mut garbage = bytes[..header_len].to_vec();
        let len = 1 + trial * 7 % 300;
        garbage.push(len as u8 & 0x7F);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            garbage.push(state as u8);
        }
        assert!(decode_all(&garbage).is_err(), "trial {trial}");
    }
}

#[test]
fn candidate_switches_flipped_in_the_header_are_an_error() {
    // Every frame is then parsed with other merge lists and vector predictions than the
    // encoder's: whatever they resolve to, decoding ends in an error (the checksum's at the
    // latest), not a panic.
    let [_, _, merged, _] = streams();
    // The two switches are the header's last bytes.
    let header_len = codeclab_codec::bitstream::header::HEADER_LEN;
    for switches in 1..4u8 {
        let mut bytes = merged.clone();
        bytes[header_len - 2] ^= switches & 1;
        bytes[header_len - 1] ^= switches >> 1;
        assert!(decode_all(&bytes).is_err(), "switches {switches} flipped");
    }
}

#[test]
fn oversized_geometry_is_refused_before_allocation() {
    let [mut bytes, ..] = streams();
    // Width field (little endian at offset 5) set to 100000.
    bytes[5..9].copy_from_slice(&100_000u32.to_le_bytes());
    assert!(matches!(
        decode_all(&bytes),
        Err(CodecError::LimitExceeded(_))
    ));
}
