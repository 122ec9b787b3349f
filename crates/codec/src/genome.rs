//! The genome: every tool switch and numeric parameter of the codec, with declared ranges and
//! defaults, read from and written to JSON. Values the decoder needs travel in the stream header.

use crate::error::{CodecError, Result};
use crate::learned::FilterShape;
use crate::preset::Preset;
use serde::{Deserialize, Serialize};

/// Encoder configuration. Missing JSON fields take their defaults; unknown fields and values
/// outside the declared ranges (see [`Genome::RANGES`]) are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Genome {
    /// Most frames between key (intra-only) frames; 1 makes every frame a key frame.
    pub keyint: u32,
    /// A frame whose cheapest prediction from the previous one costs at least 1 − this
    /// fraction of coding it alone starts a new scene with a key frame; 0 never cuts.
    pub scene_cut_threshold: f64,
    /// Frames from one anchor (key or P frame) to the next: 1 codes every frame as a P frame
    /// in display order (low delay); longer mini-GOPs put hierarchical B frames between
    /// anchors, coded after the anchor that follows them.
    pub mini_gop: u8,
    /// Each mini-GOP's length is chosen from the lookahead's costs, up to `mini_gop`: shorter
    /// where motion makes far predictions expensive.
    pub adaptive_gop: bool,
    /// Decoded pictures a frame may predict from in each direction (signalled in the header).
    pub reference_frames: u8,
    /// Smallest coding unit, log2 of its side: 3 (8x8) to 5 (key frames split 64x64 nodes).
    pub min_block_log2: u8,
    /// Largest coding unit, log2 of its side: 3 to 6 (64x64 superblocks).
    pub max_block_log2: u8,
    /// Search the 33 angular intra directions besides planar, DC, horizontal and vertical.
    pub intra_angular: bool,
    /// Intra modes kept after the Hadamard pre-selection for the full rate-distortion check.
    pub intra_rdo_candidates: u8,
    /// Merge candidates per block (signalled in the header).
    pub merge_candidates: u8,
    /// Temporal motion-vector candidates: the motion of the co-located unit of the nearest
    /// reference with motion, scaled by display-index distance, joins the merge list and
    /// predicts vectors of units without inter neighbours (signalled in the header).
    pub temporal_mvp: bool,
    /// In B frames, merge lists add bi-predicted candidates: one candidate's earlier vector
    /// with another's later one, and zero vectors on each earlier and later pair of references
    /// (signalled in the header).
    pub bi_merge: bool,
    /// Motion search range in whole luma samples around the best starting point.
    pub me_range: u16,
    /// Motion vector precision searched: 0 whole, 1 half, 2 quarter samples.
    pub subpel_precision: u8,
    /// Multiplier on the QP-derived Lagrange multiplier.
    pub lambda_scale: f64,
    /// Rounding offset (fraction of a step) of the dead-zone quantiser in intra blocks.
    pub deadzone_intra: f64,
    /// Rounding offset of the dead-zone quantiser in inter blocks.
    pub deadzone_inter: f64,
    /// Rate-distortion optimised quantisation: lowers levels (from the dead-zone ones) where the
    /// rate saved is worth it.
    pub rdoq: bool,
    /// Sign-data hiding: the sign of the first nonzero level of a coefficient group spanning
    /// at least 4 scan positions is inferred from the parity of the group's magnitudes, the
    /// encoder adjusting one level where the parity is wrong (signalled in the header).
    pub sign_hiding: bool,
    /// 4x4 intra transform blocks use the integer DST-VII instead of the DCT (signalled in the
    /// header).
    pub intra_dst: bool,
    /// 4x4 transform blocks may code their residual untransformed, a flag per block chosen by
    /// rate-distortion (signalled in the header).
    pub transform_skip: bool,
    /// Inter coding units of 16x16 and 32x32 may code their luma residual as four transforms
    /// of half the size (one level of a residual quadtree), chosen by rate–distortion.
    pub residual_quadtree: bool,
    /// Each frame but key frames starts from the entropy contexts a reference picture ended
    /// with, not from the defaults (signalled in the header).
    pub context_carry: bool,
    /// Chroma QP minus luma QP (signalled in the header).
    pub chroma_qp_offset: i8,
    /// In-loop deblocking filter (signalled in the header).
    pub deblock: bool,
    /// Deblocking activity threshold offset, in steps of 2 QP (signalled in the header).
    pub deblock_beta_offset: i8,
    /// Deblocking clipping strength offset, in steps of 2 QP (signalled in the header).
    pub deblock_tc_offset: i8,
    /// Sample adaptive offset filter after deblocking (signalled in the header).
    pub sao: bool,
    /// Stop evaluating other modes of a block when skipping it leaves no residual worth coding.
    pub early_skip: bool,
    /// Stop splitting a block whose best mode is skip.
    pub skip_stops_split: bool,
    /// Stop splitting a block whose best mode is any inter prediction that codes no residual
    /// (merged or motion-searched), not only skip.
    pub clean_inter_stops_split: bool,
    /// In P frames, do not try intra on a block whose best inter prediction needs no luma
    /// residual.
    pub skip_intra_after_clean_inter: bool,
    /// QP increase of P frames over key frames.
    pub p_frame_qp_offset: i8,
    /// Temporal rate-distortion: lower the QP of blocks later frames predict from, in
    /// proportion to how much they inherit (coding units then carry a QP difference).
    pub temporal_rd: bool,
    /// Strength of temporal rate-distortion: QP offset per doubling of a block's worth.
    pub temporal_rd_strength: f64,
    /// Frames analysed ahead of the mini-GOP being coded, for temporal rate-distortion and for
    /// constant quality (CRF).
    pub lookahead: u8,
    /// QP increase of a B frame per level of the mini-GOP's hierarchy below the anchors.
    pub b_layer_qp_offset: i8,
    /// In B frames, try the average of the two best motion-compensated predictions.
    pub bipred: bool,
    /// Motion-searched predictions of a block (one per reference, and the average of the best
    /// two in B frames) kept for the full rate-distortion check, cheapest first by luma SATD
    /// plus vector rate; as many as there can be (9) keeps them all.
    pub inter_rd_candidates: u8,
    /// Of those, only the predictions whose SATD plus vector rate is at most this fraction
    /// above the cheapest's get the full check.
    pub inter_rd_margin: f64,
    /// A learned in-loop filter after deblocking and SAO: a small convolutional network on luma
    /// whose weights the encoder trains on each key frame period of the sequence and sends in
    /// the stream, applied to the superblocks where rate–distortion says it pays (signalled in
    /// the header).
    pub learned_filter: bool,
    /// Convolution layers of the learned filter (the first and last included).
    pub filter_layers: u8,
    /// Channels of the learned filter's hidden layers.
    pub filter_channels: u8,
    /// Radius of the learned filter's kernels: 1 for 3x3, 2 for 5x5.
    pub filter_kernel_radius: u8,
    /// Bits of each quantised weight of the learned filter, sign included.
    pub filter_weight_bits: u8,
    /// Optimiser steps of the learned filter's training on each key frame.
    pub filter_training_steps: u16,
}

impl Default for Genome {
    fn default() -> Self {
        Genome {
            keyint: 250,
            scene_cut_threshold: 0.15,
            // 16 rather than 8 lowered the PSNR-Y BD-rate on every clip measured (carphone,
            // bikes, generated pan and scene cut) by 1.8 to 11.2 %.
            mini_gop: 16,
            // Adaptive lengths moved the PSNR-Y BD-rate by +0.33 % on bikes (shorter mini-GOPs
            // where it moves fast) and 0.00 % on carphone (always 16), 30 frames each.
            adaptive_gop: false,
            reference_frames: 1,
            min_block_log2: 3,
            max_block_log2: 6,
            intra_angular: true,
            intra_rdo_candidates: 2,
            merge_candidates: 5,
            // PSNR-Y BD-rate against both off (QP 22-37): temporal candidates -3.9 % on
            // bikes, -0.9 % on carphone (30 frames; -1.5 and -0.5 % over 60), -18.1 % on the
            // 720p pan (60 frames); bi-predicted merge candidates -0.9, -1.0 and -3.5 %; both
            // -3.3, -0.7 and -20.8 % (-1.7 and -1.4 % over 60 frames). Encoder instructions
            // moved by -1 to +4 % for one, +0.3 to +1.6 % for both.
            temporal_mvp: true,
            bi_merge: true,
            me_range: 32,
            subpel_precision: 2,
            lambda_scale: 1.0,
            // With RDOQ the dead-zone level is the highest it considers: 0.45 and 0.4 rather
            // than 1/3 and 1/6 lowered the PSNR-Y BD-rate on carphone, bikes and cut by 0.3 to
            // 1.8 % (pan, which swings by several % with any change, by 3.9 %).
            deadzone_intra: 0.45,
            deadzone_inter: 0.4,
            rdoq: true,
            // Sign hiding lowered the PSNR-Y BD-rate by 0.66 % on carphone (96 frames) and
            // 0.17 % on bikes (48 frames). The DST (on 4x4 intra blocks, which are chroma here)
            // and transform skip moved it by -0.9 to +0.6 % either way, within the noise.
            sign_hiding: true,
            intra_dst: false,
            transform_skip: false,
            // The split saved 0.48 % (bikes) and 0.33 % (carphone) of PSNR-Y BD-rate at 30
            // frames for about 20 % more encoding time; the slow preset takes it.
            residual_quadtree: false,
            // Carrying lowered the PSNR-Y BD-rate by 6.0 % on bikes and 6.4 % on carphone (30
            // frames each, QP 22-37), encoding 11 % slower (more levels coded at a given QP).
            context_carry: true,
            chroma_qp_offset: 0,
            deblock: true,
            deblock_beta_offset: 0,
            deblock_tc_offset: 0,
            sao: true,
            early_skip: true,
            skip_stops_split: true,
            clean_inter_stops_split: false,
            skip_intra_after_clean_inter: true,
            // 2 rather than 1 lowered the PSNR-Y BD-rate on every clip measured (real, CIF
            // pan, generated) by 0.1 to 3.4 % at the same encode time.
            p_frame_qp_offset: 2,
            b_layer_qp_offset: 1,
            bipred: true,
            inter_rd_candidates: 9,
            // 0.1 rather than no limit: -7 % of the encoder's instructions (720p bikes, QP 32)
            // for a PSNR-Y BD-rate of +0.10 % (bikes), +0.28 % (carphone), -0.83 % (720p pan),
            // +0.24 % (scene cut), 60 frames each; 0 (the cheapest alone) costs +1.23 % on
            // carphone.
            inter_rd_margin: 0.1,
            temporal_rd: false,
            temporal_rd_strength: 2.0,
            lookahead: 20,
            learned_filter: false,
            filter_layers: 4,
            filter_channels: 8,
            filter_kernel_radius: 1,
            filter_weight_bits: 8,
            filter_training_steps: 300,
        }
    }
}

/// One gene as users and planners see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gene {
    pub name: &'static str,
    pub value: serde_json::Value,
    /// The values it may take: "MIN to MAX", or "true or false".
    pub values: String,
    pub meaning: &'static str,
}

/// A numeric parameter's declared range (booleans need none).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Range {
    pub name: &'static str,
    pub min: f64,
    pub max: f64,
}

const fn range(name: &'static str, min: f64, max: f64) -> Range {
    Range { name, min, max }
}

impl Genome {
    /// Declared ranges of the numeric parameters, inclusive.
    pub const RANGES: &'static [Range] = &[
        range("keyint", 1.0, 1000.0),
        range("scene_cut_threshold", 0.0, 1.0),
        range("mini_gop", 1.0, 16.0),
        range("reference_frames", 1.0, 4.0),
        range("min_block_log2", 3.0, 5.0),
        range("max_block_log2", 3.0, 6.0),
        range("intra_rdo_candidates", 1.0, 8.0),
        range("inter_rd_candidates", 1.0, 9.0),
        range("inter_rd_margin", 0.0, 1.0),
        range("merge_candidates", 1.0, 5.0),
        range("me_range", 1.0, 64.0),
        range("subpel_precision", 0.0, 2.0),
        range("lambda_scale", 0.1, 4.0),
        range("deadzone_intra", 0.0, 0.5),
        range("deadzone_inter", 0.0, 0.5),
        range("chroma_qp_offset", -12.0, 12.0),
        range("deblock_beta_offset", -6.0, 6.0),
        range("deblock_tc_offset", -6.0, 6.0),
        range("p_frame_qp_offset", 0.0, 6.0),
        range("b_layer_qp_offset", 0.0, 4.0),
        range("temporal_rd_strength", 0.0, 4.0),
        range("lookahead", 0.0, 48.0),
        range("filter_layers", 2.0, 6.0),
        range("filter_channels", 2.0, 16.0),
        range("filter_kernel_radius", 1.0, 2.0),
        range("filter_weight_bits", 6.0, 10.0),
        range("filter_training_steps", 0.0, 2000.0),
    ];

    /// What each gene does, in one line, in the genome's field order.
    pub const MEANINGS: &'static [(&'static str, &'static str)] = &[
        (
            "keyint",
            "most frames between key (intra-only) frames; 1: every frame is a key frame",
        ),
        (
            "reference_frames",
            "decoded pictures a frame may predict from in each direction",
        ),
        (
            "min_block_log2",
            "smallest coding unit, log2 of its side (3: 8x8); at most max_block_log2",
        ),
        (
            "max_block_log2",
            "largest coding unit, log2 of its side (6: 64x64 superblocks)",
        ),
        (
            "intra_angular",
            "search the 33 angular intra directions besides planar, DC, H, V",
        ),
        (
            "intra_rdo_candidates",
            "intra modes kept after the Hadamard pre-selection for the full RD check",
        ),
        ("merge_candidates", "merge candidates per block"),
        (
            "temporal_mvp",
            "temporal motion-vector candidates: the co-located unit's motion in a reference, scaled by distance",
        ),
        (
            "bi_merge",
            "in B frames, merge lists add combined earlier+later and zero bi-predicted candidates",
        ),
        (
            "me_range",
            "motion search range in whole luma samples around the best start",
        ),
        (
            "subpel_precision",
            "motion vector precision searched: 0 whole, 1 half, 2 quarter samples",
        ),
        (
            "lambda_scale",
            "multiplier on the QP-derived Lagrange multiplier",
        ),
        (
            "deadzone_intra",
            "rounding offset (fraction of a step) of the dead-zone quantiser, intra blocks",
        ),
        (
            "deadzone_inter",
            "rounding offset of the dead-zone quantiser, inter blocks",
        ),
        (
            "rdoq",
            "rate-distortion optimised quantisation (lowers levels where the rate saved is worth it)",
        ),
        (
            "sign_hiding",
            "sign-data hiding: a coefficient group's first sign comes from the parity of its levels",
        ),
        (
            "intra_dst",
            "4x4 intra transform blocks use the integer DST-VII instead of the DCT",
        ),
        (
            "transform_skip",
            "4x4 transform blocks may skip the transform (a flag per block, chosen by RD)",
        ),
        (
            "residual_quadtree",
            "16x16 and 32x32 inter units may split their luma residual into four transforms (RD)",
        ),
        (
            "context_carry",
            "frames start from the entropy contexts of a reference picture (same frame type, nearest QP) instead of the defaults",
        ),
        ("chroma_qp_offset", "chroma QP minus luma QP"),
        ("deblock", "in-loop deblocking filter"),
        (
            "deblock_beta_offset",
            "deblocking activity threshold offset, in steps of 2 QP",
        ),
        (
            "deblock_tc_offset",
            "deblocking clipping strength offset, in steps of 2 QP",
        ),
        ("sao", "sample adaptive offset filter after deblocking"),
        (
            "early_skip",
            "stop evaluating other modes when skip leaves no residual worth coding",
        ),
        (
            "skip_stops_split",
            "stop splitting a block whose best mode is skip",
        ),
        (
            "clean_inter_stops_split",
            "stop splitting a block whose best mode is an inter prediction without residual",
        ),
        (
            "skip_intra_after_clean_inter",
            "in inter frames, skip intra when the best inter prediction needs no luma residual",
        ),
        (
            "p_frame_qp_offset",
            "QP increase of P frames over key frames",
        ),
        (
            "scene_cut_threshold",
            "a frame whose prediction from the previous one costs at least 1 - this of its intra cost becomes a key frame; 0 never cuts",
        ),
        (
            "mini_gop",
            "frames from one anchor to the next: 1 low delay (P frames only), up to 16 with hierarchical B frames between",
        ),
        (
            "adaptive_gop",
            "each mini-GOP's length chosen from the lookahead's costs, up to mini_gop (shorter where motion is high)",
        ),
        (
            "b_layer_qp_offset",
            "QP increase of a B frame per level of the mini-GOP hierarchy",
        ),
        (
            "bipred",
            "in B frames, try the average of the two best motion-compensated predictions",
        ),
        (
            "inter_rd_candidates",
            "motion-searched predictions (per reference, and the average) kept for the full RD check, cheapest by SATD first; 9: all",
        ),
        (
            "inter_rd_margin",
            "of those, only the predictions whose SATD plus vector rate is at most this fraction above the cheapest's get the full check",
        ),
        (
            "temporal_rd",
            "temporal rate-distortion: lower the QP of blocks later frames predict from",
        ),
        (
            "temporal_rd_strength",
            "QP offset of temporal rate-distortion per doubling of a block's worth",
        ),
        (
            "lookahead",
            "frames analysed ahead of the mini-GOP being coded, for temporal rate-distortion and constant quality",
        ),
        (
            "learned_filter",
            "learned in-loop filter on luma after SAO: a small CNN trained per key frame period, weights in the stream, on/off per superblock by RD",
        ),
        ("filter_layers", "convolution layers of the learned filter"),
        (
            "filter_channels",
            "channels of the learned filter's hidden layers",
        ),
        (
            "filter_kernel_radius",
            "radius of the learned filter's kernels (1: 3x3, 2: 5x5)",
        ),
        (
            "filter_weight_bits",
            "bits of each quantised weight of the learned filter",
        ),
        (
            "filter_training_steps",
            "optimiser steps of the learned filter's training per key frame",
        ),
    ];

    /// Every gene with its value, the values it may take and its meaning.
    pub fn genes(&self) -> Vec<Gene> {
        let values = serde_json::to_value(self).unwrap_or_default();
        Self::MEANINGS
            .iter()
            .map(|&(name, meaning)| Gene {
                name,
                value: values.get(name).cloned().unwrap_or_default(),
                values: match Self::RANGES.iter().find(|r| r.name == name) {
                    Some(range) => format!("{} to {}", range.min, range.max),
                    None => "true or false".to_owned(),
                },
                meaning,
            })
            .collect()
    }

    fn value(&self, name: &str) -> f64 {
        match name {
            "keyint" => f64::from(self.keyint),
            "scene_cut_threshold" => self.scene_cut_threshold,
            "mini_gop" => f64::from(self.mini_gop),
            "reference_frames" => f64::from(self.reference_frames),
            "min_block_log2" => f64::from(self.min_block_log2),
            "max_block_log2" => f64::from(self.max_block_log2),
            "intra_rdo_candidates" => f64::from(self.intra_rdo_candidates),
            "inter_rd_candidates" => f64::from(self.inter_rd_candidates),
            "inter_rd_margin" => self.inter_rd_margin,
            "merge_candidates" => f64::from(self.merge_candidates),
            "me_range" => f64::from(self.me_range),
            "subpel_precision" => f64::from(self.subpel_precision),
            "lambda_scale" => self.lambda_scale,
            "deadzone_intra" => self.deadzone_intra,
            "deadzone_inter" => self.deadzone_inter,
            "chroma_qp_offset" => f64::from(self.chroma_qp_offset),
            "deblock_beta_offset" => f64::from(self.deblock_beta_offset),
            "deblock_tc_offset" => f64::from(self.deblock_tc_offset),
            "p_frame_qp_offset" => f64::from(self.p_frame_qp_offset),
            "b_layer_qp_offset" => f64::from(self.b_layer_qp_offset),
            "temporal_rd_strength" => self.temporal_rd_strength,
            "lookahead" => f64::from(self.lookahead),
            "filter_layers" => f64::from(self.filter_layers),
            "filter_channels" => f64::from(self.filter_channels),
            "filter_kernel_radius" => f64::from(self.filter_kernel_radius),
            "filter_weight_bits" => f64::from(self.filter_weight_bits),
            "filter_training_steps" => f64::from(self.filter_training_steps),
            _ => f64::NAN,
        }
    }

    /// Checks every value against its range and the parameters against each other.
    pub fn validate(&self) -> Result<()> {
        for r in Self::RANGES {
            let value = self.value(r.name);
            // NaN fails the range test too.
            if !(value >= r.min && value <= r.max) {
                return Err(CodecError::GenomeOutOfRange {
                    name: r.name,
                    value,
                    min: r.min,
                    max: r.max,
                });
            }
        }
        if self.min_block_log2 > self.max_block_log2 {
            return Err(CodecError::GenomeInconsistent(
                "min_block_log2 exceeds max_block_log2",
            ));
        }
        Ok(())
    }

    /// Parses and validates a genome from JSON. Fields it leaves out take the values of the
    /// preset it names (`"preset": "fast"`), or of the default genome (`medium`).
    pub fn from_json(json: &str) -> Result<Genome> {
        let mut fields: serde_json::Value = serde_json::from_str(json)?;
        let preset = match fields.as_object_mut().and_then(|o| o.remove("preset")) {
            Some(serde_json::Value::String(name)) => name.parse()?,
            Some(other) => return Err(CodecError::UnknownPreset(other.to_string())),
            None => Preset::default(),
        };
        Genome::overlay(preset.genome(), fields)
    }

    /// `base` with the fields of the JSON object `fields` replaced, validated.
    pub fn overlay(base: Genome, fields: serde_json::Value) -> Result<Genome> {
        let serde_json::Value::Object(fields) = fields else {
            return Err(<serde_json::Error as serde::de::Error>::custom(
                "a genome is a JSON object of genes",
            )
            .into());
        };
        let mut merged = serde_json::to_value(base)?;
        if let Some(merged) = merged.as_object_mut() {
            merged.extend(fields);
        }
        let genome: Genome = serde_json::from_value(merged)?;
        genome.validate()?;
        Ok(genome)
    }

    /// The learned filter's shape, when the genome turns it on.
    pub fn learned_filter_shape(&self) -> Option<FilterShape> {
        self.learned_filter.then_some(FilterShape {
            layers: self.filter_layers,
            channels: self.filter_channels,
            radius: self.filter_kernel_radius,
            weight_bits: self.filter_weight_bits,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_json_round_trips() {
        let genome = Genome::default();
        genome.validate().unwrap();
        let back = Genome::from_json(&genome.to_json()).unwrap();
        assert_eq!(back, genome);
        let partial = Genome::from_json(r#"{"keyint": 10, "rdoq": true}"#).unwrap();
        assert_eq!(partial.keyint, 10);
        assert!(partial.rdoq);
        assert_eq!(partial.me_range, genome.me_range);
        let fast = Genome::from_json(r#"{"preset": "fast", "keyint": 10}"#).unwrap();
        assert_eq!(
            fast,
            Genome {
                keyint: 10,
                ..Preset::Fast.genome()
            }
        );
        assert!(matches!(
            Genome::from_json(r#"{"preset": "glacial"}"#),
            Err(CodecError::UnknownPreset(_))
        ));
        assert!(Genome::from_json("[1]").is_err());
    }

    #[test]
    fn every_gene_has_a_meaning_and_every_range_a_gene() {
        let genome = serde_json::to_value(Genome::default()).unwrap();
        let mut fields: Vec<&str> = genome
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut named: Vec<&str> = Genome::MEANINGS.iter().map(|(name, _)| *name).collect();
        fields.sort_unstable();
        named.sort_unstable();
        assert_eq!(named, fields);
        let genes = Genome::default().genes();
        for range in Genome::RANGES {
            let gene = genes.iter().find(|g| g.name == range.name).unwrap();
            assert_eq!(gene.values, format!("{} to {}", range.min, range.max));
        }
        let sao = genes.iter().find(|g| g.name == "sao").unwrap();
        assert_eq!(
            (sao.values.as_str(), &sao.value),
            ("true or false", &serde_json::json!(true))
        );
    }

    #[test]
    fn every_range_is_enforced() {
        for r in Genome::RANGES {
            let mut json: serde_json::Value = serde_json::to_value(Genome::default()).unwrap();
            json[r.name] = serde_json::json!(r.max + 1.0);
            let text = json.to_string();
            match Genome::from_json(&text) {
                Err(CodecError::GenomeOutOfRange { name, .. }) => assert_eq!(name, r.name),
                // Integer fields reject out-of-type values at parse time.
                Err(CodecError::GenomeJson(_)) => {}
                other => panic!("{}: {other:?}", r.name),
            }
        }
        assert!(Genome::from_json(r#"{"no_such_field": 1}"#).is_err());
        assert!(matches!(
            Genome::from_json(r#"{"min_block_log2": 5, "max_block_log2": 4}"#),
            Err(CodecError::GenomeInconsistent(_))
        ));
    }
}
