//! Helpers shared by the integration tests: synthetic clips and a full encode/decode.

#![allow(dead_code)]

use codeclab_codec::picture::Sample;
use codeclab_codec::pipeline::DisplayOrder;
use codeclab_codec::{Decoder, EncodedFrame, Encoder, Genome, RateMode};
use codeclab_video::{AnyFrame, ChromaSampling, Frame, Plane, Rational, VideoFormat};

/// Sample types the tests take decoded frames back in.
pub trait TestSample: Sample {
    fn unwrap(frame: AnyFrame) -> Frame<Self>;
}

impl TestSample for u8 {
    fn unwrap(frame: AnyFrame) -> Frame<u8> {
        match frame {
            AnyFrame::U8(frame) => frame,
            AnyFrame::U16(_) => panic!("16-bit frame from an 8-bit stream"),
        }
    }
}

impl TestSample for u16 {
    fn unwrap(frame: AnyFrame) -> Frame<u16> {
        match frame {
            AnyFrame::U16(frame) => frame,
            AnyFrame::U8(_) => panic!("8-bit frame from a deep stream"),
        }
    }
}

pub fn format(width: usize, height: usize) -> VideoFormat {
    format_deep(width, height, 8)
}

pub fn format_deep(width: usize, height: usize, bit_depth: u8) -> VideoFormat {
    VideoFormat {
        width,
        height,
        bit_depth,
        chroma: ChromaSampling::Cs420,
        fps: Rational::new(30, 1),
        aspect: Rational::new(1, 1),
    }
}

/// A moving textured scene with an edge, a gradient and some noise, so every tool gets used.
pub fn synthetic_clip(format: &VideoFormat, frames: usize, seed: u32) -> Vec<Frame<u8>> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 9) as i32 - 4
    };
    (0..frames)
        .map(|t| {
            let planes = (0..3)
                .map(|p| {
                    let (w, h) = format.plane_size(p);
                    let scale = if p == 0 { 1 } else { 2 };
                    let mut data = Vec::with_capacity(w * h);
                    for y in 0..h {
                        for x in 0..w {
                            let (gx, gy) = (
                                (x * scale) as i32 + 2 * t as i32,
                                (y * scale) as i32 + t as i32,
                            );
                            let wave = ((gx as f64 * 0.21).sin() * 40.0
                                + (gy as f64 * 0.13).cos() * 30.0)
                                as i32;
                            let edge = if (gx / 23 + gy / 17) % 2 == 0 {
                                30
                            } else {
                                -30
                            };
                            let base = 128 + wave + edge + (p as i32) * 5;
                            data.push((base + noise()).clamp(0, 255) as u8);
                        }
                    }
                    Plane::from_vec(w, h, data).expect("sized")
                })
                .collect();
            Frame { planes }
        })
        .collect()
}

/// An 8-bit clip at `bit_depth`: every sample shifted left, plus `low` (a function of the
/// sample's position and frame, below 2^(bd-8)) in the new low bits.
pub fn deepen(
    clip: &[Frame<u8>],
    bit_depth: u8,
    low: impl Fn(usize, usize, usize) -> u16,
) -> Vec<Frame<u16>> {
    let shift = bit_depth - 8;
    clip.iter()
        .enumerate()
        .map(|(t, frame)| Frame {
            planes: frame
                .planes
                .iter()
                .map(|plane| {
                    let w = plane.width();
                    let data = plane
                        .data()
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| (u16::from(v) << shift) | low(i % w, i / w, t))
                        .collect();
                    Plane::from_vec(w, plane.height(), data).expect("sized")
                })
                .collect(),
        })
        .collect()
}

/// A deep version of `synthetic_clip` with texture in the low bits too.
pub fn synthetic_clip_deep(format: &VideoFormat, frames: usize, seed: u32) -> Vec<Frame<u16>> {
    let eight = synthetic_clip(
        &VideoFormat {
            bit_depth: 8,
            ..*format
        },
        frames,
        seed,
    );
    let mask = (1u16 << (format.bit_depth - 8)) - 1;
    deepen(&eight, format.bit_depth, |x, y, t| {
        ((x * 7 + y * 3 + t * 5) as u16 ^ seed as u16) & mask
    })
}

/// Encodes and decodes; returns (stream, encoder reconstructions, decoded frames).
pub fn round_trip<T: TestSample>(
    format: VideoFormat,
    clip: &[Frame<T>],
    genome: Genome,
    mode: RateMode,
) -> (Vec<u8>, Vec<Frame<T>>, Vec<Frame<T>>) {
    round_trip_threaded(format, clip, genome, mode, 1)
}

/// [`round_trip`] with the encoder and the decoder on `threads` threads.
pub fn round_trip_threaded<T: TestSample>(
    format: VideoFormat,
    clip: &[Frame<T>],
    genome: Genome,
    mode: RateMode,
    threads: usize,
) -> (Vec<u8>, Vec<Frame<T>>, Vec<Frame<T>>) {
    let mut encoder = Encoder::<T>::new(format, genome, mode).expect("valid configuration");
    encoder.set_threads(threads);
    let mut stream = Vec::new();
    let mut in_display_order = DisplayOrder::default();
    let mut recons = Vec::new();
    let mut keep = |encoded: Vec<EncodedFrame<T>>, stream: &mut Vec<u8>| {
        for frame in encoded {
            stream.extend_from_slice(&frame.bytes);
            recons.extend(in_display_order.push(frame.display_index, frame.reconstruction));
        }
    };
    for frame in clip {
        keep(encoder.encode_frame(frame).expect("encodes"), &mut stream);
    }
    let (last, tail) = encoder.finish().expect("encodes");
    keep(last, &mut stream);
    stream.extend_from_slice(&tail);
    assert_eq!(recons.len(), clip.len(), "every frame reconstructed once");
    let decoded = decode_threaded(&stream, threads);
    (stream, recons, decoded)
}

/// Every frame of `stream`, decoded on `threads` threads.
pub fn decode_threaded<T: TestSample>(stream: &[u8], threads: usize) -> Vec<Frame<T>> {
    let mut decoder = Decoder::new(stream).expect("header");
    decoder.set_threads(threads);
    let mut decoded = Vec::new();
    while let Some(frame) = decoder.next_frame().expect("decodes") {
        decoded.push(T::unwrap(frame));
    }
    decoded
}

pub fn psnr_y(a: &Frame<u8>, b: &Frame<u8>) -> f64 {
    psnr_y_deep(a, b, 8)
}

/// Luma PSNR of `bit_depth` frames.
pub fn psnr_y_deep<T: Sample>(a: &Frame<T>, b: &Frame<T>, bit_depth: u8) -> f64 {
    let (pa, pb) = (&a.planes[0], &b.planes[0]);
    let mse = pa
        .data()
        .iter()
        .zip(pb.data())
        .map(|(&x, &y)| (f64::from(x.to_u32()) - f64::from(y.to_u32())).powi(2))
        .sum::<f64>()
        / pa.data().len() as f64;
    let peak = f64::from((1u32 << bit_depth) - 1);
    if mse == 0.0 {
        100.0
    } else {
        10.0 * (peak * peak / mse).log10()
    }
}
