//! Errors of the video file formats. Each one names the file (a display name chosen by the caller,
//! usually its path) and, where bytes were involved, the byte offset where things went wrong.

/// Why reading or writing a video file failed.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The file could not be opened or created.
    #[error("{name}: cannot open: {source}")]
    Open {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// The underlying reader failed.
    #[error("{name} at byte {offset}: read failed: {source}")]
    Read {
        name: String,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// The underlying writer failed.
    #[error("{name} at byte {offset}: write failed: {source}")]
    Write {
        name: String,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// The bytes do not follow the format (a bad tag, marker or sample value).
    #[error("{name} at byte {offset}: {reason}")]
    Malformed {
        name: String,
        offset: u64,
        reason: String,
    },
    /// Well-formed, but outside what this reader supports (interlacing, alpha, absurd sizes).
    #[error("{name} at byte {offset}: unsupported: {reason}")]
    Unsupported {
        name: String,
        offset: u64,
        reason: String,
    },
    /// The file ends inside a frame.
    #[error("{name} at byte {offset}: truncated frame {frame}: {got} of {expected} bytes present")]
    Truncated {
        name: String,
        offset: u64,
        frame: u64,
        got: u64,
        expected: u64,
    },
    /// A frame handed to a writer does not have the stream's plane count, sizes, sample type, or
    /// has samples above the stream's peak value.
    #[error("{name} at byte {offset}: frame {frame} does not match the stream format: {reason}")]
    FrameMismatch {
        name: String,
        offset: u64,
        frame: u64,
        reason: String,
    },
    /// A format given by the caller cannot be written or read (zero size, bad bit depth, ...).
    #[error("{name}: invalid video format: {reason}")]
    InvalidFormat { name: String, reason: String },
}
