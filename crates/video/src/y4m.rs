//! YUV4MPEG2 (`.y4m`) streams: a text header line, then frames each led by a `FRAME` line.
//!
//! Reading streams: memory stays at one frame's bytes plus the frame handed out, whatever the
//! clip's length, and [`Y4mReader::read_frame_into`] reuses the caller's frame as well.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::error::VideoError;
use crate::format::{ChromaSampling, MAX_DIMENSION, Rational, VideoFormat};
use crate::frame::AnyFrame;
use crate::samples;

const SIGNATURE: &[u8] = b"YUV4MPEG2";
const FRAME_MARKER: &[u8] = b"FRAME";

/// Longest stream or frame header line accepted, newline included. Real headers are under 100
/// bytes (ffmpeg's own demuxer reads at most a few hundred); the cap keeps a stream without a
/// newline from being read into memory forever.
pub const MAX_HEADER_LINE: usize = 4096;

/// A streaming Y4M reader.
pub struct Y4mReader<R: Read> {
    reader: R,
    name: String,
    format: VideoFormat,
    /// Bytes consumed so far: the position errors are reported at.
    offset: u64,
    header_len: u64,
    /// Total length of the source when known (a file), for [`Y4mReader::frame_count_hint`].
    source_len: Option<u64>,
    frames_read: u64,
    /// One frame's samples, reused from frame to frame.
    buffer: Vec<u8>,
}

impl Y4mReader<BufReader<File>> {
    /// Opens a file and parses its stream header; errors name the file by its path.
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| VideoError::Open {
            name: name.clone(),
            source,
        })?;
        let source_len = file.metadata().ok().map(|m| m.len());
        let mut reader = Self::new(BufReader::with_capacity(1 << 16, file), &name)?;
        reader.source_len = source_len;
        Ok(reader)
    }
}

impl<R: Read> Y4mReader<R> {
    /// Parses the stream header from `reader`; `name` is how errors refer to the stream.
    pub fn new(reader: R, name: &str) -> Result<Self, VideoError> {
        let mut this = Y4mReader {
            reader,
            name: name.to_string(),
            format: VideoFormat {
                width: 0,
                height: 0,
                bit_depth: 8,
                chroma: ChromaSampling::Cs420,
                fps: Rational::new(0, 0),
                aspect: Rational::new(0, 0),
            },
            offset: 0,
            header_len: 0,
            source_len: None,
            frames_read: 0,
            buffer: Vec::new(),
        };
        let line = match this.read_line()? {
            Some(line) => line,
            None => return Err(this.malformed(0, "empty file: no YUV4MPEG2 header".into())),
        };
        this.format = parse_stream_header(&line, &this.name)?;
        this.header_len = this.offset;
        Ok(this)
    }

    /// The stream's geometry, sampling, bit depth and timing.
    pub fn format(&self) -> &VideoFormat {
        &self.format
    }

    /// The display name errors use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Hands back the underlying reader, positioned after the last byte consumed.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The number of frames the source holds, estimated from its length assuming plain `FRAME`
    /// lines (exact for files written by ffmpeg or by [`Y4mWriter`]); `None` for a stream of
    /// unknown length. For progress bars only: the frame count that counts is the one read.
    pub fn frame_count_hint(&self) -> Option<u64> {
        let len = self.source_len?;
        let per_frame = self.format.frame_bytes() as u64 + FRAME_MARKER.len() as u64 + 1;
        Some(len.saturating_sub(self.header_len) / per_frame)
    }

    /// The next frame, `Ok(None)` when the stream ends cleanly between frames.
    pub fn read_frame(&mut self) -> Result<Option<AnyFrame>, VideoError> {
        let mut frame = AnyFrame::U8(crate::frame::Frame { planes: Vec::new() });
        Ok(self.read_frame_into(&mut frame)?.then_some(frame))
    }

    /// Reads the next frame into `frame`, reusing its planes when they have the stream's shape.
    /// Returns `Ok(false)` (leaving `frame` untouched) at a clean end of stream.
    pub fn read_frame_into(&mut self, frame: &mut AnyFrame) -> Result<bool, VideoError> {
        let marker_offset = self.offset;
        let Some(line) = self.read_line()? else {
            return Ok(false);
        };
        check_frame_header(&line).map_err(|reason| self.malformed(marker_offset, reason))?;

        let expected = self.format.frame_bytes();
        let data_offset = self.offset;
        let got = samples::read_frame_bytes(
            &mut self.reader,
            &mut self.buffer,
            expected,
            self.source_len
                .is_some_and(|len| len.saturating_sub(self.offset) >= expected as u64),
        )
        .map_err(|source| VideoError::Read {
            name: self.name.clone(),
            offset: data_offset + self.buffer.len() as u64,
            source,
        })?;
        self.offset += got as u64;
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
            self.malformed(
                data_offset + bad.byte_in_frame as u64,
                format!("frame {}: {}", self.frames_read, bad.describe(&self.format)),
            )
        })?;
        self.frames_read += 1;
        Ok(true)
    }

    /// Reads one header line (without its newline). `None` when the stream ends before its first
    /// byte; an error when it ends inside the line or the line exceeds [`MAX_HEADER_LINE`].
    fn read_line(&mut self) -> Result<Option<Vec<u8>>, VideoError> {
        let start = self.offset;
        let mut line = Vec::new();
        loop {
            let mut byte = [0u8; 1];
            let n = loop {
                match self.reader.read(&mut byte) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(VideoError::Read {
                            name: self.name.clone(),
                            offset: self.offset,
                            source,
                        });
                    }
                }
            };
            if n == 0 {
                if line.is_empty() {
                    return Ok(None);
                }
                return Err(self.malformed(
                    self.offset,
                    format!(
                        "stream ends inside the header line that starts at byte {start}: `{}`",
                        escape(&line)
                    ),
                ));
            }
            self.offset += 1;
            if byte[0] == b'\n' {
                return Ok(Some(line));
            }
            if line.len() + 1 >= MAX_HEADER_LINE {
                return Err(self.malformed(
                    start,
                    format!("header line longer than {MAX_HEADER_LINE} bytes"),
                ));
            }
            line.push(byte[0]);
        }
    }

    fn malformed(&self, offset: u64, reason: String) -> VideoError {
        VideoError::Malformed {
            name: self.name.clone(),
            offset,
            reason,
        }
    }
}

/// Checks a frame header line: `FRAME`, optionally followed by space-separated parameters (which
/// carry nothing this reader uses).
fn check_frame_header(line: &[u8]) -> Result<(), String> {
    match line.strip_prefix(FRAME_MARKER) {
        Some([]) | Some([b' ', ..]) => Ok(()),
        _ => Err(format!("expected a FRAME marker, found `{}`", escape(line))),
    }
}

/// Shows at most 40 bytes of `bytes`, non-printable ones escaped.
fn escape(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(40)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > 40 {
        shown + "..."
    } else {
        shown
    }
}

/// Parses the stream header line (without its newline).
fn parse_stream_header(line: &[u8], name: &str) -> Result<VideoFormat, VideoError> {
    let malformed = |offset: usize, reason: String| VideoError::Malformed {
        name: name.to_string(),
        offset: offset as u64,
        reason,
    };
    let unsupported = |offset: usize, reason: String| VideoError::Unsupported {
        name: name.to_string(),
        offset: offset as u64,
        reason,
    };
    let rest = match line.strip_prefix(SIGNATURE) {
        Some(rest @ ([] | [b' ', ..])) => rest,
        _ => {
            return Err(malformed(
                0,
                format!(
                    "not a Y4M stream: expected `YUV4MPEG2`, found `{}`",
                    escape(line)
                ),
            ));
        }
    };

    let mut width = None;
    let mut height = None;
    let mut fps = None;
    let mut aspect = None;
    let mut colour = None;
    let mut interlace_seen = false;
    let mut position = SIGNATURE.len();
    for token in rest.split(|&b| b == b' ') {
        let token_offset = position;
        position += token.len() + 1;
        let Some((&tag, value)) = token.split_first() else {
            continue; // doubled spaces
        };
        let duplicate = |what: &str| malformed(token_offset, format!("{what} given twice"));
        match tag {
            b'W' => {
                if width.is_some() {
                    return Err(duplicate("W (width)"));
                }
                width = Some(parse_dimension(value, "width", token_offset, name)?);
            }
            b'H' => {
                if height.is_some() {
                    return Err(duplicate("H (height)"));
                }
                height = Some(parse_dimension(value, "height", token_offset, name)?);
            }
            b'F' => {
                if fps.is_some() {
                    return Err(duplicate("F (frame rate)"));
                }
                let rate = parse_ratio(value)
                    .filter(|r| r.num > 0 && r.den > 0)
                    .ok_or_else(|| {
                        malformed(
                            token_offset,
                            format!(
                                "bad frame rate `{}`: expected F<num>:<den>, both positive",
                                escape(token)
                            ),
                        )
                    })?;
                fps = Some(rate);
            }
            b'A' => {
                if aspect.is_some() {
                    return Err(duplicate("A (pixel aspect)"));
                }
                let ratio = parse_ratio(value)
                    .filter(|r| (r.num == 0) == (r.den == 0))
                    .ok_or_else(|| {
                        malformed(
                            token_offset,
                            format!(
                                "bad pixel aspect `{}`: expected A<num>:<den>, both positive or 0:0",
                                escape(token)
                            ),
                        )
                    })?;
                aspect = Some(ratio);
            }
            b'I' => {
                if interlace_seen {
                    return Err(duplicate("I (interlacing)"));
                }
                interlace_seen = true;
                match value {
                    b"p" => {}
                    b"t" | b"b" | b"m" => {
                        return Err(unsupported(
                            token_offset,
                            format!(
                                "interlaced stream (`{}`); only progressive (`Ip`) is supported",
                                escape(token)
                            ),
                        ));
                    }
                    _ => {
                        return Err(malformed(
                            token_offset,
                            format!(
                                "unknown interlacing `{}`; only progressive (`Ip`) is supported",
                                escape(token)
                            ),
                        ));
                    }
                }
            }
            b'C' => {
                if colour.is_some() {
                    return Err(duplicate("C (colour space)"));
                }
                colour = Some(parse_colour_space(value, token_offset, name)?);
            }
            // Extensions (`XYSCSS=420JPEG`, `XCOLORRANGE=...`) carry nothing this reader uses.
            b'X' => {}
            _ => {
                return Err(malformed(
                    token_offset,
                    format!("unknown header tag `{}`", escape(token)),
                ));
            }
        }
    }

    let width = width.ok_or_else(|| malformed(0, "header has no W (width) tag".into()))?;
    let height = height.ok_or_else(|| malformed(0, "header has no H (height) tag".into()))?;
    let fps = fps.ok_or_else(|| malformed(0, "header has no F (frame rate) tag".into()))?;
    let (chroma, bit_depth) = colour.unwrap_or((ChromaSampling::Cs420, 8));
    let format = VideoFormat {
        width,
        height,
        bit_depth,
        chroma,
        fps,
        aspect: aspect.unwrap_or(Rational::new(0, 0)),
    };
    // Each field was checked above; what is left is the frame size limit.
    format.check().map_err(|reason| unsupported(0, reason))?;
    Ok(format)
}

fn parse_dimension(
    value: &[u8],
    what: &str,
    offset: usize,
    name: &str,
) -> Result<usize, VideoError> {
    let parsed = parse_decimal(value).ok_or_else(|| VideoError::Malformed {
        name: name.to_string(),
        offset: offset as u64,
        reason: format!("bad {what} `{}`: expected a decimal number", escape(value)),
    })?;
    if parsed == 0 {
        return Err(VideoError::Malformed {
            name: name.to_string(),
            offset: offset as u64,
            reason: format!("{what} is zero"),
        });
    }
    if parsed > MAX_DIMENSION as u64 {
        return Err(VideoError::Unsupported {
            name: name.to_string(),
            offset: offset as u64,
            reason: format!("{what} {parsed} exceeds the {MAX_DIMENSION} limit"),
        });
    }
    // At most MAX_DIMENSION, so it fits.
    Ok(parsed as usize)
}

/// Digits only (no sign, no spaces), at most 10 of them so the value fits a `u64` with room.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')),
    )
}

fn parse_ratio(value: &[u8]) -> Option<Rational> {
    let colon = value.iter().position(|&b| b == b':')?;
    let num = u32::try_from(parse_decimal(&value[..colon])?).ok()?;
    let den = u32::try_from(parse_decimal(&value[colon + 1..])?).ok()?;
    Some(Rational::new(num, den))
}

/// Maps a C tag value to (sampling, bit depth), as ffmpeg and mjpegtools write them.
fn parse_colour_space(
    value: &[u8],
    offset: usize,
    name: &str,
) -> Result<(ChromaSampling, u8), VideoError> {
    let eight_bit = match value {
        b"420jpeg" | b"420paldv" | b"420mpeg2" | b"420" => Some(ChromaSampling::Cs420),
        b"422" => Some(ChromaSampling::Cs422),
        b"444" => Some(ChromaSampling::Cs444),
        b"mono" => Some(ChromaSampling::Mono),
        _ => None,
    };
    if let Some(chroma) = eight_bit {
        return Ok((chroma, 8));
    }
    let deep = [
        (&b"420p"[..], ChromaSampling::Cs420),
        (b"422p", ChromaSampling::Cs422),
        (b"444p", ChromaSampling::Cs444),
        (b"mono", ChromaSampling::Mono),
    ]
    .into_iter()
    .find_map(|(prefix, chroma)| {
        let depth = parse_decimal(value.strip_prefix(prefix)?)?;
        (9..=16).contains(&depth).then_some((chroma, depth as u8))
    });
    if let Some(found) = deep {
        return Ok(found);
    }
    let reason = match value {
        b"444alpha" | b"411" => format!(
            "colour space `C{}` (only 4:2:0, 4:2:2, 4:4:4 and mono are supported)",
            escape(value)
        ),
        _ => {
            return Err(VideoError::Malformed {
                name: name.to_string(),
                offset: offset as u64,
                reason: format!("unknown colour space `C{}`", escape(value)),
            });
        }
    };
    Err(VideoError::Unsupported {
        name: name.to_string(),
        offset: offset as u64,
        reason,
    })
}

/// The C tag value for a format (`420jpeg` for 8-bit 4:2:0, as ffmpeg writes; `420p10` etc.).
fn colour_space_tag(format: &VideoFormat) -> String {
    let base = match format.chroma {
        ChromaSampling::Cs420 => "420",
        ChromaSampling::Cs422 => "422",
        ChromaSampling::Cs444 => "444",
        ChromaSampling::Mono => "mono",
    };
    match (format.bit_depth, format.chroma) {
        (8, ChromaSampling::Cs420) => "420jpeg".to_string(),
        (8, _) => base.to_string(),
        (depth, ChromaSampling::Mono) => format!("mono{depth}"),
        (depth, _) => format!("{base}p{depth}"),
    }
}

/// A streaming Y4M writer.
pub struct Y4mWriter<W: Write> {
    writer: W,
    name: String,
    format: VideoFormat,
    /// Bytes written so far, for error positions.
    offset: u64,
    frames_written: u64,
    /// Little-endian bytes of a deep frame, reused.
    buffer: Vec<u8>,
}

impl Y4mWriter<BufWriter<File>> {
    /// Creates (or truncates) a file and writes the stream header.
    pub fn create(path: &Path, format: &VideoFormat) -> Result<Self, VideoError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|source| VideoError::Open {
            name: name.clone(),
            source,
        })?;
        Self::named(BufWriter::with_capacity(1 << 16, file), format, &name)
    }
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the stream header; errors will call the stream "output".
    pub fn new(writer: W, format: &VideoFormat) -> Result<Self, VideoError> {
        Self::named(writer, format, "output")
    }

    /// Writes the stream header; `name` is how errors refer to the stream.
    pub fn named(writer: W, format: &VideoFormat, name: &str) -> Result<Self, VideoError> {
        format.check().map_err(|reason| VideoError::InvalidFormat {
            name: name.to_string(),
            reason,
        })?;
        let mut this = Y4mWriter {
            writer,
            name: name.to_string(),
            format: *format,
            offset: 0,
            frames_written: 0,
            buffer: Vec::new(),
        };
        let header = format!(
            "YUV4MPEG2 W{} H{} F{}:{} Ip A{}:{} C{}\n",
            format.width,
            format.height,
            format.fps.num,
            format.fps.den,
            format.aspect.num,
            format.aspect.den,
            colour_space_tag(format)
        );
        this.write_bytes(header.as_bytes())?;
        Ok(this)
    }

    /// The format every frame must have.
    pub fn format(&self) -> &VideoFormat {
        &self.format
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Appends one frame; a frame whose planes, sample type or sample values do not fit the
    /// stream's format is rejected and nothing is written.
    pub fn write_frame(&mut self, frame: &AnyFrame) -> Result<(), VideoError> {
        let mut buffer = std::mem::take(&mut self.buffer);
        let written = match samples::frame_payload(frame, &self.format, &mut buffer) {
            Ok(slices) => {
                let mut result = self.write_bytes(b"FRAME\n");
                for slice in slices {
                    result = result.and_then(|()| self.write_bytes(slice));
                }
                result
            }
            Err(reason) => Err(VideoError::FrameMismatch {
                name: self.name.clone(),
                offset: self.offset,
                frame: self.frames_written,
                reason,
            }),
        };
        self.buffer = buffer;
        written?;
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

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), VideoError> {
        self.writer
            .write_all(bytes)
            .map_err(|source| VideoError::Write {
                name: self.name.clone(),
                offset: self.offset,
                source,
            })?;
        self.offset += bytes.len() as u64;
        Ok(())
    }
}
