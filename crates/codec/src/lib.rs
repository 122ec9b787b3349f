//! The lab's own hybrid block video codec: 64x64 superblocks split by a quadtree, intra and
//! motion-compensated prediction, integer transforms, adaptive binary arithmetic coding,
//! rate-distortion optimised decisions, in-loop deblocking and sample adaptive offset, and rate
//! control, all steered by a [`Genome`]. The decoder reproduces the encoder's reconstruction bit
//! for bit.
//!
//! It codes 4:2:0 video of 8 to 12 bits per sample: `u8` samples at 8 bits, `u16` above, each
//! with its own monomorphised copy of the sample code (see [`picture`]). A QP means the same
//! quality at every depth, as in HEVC.

pub mod bitstream;
pub mod deblock;
pub mod decoder;
pub mod dsp;
pub mod encoder;
pub mod entropy;
pub mod error;
pub mod genome;
pub mod gop;
pub mod inter;
pub mod intra;
pub mod learned;
pub mod lookahead;
mod parallel;
pub mod partition;
pub mod picture;
pub mod pipeline;
pub mod preset;
pub mod quant;
pub mod ratecontrol;
pub mod rdo;
pub mod reconstruct;
pub mod residual;
pub mod sao;
pub mod syntax;
pub mod temporal;
#[cfg(test)]
mod test_rng;
pub mod transform;

pub use bitstream::header::DecoderLimits;
pub use decoder::Decoder;
pub use encoder::{EncodedFrame, Encoder};
pub use error::{CodecError, Result};
pub use genome::Genome;
pub use gop::FrameKind;
pub use pipeline::{EncodeSettings, Summary, decode_to_y4m, encode_y4m, encode_y4m_reconstructed};
pub use preset::Preset;
pub use ratecontrol::RateMode;
