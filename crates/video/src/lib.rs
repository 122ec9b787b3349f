//! Video planes and frames, their file formats, the clip corpus and a procedural clip generator.

pub mod ffmpeg;
pub mod format;
pub mod frame;
pub mod shared;

pub use format::{ChromaSampling, Rational, VideoFormat};
pub use frame::{AnyFrame, Frame, Pixel, Plane};
