//! Conversion between frames and the planar byte layout shared by Y4M frames and raw `.yuv` files:
//! planes one after another, rows tight, 8-bit samples as bytes, deeper ones little-endian `u16`.

use std::io::Read;

use crate::format::VideoFormat;
use crate::frame::{AnyFrame, Frame, Pixel, Plane};

/// A sample above the format's peak value.
#[derive(Debug)]
pub(crate) struct SampleOutOfRange {
    pub plane: usize,
    /// Index of the sample within its plane.
    pub index: usize,
    pub value: u32,
    /// Byte position of the sample within the frame's bytes.
    pub byte_in_frame: usize,
}

impl SampleOutOfRange {
    pub(crate) fn describe(&self, format: &VideoFormat) -> String {
        format!(
            "sample {} of plane {} is {}, above the {}-bit peak {}",
            self.index,
            self.plane,
            self.value,
            format.bit_depth,
            format.peak()
        )
    }
}

/// Fills `frame` from `bytes` (exactly `format.frame_bytes()` long), reusing its planes when they
/// already have the right shape.
pub(crate) fn bytes_to_frame(
    bytes: &[u8],
    format: &VideoFormat,
    frame: &mut AnyFrame,
) -> Result<(), SampleOutOfRange> {
    debug_assert_eq!(bytes.len(), format.frame_bytes());
    if format.bit_depth > 8 {
        match frame {
            AnyFrame::U16(f) if f.matches(format) => fill_deep(f, bytes, format),
            _ => {
                let mut f = empty_frame(format);
                fill_deep(&mut f, bytes, format)?;
                *frame = AnyFrame::U16(f);
                Ok(())
            }
        }
    } else {
        match frame {
            AnyFrame::U8(f) if f.matches(format) => fill_8bit(f, bytes),
            _ => {
                let mut f = empty_frame(format);
                fill_8bit(&mut f, bytes);
                *frame = AnyFrame::U8(f);
            }
        }
        Ok(())
    }
}

fn fill_8bit(frame: &mut Frame<u8>, bytes: &[u8]) {
    let mut start = 0;
    for plane in &mut frame.planes {
        let len = plane.data().len();
        plane.data_mut().copy_from_slice(&bytes[start..start + len]);
        start += len;
    }
}

fn fill_deep(
    frame: &mut Frame<u16>,
    bytes: &[u8],
    format: &VideoFormat,
) -> Result<(), SampleOutOfRange> {
    let peak = format.peak();
    let mut start = 0;
    for (plane_index, plane) in frame.planes.iter_mut().enumerate() {
        let len = plane.data().len() * 2;
        let src = &bytes[start..start + len];
        for (dst, pair) in plane.data_mut().iter_mut().zip(src.chunks_exact(2)) {
            *dst = u16::from_le_bytes([pair[0], pair[1]]);
        }
        // The peak is all ones (2^depth - 1), so a sample above it sets a bit outside it. A
        // separate OR pass vectorizes; folded into the loop above it made reading 4x slower.
        let bits = plane.data().iter().fold(0u16, |acc, &v| acc | v);
        if u32::from(bits) > peak {
            return Err(first_out_of_range(plane, plane_index, peak, start));
        }
        start += len;
    }
    Ok(())
}

/// Locates the first sample above `peak` (the rare path, so a second scan is fine).
fn first_out_of_range(
    plane: &Plane<u16>,
    plane_index: usize,
    peak: u32,
    plane_start_byte: usize,
) -> SampleOutOfRange {
    let index = plane
        .data()
        .iter()
        .position(|&v| u32::from(v) > peak)
        .unwrap_or(0);
    SampleOutOfRange {
        plane: plane_index,
        index,
        value: plane.data().get(index).map_or(0, |&v| u32::from(v)),
        byte_in_frame: plane_start_byte + index * 2,
    }
}

/// Why a frame cannot be stored in `format`.
fn mismatch(frame: &AnyFrame, format: &VideoFormat) -> Option<String> {
    if frame.matches(format) {
        return None;
    }
    let sizes: Vec<String> = match frame {
        AnyFrame::U8(f) => plane_sizes(f),
        AnyFrame::U16(f) => plane_sizes(f),
    };
    let kind = match frame {
        AnyFrame::U8(_) => "8-bit",
        AnyFrame::U16(_) => "16-bit",
    };
    let expected: Vec<String> = (0..format.chroma.plane_count())
        .map(|i| {
            let (w, h) = format.plane_size(i);
            format!("{w}x{h}")
        })
        .collect();
    Some(format!(
        "{kind} samples in planes [{}], the stream wants {} samples ({}-bit) in planes [{}]",
        sizes.join(", "),
        if format.bit_depth > 8 {
            "16-bit"
        } else {
            "8-bit"
        },
        format.bit_depth,
        expected.join(", ")
    ))
}

fn plane_sizes<T: Pixel>(frame: &Frame<T>) -> Vec<String> {
    frame
        .planes
        .iter()
        .map(|p| format!("{}x{}", p.width(), p.height()))
        .collect()
}

/// Replaces `out` with the little-endian bytes of a deep frame, checking every sample against the
/// peak.
fn deep_frame_to_bytes(
    frame: &Frame<u16>,
    format: &VideoFormat,
    out: &mut Vec<u8>,
) -> Result<(), SampleOutOfRange> {
    let peak = format.peak();
    out.clear();
    for (plane_index, plane) in frame.planes.iter().enumerate() {
        let start = out.len();
        // All-ones peak: a sample above it has a bit outside it (see `fill_deep`).
        let bits = plane.data().iter().fold(0u16, |acc, &v| acc | v);
        if u32::from(bits) > peak {
            return Err(first_out_of_range(plane, plane_index, peak, start));
        }
        out.resize(start + plane.data().len() * 2, 0);
        for (pair, &v) in out[start..].chunks_exact_mut(2).zip(plane.data()) {
            pair.copy_from_slice(&v.to_le_bytes());
        }
    }
    Ok(())
}

/// The byte slices to write for `frame` in `format`, in file order: the planes themselves for 8-bit
/// frames, the little-endian conversion (made in `buffer`) for deep ones. An error says why the
/// frame does not fit the format.
pub(crate) fn frame_payload<'a>(
    frame: &'a AnyFrame,
    format: &VideoFormat,
    buffer: &'a mut Vec<u8>,
) -> Result<Vec<&'a [u8]>, String> {
    if let Some(reason) = mismatch(frame, format) {
        return Err(reason);
    }
    match frame {
        AnyFrame::U8(f) => Ok(f.planes.iter().map(|p| p.data()).collect()),
        AnyFrame::U16(f) => {
            deep_frame_to_bytes(f, format, buffer).map_err(|bad| bad.describe(format))?;
            Ok(vec![buffer.as_slice()])
        }
    }
}

/// Reads up to `expected` bytes into `buffer` (cleared first). Unless the source is known to hold
/// them all (`available`), the buffer grows only as bytes arrive, so that a header promising a huge
/// frame in a tiny file costs no huge allocation; once it has held a full frame its capacity is
/// reused. Returns the count read, short only at the end of input.
pub(crate) fn read_frame_bytes<R: Read>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    expected: usize,
    available: bool,
) -> std::io::Result<usize> {
    buffer.clear();
    if available {
        buffer.reserve_exact(expected);
    }
    reader.take(expected as u64).read_to_end(buffer)
}

/// A frame of `format` with zeroed samples (cheap: the allocator hands out zeroed pages).
fn empty_frame<T: Pixel>(format: &VideoFormat) -> Frame<T> {
    Frame {
        planes: (0..format.chroma.plane_count())
            .map(|i| {
                let (w, h) = format.plane_size(i);
                Plane::filled(w, h, T::default())
            })
            .collect(),
    }
}
