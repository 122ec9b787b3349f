//! The codec's error type.

use thiserror::Error;

/// Everything that can go wrong while configuring, encoding or decoding.
#[derive(Debug, Error)]
pub enum CodecError {
    #[error("genome parameter `{name}` = {value} is outside {min}..={max}")]
    GenomeOutOfRange {
        name: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("genome is inconsistent: {0}")]
    GenomeInconsistent(&'static str),
    #[error("unknown preset `{0}`: faster, fast, medium or slow")]
    UnknownPreset(String),
    #[error("genome JSON: {0}")]
    GenomeJson(#[from] serde_json::Error),
    #[error("unsupported video format: {0}")]
    UnsupportedFormat(String),
    #[error("frame does not match the stream's format")]
    FrameMismatch,
    #[error("invalid rate control setting: {0}")]
    InvalidRateControl(String),
    #[error("not a codeclab stream (bad magic)")]
    BadMagic,
    #[error(
        "bitstream version {0} is not supported: this decoder reads version {v} only; re-encode the clip",
        v = crate::bitstream::header::VERSION
    )]
    UnsupportedVersion(u8),
    #[error("corrupt stream: {0}")]
    Corrupt(&'static str),
    #[error("stream is truncated")]
    Truncated,
    #[error("stream checksum mismatch: the stream is corrupt")]
    ChecksumMismatch,
    #[error("stream exceeds the decoder's limits: {0}")]
    LimitExceeded(String),
    #[error(transparent)]
    Video(#[from] codeclab_video::VideoError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, CodecError>;
