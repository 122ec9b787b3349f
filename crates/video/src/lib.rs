//! Video planes and frames, their file formats, the clip corpus and a procedural clip generator.

pub mod corpus;
pub mod error;
pub mod ffmpeg;
pub mod format;
pub mod frame;
pub mod generate;
mod samples;
pub mod shared;
pub mod y4m;
pub mod yuv;

pub use error::VideoError;
pub use format::{ChromaSampling, Rational, VideoFormat};
pub use frame::{AnyFrame, Frame, Pixel, Plane};
pub use generate::{GenerateError, Generator, GeneratorSpec, Pattern};
pub use y4m::{Y4mReader, Y4mWriter};
pub use yuv::{YuvReader, YuvWriter};
