//! The genome: every tool switch and numeric parameter of the codec, with declared ranges and
//! defaults, read from and written to JSON. Values the decoder needs travel in the stream header.

use crate::error::{CodecError, Result};
use serde::{Deserialize, Serialize};

/// Encoder configuration. Missing JSON fields take their defaults; unknown fields and values
/// outside the declared ranges (see [`Genome::RANGES`]) are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Genome {
    /// Frames between key (intra-only) frames; 1 makes every frame a key frame.
    pub keyint: u32,
    /// Previous decoded frames a P frame may predict from (signalled in the header).
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
    /// Chroma QP minus luma QP (signalled in the header).
    pub chroma_qp_offset: i8,
    /// In-loop deblocking filter (signalled in the header).
    pub deblock: bool,
    /// Deblocking activity threshold offset, in steps of 2 QP (signalled in the header).
    pub deblock_beta_offset: i8,
    /// Deblocking clipping strength offset, in steps of 2 QP (signalled in the header).
    pub deblock_tc_offset: i8,
    /// Stop evaluating other modes of a block when skipping it leaves no residual worth coding.
    pub early_skip: bool,
    /// Stop splitting a block whose best mode is skip.
    pub skip_stops_split: bool,
    /// In P frames, do not try intra on a block whose best inter prediction needs no luma
    /// residual.
    pub skip_intra_after_clean_inter: bool,
    /// QP increase of P frames over key frames.
    pub p_frame_qp_offset: i8,
}

impl Default for Genome {
    fn default() -> Self {
        Genome {
            keyint: 250,
            reference_frames: 1,
            min_block_log2: 3,
            max_block_log2: 6,
            intra_angular: true,
            intra_rdo_candidates: 2,
            merge_candidates: 5,
            me_range: 32,
            subpel_precision: 2,
            lambda_scale: 1.0,
            // With RDOQ the dead-zone level is the highest it considers: 0.45 and 0.4 rather
            // than 1/3 and 1/6 lowered the PSNR-Y BD-rate on carphone, bikes and cut by 0.3 to
            // 1.8 % (pan, which swings by several % with any change, by 3.9 %).
            deadzone_intra: 0.45,
            deadzone_inter: 0.4,
            rdoq: true,
            chroma_qp_offset: 0,
            deblock: true,
            deblock_beta_offset: 0,
            deblock_tc_offset: 0,
            early_skip: true,
            skip_stops_split: true,
            skip_intra_after_clean_inter: true,
            // 2 rather than 1 lowered the PSNR-Y BD-rate on every clip measured (real, CIF
            // pan, generated) by 0.1 to 3.4 % at the same encode time.
            p_frame_qp_offset: 2,
        }
    }
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
        range("reference_frames", 1.0, 4.0),
        range("min_block_log2", 3.0, 5.0),
        range("max_block_log2", 3.0, 6.0),
        range("intra_rdo_candidates", 1.0, 8.0),
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
    ];

    fn value(&self, name: &str) -> f64 {
        match name {
            "keyint" => f64::from(self.keyint),
            "reference_frames" => f64::from(self.reference_frames),
            "min_block_log2" => f64::from(self.min_block_log2),
            "max_block_log2" => f64::from(self.max_block_log2),
            "intra_rdo_candidates" => f64::from(self.intra_rdo_candidates),
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

    /// Parses and validates a genome from JSON.
    pub fn from_json(json: &str) -> Result<Genome> {
        let genome: Genome = serde_json::from_str(json)?;
        genome.validate()?;
        Ok(genome)
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
