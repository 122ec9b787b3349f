//! Geometry, sampling and timing of a clip.

use serde::{Deserialize, Serialize};

/// How chroma is subsampled relative to luma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChromaSampling {
    /// Half width, half height.
    #[serde(rename = "420")]
    Cs420,
    /// Half width, full height.
    #[serde(rename = "422")]
    Cs422,
    /// Full resolution.
    #[serde(rename = "444")]
    Cs444,
    /// Luma only.
    Mono,
}

impl ChromaSampling {
    /// Number of planes a frame of this sampling carries.
    pub fn plane_count(self) -> usize {
        match self {
            ChromaSampling::Mono => 1,
            _ => 3,
        }
    }

    /// (log2 horizontal, log2 vertical) chroma decimation.
    pub fn decimation(self) -> (u32, u32) {
        match self {
            ChromaSampling::Cs420 => (1, 1),
            ChromaSampling::Cs422 => (1, 0),
            ChromaSampling::Cs444 | ChromaSampling::Mono => (0, 0),
        }
    }
}

/// A positive rational number such as a frame rate (30000/1001) or a pixel aspect ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rational {
    pub num: u32,
    pub den: u32,
}

impl Rational {
    pub const fn new(num: u32, den: u32) -> Self {
        Rational { num, den }
    }

    /// The value as a float; 0 when the denominator is 0 (an unknown aspect ratio in Y4M).
    pub fn as_f64(self) -> f64 {
        if self.den == 0 {
            0.0
        } else {
            f64::from(self.num) / f64::from(self.den)
        }
    }
}

impl std::str::FromStr for Rational {
    type Err = String;

    /// Parses `num/den` or a whole number (`25` is 25/1); both parts must be positive.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = match text.split_once('/') {
            Some((num, den)) => num.trim().parse().ok().zip(den.trim().parse().ok()),
            None => text.trim().parse().ok().map(|num| (num, 1)),
        };
        match parsed {
            Some((num, den)) if num > 0 && den > 0 => Ok(Rational::new(num, den)),
            _ => Err(format!(
                "`{text}` is not a positive rational: expected `num/den` or a whole number"
            )),
        }
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// Everything needed to interpret the samples of a clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VideoFormat {
    pub width: usize,
    pub height: usize,
    /// 8 to 16; samples above 8 bits are stored as `u16`.
    pub bit_depth: u8,
    pub chroma: ChromaSampling,
    pub fps: Rational,
    /// Pixel aspect ratio; 0/0 when unknown.
    pub aspect: Rational,
}

impl VideoFormat {
    /// Width and height of plane `index` (0 = luma).
    pub fn plane_size(&self, index: usize) -> (usize, usize) {
        if index == 0 {
            return (self.width, self.height);
        }
        let (dx, dy) = self.chroma.decimation();
        (
            (self.width + (1 << dx) - 1) >> dx,
            (self.height + (1 << dy) - 1) >> dy,
        )
    }

    /// Bytes per sample in files: 1 up to 8 bits, 2 (little endian) above.
    pub fn bytes_per_sample(&self) -> usize {
        if self.bit_depth > 8 { 2 } else { 1 }
    }

    /// Samples in one frame, all planes.
    pub fn samples_per_frame(&self) -> usize {
        (0..self.chroma.plane_count())
            .map(|i| {
                let (w, h) = self.plane_size(i);
                w * h
            })
            .sum()
    }

    /// Bytes of one frame's samples in a file (no frame header).
    pub fn frame_bytes(&self) -> usize {
        self.samples_per_frame() * self.bytes_per_sample()
    }

    /// Largest sample value.
    pub fn peak(&self) -> u32 {
        (1u32 << self.bit_depth) - 1
    }
}

/// Largest width or height accepted: 16384 covers 16K video and every level of H.264, HEVC, VVC
/// and the AV1 profiles in use, while keeping `width * height * 3 * 2` far from overflowing.
pub const MAX_DIMENSION: usize = 16384;

/// Largest frame accepted, in file bytes: 1 GiB holds a 16384x16384 4:2:0 frame at 16 bits
/// (768 MiB) and stops a corrupt header from asking for more memory than a frame can need.
pub const MAX_FRAME_BYTES: usize = 1 << 30;

impl VideoFormat {
    /// Why this format cannot be read or written, if it cannot: zero or oversized geometry, a bit
    /// depth outside 8..=16, a zero frame rate, or a half-unknown aspect ratio.
    pub fn check(&self) -> Result<(), String> {
        if self.width == 0 || self.height == 0 {
            return Err(format!("zero-sized picture {}x{}", self.width, self.height));
        }
        if self.width > MAX_DIMENSION || self.height > MAX_DIMENSION {
            return Err(format!(
                "picture {}x{} exceeds the {MAX_DIMENSION} limit on either side",
                self.width, self.height
            ));
        }
        if !(8..=16).contains(&self.bit_depth) {
            return Err(format!("bit depth {} outside 8..=16", self.bit_depth));
        }
        if self.frame_bytes() > MAX_FRAME_BYTES {
            return Err(format!(
                "{} bytes per frame exceeds the {MAX_FRAME_BYTES}-byte limit",
                self.frame_bytes()
            ));
        }
        if self.fps.num == 0 || self.fps.den == 0 {
            return Err(format!("frame rate {} is not positive", self.fps));
        }
        if (self.aspect.num == 0) != (self.aspect.den == 0) {
            return Err(format!(
                "pixel aspect {} must be positive or 0:0 (unknown)",
                self.aspect
            ));
        }
        Ok(())
    }
}

/// Serde for a [`Rational`] as `"30000/1001"` text (a whole number such as `"25"` reads too): easier
/// to read and edit than a table. Use with `#[serde(with = "codeclab_video::format::rational_text")]`.
pub mod rational_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::Rational;

    pub fn serialize<S: Serializer>(value: &Rational, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Rational, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}
