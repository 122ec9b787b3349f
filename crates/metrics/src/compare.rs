//! Comparing two clips frame by frame: one pass over both, each frame decoded once, every
//! requested metric computed on it, frames spread over threads in bounded batches.
//!
//! # Output
//!
//! [`Comparison`] serialises to `{"frames": N, "pooled": {...}, "per_frame": {...}}` with one key
//! per [`Score`]. Per frame: `psnr_y`, `psnr_cb`, `psnr_cr`, `psnr_yuv` (libvmaf's capped PSNR and
//! (6·Y + Cb + Cr)/8), `mse_y`, `mse_cb`, `mse_cr`, `ssim`, `ms_ssim`. Pooled: the mean of each of
//! those, plus the global-MSE PSNR ffmpeg's `psnr` filter prints: `psnr_y_global`,
//! `psnr_cb_global`, `psnr_cr_global` (PSNR of the clip's mean MSE of that plane, ffmpeg's
//! `y`/`u`/`v`) and `psnr_avg_global` (PSNR of the mean MSE of all samples, each plane weighted by
//! its share of the frame's samples: ffmpeg's `average`). The global values exist only pooled; the
//! per-frame MSE they come from is in `per_frame`. Keys of metrics not computed are absent.
//!
//! # Extension point for temporal metrics (VMAF)
//!
//! Every frame job receives a [`FramePair`] holding, besides the two frames, the previous
//! *reference* frame (`None` for the first frame): the pipeline keeps the last reference frame of
//! each batch for the first job of the next one, so a metric such as VMAF's motion feature (the
//! difference between a blurred reference frame and the blurred one before it) runs in the
//! parallel per-frame stage like any other. Features that depend on the *next* frame too (motion2
//! = the smaller of this frame's and the next frame's motion) and model predictions over them
//! belong in a sequential stage after the per-frame one, which completes the [`Comparison`] built
//! by [`Comparison::from_frames`]. VMAF runs that way (when [`CompareOptions::vmaf`] asks): its stage is handed
//! each batch's pairs, in order, after the per-frame metrics, and adds `vmaf` / `vmaf_neg` (keys of
//! [`Score`]) and its report at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use codeclab_video::{AnyFrame, Frame, VideoError, VideoFormat, Y4mReader};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::MetricError;
use crate::ms_ssim::{self, MsSsimScratch, float_ms_ssim};
use crate::pool;
use crate::psnr;
use crate::ssim::{SsimScratch, float_ssim};
use crate::vmaf::{VmafOptions, VmafReport, stage::VmafStage};

/// A family of metrics that can be requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Per-plane PSNR, PSNR-YUV, MSE and the global-MSE PSNR.
    Psnr,
    /// libvmaf's `float_ssim` on luma.
    Ssim,
    /// libvmaf's `float_ms_ssim` on luma.
    MsSsim,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::Psnr, Metric::Ssim, Metric::MsSsim];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Psnr => "psnr",
            Metric::Ssim => "ssim",
            Metric::MsSsim => "ms_ssim",
        }
    }

    /// Why this metric cannot be computed on `format`, if it cannot.
    pub fn check(self, format: &VideoFormat) -> Result<(), MetricError> {
        if !(8..=16).contains(&format.bit_depth) {
            return Err(MetricError::BitDepth(format.bit_depth));
        }
        match self {
            Metric::Psnr => Ok(()),
            Metric::Ssim => {
                let scale = crate::ssim::ssim_scale(format.width, format.height);
                let (w, h) = (
                    crate::filter::decimated_len(format.width, scale),
                    crate::filter::decimated_len(format.height, scale),
                );
                if w < crate::filter::WINDOW_LEN || h < crate::filter::WINDOW_LEN {
                    return Err(MetricError::TooSmall {
                        metric: "SSIM",
                        width: format.width,
                        height: format.height,
                        reason: "the 11x11 window does not fit".into(),
                    });
                }
                Ok(())
            }
            Metric::MsSsim => ms_ssim::check_size(format.width, format.height),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s || (s == "ms-ssim" && *m == Metric::MsSsim))
            .ok_or_else(|| format!("unknown metric `{s}` (known: psnr, ssim, ms_ssim)"))
    }
}

/// The key of one value in a comparison's output (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    PsnrY,
    PsnrCb,
    PsnrCr,
    PsnrYuv,
    PsnrYGlobal,
    PsnrCbGlobal,
    PsnrCrGlobal,
    PsnrAvgGlobal,
    MseY,
    MseCb,
    MseCr,
    Ssim,
    MsSsim,
    Vmaf,
    VmafNeg,
}

impl Score {
    /// The key as written in JSON.
    pub fn key(self) -> &'static str {
        match self {
            Score::PsnrY => "psnr_y",
            Score::PsnrCb => "psnr_cb",
            Score::PsnrCr => "psnr_cr",
            Score::PsnrYuv => "psnr_yuv",
            Score::PsnrYGlobal => "psnr_y_global",
            Score::PsnrCbGlobal => "psnr_cb_global",
            Score::PsnrCrGlobal => "psnr_cr_global",
            Score::PsnrAvgGlobal => "psnr_avg_global",
            Score::MseY => "mse_y",
            Score::MseCb => "mse_cb",
            Score::MseCr => "mse_cr",
            Score::Ssim => "ssim",
            Score::MsSsim => "ms_ssim",
            Score::Vmaf => "vmaf",
            Score::VmafNeg => "vmaf_neg",
        }
    }
}

const PSNR_SCORES: [Score; 3] = [Score::PsnrY, Score::PsnrCb, Score::PsnrCr];
const MSE_SCORES: [Score; 3] = [Score::MseY, Score::MseCb, Score::MseCr];
const GLOBAL_SCORES: [Score; 3] = [Score::PsnrYGlobal, Score::PsnrCbGlobal, Score::PsnrCrGlobal];

/// Most worker threads a comparison starts: each holds a few frames in memory, so an absurd
/// count must not turn into an absurd allocation.
pub const MAX_THREADS: usize = 256;

/// What to compute and how.
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// The metrics to compute; `None` means every metric that applies to the clips' format
    /// (MS-SSIM is left out of pictures too small for it). A metric named here that does not
    /// apply is an error.
    pub metrics: Option<Vec<Metric>>,
    /// Worker threads; 1 computes everything on the calling thread, 0 uses every core. At most
    /// [`MAX_THREADS`].
    pub threads: usize,
    /// VMAF and how (model, NEG, features); `None`: no VMAF.
    pub vmaf: Option<VmafOptions>,
}

/// The result of comparing two clips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub frames: u64,
    pub pooled: BTreeMap<Score, f64>,
    pub per_frame: BTreeMap<Score, Vec<f64>>,
    /// VMAF's full report (every model's pooling, the features when asked), when VMAF ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmaf: Option<VmafReport>,
}

/// Why a comparison failed.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Vmaf(#[from] crate::vmaf::VmafError),
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error("{reference} and {distorted} cannot be compared: {reason}")]
    Mismatch {
        reference: String,
        distorted: String,
        reason: String,
    },
    #[error("{reference} and {distorted}: {metric} does not apply")]
    NotApplicable {
        reference: String,
        distorted: String,
        metric: Metric,
        #[source]
        source: MetricError,
    },
    #[error("frame {frame}")]
    Metric {
        frame: u64,
        #[source]
        source: MetricError,
    },
    #[error("{score} of frame {frame} is {value}: not a finite number", score = score.key())]
    NonFinite {
        score: Score,
        frame: u64,
        value: f64,
    },
    #[error("cannot start {threads} worker threads")]
    Threads {
        threads: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
}

/// A source of frames to compare: a Y4M reader, or frames already in memory.
pub trait FrameSource {
    /// How errors and messages name the source.
    fn name(&self) -> &str;
    fn format(&self) -> &VideoFormat;
    /// Reads the next frame into `frame` (reusing its buffers); `false` at the end.
    fn next_frame_into(&mut self, frame: &mut AnyFrame) -> Result<bool, VideoError>;
    /// The number of frames, when it can be told in advance (for progress bars).
    fn frame_count_hint(&self) -> Option<u64>;
}

impl<R: Read> FrameSource for Y4mReader<R> {
    fn name(&self) -> &str {
        Y4mReader::name(self)
    }

    fn format(&self) -> &VideoFormat {
        Y4mReader::format(self)
    }

    fn next_frame_into(&mut self, frame: &mut AnyFrame) -> Result<bool, VideoError> {
        self.read_frame_into(frame)
    }

    fn frame_count_hint(&self) -> Option<u64> {
        Y4mReader::frame_count_hint(self)
    }
}

/// Frames held in memory, handed out in order (benchmarks, tests).
pub struct MemorySource<'a> {
    name: String,
    format: VideoFormat,
    frames: MemoryFrames<'a>,
    count: u64,
}

enum MemoryFrames<'a> {
    /// Copied out one by one.
    Borrowed(std::slice::Iter<'a, AnyFrame>),
    /// Moved out one by one: no copy, so a benchmark times the metrics alone.
    Owned(std::vec::IntoIter<AnyFrame>),
}

impl<'a> MemorySource<'a> {
    /// A source handing out copies of `frames`.
    pub fn new(name: &str, format: VideoFormat, frames: &'a [AnyFrame]) -> Self {
        MemorySource {
            name: name.to_string(),
            format,
            frames: MemoryFrames::Borrowed(frames.iter()),
            count: frames.len() as u64,
        }
    }
}

impl MemorySource<'static> {
    /// A source handing out `frames` themselves.
    pub fn owned(name: &str, format: VideoFormat, frames: Vec<AnyFrame>) -> Self {
        MemorySource {
            name: name.to_string(),
            format,
            count: frames.len() as u64,
            frames: MemoryFrames::Owned(frames.into_iter()),
        }
    }
}

impl FrameSource for MemorySource<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn format(&self) -> &VideoFormat {
        &self.format
    }

    fn next_frame_into(&mut self, frame: &mut AnyFrame) -> Result<bool, VideoError> {
        match &mut self.frames {
            MemoryFrames::Borrowed(frames) => match frames.next() {
                Some(f) => frame.clone_from(f),
                None => return Ok(false),
            },
            MemoryFrames::Owned(frames) => match frames.next() {
                Some(f) => *frame = f,
                None => return Ok(false),
            },
        }
        Ok(true)
    }

    fn frame_count_hint(&self) -> Option<u64> {
        Some(self.count)
    }
}

/// One frame pair handed to the per-frame metrics.
pub struct FramePair<'a> {
    /// Position in the clip, from 0.
    pub index: u64,
    pub reference: &'a AnyFrame,
    pub distorted: &'a AnyFrame,
    /// The reference frame before this one; `None` for the first frame. For temporal features.
    pub previous_reference: Option<&'a AnyFrame>,
}

/// Per-thread buffers, reused from frame to frame.
#[derive(Default)]
struct Scratch {
    ssim: SsimScratch,
    ms_ssim: MsSsimScratch,
}

/// The metrics to compute on each frame, decided once from the format.
struct Plan {
    metrics: Vec<Metric>,
    bit_depth: u8,
}

impl Plan {
    /// Per-frame values of one pair, in a fixed order.
    fn compute(
        &self,
        pair: &FramePair<'_>,
        scratch: &mut Scratch,
    ) -> Result<Vec<(Score, f64)>, MetricError> {
        let mut values = Vec::with_capacity(12);
        for metric in &self.metrics {
            match metric {
                Metric::Psnr => {
                    let mse = psnr::frame_mse(pair.reference, pair.distorted, self.bit_depth)?;
                    let psnrs: Vec<f64> = mse
                        .iter()
                        .map(|&m| psnr::psnr_from_mse(m, self.bit_depth))
                        .collect();
                    values.extend(PSNR_SCORES.iter().copied().zip(psnrs.iter().copied()));
                    if let [y, cb, cr] = psnrs[..] {
                        values.push((Score::PsnrYuv, psnr::psnr_yuv(y, cb, cr)));
                    }
                    values.extend(MSE_SCORES.iter().copied().zip(mse));
                }
                Metric::Ssim => {
                    let s = float_ssim(
                        pair.reference,
                        pair.distorted,
                        self.bit_depth,
                        &mut scratch.ssim,
                    )?;
                    values.push((Score::Ssim, s));
                }
                Metric::MsSsim => {
                    let s = float_ms_ssim(
                        pair.reference,
                        pair.distorted,
                        self.bit_depth,
                        &mut scratch.ms_ssim,
                    )?;
                    values.push((Score::MsSsim, s));
                }
            }
        }
        Ok(values)
    }
}

/// Compares two Y4M files.
pub fn compare_files(
    reference: &Path,
    distorted: &Path,
    options: &CompareOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Comparison, CompareError> {
    let mut r = Y4mReader::open(reference)?;
    let mut d = Y4mReader::open(distorted)?;
    compare(&mut r, &mut d, options, progress)
}

/// The metrics `options` asks for on clips of `format`: checked when named, filtered when
/// defaulted.
pub fn resolve_metrics(
    options: &CompareOptions,
    format: &VideoFormat,
) -> Result<Vec<Metric>, (Metric, MetricError)> {
    match &options.metrics {
        Some(named) => {
            let mut metrics = named.clone();
            metrics.sort();
            metrics.dedup();
            for &m in &metrics {
                m.check(format).map_err(|e| (m, e))?;
            }
            Ok(metrics)
        }
        None => Ok(Metric::ALL
            .into_iter()
            .filter(|m| match m.check(format) {
                Ok(()) => true,
                Err(e) => {
                    // Said once per metric and picture size: a lab measures thousands of
                    // points of the same clips.
                    static SAID: std::sync::Mutex<BTreeSet<(Metric, usize, usize)>> =
                        std::sync::Mutex::new(BTreeSet::new());
                    let first = SAID
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .insert((*m, format.width, format.height));
                    if first {
                        tracing::info!("{m} left out: {e}");
                    }
                    false
                }
            })
            .collect()),
    }
}

fn check_formats(
    reference: &dyn FrameSource,
    distorted: &dyn FrameSource,
) -> Result<(), CompareError> {
    let (a, b) = (reference.format(), distorted.format());
    let mut differences = Vec::new();
    if (a.width, a.height) != (b.width, b.height) {
        differences.push(format!(
            "size {}x{} vs {}x{}",
            a.width, a.height, b.width, b.height
        ));
    }
    if a.bit_depth != b.bit_depth {
        differences.push(format!("bit depth {} vs {}", a.bit_depth, b.bit_depth));
    }
    if a.chroma != b.chroma {
        differences.push(format!("chroma sampling {:?} vs {:?}", a.chroma, b.chroma));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(CompareError::Mismatch {
            reference: reference.name().to_string(),
            distorted: distorted.name().to_string(),
            reason: differences.join(", "),
        })
    }
}

/// Compares two frame sources; `progress` is told how many frames are done after each batch.
pub fn compare(
    reference: &mut dyn FrameSource,
    distorted: &mut dyn FrameSource,
    options: &CompareOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Comparison, CompareError> {
    check_formats(reference, distorted)?;
    let format = *reference.format();
    let metrics = resolve_metrics(options, &format).map_err(|(metric, source)| {
        CompareError::NotApplicable {
            reference: reference.name().to_string(),
            distorted: distorted.name().to_string(),
            metric,
            source,
        }
    })?;
    let plan = Plan {
        metrics,
        bit_depth: format.bit_depth,
    };
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n if n > MAX_THREADS => {
            tracing::warn!("{n} threads asked for; using {MAX_THREADS}");
            MAX_THREADS
        }
        n => n,
    };
    let pool = if threads > 1 {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|source| CompareError::Threads { threads, source })?,
        )
    } else {
        None
    };
    let mut vmaf_stage = options
        .vmaf
        .as_ref()
        .map(|v| VmafStage::new(&format, v, pool.is_some()))
        .transpose()?;
    // Two frames per thread keeps every thread busy while bounding memory to a few frames each.
    let batch_len = 2 * threads;
    let empty = || AnyFrame::U8(Frame { planes: Vec::new() });
    let mut batch: Vec<(AnyFrame, AnyFrame)> = Vec::with_capacity(batch_len);
    let mut previous: Option<AnyFrame> = None;
    let mut results: Vec<Vec<(Score, f64)>> = Vec::new();
    let scratch_pool: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());
    let mut single_scratch = Scratch::default();
    loop {
        let filled = fill_batch(
            reference,
            distorted,
            &mut batch,
            batch_len,
            results.len() as u64,
            &empty,
        )?;
        if filled == 0 {
            break;
        }
        let first_index = results.len() as u64;
        let pairs: Vec<FramePair<'_>> = (0..filled)
            .map(|i| FramePair {
                index: first_index + i as u64,
                reference: &batch[i].0,
                distorted: &batch[i].1,
                previous_reference: if i == 0 {
                    previous.as_ref()
                } else {
                    Some(&batch[i - 1].0)
                },
            })
            .collect();
        let computed: Vec<Result<Vec<(Score, f64)>, CompareError>> = match &pool {
            None => pairs
                .iter()
                .map(|p| {
                    plan.compute(p, &mut single_scratch)
                        .map_err(|source| CompareError::Metric {
                            frame: p.index,
                            source,
                        })
                })
                .collect(),
            Some(pool) => pool.install(|| {
                pairs
                    .par_iter()
                    .map(|p| {
                        let mut scratch = scratch_pool
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .pop()
                            .unwrap_or_default();
                        let out = plan.compute(p, &mut scratch);
                        scratch_pool
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(scratch);
                        out.map_err(|source| CompareError::Metric {
                            frame: p.index,
                            source,
                        })
                    })
                    .collect()
            }),
        };
        if let Some(stage) = vmaf_stage.as_mut() {
            stage.push(&pairs, pool.as_ref())?;
        }
        drop(pairs);
        for values in computed {
            results.push(values?);
        }
        progress(results.len() as u64);
        // Keep the batch's last reference frame for the next batch's first job, recycling the
        // buffers of the one it replaces.
        if let Some((last_ref, _)) = batch.get_mut(filled - 1) {
            let mut kept = previous.take().unwrap_or_else(empty);
            std::mem::swap(&mut kept, last_ref);
            previous = Some(kept);
        }
    }
    if results.is_empty() {
        return Err(CompareError::Mismatch {
            reference: reference.name().to_string(),
            distorted: distorted.name().to_string(),
            reason: "no frames to compare".into(),
        });
    }
    let mut comparison = Comparison::from_frames(&results, &format)?;
    if let Some(stage) = vmaf_stage {
        stage.finish(&mut comparison)?;
    }
    Ok(comparison)
}

/// Reads up to `batch_len` frame pairs into `batch` (reusing its frames); returns how many.
/// A source that ends before the other is an error naming both, with both frame counts.
fn fill_batch(
    reference: &mut dyn FrameSource,
    distorted: &mut dyn FrameSource,
    batch: &mut Vec<(AnyFrame, AnyFrame)>,
    batch_len: usize,
    frames_before: u64,
    empty: &dyn Fn() -> AnyFrame,
) -> Result<usize, CompareError> {
    batch.resize_with(batch_len, || (empty(), empty()));
    for (i, (r, d)) in batch.iter_mut().enumerate() {
        let got_r = reference.next_frame_into(r)?;
        let got_d = distorted.next_frame_into(d)?;
        if got_r != got_d {
            let read = frames_before + i as u64;
            let (ref_frames, dist_frames) = if got_r {
                (read + 1 + count_rest(reference, r)?, read)
            } else {
                (read, read + 1 + count_rest(distorted, d)?)
            };
            return Err(CompareError::Mismatch {
                reference: reference.name().to_string(),
                distorted: distorted.name().to_string(),
                reason: format!("{ref_frames} frames vs {dist_frames} frames"),
            });
        }
        if !got_r {
            return Ok(i);
        }
    }
    Ok(batch_len)
}

/// Frames left in `source`, read into `frame` and dropped.
fn count_rest(source: &mut dyn FrameSource, frame: &mut AnyFrame) -> Result<u64, VideoError> {
    let mut count = 0;
    while source.next_frame_into(frame)? {
        count += 1;
    }
    Ok(count)
}

impl Comparison {
    /// Gathers per-frame values (one list per frame, in frame order) into per-frame arrays and
    /// pools them; a value that is NaN or infinite is an error.
    pub fn from_frames(
        frames: &[Vec<(Score, f64)>],
        format: &VideoFormat,
    ) -> Result<Comparison, CompareError> {
        let mut per_frame: BTreeMap<Score, Vec<f64>> = BTreeMap::new();
        for (index, values) in frames.iter().enumerate() {
            for &(score, value) in values {
                if !value.is_finite() {
                    return Err(CompareError::NonFinite {
                        score,
                        frame: index as u64,
                        value,
                    });
                }
                per_frame.entry(score).or_default().push(value);
            }
        }
        let mut pooled: BTreeMap<Score, f64> = per_frame
            .iter()
            .filter_map(|(&score, values)| pool::mean(values).map(|m| (score, m)))
            .collect();
        let mean_mse: Vec<f64> = MSE_SCORES
            .iter()
            .map_while(|s| pooled.get(s).copied())
            .collect();
        if !mean_mse.is_empty() {
            for (&score, &mse) in GLOBAL_SCORES.iter().zip(&mean_mse) {
                pooled.insert(score, psnr::psnr_from_mse(mse, format.bit_depth));
            }
            let sizes: Vec<(usize, usize)> =
                (0..mean_mse.len()).map(|i| format.plane_size(i)).collect();
            let weighted: f64 = psnr::plane_weights(&sizes)
                .iter()
                .zip(&mean_mse)
                .map(|(w, m)| w * m)
                .sum();
            pooled.insert(
                Score::PsnrAvgGlobal,
                psnr::psnr_from_mse(weighted, format.bit_depth),
            );
        }
        Ok(Comparison {
            frames: frames.len() as u64,
            pooled,
            per_frame,
            vmaf: None,
        })
    }
}
