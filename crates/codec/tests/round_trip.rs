//! The decoder reproduces the encoder's reconstruction bit for bit.

mod common;

use codeclab_codec::{Encoder, FrameKind, Genome, RateMode};
use common::{
    deepen, format, format_deep, psnr_y, psnr_y_deep, round_trip, synthetic_clip,
    synthetic_clip_deep,
};

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

/// `check` for `bit_depth` video.
fn check_deep(width: usize, height: usize, frames: usize, genome: Genome, qp: u8, bit_depth: u8) {
    let format = format_deep(width, height, bit_depth);
    let clip = synthetic_clip_deep(&format, frames, (width * 31 + height) as u32);
    let (stream, recons, decoded) = round_trip(format, &clip, genome, RateMode::ConstantQp(qp));
    assert_eq!(decoded.len(), clip.len());
    for (i, (r, d)) in recons.iter().zip(&decoded).enumerate() {
        assert!(
            r == d,
            "{bit_depth}-bit {width}x{height} frame {i}: decoder differs from the encoder"
        );
    }
    for (s, r) in clip.iter().zip(&recons) {
        let psnr = psnr_y_deep(s, r, bit_depth);
        assert!(psnr > 20.0, "{bit_depth}-bit {width}x{height}: PSNR {psnr}");
    }
    if width * height >= 1024 {
        assert!(
            stream.len() < clip.len() * width * height / 4,
            "no compression"
        );
    }
}

#[test]
fn ten_bit_sizes() {
    check_deep(33, 17, 5, Genome::default(), 30, 10);
    check_deep(1, 1, 2, Genome::default(), 20, 10);
    check_deep(130, 9, 3, Genome::default(), 25, 10);
    // 12 frames: the default mini-GOP of 16 gives B frames between the key frame and the last.
    check_deep(64, 48, 12, Genome::default(), 32, 10);
}

#[test]
fn twelve_and_nine_bit() {
    check_deep(40, 24, 6, Genome::default(), 30, 12);
    check_deep(24, 40, 6, Genome::default(), 30, 9);
}

#[test]
fn ten_bit_large_odd_size() {
    let genome = Genome {
        me_range: 8,
        intra_rdo_candidates: 1,
        ..Genome::default()
    };
    check_deep(1921, 1081, 2, genome, 38, 10);
}

#[test]
fn ten_bit_every_tool() {
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
    check_deep(72, 40, 5, genome, 27, 10);
    let genome = Genome {
        reference_frames: 4,
        deblock_beta_offset: 6,
        deblock_tc_offset: 6,
        rdoq: true,
        temporal_rd: true,
        mini_gop: 4,
        temporal_mvp: false,
        bi_merge: false,
        ..Genome::default()
    };
    check_deep(100, 60, 9, genome, 45, 10);
}

#[test]
fn ten_bit_coding_of_an_8_bit_clip_matches_its_quality() {
    // A QP means the same quality at every depth: the 8-bit clip shifted up by 2 bits codes to
    // about the PSNR the 8-bit clip does, at about the same rate.
    let (width, height, frames) = (96, 64, 6);
    let eight = format(width, height);
    let clip = synthetic_clip(&eight, frames, 11);
    let deep = deepen(&clip, 10, |_, _, _| 0);
    for qp in [22u8, 32, 42] {
        let mode = RateMode::ConstantQp(qp);
        let (stream8, recons8, _) = round_trip(eight, &clip, Genome::default(), mode);
        let ten = format_deep(width, height, 10);
        let (stream10, recons10, _) = round_trip(ten, &deep, Genome::default(), mode);
        let mean = |psnrs: Vec<f64>| psnrs.iter().sum::<f64>() / psnrs.len() as f64;
        let psnr8 = mean(
            clip.iter()
                .zip(&recons8)
                .map(|(s, r)| psnr_y(s, r))
                .collect(),
        );
        let psnr10 = mean(
            deep.iter()
                .zip(&recons10)
                .map(|(s, r)| psnr_y_deep(s, r, 10))
                .collect(),
        );
        let rate = stream10.len() as f64 / stream8.len() as f64;
        eprintln!("QP {qp}: 8-bit {psnr8:.2} dB, 10-bit {psnr10:.2} dB, rate ratio {rate:.3}");
        assert!(
            (psnr10 - psnr8).abs() < 0.3,
            "QP {qp}: 8-bit {psnr8:.2} dB, 10-bit {psnr10:.2} dB"
        );
        assert!((0.8..1.25).contains(&rate), "QP {qp}: rate ratio {rate:.3}");
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
        temporal_mvp: false,
        bi_merge: false,
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
fn carried_contexts_round_trip_with_b_frames_and_several_references() {
    for (reference_frames, mini_gop, keyint, qp) in [(1, 16, 250, 40), (3, 4, 9, 30), (2, 1, 7, 45)]
    {
        for context_carry in [false, true] {
            let genome = Genome {
                context_carry,
                reference_frames,
                mini_gop,
                keyint,
                ..Genome::default()
            };
            check(80, 48, 19, genome, qp);
        }
    }
}

#[test]
fn carried_contexts_save_bytes_on_similar_frames() {
    // A still scene: the frames after the first code the same few decisions, which contexts
    // carried from the references already expect.
    let format = format(176, 144);
    let clip = vec![synthetic_clip(&format, 1, 5)[0].clone(); 17];
    let code = |context_carry| {
        let genome = Genome {
            context_carry,
            ..Genome::default()
        };
        let (stream, recons, _) = round_trip(format, &clip, genome, RateMode::ConstantQp(45));
        let psnr: f64 = clip.iter().zip(&recons).map(|(s, r)| psnr_y(s, r)).sum();
        (stream.len(), psnr / clip.len() as f64)
    };
    let ((carried, carried_psnr), (reset, reset_psnr)) = (code(true), code(false));
    assert!(
        carried < reset && carried_psnr >= reset_psnr - 0.01,
        "{carried} bytes at {carried_psnr} dB carried, {reset} at {reset_psnr} dB reset"
    );
}

#[test]
fn adaptive_mini_gops_round_trip() {
    for (mini_gop, reference_frames, keyint, qp) in
        [(16, 1, 250, 32), (8, 2, 11, 40), (5, 3, 250, 27)]
    {
        let genome = Genome {
            adaptive_gop: true,
            mini_gop,
            reference_frames,
            keyint,
            ..Genome::default()
        };
        check(96, 64, 23, genome, qp);
    }
}

#[test]
fn temporal_and_bi_merge_candidates_with_b_frames_and_several_references() {
    let format = format(96, 64);
    let clip = synthetic_clip(&format, 13, 17);
    let mode = RateMode::ConstantQp(30);
    let mut sizes = Vec::new();
    for reference_frames in [1, 3] {
        for (temporal_mvp, bi_merge) in [(false, false), (true, false), (false, true), (true, true)]
        {
            // Every motion-searched prediction checked in full, bi-predicted ones included,
            // so that neighbours leave bi-predicted merge candidates on this small clip.
            let genome = Genome {
                reference_frames,
                mini_gop: 8,
                temporal_mvp,
                bi_merge,
                inter_rd_margin: 1.0,
                ..Genome::default()
            };
            let (stream, recons, decoded) = round_trip(format, &clip, genome, mode);
            assert_eq!(decoded.len(), clip.len());
            assert!(
                recons == decoded,
                "{reference_frames} references, temporal {temporal_mvp}, bi merge {bi_merge}: \
                 decoder differs from the encoder"
            );
            sizes.push(stream.len());
        }
    }
    // Each switch changes what is coded with one reference count or the other: its
    // candidates get chosen.
    let changes = |switched: usize| sizes[switched] != sizes[0] || sizes[4 + switched] != sizes[4];
    assert!(changes(1) && changes(2), "{sizes:?}");
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

#[test]
fn ten_bit_y4m_through_the_pipeline() {
    use codeclab_codec::{EncodeSettings, decode_to_y4m, encode_y4m_reconstructed};
    use codeclab_video::{AnyFrame, Y4mWriter};
    let format = format_deep(40, 26, 10);
    let clip = synthetic_clip_deep(&format, 4, 3);
    let mut writer = Y4mWriter::new(Vec::new(), &format).unwrap();
    for frame in &clip {
        writer.write_frame(&AnyFrame::U16(frame.clone())).unwrap();
    }
    let y4m = writer.finish().unwrap();
    let (mut stream, mut reconstruction, mut decoded) = (Vec::new(), Vec::new(), Vec::new());
    let mut quiet = |_: u64, _: Option<u64>| {};
    let summary = encode_y4m_reconstructed(
        y4m.as_slice(),
        "clip",
        &mut stream,
        &mut reconstruction,
        EncodeSettings::new(Genome::default(), RateMode::ConstantQp(30)),
        &mut quiet,
    )
    .unwrap();
    assert_eq!(summary.frames, 4);
    decode_to_y4m(stream.as_slice(), &mut decoded, 1, &mut quiet).unwrap();
    let header = |y4m: &[u8]| {
        String::from_utf8_lossy(&y4m[..y4m.iter().position(|&b| b == b'\n').unwrap()]).into_owned()
    };
    assert!(header(&decoded).contains("C420p10"), "{}", header(&decoded));
    // Two bytes per sample: the decoded stream is as long as the deep source.
    assert_eq!(decoded.len(), y4m.len());
    assert!(
        decoded == reconstruction,
        "decoder differs from the encoder"
    );
}
