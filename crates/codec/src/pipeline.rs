//! Whole-stream encoding and decoding between Y4M and the codec's bitstream, for the command
//! line tools: frames, bytes and timing are reported in a [`Summary`].

use crate::decoder::Decoder;
use crate::encoder::{EncodedFrame, Encoder};
use crate::error::{CodecError, Result};
use crate::genome::Genome;
use crate::picture::Sample;
use crate::ratecontrol::RateMode;
use codeclab_video::{AnyFrame, Frame, Y4mReader, Y4mWriter};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Instant;

/// What one encode or decode did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub frames: u64,
    /// Bitstream bytes, every header included.
    pub bytes: u64,
    /// Frame rate of the clip (from the source).
    pub clip_fps: f64,
    /// bytes · 8 · clip fps / frames / 1000.
    pub kbps: f64,
    /// Wall-clock seconds spent coding.
    pub seconds: f64,
}

impl Summary {
    fn new(frames: u64, bytes: u64, clip_fps: f64, seconds: f64) -> Self {
        let kbps = if frames == 0 {
            0.0
        } else {
            bytes as f64 * 8.0 * clip_fps / frames as f64 / 1000.0
        };
        Summary {
            frames,
            bytes,
            clip_fps,
            kbps,
            seconds,
        }
    }

    /// Frames coded per second of wall-clock time.
    pub fn coding_fps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.frames as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Progress callback: frames done so far and the total when the source knows it.
pub trait Progress {
    fn frame_done(&mut self, done: u64, total: Option<u64>);
}

impl<F: FnMut(u64, Option<u64>)> Progress for F {
    fn frame_done(&mut self, done: u64, total: Option<u64>) {
        self(done, total)
    }
}

/// How to encode: the genome, the rate mode, and the threads to code on (the bitstream is the
/// same at any count).
#[derive(Clone, Debug)]
pub struct EncodeSettings {
    pub genome: Genome,
    pub mode: RateMode,
    pub threads: usize,
}

impl EncodeSettings {
    /// `genome` at `mode` on one thread.
    pub fn new(genome: Genome, mode: RateMode) -> Self {
        EncodeSettings {
            genome,
            mode,
            threads: 1,
        }
    }
}

/// Encodes a Y4M stream into a codec bitstream.
pub fn encode_y4m<R: Read, W: Write>(
    input: R,
    input_name: &str,
    output: W,
    settings: EncodeSettings,
    progress: &mut impl Progress,
) -> Result<Summary> {
    let mut reader = Y4mReader::new(input, input_name)?;
    let no_reconstruction: Option<Y4mWriter<std::io::Sink>> = None;
    encode_frames(&mut reader, output, no_reconstruction, settings, progress)
}

/// Encodes a Y4M stream into a codec bitstream and writes the encoder's reconstruction, which
/// the decoder must reproduce bit for bit, as a Y4M stream to `reconstruction`.
pub fn encode_y4m_reconstructed<R: Read, W: Write, V: Write>(
    input: R,
    input_name: &str,
    output: W,
    reconstruction: V,
    settings: EncodeSettings,
    progress: &mut impl Progress,
) -> Result<Summary> {
    let mut reader = Y4mReader::new(input, input_name)?;
    let writer = Y4mWriter::new(reconstruction, reader.format())?;
    encode_frames(&mut reader, output, Some(writer), settings, progress)
}

/// The sample types frames travel in between Y4M and the codec.
trait FrameSample: Sample {
    fn wrap(frame: Frame<Self>) -> AnyFrame;
    fn unwrap(frame: AnyFrame) -> Option<Frame<Self>>;
}

impl FrameSample for u8 {
    fn wrap(frame: Frame<u8>) -> AnyFrame {
        AnyFrame::U8(frame)
    }

    fn unwrap(frame: AnyFrame) -> Option<Frame<u8>> {
        match frame {
            AnyFrame::U8(frame) => Some(frame),
            AnyFrame::U16(_) => None,
        }
    }
}

impl FrameSample for u16 {
    fn wrap(frame: Frame<u16>) -> AnyFrame {
        AnyFrame::U16(frame)
    }

    fn unwrap(frame: AnyFrame) -> Option<Frame<u16>> {
        match frame {
            AnyFrame::U16(frame) => Some(frame),
            AnyFrame::U8(_) => None,
        }
    }
}

fn encode_frames<R: Read, W: Write, V: Write>(
    reader: &mut Y4mReader<R>,
    output: W,
    reconstruction: Option<Y4mWriter<V>>,
    settings: EncodeSettings,
    progress: &mut impl Progress,
) -> Result<Summary> {
    if reader.format().bit_depth > 8 {
        encode_samples::<u16, _, _, _>(reader, output, reconstruction, settings, progress)
    } else {
        encode_samples::<u8, _, _, _>(reader, output, reconstruction, settings, progress)
    }
}

fn encode_samples<T: FrameSample, R: Read, W: Write, V: Write>(
    reader: &mut Y4mReader<R>,
    mut output: W,
    mut reconstruction: Option<Y4mWriter<V>>,
    settings: EncodeSettings,
    progress: &mut impl Progress,
) -> Result<Summary> {
    let format = *reader.format();
    let total = reader.frame_count_hint();
    let mut encoder = Encoder::<T>::new(format, settings.genome, settings.mode)?;
    encoder.set_threads(settings.threads);
    let start = Instant::now();
    let mut frames = 0;
    let mut bytes = 0u64;
    let mut in_display_order = DisplayOrder::default();
    let mut write = |encoded: Vec<EncodedFrame<T>>, output: &mut W| -> Result<()> {
        for frame in encoded {
            output.write_all(&frame.bytes)?;
            bytes += frame.bytes.len() as u64;
            if let Some(writer) = reconstruction.as_mut() {
                for picture in in_display_order.push(frame.display_index, frame.reconstruction) {
                    writer.write_frame(&T::wrap(picture))?;
                }
            }
            frames += 1;
            progress.frame_done(frames, total);
        }
        Ok(())
    };
    while let Some(frame) = reader.read_frame()? {
        // The reader gives the sample type of the depth it announced.
        let frame = T::unwrap(frame).ok_or(CodecError::FrameMismatch)?;
        write(encoder.encode_frame(&frame)?, &mut output)?;
    }
    let (last, tail) = encoder.finish()?;
    write(last, &mut output)?;
    output.write_all(&tail)?;
    output.flush()?;
    if let Some(writer) = reconstruction {
        writer.finish()?;
    }
    bytes += tail.len() as u64;
    Ok(Summary::new(
        frames,
        bytes,
        format.fps.as_f64(),
        start.elapsed().as_secs_f64(),
    ))
}

/// Puts frames that arrive in coding order back in display order.
pub struct DisplayOrder<F = Frame<u8>> {
    waiting: BTreeMap<u64, F>,
    next: u64,
}

impl<F> Default for DisplayOrder<F> {
    fn default() -> Self {
        DisplayOrder {
            waiting: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<F> DisplayOrder<F> {
    /// Takes the frame at `index`; returns the frames now due, in display order.
    pub fn push(&mut self, index: u64, frame: F) -> Vec<F> {
        self.waiting.insert(index, frame);
        let mut due = Vec::new();
        while let Some(frame) = self.waiting.remove(&self.next) {
            due.push(frame);
            self.next += 1;
        }
        due
    }
}

/// Decodes a codec bitstream into a Y4M stream on up to `threads` threads (the frames are the
/// same at any count).
pub fn decode_to_y4m<R: Read, W: Write>(
    input: R,
    output: W,
    threads: usize,
    progress: &mut impl Progress,
) -> Result<Summary> {
    let mut counted = CountingReader {
        inner: input,
        bytes: 0,
    };
    let start = Instant::now();
    let mut decoder = Decoder::new(&mut counted)?;
    decoder.set_threads(threads);
    let format = decoder.format();
    let mut writer = Y4mWriter::new(output, &format)?;
    let mut frames = 0;
    while let Some(frame) = decoder.next_frame()? {
        writer.write_frame(&frame)?;
        decoder.recycle(frame);
        frames += 1;
        progress.frame_done(frames, None);
    }
    writer.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    drop(decoder);
    Ok(Summary::new(
        frames,
        counted.bytes,
        format.fps.as_f64(),
        seconds,
    ))
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}
