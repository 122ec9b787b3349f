//! Raw planar `.yuv` files: frames back to back with no header, so the format comes from the
//! caller. Same layout and errors as Y4M frames (8-bit bytes, deeper samples little-endian `u16`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::error::VideoError;
use crate::format::VideoFormat;
use crate::frame::{AnyFrame, Frame};
use crate::samples;

/// A streaming reader of headerless planar frames.
pub struct YuvReader<R: Read> {
    reader: R,
    name: String,
    format: VideoFormat,
    offset: u64,
    source_len: Option<u64>,
    frames_read: u64,
    buffer: Vec<u8>,
}

impl YuvReader<BufReader<File>> {
    /// Opens a raw file holding frames of `format`; errors name the file by its path.
    pub fn open(path: &Path, format: &VideoFormat) -> Result<Self, VideoError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| VideoError::Open {
            name: name.clone(),
            source,
        })?;
        let source_len = file.metadata().ok().map(|m| m.len());
        let mut reader = Self::new(BufReader::with_capacity(1 << 16, file), format, &name)?;
        reader.source_len = source_len;
        Ok(reader)
    }
}

impl<R: Read> YuvReader<R> {
    /// Reads frames of `format` from `reader`; `name` is how errors refer to the stream.
    pub fn new(reader: R, format: &VideoFormat, name: &str) -> Result<Self, VideoError> {
        format.check().map_err(|reason| VideoError::InvalidFormat {
            name: name.to_string(),
            reason,
        })?;
        Ok(YuvReader {
            reader,
            name: name.to_string(),
            format: *format,
            offset: 0,
            source_len: None,
            frames_read: 0,
            buffer: Vec::new(),
        })
    }

    pub fn format(&self) -> &VideoFormat {
        &self.format
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Whole frames in the file, when its length is known; for progress bars.
    pub fn frame_count_hint(&self) -> Option<u64> {
        Some(self.source_len? / self.format.frame_bytes() as u64)
    }

    /// The next frame, `Ok(None)` when the input ends exactly between frames.
    pub fn read_frame(&mut self) -> Result<Option<AnyFrame>, VideoError> {
        let mut frame = AnyFrame::U8(Frame { planes: Vec::new() });
        Ok(self.read_frame_into(&mut frame)?.then_some(frame))
    }

    /// Reads the next frame into `frame`, reusing its planes when they have the right shape;
    /// `Ok(false)` at a clean end (then `frame` is untouched).
    pub fn read_frame_into(&mut self, frame: &mut AnyFrame) -> Result<bool, VideoError> {
        let expected = self.format.frame_bytes();
        let start = self.offset;
        let got = samples::read_frame_bytes(
            &mut self.reader,
            &mut self.buffer,
            expected,
            self.source_len
                .is_some_and(|len| len.saturating_sub(self.offset) >= expected as u64),
        )
        .map_err(|source| VideoError::Read {
            name: self.name.clone(),
            offset: start + self.buffer.len() as u64,
            source,
        })?;
        self.offset += got as u64;
        if got == 0 {
            return Ok(false);
        }
        if got < expected {
            return Err(VideoError::Truncated {
                name: self.name.clone(),
                offset: self.offset,
                frame: self.frames_read,
                got: got as u64,
                expected: expected as u64,
            });
        }
        samples::bytes_to_frame(&self.buffer, &self.format, frame).map_err(|bad| {
            VideoError::Malformed {
                name: self.name.clone(),
                offset: start + bad.byte_in_frame as u64,
                reason: format!("frame {}: {}", self.frames_read, bad.describe(&self.format)),
            }
        })?;
        self.frames_read += 1;
        Ok(true)
    }
}

/// A streaming writer of headerless planar frames.
pub struct YuvWriter<W: Write> {
    writer: W,
    name: String,
    format: VideoFormat,
    offset: u64,
    frames_written: u64,
    buffer: Vec<u8>,
}

impl YuvWriter<BufWriter<File>> {
    /// Creates (or truncates) a file for frames of `format`.
    pub fn create(path: &Path, format: &VideoFormat) -> Result<Self, VideoError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|source| VideoError::Open {
            name: name.clone(),
            source,
        })?;
        Self::named(BufWriter::with_capacity(1 << 16, file), format, &name)
    }
}

impl<W: Write> YuvWriter<W> {
    /// A writer whose errors call the stream "output".
    pub fn new(writer: W, format: &VideoFormat) -> Result<Self, VideoError> {
        Self::named(writer, format, "output")
    }

    /// A writer whose errors call the stream `name`.
    pub fn named(writer: W, format: &VideoFormat, name: &str) -> Result<Self, VideoError> {
        format.check().map_err(|reason| VideoError::InvalidFormat {
            name: name.to_string(),
            reason,
        })?;
        Ok(YuvWriter {
            writer,
            name: name.to_string(),
            format: *format,
            offset: 0,
            frames_written: 0,
            buffer: Vec::new(),
        })
    }

    pub fn format(&self) -> &VideoFormat {
        &self.format
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Appends one frame; a frame that does not fit the format is rejected and nothing written.
    pub fn write_frame(&mut self, frame: &AnyFrame) -> Result<(), VideoError> {
        let slices =
            samples::frame_payload(frame, &self.format, &mut self.buffer).map_err(|reason| {
                VideoError::FrameMismatch {
                    name: self.name.clone(),
                    offset: self.offset,
                    frame: self.frames_written,
                    reason,
                }
            })?;
        for slice in slices {
            self.writer
                .write_all(slice)
                .map_err(|source| VideoError::Write {
                    name: self.name.clone(),
                    offset: self.offset,
                    source,
                })?;
            self.offset += slice.len() as u64;
        }
        self.frames_written += 1;
        Ok(())
    }

    /// Flushes and hands back the underlying writer.
    pub fn finish(mut self) -> Result<W, VideoError> {
        self.writer.flush().map_err(|source| VideoError::Write {
            name: self.name.clone(),
            offset: self.offset,
            source,
        })?;
        Ok(self.writer)
    }
}
