//! The decoder reproduces the encoder's reconstruction bit for bit.

mod common;

use codeclab_codec::{Encoder, FrameKind, Genome, RateMode};
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
        sign_hiding: false,
        intra_dst: true,
        transform_skip: true,
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
        sign_hiding: true,
        intra_dst: true,
        transform_skip: true,
        ..Genome::default()
    };
    check(100, 60, 6, genome, 45);
}

#[test]
fn a_scene_cut_gets_a_key_frame_and_b_frames_sit_between_anchors() {
    let format = format(96, 64);
    let mut clip = synthetic_clip(&format, 20, 5);
    // From frame 13 on, another picture: the first one turned upside down and inverted.
    for frame in &mut clip[13..] {
        for plane in &mut frame.planes {
            let (w, h) = (plane.width(), plane.height());
            let flipped: Vec<u8> = (0..w * h)
                .map(|i| 255 - plane.data()[(h - 1 - i / w) * w + i % w])
                .collect();
            *plane = codeclab_video::Plane::from_vec(w, h, flipped).unwrap();
        }
    }
    let kinds = |genome: Genome| {
        let mut encoder = Encoder::new(format, genome, RateMode::ConstantQp(30)).unwrap();
        let mut coded = Vec::new();
        for frame in &clip {
            coded.extend(encoder.encode_frame(frame).unwrap());
        }
        coded.extend(encoder.finish().unwrap().0);
        let mut kinds = vec![None; clip.len()];
        for frame in coded {
            assert!(kinds[frame.display_index as usize].is_none(), "coded twice");
            kinds[frame.display_index as usize] = Some(frame.kind);
        }
        kinds.into_iter().map(Option::unwrap).collect::<Vec<_>>()
    };
    let keys = |kinds: &[FrameKind]| -> Vec<usize> {
        (0..kinds.len())
            .filter(|&i| kinds[i] == FrameKind::Key)
            .collect()
    };
    let detected = kinds(Genome {
        mini_gop: 8,
        ..Genome::default()
    });
    assert_eq!(keys(&detected), [0, 13]);
    // Mini-GOPs of 8: P frames at 8 and 12 (cut short before the key frame) and 19 (the end).
    for (i, kind) in detected.iter().enumerate() {
        let anchor = [0, 8, 12, 13, 19].contains(&i);
        assert_eq!(kind.is_anchor(), anchor, "frame {i}: {kind:?}");
    }
    let blind = kinds(Genome {
        scene_cut_threshold: 0.0,
        ..Genome::default()
    });
    assert_eq!(keys(&blind), [0]);
}
