//! The procedural generator: deterministic, seed-sensitive, any size, and shaped like video.

use codeclab_video::{
    AnyFrame, ChromaSampling, GenerateError, Generator, GeneratorSpec, Pattern, Rational, Y4mReader,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn spec(pattern: Pattern, width: usize, height: usize, seed: u64, bit_depth: u8) -> GeneratorSpec {
    GeneratorSpec {
        pattern,
        width,
        height,
        frames: 4,
        fps: Rational::new(30, 1),
        seed,
        bit_depth,
    }
}

fn clip_hash(spec: &GeneratorSpec) -> String {
    let bytes = Generator::new(spec).unwrap().write_y4m(Vec::new()).unwrap();
    hex::encode(Sha256::digest(&bytes))
}

/// Luma samples of a frame as u32, whatever the depth.
fn plane(frame: &AnyFrame, index: usize) -> Vec<u32> {
    match frame {
        AnyFrame::U8(f) => f.planes[index]
            .data()
            .iter()
            .map(|&v| u32::from(v))
            .collect(),
        AnyFrame::U16(f) => f.planes[index]
            .data()
            .iter()
            .map(|&v| u32::from(v))
            .collect(),
    }
}

fn mean_abs_difference(a: &[u32], b: &[u32]) -> f64 {
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.len() as f64
}

fn spread(samples: &[u32]) -> u32 {
    samples.iter().max().unwrap() - samples.iter().min().unwrap()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for pattern in Pattern::ALL {
        for depth in [8, 10] {
            let a = spec(pattern, 67, 37, 7, depth);
            let first = clip_hash(&a);
            assert_eq!(
                first,
                clip_hash(&a),
                "{pattern} {depth}-bit is not deterministic"
            );
            let b = GeneratorSpec {
                seed: 8,
                ..a.clone()
            };
            assert_ne!(
                first,
                clip_hash(&b),
                "{pattern} {depth}-bit ignores its seed"
            );
        }
    }
}

/// The bytes of each pattern, pinned. Generated corpus clips are recorded by hash, so any change
/// to the generator's output (or a platform computing it differently) must show up here, on
/// purpose, rather than as "changed" clips in `codeclab corpus verify`. Same values in debug and
/// release builds.
#[test]
fn output_is_pinned_across_builds_and_machines() {
    let pinned: [(Pattern, u8, &str); 14] = [
        (
            Pattern::Plasma,
            8,
            "9af2e9cac8ebd6bfb64d85b1033cdbcb696feb2ba111cf17981057dfaa3109a0",
        ),
        (
            Pattern::Plasma,
            10,
            "775239eaa495e8e0cceed8c62f6c7b9c44906ebc6b12f84bc6eb2bc7c998a8cd",
        ),
        (
            Pattern::Mandelbrot,
            8,
            "99adafa8210034b7e8396df87dd6e94162eb59f61ab555d0184902f2435a713f",
        ),
        (
            Pattern::Mandelbrot,
            10,
            "b84641a2bed1ebb4c3b14b1dc7e51e6f332c100d0a3dcdb565f61db013c750d0",
        ),
        (
            Pattern::Shapes,
            8,
            "00267a2773fd8f1937ca84dc243bbe427ee4890b3fe1cb860c6da0c935bf93bc",
        ),
        (
            Pattern::Shapes,
            10,
            "f039f6d617ef2683b813f185b93109d837b90d89a35036c1574d2a7a741fc940",
        ),
        (
            Pattern::Pan,
            8,
            "00f6aa5a6377b0972a64f03e919d4dbd6250e7a0309a4b3d993441483d81cdfa",
        ),
        (
            Pattern::Pan,
            10,
            "4ff9bb998d2cae92afbcdb760f0602374ff3118ac750ee2c068a506f44f8eea3",
        ),
        (
            Pattern::Grain,
            8,
            "9a01c7605ea771cdbdc05c59ba71e4fe5231c0b2d709c78393fac325765a4bbe",
        ),
        (
            Pattern::Grain,
            10,
            "9ea265dcdf25486d685ac1351049e938a43e3759f6dfe552bc7546df4def3952",
        ),
        (
            Pattern::Gradient,
            8,
            "a102d37fd7da41c52da4707ff1d4dc78e6779a846384e308cb208342b3199ae0",
        ),
        (
            Pattern::Gradient,
            10,
            "f8d82978e4830fc80babd6529110e3db47d547e76cbe6ac8504a25a3d28551e6",
        ),
        (
            Pattern::SceneCut,
            8,
            "a67de76ccf131658721115525bacb50ba285c4b7bf77666dd41207ea4c0cff45",
        ),
        (
            Pattern::SceneCut,
            10,
            "09da7cd0132b0de30eb75722b5e28bc3ceaeb3c8a48f611be0356d020dd3812d",
        ),
    ];
    for (pattern, depth, expected) in pinned {
        assert_eq!(
            clip_hash(&spec(pattern, 67, 37, 7, depth)),
            expected,
            "{pattern} {depth}-bit output changed"
        );
    }
}

#[test]
fn every_pattern_moves_and_has_detail_and_chroma() {
    for pattern in Pattern::ALL {
        let s = GeneratorSpec {
            frames: 30,
            ..spec(pattern, 96, 64, 3, 8)
        };
        let generator = Generator::new(&s).unwrap();
        let first = generator.frame(0);
        let later = generator.frame(6);
        let motion = mean_abs_difference(&plane(&first, 0), &plane(&later, 0));
        assert!(motion > 0.5, "{pattern}: luma barely changes ({motion})");
        assert!(spread(&plane(&first, 0)) > 20, "{pattern}: flat luma");
        let chroma_spread = spread(&plane(&first, 1)).max(spread(&plane(&first, 2)));
        assert!(
            chroma_spread > 8,
            "{pattern}: no real chroma ({chroma_spread})"
        );
    }
}

#[test]
fn scene_cut_switches_content_at_half_the_clip() {
    let s = GeneratorSpec {
        frames: 20,
        ..spec(Pattern::SceneCut, 80, 48, 11, 8)
    };
    let generator = Generator::new(&s).unwrap();
    let luma = |i| plane(&generator.frame(i), 0);
    let before = mean_abs_difference(&luma(8), &luma(9));
    let cut = mean_abs_difference(&luma(9), &luma(10));
    let after = mean_abs_difference(&luma(10), &luma(11));
    assert!(
        cut > 4.0 * before.max(after),
        "no hard cut: {before} {cut} {after}"
    );
}

#[test]
fn ten_bit_uses_the_extra_precision() {
    let generator = Generator::new(&spec(Pattern::Gradient, 64, 32, 5, 10)).unwrap();
    let luma = plane(&generator.frame(0), 0);
    assert!(luma.iter().all(|&v| (64..=940).contains(&v)));
    assert!(
        luma.iter().any(|&v| v % 4 != 0),
        "10-bit samples are 8-bit ones shifted"
    );
}

#[test]
fn a_4k_frame_renders_and_round_trips_through_y4m() {
    let s = GeneratorSpec {
        frames: 1,
        ..spec(Pattern::Pan, 3840, 2160, 1, 10)
    };
    let generator = Generator::new(&s).unwrap();
    let bytes = generator.write_y4m(Vec::new()).unwrap();
    let mut reader = Y4mReader::new(bytes.as_slice(), "4k").unwrap();
    assert_eq!(reader.format(), generator.format());
    assert_eq!(reader.format().chroma, ChromaSampling::Cs420);
    let frame = reader.read_frame().unwrap().unwrap();
    assert_eq!(frame, generator.frame(0));
    assert!(reader.read_frame().unwrap().is_none());
}

#[test]
fn frame_into_reuses_and_matches_frame() {
    let generator = Generator::new(&spec(Pattern::Shapes, 33, 21, 2, 8)).unwrap();
    let mut frame = generator.frame(0);
    generator.frame_into(3, &mut frame);
    assert_eq!(frame, generator.frame(3));
    // A frame of the wrong kind is replaced, not misused.
    let mut wrong = Generator::new(&spec(Pattern::Shapes, 8, 8, 2, 10))
        .unwrap()
        .frame(0);
    generator.frame_into(3, &mut wrong);
    assert_eq!(wrong, generator.frame(3));
}

#[test]
fn specs_outside_the_limits_are_refused() {
    let good = spec(Pattern::Plasma, 16, 16, 0, 8);
    let bad = [
        GeneratorSpec {
            width: 0,
            ..good.clone()
        },
        GeneratorSpec {
            height: 4097,
            ..good.clone()
        },
        GeneratorSpec {
            width: 4096,
            height: 2161,
            ..good.clone()
        },
        GeneratorSpec {
            bit_depth: 12,
            ..good.clone()
        },
        GeneratorSpec {
            frames: 0,
            ..good.clone()
        },
        GeneratorSpec {
            fps: Rational::new(30, 0),
            ..good.clone()
        },
    ];
    for spec in bad {
        assert!(
            matches!(Generator::new(&spec), Err(GenerateError::InvalidSpec(_))),
            "{spec:?} accepted"
        );
    }
    assert!(
        Generator::new(&GeneratorSpec {
            width: 4096,
            height: 2160,
            ..good
        })
        .is_ok()
    );
}

#[test]
fn specs_serialize_with_readable_pattern_names() {
    let s = spec(Pattern::SceneCut, 16, 16, 0, 8);
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"pattern\":\"scene-cut\""), "{json}");
    assert_eq!(serde_json::from_str::<GeneratorSpec>(&json).unwrap(), s);
    assert_eq!("mandelbrot".parse::<Pattern>(), Ok(Pattern::Mandelbrot));
    assert!(
        "zebra"
            .parse::<Pattern>()
            .unwrap_err()
            .contains("scene-cut")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_small_size_renders_valid_frames(
        pattern in prop::sample::select(Pattern::ALL.to_vec()),
        width in 1usize..=9,
        height in 1usize..=9,
        seed in any::<u64>(),
        depth in prop_oneof![Just(8u8), Just(10u8)],
        index in 0u64..100_000,
    ) {
        let s = spec(pattern, width, height, seed, depth);
        let generator = Generator::new(&s).unwrap();
        let frame = generator.frame(index);
        prop_assert!(frame.matches(generator.format()));
        let peak = generator.format().peak();
        for p in 0..3 {
            prop_assert!(plane(&frame, p).iter().all(|&v| v <= peak));
        }
    }
}
