//! The sequence header: geometry, sampling, timing and the genome values the decoder needs.

use super::{Crc32, read_exact};
use crate::error::{CodecError, Result};
use crate::genome::Genome;
use crate::learned::FilterShape;
use codeclab_video::{ChromaSampling, Rational, VideoFormat};
use std::io::Read;

pub const MAGIC: [u8; 4] = *b"CCLB";
/// 2: B frames and display-order indices in frame packets. 3: header bytes for sign hiding,
/// DST-VII, transform skip, the residual quadtree, context carrying, temporal and bi-predicted
/// merge candidates. 4: the learned in-loop filter's flag and shape. 5: frames name the learned
/// filter's shipped models by index.
pub const VERSION: u8 = 5;
/// Bytes of a sequence header.
pub const HEADER_LEN: usize = 4 + 1 + 4 + 4 + 1 + 1 + 16 + 22;

/// Everything a decoder must know before the first frame.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceHeader {
    pub format: VideoFormat,
    pub reference_frames: u8,
    pub merge_candidates: u8,
    pub min_block_log2: u8,
    pub max_block_log2: u8,
    pub chroma_qp_offset: i8,
    pub deblock: bool,
    pub deblock_beta_offset: i8,
    pub deblock_tc_offset: i8,
    /// Coding units carry a QP difference (temporal rate-distortion).
    pub block_qp: bool,
    pub sao: bool,
    pub sign_hiding: bool,
    pub intra_dst: bool,
    pub transform_skip: bool,
    pub residual_quadtree: bool,
    /// Frames start from the entropy contexts of a reference picture, not from the defaults.
    pub context_carry: bool,
    pub temporal_mvp: bool,
    pub bi_merge: bool,
    /// The learned in-loop filter's shape, when it is on.
    pub learned_filter: Option<FilterShape>,
}

/// Bounds a decoder accepts before allocating anything for a stream.
#[derive(Clone, Copy, Debug)]
pub struct DecoderLimits {
    pub max_width: usize,
    pub max_height: usize,
    pub max_pixels: usize,
}

impl Default for DecoderLimits {
    /// Up to 8K.
    fn default() -> Self {
        DecoderLimits {
            max_width: 8192,
            max_height: 8192,
            max_pixels: 8192 * 4352,
        }
    }
}

impl SequenceHeader {
    pub fn new(format: VideoFormat, genome: &Genome) -> Self {
        SequenceHeader {
            format,
            reference_frames: genome.reference_frames,
            merge_candidates: genome.merge_candidates,
            min_block_log2: genome.min_block_log2,
            max_block_log2: genome.max_block_log2,
            chroma_qp_offset: genome.chroma_qp_offset,
            deblock: genome.deblock,
            deblock_beta_offset: genome.deblock_beta_offset,
            deblock_tc_offset: genome.deblock_tc_offset,
            block_qp: genome.temporal_rd,
            sao: genome.sao,
            sign_hiding: genome.sign_hiding,
            intra_dst: genome.intra_dst,
            transform_skip: genome.transform_skip,
            residual_quadtree: genome.residual_quadtree,
            context_carry: genome.context_carry,
            temporal_mvp: genome.temporal_mvp,
            bi_merge: genome.bi_merge,
            learned_filter: genome.learned_filter_shape(),
        }
    }

    /// Multiply–accumulates per luma sample the decoder spends in learned tools where they
    /// apply: the learned filter's, or 0 without it.
    pub fn learned_mac_per_pixel(&self) -> u64 {
        self.learned_filter.map_or(0, FilterShape::mac_per_pixel)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let f = &self.format;
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(f.width as u32).to_le_bytes());
        out.extend_from_slice(&(f.height as u32).to_le_bytes());
        out.push(f.bit_depth);
        out.push(chroma_code(f.chroma));
        for v in [f.fps.num, f.fps.den, f.aspect.num, f.aspect.den] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[
            self.reference_frames,
            self.merge_candidates,
            self.min_block_log2,
            self.max_block_log2,
            self.chroma_qp_offset as u8,
            u8::from(self.deblock),
            self.deblock_beta_offset as u8,
            self.deblock_tc_offset as u8,
            u8::from(self.block_qp),
            u8::from(self.sao),
            u8::from(self.sign_hiding),
            u8::from(self.intra_dst),
            u8::from(self.transform_skip),
            u8::from(self.residual_quadtree),
            u8::from(self.context_carry),
            u8::from(self.temporal_mvp),
            u8::from(self.bi_merge),
        ]);
        let shape = self.learned_filter;
        out.push(u8::from(shape.is_some()));
        let shape = shape.map_or([0; 4], |s| [s.layers, s.channels, s.radius, s.weight_bits]);
        out.extend_from_slice(&shape);
        out
    }

    /// Reads and checks a header, feeding its bytes to `crc`.
    pub fn read(reader: &mut impl Read, limits: &DecoderLimits, crc: &mut Crc32) -> Result<Self> {
        let mut bytes = [0u8; HEADER_LEN];
        read_exact(reader, &mut bytes[..5])?;
        if bytes[..4] != MAGIC {
            return Err(CodecError::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(CodecError::UnsupportedVersion(bytes[4]));
        }
        read_exact(reader, &mut bytes[5..])?;
        crc.update(&bytes);
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let width = u32_at(5) as usize;
        let height = u32_at(9) as usize;
        if width == 0 || height == 0 {
            return Err(CodecError::Corrupt("empty picture"));
        }
        if width > limits.max_width
            || height > limits.max_height
            || width.saturating_mul(height) > limits.max_pixels
        {
            return Err(CodecError::LimitExceeded(format!("{width}x{height}")));
        }
        let bit_depth = bytes[13];
        if !crate::picture::BIT_DEPTHS.contains(&bit_depth) {
            return Err(CodecError::UnsupportedFormat(format!(
                "bit depth {bit_depth} (the codec codes {} to {})",
                crate::picture::BIT_DEPTHS.start(),
                crate::picture::BIT_DEPTHS.end()
            )));
        }
        let chroma = match bytes[14] {
            1 => ChromaSampling::Cs420,
            other => {
                return Err(CodecError::UnsupportedFormat(format!(
                    "chroma code {other}"
                )));
            }
        };
        let fps = Rational::new(u32_at(15), u32_at(19));
        if fps.num == 0 || fps.den == 0 {
            return Err(CodecError::Corrupt("frame rate is zero"));
        }
        let aspect = Rational::new(u32_at(23), u32_at(27));
        let g = &bytes[31..];
        let header = SequenceHeader {
            format: VideoFormat {
                width,
                height,
                bit_depth,
                chroma,
                fps,
                aspect,
            },
            reference_frames: g[0],
            merge_candidates: g[1],
            min_block_log2: g[2],
            max_block_log2: g[3],
            chroma_qp_offset: g[4] as i8,
            deblock: match g[5] {
                0 => false,
                1 => true,
                _ => return Err(CodecError::Corrupt("deblocking flag")),
            },
            deblock_beta_offset: g[6] as i8,
            deblock_tc_offset: g[7] as i8,
            block_qp: match g[8] {
                0 => false,
                1 => true,
                _ => return Err(CodecError::Corrupt("block QP flag")),
            },
            sao: flag(g[9], "sample adaptive offset flag")?,
            sign_hiding: flag(g[10], "sign hiding flag")?,
            intra_dst: flag(g[11], "intra DST flag")?,
            transform_skip: flag(g[12], "transform skip flag")?,
            residual_quadtree: flag(g[13], "residual quadtree flag")?,
            context_carry: flag(g[14], "context carrying flag")?,
            temporal_mvp: flag(g[15], "temporal motion-vector prediction flag")?,
            bi_merge: flag(g[16], "bi-predicted merge candidates flag")?,
            learned_filter: flag(g[17], "learned filter flag")?.then_some(FilterShape {
                layers: g[18],
                channels: g[19],
                radius: g[20],
                weight_bits: g[21],
            }),
        };
        // The decoder-side genome values must lie in the genome's declared ranges.
        let genome = Genome {
            reference_frames: header.reference_frames,
            merge_candidates: header.merge_candidates,
            min_block_log2: header.min_block_log2,
            max_block_log2: header.max_block_log2,
            chroma_qp_offset: header.chroma_qp_offset,
            deblock_beta_offset: header.deblock_beta_offset,
            deblock_tc_offset: header.deblock_tc_offset,
            ..Genome::default()
        };
        if header.learned_filter.is_none() && g[18..22] != [0; 4] {
            return Err(CodecError::Corrupt(
                "learned filter shape without the filter",
            ));
        }
        let genome = match header.learned_filter {
            Some(shape) => Genome {
                learned_filter: true,
                filter_layers: shape.layers,
                filter_channels: shape.channels,
                filter_kernel_radius: shape.radius,
                filter_weight_bits: shape.weight_bits,
                ..genome
            },
            None => genome,
        };
        genome
            .validate()
            .map_err(|_| CodecError::Corrupt("header tool parameters out of range"))?;
        Ok(header)
    }
}

fn flag(byte: u8, what: &'static str) -> Result<bool> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::Corrupt(what)),
    }
}

fn chroma_code(chroma: ChromaSampling) -> u8 {
    match chroma {
        ChromaSampling::Cs420 => 1,
        ChromaSampling::Cs422 => 2,
        ChromaSampling::Cs444 => 3,
        ChromaSampling::Mono => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SequenceHeader {
        let format = VideoFormat {
            width: 33,
            height: 17,
            bit_depth: 8,
            chroma: ChromaSampling::Cs420,
            fps: Rational::new(30000, 1001),
            aspect: Rational::new(1, 1),
        };
        SequenceHeader::new(format, &Genome::default())
    }

    #[test]
    fn header_round_trips_and_rejects_oversize() {
        let h = header();
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN);
        let mut crc = Crc32::default();
        let back = SequenceHeader::read(&mut bytes.as_slice(), &DecoderLimits::default(), &mut crc)
            .unwrap();
        assert_eq!(back, h);
        let tight = DecoderLimits {
            max_width: 32,
            ..DecoderLimits::default()
        };
        assert!(matches!(
            SequenceHeader::read(&mut bytes.as_slice(), &tight, &mut crc),
            Err(CodecError::LimitExceeded(_))
        ));
        let mut bad = bytes.clone();
        bad[31] = 9;
        assert!(
            SequenceHeader::read(&mut bad.as_slice(), &DecoderLimits::default(), &mut crc).is_err()
        );
        for offset in [36, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 50] {
            let mut bad = bytes.clone();
            bad[offset] = 2;
            assert!(matches!(
                SequenceHeader::read(&mut bad.as_slice(), &DecoderLimits::default(), &mut crc),
                Err(CodecError::Corrupt(_))
            ));
        }
        let off = SequenceHeader::new(
            h.format,
            &Genome {
                sao: false,
                sign_hiding: false,
                intra_dst: true,
                transform_skip: true,
                residual_quadtree: true,
                context_carry: !Genome::default().context_carry,
                temporal_mvp: !Genome::default().temporal_mvp,
                bi_merge: !Genome::default().bi_merge,
                learned_filter: true,
                filter_layers: 4,
                filter_channels: 5,
                filter_kernel_radius: 2,
                ..Genome::default()
            },
        );
        assert_eq!(off.learned_mac_per_pixel(), 25 * (5 + 2 * 25 + 5));
        // A filter shape outside the genome's ranges.
        let mut wide = off.to_bytes();
        wide[50] = 17;
        assert!(matches!(
            SequenceHeader::read(&mut wide.as_slice(), &DecoderLimits::default(), &mut crc),
            Err(CodecError::Corrupt(_))
        ));
        let back = SequenceHeader::read(
            &mut off.to_bytes().as_slice(),
            &DecoderLimits::default(),
            &mut crc,
        )
        .unwrap();
        assert_eq!(back, off);
        assert!(matches!(
            SequenceHeader::read(&mut &bytes[..10], &DecoderLimits::default(), &mut crc),
            Err(CodecError::Truncated)
        ));
    }

    #[test]
    fn header_carries_supported_depths_and_refuses_others() {
        let mut crc = Crc32::default();
        for depth in 0..=16u8 {
            let mut h = header();
            h.format.bit_depth = depth;
            let read = SequenceHeader::read(
                &mut h.to_bytes().as_slice(),
                &DecoderLimits::default(),
                &mut crc,
            );
            if crate::picture::BIT_DEPTHS.contains(&depth) {
                assert_eq!(read.unwrap(), h);
            } else {
                assert!(
                    matches!(read, Err(CodecError::UnsupportedFormat(_))),
                    "{depth}"
                );
            }
        }
    }
}
