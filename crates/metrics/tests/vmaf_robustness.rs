//! VMAF never panics on pictures the Y4M reader accepts: any size (refused below libvmaf's
//! minimum with an error), 8 to 12 bits, any sample values (those above the bit depth
//! included), and its scores stay finite and within the model's clip range.

use codeclab_metrics::vmaf::{Vmaf, VmafModel};
use codeclab_video::{AnyFrame, ChromaSampling, Frame, Plane, Rational, VideoFormat};
use proptest::prelude::*;

fn format(width: usize, height: usize, bit_depth: u8) -> VideoFormat {
    VideoFormat {
        width,
        height,
        bit_depth,
        chroma: ChromaSampling::Mono,
        fps: Rational::new(25, 1),
        aspect: Rational::new(1, 1),
    }
}

/// A luma-only frame from raw sample words (taken modulo 2^16, or 2^8 for 8-bit).
fn frame(format: &VideoFormat, words: &[u16]) -> AnyFrame {
    let n = format.width * format.height;
    let take = |i: usize| words[i % words.len()];
    if format.bit_depth > 8 {
        let data = (0..n).map(take).collect();
        AnyFrame::U16(Frame {
            planes: vec![Plane::from_vec(format.width, format.height, data).expect("size")],
        })
    } else {
        let data = (0..n).map(|i| take(i) as u8).collect();
        AnyFrame::U8(Frame {
            planes: vec![Plane::from_vec(format.width, format.height, data).expect("size")],
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_accepted_picture_scores_without_panicking(
        width in 1usize..90,
        height in 1usize..70,
        bit_depth in prop::sample::select(vec![8u8, 10, 12, 16]),
        words in prop::collection::vec(any::<u16>(), 1..64),
        flat in any::<bool>(),
        frames in 1usize..4,
    ) {
        let f = format(width, height, bit_depth);
        let models = vec![VmafModel::v0_6_1(), VmafModel::v0_6_1_neg()];
        let mut vmaf = match Vmaf::new(&f, models) {
            Ok(v) => v,
            Err(e) => {
                // Refused: too small, or a depth VMAF does not support; never a panic.
                prop_assert!(width <= 32 || height <= 32 || bit_depth > 12, "{e}");
                return Ok(());
            }
        };
        let reference = frame(&f, &words);
        let distorted = if flat { frame(&f, &[words[0]]) } else { frame(&f, &words[words.len() / 2..].iter().chain(&words).copied().collect::<Vec<_>>()) };
        for _ in 0..frames {
            vmaf.push(&reference, &distorted).expect("frames match the format");
        }
        let report = vmaf.finish();
        for model in &report.models {
            for &v in &model.per_frame {
                prop_assert!(v.is_finite() && (0.0..=100.0).contains(&v), "{v}");
            }
        }
    }
}
