//! The frame viewer: a source frame from the corpus, the same frame decoded on demand from the
//! experiment's stored bitstream, and their amplified luma difference, as PNG.
//!
//! Decoding uses the experiment's own codec: the lab's codec in-process, ffmpeg for external
//! encoders, and, for a `lab_binary` (a candidate build, untrusted), the binary under the
//! sandbox, reading the bitstream on stdin and writing Y4M on stdout. Decoded clips are kept in
//! a temporary folder for the next frames (the last few only).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use codeclab_lab::Lab;
use codeclab_lab::adapter::adapter_for;
use codeclab_lab::artifacts::{experiment_prefix, point_bitstream_key};
use codeclab_lab::secrets::Secrets;
use codeclab_lab::spec::CodecSpec;
use codeclab_lab::store::ExperimentRecord;
use codeclab_sandbox::{self as sandbox, Limits, RunRequest};
use codeclab_video::{AnyFrame, Frame, Pixel, Y4mReader};
use serde::Deserialize;

use crate::error::WebError;

/// Decoded clips kept at once.
const KEPT: usize = 4;

/// Which picture the viewer asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Source,
    Decoded,
    /// |source − decoded| on luma, times the amplification, as grey.
    Diff,
}

/// A frame request.
#[derive(Clone, Debug, Deserialize)]
pub struct FrameQuery {
    pub clip: String,
    /// Index of the rate point in the experiment's ladder.
    pub rate: i64,
    #[serde(default)]
    pub frame: u64,
    pub view: View,
    /// Factor of the difference view (1 to 64; default 8).
    pub amplify: Option<u32>,
}

type Key = (i64, String, i64);

#[derive(Default)]
struct Kept {
    dir: Option<tempfile::TempDir>,
    clips: VecDeque<(Key, PathBuf)>,
}

/// Decoded clips of recent requests.
#[derive(Default)]
pub struct DecodedCache {
    kept: tokio::sync::Mutex<Kept>,
}

impl DecodedCache {
    pub fn new() -> DecodedCache {
        DecodedCache::default()
    }
}

/// The PNG of one frame view.
pub async fn frame_png(
    lab: &Lab,
    cache: &DecodedCache,
    id: i64,
    query: &FrameQuery,
) -> Result<Vec<u8>, WebError> {
    let record = lab
        .store
        .experiment(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("experiment {id} does not exist")))?;
    let point = lab
        .store
        .points(id)
        .await?
        .into_iter()
        .find(|p| p.clip_id == query.clip && p.rate_index == query.rate)
        .ok_or_else(|| {
            WebError::NotFound(format!(
                "experiment {id} has no measured point {} on {}",
                query.rate, query.clip
            ))
        })?;
    if query.frame >= point.record.frames {
        return Err(WebError::BadRequest(format!(
            "frame {} is past the clip's {} frames",
            query.frame, point.record.frames
        )));
    }
    let corpus = lab.corpus()?;
    let clip = corpus
        .clip(&query.clip)
        .ok_or_else(|| WebError::NotFound(format!("clip {} is not in the corpus", query.clip)))?;
    if clip.sha256 != point.record.clip_sha256 {
        return Err(WebError::Conflict(format!(
            "clip {} changed since it was measured (sha256 {} now, {} then)",
            clip.id, clip.sha256, point.record.clip_sha256
        )));
    }
    let source = corpus.clip_path(clip);
    let decoded = match query.view {
        View::Source => None,
        View::Decoded | View::Diff => Some(
            cache
                .decoded(lab, &record, &query.clip, query.rate, point.record.frames)
                .await?,
        ),
    };
    let view = query.view;
    let frame = query.frame;
    let amplify = query.amplify.unwrap_or(8).clamp(1, 64);
    tokio::task::spawn_blocking(move || -> Result<Vec<u8>, WebError> {
        let source = read_frame(&source, frame)?;
        let image = match (view, decoded) {
            (View::Source, _) => rgb(&source),
            (View::Decoded, Some(path)) => rgb(&read_frame(&path, frame)?),
            (View::Diff, Some(path)) => difference(&source, &read_frame(&path, frame)?, amplify)?,
            (_, None) => return Err(WebError::Internal("no decoded clip".into())),
        };
        encode_png(&image)
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))?
}

impl DecodedCache {
    /// The decoded Y4M of one point, decoding it unless it is kept.
    async fn decoded(
        &self,
        lab: &Lab,
        record: &ExperimentRecord,
        clip: &str,
        rate: i64,
        frames: u64,
    ) -> Result<PathBuf, WebError> {
        let key: Key = (record.id, clip.to_string(), rate);
        // One decode at a time: a second request for the same clip waits and finds it kept.
        let mut kept = self.kept.lock().await;
        if let Some((_, path)) = kept.clips.iter().find(|(k, _)| *k == key) {
            return Ok(path.clone());
        }
        if kept.dir.is_none() {
            kept.dir = Some(
                tempfile::Builder::new()
                    .prefix("codeclab-web-")
                    .tempdir()
                    .map_err(|e| WebError::Internal(format!("scratch folder: {e}")))?,
            );
        }
        let dir = kept
            .dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .ok_or_else(|| WebError::Internal("scratch folder".into()))?;
        let stem = format!("{}-{}-{rate}", record.id, sanitize(clip));
        let prefix = format!("{}/{clip}/{rate}/", experiment_prefix(record.id));
        let missing = || WebError::NotFound(format!("no stored bitstream for {clip} point {rate}"));
        let point = lab
            .store
            .points(record.id)
            .await?
            .into_iter()
            .find(|p| p.clip_id == clip && p.rate_index == rate)
            .ok_or_else(missing)?;
        let keys = lab.artifacts.list(&prefix).await?;
        let bitstream_key = point_bitstream_key(&keys, &point.record.bitstream_sha256)
            .ok_or_else(missing)?
            .clone();
        let bitstream_bytes = lab.artifacts.get(&bitstream_key).await?;
        let extension = bitstream_key.rsplit('.').next().unwrap_or("bin");
        let bitstream = dir.join(format!("{stem}.{extension}"));
        let output = dir.join(format!("{stem}.y4m"));
        tokio::fs::write(&bitstream, &bitstream_bytes)
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?;
        let spec: CodecSpec = serde_json::from_value(record.spec.codec.clone())
            .map_err(|e| WebError::Conflict(format!("the experiment's codec spec: {e}")))?;
        match spec {
            CodecSpec::LabBinary { binary, .. } => {
                let program = decoder_binary(lab, record.id, Path::new(&binary), &dir).await?;
                let clip_record = lab
                    .store
                    .clips()
                    .await?
                    .into_iter()
                    .find(|c| c.id == clip)
                    .ok_or_else(|| WebError::NotFound(format!("clip {clip} was never recorded")))?;
                let cap = y4m_cap(clip_record.width, clip_record.height, frames);
                let output_path = output.clone();
                let secrets = lab.adapters.secrets.clone();
                tokio::task::spawn_blocking(move || {
                    sandboxed_decode(&program, bitstream_bytes, cap, &output_path, &secrets)
                })
                .await
                .map_err(|e| WebError::Internal(e.to_string()))??;
            }
            CodecSpec::Lab { .. } | CodecSpec::Ffmpeg { .. } => {
                let codec = record.spec.codec.clone();
                let adapters = lab.adapters.clone();
                let (input, output_path, workdir) =
                    (bitstream.clone(), output.clone(), dir.clone());
                let log = dir.join(format!("{stem}.decode.log"));
                tokio::task::spawn_blocking(move || {
                    let adapter = adapter_for(&codec, &adapters)
                        .map_err(|e| WebError::Conflict(e.to_string()))?;
                    adapter
                        .decode(&input, &output_path, &workdir, &log)
                        .map_err(|e| WebError::Internal(format!("decoding: {e}")))
                })
                .await
                .map_err(|e| WebError::Internal(e.to_string()))??;
            }
        }
        let _ = tokio::fs::remove_file(&bitstream).await;
        kept.clips.push_back((key, output.clone()));
        while kept.clips.len() > KEPT {
            if let Some((_, old)) = kept.clips.pop_front() {
                let _ = tokio::fs::remove_file(old).await;
            }
        }
        Ok(output)
    }
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The most bytes a decoded Y4M of the clip may take (10-bit 4:4:4 with frame headers).
fn y4m_cap(width: i64, height: i64, frames: u64) -> usize {
    let frame = (width.max(0) as usize)
        .saturating_mul(height.max(0) as usize)
        .saturating_mul(6)
        .saturating_add(64);
    frame
        .saturating_mul(usize::try_from(frames).unwrap_or(usize::MAX))
        .saturating_add(4096)
}

/// The candidate's decoder: its binary when still on this machine, else the copy kept with the
/// experiment's artifacts.
async fn decoder_binary(
    lab: &Lab,
    id: i64,
    binary: &Path,
    dir: &Path,
) -> Result<PathBuf, WebError> {
    if binary.is_absolute() && binary.is_file() {
        return Ok(binary.to_path_buf());
    }
    let prefix = format!("{}/decoder/", experiment_prefix(id));
    let key = lab
        .artifacts
        .list(&prefix)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| WebError::NotFound(format!("experiment {id} kept no decoder binary")))?;
    let bytes = lab.artifacts.get(&key).await?;
    let path = dir.join(format!("decoder-{id}"));
    tokio::fs::write(&path, bytes)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(path)
}

fn sandboxed_decode(
    program: &Path,
    bitstream: Vec<u8>,
    cap: usize,
    output: &Path,
    secrets: &Secrets,
) -> Result<(), WebError> {
    let report = sandbox::run(&RunRequest {
        program: program.to_path_buf(),
        args: vec!["decode".into(), "-".into(), "-o".into(), "-".into()],
        stdin: bitstream,
        limits: Limits {
            stdout_cap_bytes: cap,
            ..Limits::default()
        },
    })
    .map_err(|e| WebError::Internal(format!("sandbox: {e}")))?;
    if !report.outcome.is_ok() {
        return Err(WebError::Conflict(format!(
            "the candidate's decoder {}: {}",
            report.outcome,
            secrets
                .scrub(&String::from_utf8_lossy(&report.stderr))
                .chars()
                .take(2000)
                .collect::<String>()
        )));
    }
    std::fs::write(output, report.stdout).map_err(|e| WebError::Internal(e.to_string()))
}

/// A frame and its bit depth.
struct Picture {
    frame: AnyFrame,
    depth: u32,
}

fn read_frame(path: &Path, index: u64) -> Result<Picture, WebError> {
    let mut reader = Y4mReader::open(path)
        .map_err(|e| WebError::Internal(format!("{}: {e}", path.display())))?;
    let depth = u32::from(reader.format().bit_depth);
    let mut seen = 0;
    loop {
        match reader.read_frame() {
            Ok(Some(frame)) if seen == index => return Ok(Picture { frame, depth }),
            Ok(Some(_)) => seen += 1,
            Ok(None) => {
                return Err(WebError::Conflict(format!(
                    "{} has only {seen} frames",
                    path.display()
                )));
            }
            Err(e) => return Err(WebError::Internal(format!("{}: {e}", path.display()))),
        }
    }
}

/// An 8-bit RGB picture.
struct Rgb {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

/// A sample scaled to 8 bits.
fn eight_bit<T: Pixel>(frame: &Frame<T>, plane: usize, x: usize, y: usize, depth: u32) -> f64 {
    let plane = &frame.planes[plane];
    let luma = &frame.planes[0];
    let px = x * plane.width() / luma.width().max(1);
    let py = y * plane.height() / luma.height().max(1);
    f64::from(plane.get(px, py).to_u32()) / f64::from(1u32 << depth.saturating_sub(8))
}

fn rgb_of<T: Pixel>(frame: &Frame<T>, depth: u32) -> Rgb {
    let (width, height) = (frame.planes[0].width(), frame.planes[0].height());
    let colour = frame.planes.len() >= 3;
    let mut data = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            let luma = eight_bit(frame, 0, x, y, depth);
            if !colour {
                let v = luma.round().clamp(0.0, 255.0) as u8;
                data.extend([v, v, v]);
                continue;
            }
            // BT.601, limited range.
            let c = 1.164 * (luma - 16.0);
            let d = eight_bit(frame, 1, x, y, depth) - 128.0;
            let e = eight_bit(frame, 2, x, y, depth) - 128.0;
            for v in [c + 1.596 * e, c - 0.392 * d - 0.813 * e, c + 2.017 * d] {
                data.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    Rgb {
        width,
        height,
        data,
    }
}

fn rgb(picture: &Picture) -> Rgb {
    match &picture.frame {
        AnyFrame::U8(f) => rgb_of(f, picture.depth),
        AnyFrame::U16(f) => rgb_of(f, picture.depth),
    }
}

/// The luma plane scaled to 8 bits, with its size.
fn luma_8(picture: &Picture) -> (usize, usize, Vec<f64>) {
    fn plane<T: Pixel>(f: &Frame<T>, depth: u32) -> (usize, usize, Vec<f64>) {
        let p = &f.planes[0];
        let scale = f64::from(1u32 << depth.saturating_sub(8));
        (
            p.width(),
            p.height(),
            p.data()
                .iter()
                .map(|v| f64::from(v.to_u32()) / scale)
                .collect(),
        )
    }
    match &picture.frame {
        AnyFrame::U8(f) => plane(f, picture.depth),
        AnyFrame::U16(f) => plane(f, picture.depth),
    }
}

fn difference(source: &Picture, decoded: &Picture, amplify: u32) -> Result<Rgb, WebError> {
    let (width, height, a) = luma_8(source);
    let (w2, h2, b) = luma_8(decoded);
    if (width, height) != (w2, h2) {
        return Err(WebError::Conflict(format!(
            "decoded frames are {w2}x{h2}, the source is {width}x{height}"
        )));
    }
    let data = a
        .iter()
        .zip(&b)
        .flat_map(|(x, y)| {
            let v = ((x - y).abs() * f64::from(amplify))
                .round()
                .clamp(0.0, 255.0) as u8;
            [v, v, v]
        })
        .collect();
    Ok(Rgb {
        width,
        height,
        data,
    })
}

fn encode_png(image: &Rgb) -> Result<Vec<u8>, WebError> {
    let mut out = Vec::new();
    let fail = |e: png::EncodingError| WebError::Internal(format!("PNG: {e}"));
    let mut encoder = png::Encoder::new(&mut out, image.width as u32, image.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&image.data).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}
