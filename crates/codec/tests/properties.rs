//! Property tests: random sizes, bit depths and random valid genomes (every mini-GOP length, key
//! frames cutting mini-GOPs short) round-trip bit-exactly, frames in display order.

mod common;

use codeclab_codec::{Genome, RateMode};
use common::{format_deep, round_trip_threaded, synthetic_clip, synthetic_clip_deep};
use proptest::prelude::*;

fn genome_strategy() -> impl Strategy<Value = Genome> {
    (
        (
            1u32..40,
            1u8..=4,
            3u8..=5,
            3u8..=6,
            any::<bool>(),
            1u8..=4,
            1u8..=5,
        ),
        (
            1u16..=16,
            0u8..=2,
            0.5f64..2.0,
            0.0f64..0.5,
            0.0f64..0.5,
            any::<bool>(),
        ),
        (
            -6i8..=6,
            any::<bool>(),
            -6i8..=6,
            -6i8..=6,
            any::<bool>(),
            any::<bool>(),
            0i8..=3,
        ),
        (any::<bool>(), any::<bool>()),
        (
            1u8..=16,
            0i8..=4,
            any::<bool>(),
            0.0f64..=1.0,
            any::<bool>(),
        ),
        (any::<bool>(), 0.0f64..=4.0, 0u8..=24),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            1u8..=9,
            0.0f64..=1.0,
            any::<bool>(),
        ),
        // Every shape of the learned filter, trained a few steps (whether its model pays or
        // not, the syntax and the inference run).
        (any::<bool>(), 2u8..=3, 2u8..=4, 1u8..=2, 6u8..=10, 0u16..=5),
    )
        .prop_map(
            |(a, b, c, (skip_intra_after_clean_inter, sao), d, e, f, g, h)| {
                let (
                    keyint,
                    reference_frames,
                    min_block,
                    max_block,
                    intra_angular,
                    intra_rdo,
                    merge,
                ) = a;
                let (me_range, subpel, lambda_scale, dz_intra, dz_inter, rdoq) = b;
                let (chroma_qp_offset, deblock, beta, tc, early_skip, skip_stops_split, p_offset) =
                    c;
                let (mini_gop, b_layer_qp_offset, bipred, scene_cut_threshold, adaptive_gop) = d;
                let (temporal_rd, temporal_rd_strength, lookahead) = e;
                let (sign_hiding, intra_dst, transform_skip, residual_quadtree, context_carry) = f;
                let (
                    temporal_mvp,
                    bi_merge,
                    inter_rd_candidates,
                    inter_rd_margin,
                    clean_inter_stops_split,
                ) = g;
                let (
                    learned_filter,
                    filter_layers,
                    filter_channels,
                    filter_kernel_radius,
                    filter_weight_bits,
                    filter_training_steps,
                ) = h;
                Genome {
                    keyint,
                    scene_cut_threshold,
                    mini_gop,
                    adaptive_gop,
                    reference_frames,
                    min_block_log2: min_block.min(max_block),
                    max_block_log2: max_block.max(min_block),
                    intra_angular,
                    intra_rdo_candidates: intra_rdo,
                    merge_candidates: merge,
                    temporal_mvp,
                    bi_merge,
                    me_range,
                    subpel_precision: subpel,
                    lambda_scale,
                    deadzone_intra: dz_intra,
                    deadzone_inter: dz_inter,
                    rdoq,
                    sign_hiding,
                    intra_dst,
                    transform_skip,
                    residual_quadtree,
                    context_carry,
                    chroma_qp_offset,
                    deblock,
                    deblock_beta_offset: beta,
                    deblock_tc_offset: tc,
                    sao,
                    early_skip,
                    skip_stops_split,
                    clean_inter_stops_split,
                    skip_intra_after_clean_inter,
                    p_frame_qp_offset: p_offset,
                    b_layer_qp_offset,
                    bipred,
                    inter_rd_candidates,
                    inter_rd_margin,
                    temporal_rd,
                    temporal_rd_strength,
                    lookahead,
                    learned_filter,
                    filter_layers,
                    filter_channels,
                    filter_kernel_radius,
                    filter_weight_bits,
                    filter_training_steps,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn decoder_matches_encoder(
        width in 1usize..90,
        height in 1usize..70,
        frames in 1usize..24,
        qp in 0u8..=51,
        seed in any::<u32>(),
        genome in genome_strategy(),
        bit_depth in prop_oneof![Just(8u8), Just(10u8), 9u8..=12],
        threads in 1usize..=3,
    ) {
        prop_assert!(genome.validate().is_ok());
        let format = format_deep(width, height, bit_depth);
        let mode = RateMode::ConstantQp(qp);
        if bit_depth == 8 {
            let clip = synthetic_clip(&format, frames, seed);
            let (_, recons, decoded) = round_trip_threaded(format, &clip, genome, mode, threads);
            prop_assert_eq!(decoded.len(), frames);
            prop_assert!(recons == decoded);
        } else {
            let clip = synthetic_clip_deep(&format, frames, seed);
            let (_, recons, decoded) = round_trip_threaded(format, &clip, genome, mode, threads);
            prop_assert_eq!(decoded.len(), frames);
            prop_assert!(recons == decoded);
        }
    }
}
