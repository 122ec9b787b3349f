//! Any bytes given to the codec's decoder end in frames or an error, never a panic, a hang or an
//! allocation beyond the header's bounded geometry. The input is tried as a whole stream, and
//! behind a valid header for a small picture (8- to 12-bit) so that the frame parser itself gets
//! the bytes. Each is decoded on one thread and on three: the threaded decoder reads ahead, so
//! it may stop at an error sooner, but what it returns is what one thread returns, and a stream
//! one thread decodes cleanly it decodes cleanly too. Run it again with `CODECLAB_ISA=reference`
//! for the reference kernels.

#![no_main]

use codeclab_codec::bitstream::SequenceHeader;
use codeclab_codec::{Decoder, DecoderLimits, Genome};
use codeclab_video::{AnyFrame, ChromaSampling, Rational, VideoFormat};
use libfuzzer_sys::fuzz_target;

/// The frames decoded on `threads` threads, and whether the stream ended cleanly.
fn decode_on(bytes: &[u8], limits: DecoderLimits, threads: usize) -> (Vec<AnyFrame>, bool) {
    let Ok(mut decoder) = Decoder::with_limits(bytes, limits) else {
        return (Vec::new(), false);
    };
    decoder.set_threads(threads);
    let format = decoder.format();
    let mut frames = Vec::new();
    loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => {
                assert!(
                    frame.matches(&format),
                    "decoder returned a frame unlike its format"
                );
                frames.push(frame);
            }
            Ok(None) => return (frames, true),
            Err(_) => return (frames, false),
        }
    }
}

fn decode_all(bytes: &[u8], limits: DecoderLimits) {
    let (one, clean) = decode_on(bytes, limits, 1);
    let (threaded, threaded_clean) = decode_on(bytes, limits, 3);
    assert_eq!(clean, threaded_clean, "threads changed whether the stream decodes");
    assert!(
        one.len() >= threaded.len() && one[..threaded.len()] == threaded[..],
        "threads changed the frames"
    );
    if clean {
        assert_eq!(one.len(), threaded.len(), "threads lost frames");
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = DecoderLimits {
        max_width: 512,
        max_height: 512,
        max_pixels: 256 * 256,
    };
    decode_all(data, limits);
    let [w, h, tools, low, high, body @ ..] = data else {
        return;
    };
    let switches = u16::from_le_bytes([*low, *high]);
    let format = VideoFormat {
        width: 1 + usize::from(*w % 96),
        height: 1 + usize::from(*h % 96),
        // The top bits of the width byte pick the depth.
        bit_depth: [8, 10, 12, 9][usize::from(*w >> 6)],
        chroma: ChromaSampling::Cs420,
        fps: Rational::new(25, 1),
        aspect: Rational::new(1, 1),
    };
    let genome = Genome {
        reference_frames: 1 + tools % 4,
        merge_candidates: 1 + (tools >> 2) % 5,
        min_block_log2: 3 + (tools >> 5) % 3,
        deblock: tools & 0x80 == 0,
        // Every tool the header signals, on or off.
        sao: switches & 1 == 0,
        temporal_rd: switches & 2 != 0,
        sign_hiding: switches & 4 == 0,
        intra_dst: switches & 8 != 0,
        transform_skip: switches & 16 != 0,
        residual_quadtree: switches & 32 == 0,
        context_carry: switches & 64 != 0,
        temporal_mvp: switches & 128 == 0,
        bi_merge: switches & 256 == 0,
        ..Genome::default()
    };
    let mut stream = SequenceHeader::new(format, &genome).to_bytes();
    stream.extend_from_slice(body);
    decode_all(&stream, limits);
});
