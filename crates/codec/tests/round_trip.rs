//! The decoder reproduces the encoder's reconstruction bit for bit.

mod common;

use codeclab_codec::{Genome, RateMode};
use common::{format, psnr_y, round_trip, synthetic_clip};

fn check(width: usize, height: usize, frames: usize, genome: Genome, qp: u8) {
    let format = format(width, height);
    let clip = synthetic_clip(&format, frames, (width * 31 + height) as u32);
    let (stream, recons, decoded) = round_trip(format, &clip, genome, RateMode::ConstantQp(qp));
    assert_eq!(decoded.len(), clip.len());
    for (i, (r, d)) in recons.iter().zip(&decoded).enumerate() {
        assert!(
            r == d,
            "{width}x{height} frame {i}: decoder differs from the encoder"
        );
    }
    // The reconstruction resembles the source: the codec codes, not just round-trips.
    for (s, r) in clip.iter().zip(&recons) {
        let psnr = psnr_y(s, r);
        assert!(psnr > 20.0, "{width}x{height}: PSNR {psnr}");
    }
    if width * height >= 1024 {
        assert!(
            stream.len() < clip.len() * width * height / 4,
            "no compression"
        );
    }
}

#[test]
fn odd_small_size() {
    check(33, 17, 5, Genome::default(), 30);
}

#[test]
fn tiny_and_narrow_sizes() {
    check(1, 1, 2, Genome::default(), 20);
    check(8, 70, 3, Genome::default(), 40);
    check(130, 9, 3, Genome::default(), 25);
}

#[test]
fn large_odd_size() {
    let genome = Genome {
        me_range: 8,
        intra_rdo_candidates: 1,
        ..Genome::default()
    };
    check(1921, 1081, 2, genome, 38);
}

#[test]
fn every_tool_switched() {
    let genome = Genome {
        keyint: 2,
        reference_frames: 3,
        min_block_log2: 4,
        max_block_log2: 5,
        intra_angular: false,
        merge_candidates: 1,
        subpel_precision: 1,
        rdoq: true,
        chroma_qp_offset: -3,
        deblock: false,
        sao: false,
        early_skip: false,
        skip_stops_split: false,
        ..Genome::default()
    };
    check(72, 40, 5, genome, 27);
    let genome = Genome {
        reference_frames: 4,
        deblock_beta_offset: 6,
        deblock_tc_offset: 6,
        rdoq: true,
        ..Genome::default()
    };
    check(100, 60, 6, genome, 45);
}
