//! VMAF as libvmaf 3.x computes it with its integer features: ADM2, VIF at scales 0 to 3 and
//! motion2, the ν-SVR models v0.6.1, v0.6.1 NEG and 4K v0.6.1 (shipped in the crate) or any
//! model file, per-frame scores and the usual pooling.
//!
//! Streaming: [`Vmaf`] keeps only the previous reference luma (for the motion feature) and one
//! record of features per frame; `motion2` of a frame needs the next frame's motion, so scores
//! are produced by [`Vmaf::finish`].

mod adm;
mod buffers;
pub mod dsp;
mod model;
mod motion;
pub(crate) mod stage;
mod vif;

use codeclab_video::{AnyFrame, Pixel, Plane, VideoFormat};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use adm::AdmScores;
pub use model::{DEFAULT_GAIN_LIMIT, ModelFeature, ScoreTransform, VmafModel};
pub use stage::VmafOptions;

/// Why VMAF could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum VmafError {
    #[error(
        "VMAF cannot score a {width}x{height} picture: libvmaf's integer ADM requires width and height greater than 32"
    )]
    UnsupportedSize { width: usize, height: usize },
    #[error("VMAF supports bit depths 8 to 12, not {0}")]
    UnsupportedBitDepth(u8),
    #[error("frame {index}: the {which} frame does not match the clip format {expected}")]
    FrameMismatch {
        index: u64,
        which: &'static str,
        expected: String,
    },
    #[error(
        "unknown built-in VMAF model `{0}` (built in: vmaf_v0.6.1, vmaf_v0.6.1neg, vmaf_4k_v0.6.1)"
    )]
    UnknownModel(String),
    #[error("VMAF model `{name}`: {why}")]
    BadModel { name: String, why: String },
    #[error("cannot start {threads} worker threads: {why}")]
    Threads { threads: usize, why: String },
    #[error("the reference has {reference} frames and the distorted clip {distorted}")]
    FrameCount { reference: usize, distorted: usize },
    #[error("cannot read VMAF model {path}: {source}")]
    ModelIo {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Which implementation of the features to run. Both give identical numbers; the reference
/// follows libvmaf's definitions pixel by pixel and exists to check the fast one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Implementation {
    #[default]
    Fast,
    Reference,
}

/// The features of one frame, before `motion2` (which needs the next frame).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameFeatures {
    /// libvmaf's `VMAF_integer_feature_motion_sad_score`: 0 for the first frame.
    pub motion: f64,
    /// ADM per requested gain limit: `(gain_limit, scores)`.
    pub adm: Vec<(f64, AdmScores)>,
    /// VIF scales 0..3 per requested gain limit.
    pub vif: Vec<(f64, [f64; 4])>,
}

/// Luma samples of one picture, widened for the feature arithmetic.
struct Luma {
    samples: buffers::Buf,
}

impl Luma {
    fn from_plane<T: Pixel>(plane: &Plane<T>) -> Self {
        Luma {
            samples: buffers::Buf::from_iter(
                plane.data().len(),
                plane.data().iter().map(|s| s.to_u32() as i32),
            ),
        }
    }

    fn from_frame(frame: &AnyFrame) -> Option<Self> {
        match frame {
            AnyFrame::U8(f) => f.planes.first().map(Luma::from_plane),
            AnyFrame::U16(f) => f.planes.first().map(Luma::from_plane),
        }
    }
}

/// Computes the per-frame features a set of models needs, for one picture size and bit depth.
#[derive(Clone, Debug)]
pub struct FeatureExtractor {
    format: VideoFormat,
    adm_limits: Vec<f64>,
    vif_limits: Vec<f64>,
    implementation: Implementation,
    /// Whether ADM, VIF and motion of a frame may run on separate threads (rayon).
    parallel: bool,
}

fn push_unique(list: &mut Vec<f64>, value: f64) {
    if !list.contains(&value) {
        list.push(value);
    }
}

impl FeatureExtractor {
    /// Checks the format as libvmaf does and gathers the gain limits the models ask for.
    pub fn new(format: &VideoFormat, models: &[VmafModel]) -> Result<Self, VmafError> {
        check_format(format)?;
        let mut adm_limits = vec![DEFAULT_GAIN_LIMIT];
        let mut vif_limits = vec![DEFAULT_GAIN_LIMIT];
        for feature in models.iter().flat_map(|m| m.features()) {
            match *feature {
                ModelFeature::Adm2 { gain_limit } => push_unique(&mut adm_limits, gain_limit),
                ModelFeature::Vif { gain_limit, .. } => push_unique(&mut vif_limits, gain_limit),
                ModelFeature::Motion2 => {}
            }
        }
        Ok(FeatureExtractor {
            format: *format,
            adm_limits,
            vif_limits,
            implementation: Implementation::Fast,
            parallel: true,
        })
    }

    /// Whether a frame's features may run side by side on rayon threads (the default); off, all
    /// the work stays on the calling thread.
    pub fn with_parallelism(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// Selects the implementation (the reference one is slow; it exists for verification).
    pub fn with_implementation(mut self, implementation: Implementation) -> Self {
        self.implementation = implementation;
        self
    }

    pub fn format(&self) -> &VideoFormat {
        &self.format
    }

    fn luma(&self, frame: &AnyFrame, index: u64, which: &'static str) -> Result<Luma, VmafError> {
        let mismatch = || VmafError::FrameMismatch {
            index,
            which,
            expected: format!(
                "{}x{} {}-bit",
                self.format.width, self.format.height, self.format.bit_depth
            ),
        };
        let ok = match frame {
            AnyFrame::U8(f) => {
                self.format.bit_depth <= 8
                    && f.planes.first().is_some_and(|p| {
                        (p.width(), p.height()) == (self.format.width, self.format.height)
                    })
            }
            AnyFrame::U16(f) => {
                self.format.bit_depth > 8
                    && f.planes.first().is_some_and(|p| {
                        (p.width(), p.height()) == (self.format.width, self.format.height)
                    })
            }
        };
        if !ok {
            return Err(mismatch());
        }
        let mut luma = Luma::from_frame(frame).ok_or_else(mismatch)?;
        // Samples above the bit depth would break libvmaf's fixed-point ranges; clamp them so
        // a malformed file cannot cause overflow (valid input is unchanged). 8-bit samples, of
        // 8-bit pictures only, cannot exceed it.
        if let AnyFrame::U16(_) = frame {
            let peak = self.format.peak() as i32;
            for s in luma.samples.iter_mut() {
                *s = (*s).min(peak);
            }
        }
        Ok(luma)
    }

    /// The features of frame `index`; `previous_reference` is the reference frame before it
    /// (`None` for the first frame).
    pub fn extract(
        &self,
        index: u64,
        reference: &AnyFrame,
        distorted: &AnyFrame,
        previous_reference: Option<&AnyFrame>,
    ) -> Result<FrameFeatures, VmafError> {
        let r = self.luma(reference, index, "reference")?;
        let d = self.luma(distorted, index, "distorted")?;
        let p = previous_reference
            .map(|f| self.luma(f, index.saturating_sub(1), "previous reference"))
            .transpose()?;
        Ok(self.extract_luma(&r, &d, p.as_ref()))
    }

    fn extract_luma(&self, r: &Luma, d: &Luma, previous: Option<&Luma>) -> FrameFeatures {
        let (w, h) = (self.format.width, self.format.height);
        let bits = u32::from(self.format.bit_depth);
        let adm = || adm::adm(&r.samples, &d.samples, w, h, bits, &self.adm_limits);
        let vif = || self.vif(r, d);
        let motion = || {
            previous.map_or(0.0, |p| {
                motion::score(motion::sad(&p.samples, &r.samples, w, h, bits), w, h)
            })
        };
        let ((adm, vif), motion) = if self.parallel {
            rayon::join(|| rayon::join(adm, vif), motion)
        } else {
            ((adm(), vif()), motion())
        };
        FrameFeatures {
            motion,
            adm: self.adm_limits.iter().copied().zip(adm).collect(),
            vif: self.vif_limits.iter().copied().zip(vif).collect(),
        }
    }

    fn vif(&self, r: &Luma, d: &Luma) -> Vec<[f64; 4]> {
        let (w, h) = (self.format.width, self.format.height);
        let bits = u32::from(self.format.bit_depth);
        let ri = vif::Image::from_i32(w, h, &r.samples);
        let di = vif::Image::from_i32(w, h, &d.samples);
        let per_scale = match self.implementation {
            Implementation::Fast => vif::fast::vif(&ri, &di, bits, &self.vif_limits),
            Implementation::Reference => vif::reference::vif(&ri, &di, bits, &self.vif_limits),
        };
        (0..self.vif_limits.len())
            .map(|g| std::array::from_fn(|s| per_scale[s][g].score()))
            .collect()
    }
}

/// libvmaf's size and depth limits.
pub fn check_format(format: &VideoFormat) -> Result<(), VmafError> {
    if format.width <= 32 || format.height <= 32 {
        return Err(VmafError::UnsupportedSize {
            width: format.width,
            height: format.height,
        });
    }
    if !(8..=12).contains(&format.bit_depth) {
        return Err(VmafError::UnsupportedBitDepth(format.bit_depth));
    }
    Ok(())
}

/// Mean, harmonic mean, minimum and maximum of per-frame values (libvmaf's pooling).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pooled {
    pub mean: f64,
    pub harmonic_mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Pooled {
    /// `None` for an empty series.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let harmonic_mean = n / values.iter().map(|v| 1.0 / (v + 1.0)).sum::<f64>() - 1.0;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Pooled {
            mean,
            harmonic_mean,
            min,
            max,
        })
    }
}

/// One model's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelScores {
    pub model: String,
    pub per_frame: Vec<f64>,
    pub pooled: Option<Pooled>,
}

/// A named feature series, under libvmaf's name (`integer_adm2`, `integer_vif_scale0_egl_1`, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSeries {
    pub name: String,
    pub per_frame: Vec<f64>,
    pub pooled: Option<Pooled>,
}

/// Everything VMAF measured on a clip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VmafReport {
    pub frames: u64,
    pub models: Vec<ModelScores>,
    pub features: Vec<FeatureSeries>,
}

/// Streaming VMAF over a clip: push frame pairs in order, then [`Vmaf::finish`].
pub struct Vmaf {
    extractor: FeatureExtractor,
    models: Vec<VmafModel>,
    /// The last reference luma pushed, for the next frame's motion.
    previous_reference: Option<Luma>,
    features: Vec<FrameFeatures>,
}

impl Vmaf {
    pub fn new(format: &VideoFormat, models: Vec<VmafModel>) -> Result<Self, VmafError> {
        Ok(Vmaf {
            extractor: FeatureExtractor::new(format, &models)?,
            models,
            previous_reference: None,
            features: Vec::new(),
        })
    }

    pub fn with_implementation(mut self, implementation: Implementation) -> Self {
        self.extractor = self.extractor.with_implementation(implementation);
        self
    }

    pub fn frames(&self) -> u64 {
        self.features.len() as u64
    }

    /// Adds the next frame pair.
    pub fn push(&mut self, reference: &AnyFrame, distorted: &AnyFrame) -> Result<(), VmafError> {
        self.push_batch(&[(reference, distorted)])
    }

    /// Adds the next frame pair, computed on this thread.
    fn push_sequential(
        &mut self,
        reference: &AnyFrame,
        distorted: &AnyFrame,
    ) -> Result<(), VmafError> {
        let index = self.features.len() as u64;
        let r = self.extractor.luma(reference, index, "reference")?;
        let d = self.extractor.luma(distorted, index, "distorted")?;
        let features = self
            .extractor
            .extract_luma(&r, &d, self.previous_reference.as_ref());
        self.features.push(features);
        self.previous_reference = Some(r);
        Ok(())
    }

    /// Adds the next frame pairs, computed in parallel (the caller bounds the batch, and with it
    /// the memory).
    pub fn push_batch(&mut self, pairs: &[(&AnyFrame, &AnyFrame)]) -> Result<(), VmafError> {
        let first = self.features.len() as u64;
        let lumas: Vec<(Luma, Luma)> = pairs
            .par_iter()
            .enumerate()
            .map(|(k, (r, d))| {
                let index = first + k as u64;
                Ok((
                    self.extractor.luma(r, index, "reference")?,
                    self.extractor.luma(d, index, "distorted")?,
                ))
            })
            .collect::<Result<_, VmafError>>()?;
        let previous = self.previous_reference.take();
        let features: Vec<FrameFeatures> = (0..lumas.len())
            .into_par_iter()
            .map(|k| {
                let prev = if k == 0 {
                    previous.as_ref()
                } else {
                    Some(&lumas[k - 1].0)
                };
                self.extractor.extract_luma(&lumas[k].0, &lumas[k].1, prev)
            })
            .collect();
        self.features.extend(features);
        self.previous_reference = lumas.into_iter().last().map(|(r, _)| r).or(previous);
        Ok(())
    }

    /// Per-frame scores of every model, pooled, and the feature series.
    pub fn finish(self) -> VmafReport {
        report(&self.features, &self.models)
    }
}

/// Scores in-memory frame pairs on `threads` worker threads (1: everything on this thread),
/// in batches of two frames per thread.
pub fn score_frames(
    format: &VideoFormat,
    models: Vec<VmafModel>,
    reference: &[AnyFrame],
    distorted: &[AnyFrame],
    threads: usize,
) -> Result<VmafReport, VmafError> {
    if reference.len() != distorted.len() {
        return Err(VmafError::FrameCount {
            reference: reference.len(),
            distorted: distorted.len(),
        });
    }
    let mut vmaf = Vmaf::new(format, models)?;
    if threads <= 1 {
        vmaf.extractor = vmaf.extractor.with_parallelism(false);
        for (r, d) in reference.iter().zip(distorted) {
            vmaf.push_sequential(r, d)?;
        }
        return Ok(vmaf.finish());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| VmafError::Threads {
            threads,
            why: e.to_string(),
        })?;
    pool.install(|| {
        for (r, d) in reference
            .chunks(2 * threads)
            .zip(distorted.chunks(2 * threads))
        {
            let pairs: Vec<(&AnyFrame, &AnyFrame)> = r.iter().zip(d).collect();
            vmaf.push_batch(&pairs)?;
        }
        Ok(vmaf.finish())
    })
}

/// Scores and feature series from per-frame features (in frame order).
pub fn report(features: &[FrameFeatures], models: &[VmafModel]) -> VmafReport {
    let n = features.len();
    let motion: Vec<f64> = features.iter().map(|f| f.motion).collect();
    let motion2: Vec<f64> = (0..n)
        .map(|i| motion::motion2(motion[i], motion.get(i + 1).copied(), i as u64))
        .collect();
    let adm_of =
        |f: &FrameFeatures, limit: f64| f.adm.iter().find(|(l, _)| *l == limit).map(|(_, s)| *s);
    let vif_of =
        |f: &FrameFeatures, limit: f64| f.vif.iter().find(|(l, _)| *l == limit).map(|(_, s)| *s);
    let model_scores = models
        .iter()
        .map(|m| {
            let per_frame: Vec<f64> = (0..n)
                .map(|i| {
                    let values: Vec<f64> = m
                        .features()
                        .iter()
                        .map(|feature| match *feature {
                            ModelFeature::Adm2 { gain_limit } => {
                                adm_of(&features[i], gain_limit).map_or(f64::NAN, |s| s.adm2)
                            }
                            ModelFeature::Motion2 => motion2[i],
                            ModelFeature::Vif { scale, gain_limit } => {
                                vif_of(&features[i], gain_limit).map_or(f64::NAN, |s| s[scale])
                            }
                        })
                        .collect();
                    m.predict(&values, None)
                })
                .collect();
            ModelScores {
                model: m.name().to_string(),
                pooled: Pooled::of(&per_frame),
                per_frame,
            }
        })
        .collect();

    let mut series: Vec<FeatureSeries> = Vec::new();
    let mut add = |name: String, per_frame: Vec<f64>| {
        series.push(FeatureSeries {
            name,
            pooled: Pooled::of(&per_frame),
            per_frame,
        });
    };
    let suffix = |limit: f64| {
        if limit == DEFAULT_GAIN_LIMIT {
            String::new()
        } else {
            format!("_egl_{limit}")
        }
    };
    if let Some(first) = features.first() {
        for (limit, _) in &first.adm {
            let s = suffix(*limit);
            let pick = |g: &dyn Fn(&AdmScores) -> f64| -> Vec<f64> {
                features
                    .iter()
                    .map(|f| adm_of(f, *limit).map_or(f64::NAN, |a| g(&a)))
                    .collect()
            };
            add(format!("integer_adm2{s}"), pick(&|a| a.adm2));
            for k in 0..4 {
                add(format!("integer_adm_scale{k}{s}"), pick(&|a| a.scales[k]));
            }
        }
        add(
            "VMAF_integer_feature_motion_sad_score".into(),
            motion.clone(),
        );
        add("integer_motion2".into(), motion2.clone());
        // motion3 with libvmaf's default blending is motion2, the first frame taking frame 1's
        // motion.
        let motion3 = (0..n)
            .map(|i| {
                if i == 0 {
                    motion.get(1).copied().unwrap_or(0.0)
                } else {
                    motion2[i]
                }
            })
            .collect();
        add("integer_motion3".into(), motion3);
        for (limit, _) in &first.vif {
            let s = suffix(*limit);
            for k in 0..4 {
                let values = features
                    .iter()
                    .map(|f| vif_of(f, *limit).map_or(f64::NAN, |v| v[k]))
                    .collect();
                add(format!("integer_vif_scale{k}{s}"), values);
            }
        }
    }
    VmafReport {
        frames: n as u64,
        models: model_scores,
        features: series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random picture with smooth structure and noise, so that every
    /// branch of the statistics (flat and textured areas) is taken.
    fn picture(width: usize, height: usize, bit_depth: u32, seed: u64) -> Vec<i32> {
        let peak = (1u64 << bit_depth) - 1;
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..width * height)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let (x, y) = ((i % width) as f64, (i / width) as f64);
                let smooth = 0.5 + 0.35 * ((x * 0.11).sin() * (y * 0.07).cos());
                let flat = if (x as usize / 9 + y as usize / 7).is_multiple_of(3) {
                    0.0
                } else {
                    1.0
                };
                let noise = ((state >> 33) % 64) as f64 / 64.0 - 0.5;
                let v = (smooth + flat * noise * 0.2) * peak as f64;
                v.clamp(0.0, peak as f64) as i32
            })
            .collect()
    }

    #[test]
    fn fast_vif_equals_reference_vif() {
        for (w, h, bits) in [(64, 48, 8), (67, 41, 8), (50, 37, 10), (96, 40, 12)] {
            let r = vif::Image::from_i32(w, h, &picture(w, h, bits, 1));
            let d = vif::Image::from_i32(w, h, &picture(w, h, bits, 2));
            let limits = [DEFAULT_GAIN_LIMIT, 1.0];
            let fast = vif::fast::vif(&r, &d, bits, &limits);
            let reference = vif::reference::vif(&r, &d, bits, &limits);
            assert_eq!(fast, reference, "{w}x{h} {bits}-bit");
        }
    }

    /// Pictures of only black and peak-white samples drive every sum to its largest value.
    #[test]
    fn fast_vif_equals_reference_vif_at_extreme_values() {
        for (w, h, bits) in [(48, 40, 8), (45, 39, 10)] {
            let peak = (1i32 << bits) - 1;
            let binary = |seed| -> Vec<i32> {
                picture(w, h, 8, seed)
                    .into_iter()
                    .map(|v| if v % 3 == 0 { 0 } else { peak })
                    .collect()
            };
            let r = vif::Image::from_i32(w, h, &binary(3));
            let d = vif::Image::from_i32(w, h, &vec![peak; w * h]);
            let d2 = vif::Image::from_i32(w, h, &binary(4));
            let limits = [DEFAULT_GAIN_LIMIT, 1.0];
            for dist in [&d, &d2] {
                let fast = vif::fast::vif(&r, dist, bits as u32, &limits);
                let reference = vif::reference::vif(&r, dist, bits as u32, &limits);
                assert_eq!(fast, reference, "{w}x{h} {bits}-bit");
            }
        }
    }

    /// The AVX2 builds (chosen at run time) give exactly what the baseline builds give.
    #[test]
    fn vector_builds_equal_baseline_builds() {
        for (w, h, bits) in [(64, 48, 8), (67, 41, 10)] {
            let r = picture(w, h, bits, 5);
            let d = picture(w, h, bits, 6);
            let limits = [DEFAULT_GAIN_LIMIT, 1.0];
            assert_eq!(
                adm::adm(&r, &d, w, h, bits, &limits),
                adm::adm_portable(&r, &d, w, h, bits, &limits)
            );
            assert_eq!(
                motion::sad(&r, &d, w, h, bits),
                motion::sad_portable(&r, &d, w, h, bits)
            );
            let (ri, di) = (
                vif::Image::from_i32(w, h, &r),
                vif::Image::from_i32(w, h, &d),
            );
            assert_eq!(
                vif::fast::vif(&ri, &di, bits, &limits),
                vif::fast::vif_portable(&ri, &di, bits, &limits)
            );
        }
    }

    /// ADM reads only what it wrote into its recycled buffers, whatever they held before.
    #[test]
    fn adm_ignores_what_recycled_buffers_held() {
        for (w, h, bits) in [(64, 48, 8), (67, 41, 10), (35, 33, 8)] {
            let r = picture(w, h, bits, 7);
            let d = picture(w, h, bits, 8);
            let limits = [DEFAULT_GAIN_LIMIT, 1.0];
            buffers::fill_free_list(w * h, 0);
            let clean = adm::adm(&r, &d, w, h, bits, &limits);
            for value in [i32::MIN, -1, i32::MAX, 12345] {
                buffers::fill_free_list(w * h, value);
                assert_eq!(
                    adm::adm(&r, &d, w, h, bits, &limits),
                    clean,
                    "{w}x{h} {value}"
                );
            }
        }
    }
}
