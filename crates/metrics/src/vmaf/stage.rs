//! VMAF inside the comparison pipeline ([`crate::compare`]): the features of each batch of
//! frames in the parallel per-frame stage (each frame pair carries the previous reference frame
//! for motion), then `motion2` and the model scores once the last frame is in.

use rayon::prelude::*;

use super::{FeatureExtractor, FrameFeatures, VmafError, VmafModel, report};
use crate::compare::{CompareError, Comparison, FramePair, Score};

/// What VMAF a comparison computes.
#[derive(Clone, Debug)]
pub struct VmafOptions {
    /// The model scored as `vmaf` (VMAF v0.6.1 by default).
    pub model: VmafModel,
    /// Also score VMAF NEG (v0.6.1neg) as `vmaf_neg`.
    pub neg: bool,
    /// Keep every feature value (libvmaf names) in the report.
    pub features: bool,
}

impl Default for VmafOptions {
    fn default() -> Self {
        VmafOptions {
            model: VmafModel::v0_6_1(),
            neg: false,
            features: false,
        }
    }
}

/// Per-frame features gathered batch by batch.
pub(crate) struct VmafStage {
    extractor: FeatureExtractor,
    models: Vec<VmafModel>,
    keep_features: bool,
    features: Vec<FrameFeatures>,
}

impl VmafStage {
    /// Checks the format as libvmaf would; `parallel` lets a frame's features run side by side.
    pub(crate) fn new(
        format: &codeclab_video::VideoFormat,
        options: &VmafOptions,
        parallel: bool,
    ) -> Result<Self, VmafError> {
        let mut models = vec![options.model.clone()];
        if options.neg {
            models.push(VmafModel::v0_6_1_neg());
        }
        Ok(VmafStage {
            extractor: FeatureExtractor::new(format, &models)?.with_parallelism(parallel),
            models,
            keep_features: options.features,
            features: Vec::new(),
        })
    }

    /// The features of one batch, in parallel in `pool` when given, else on this thread.
    pub(crate) fn push(
        &mut self,
        pairs: &[FramePair<'_>],
        pool: Option<&rayon::ThreadPool>,
    ) -> Result<(), CompareError> {
        let extract = |p: &FramePair<'_>| {
            self.extractor
                .extract(p.index, p.reference, p.distorted, p.previous_reference)
                .map_err(CompareError::from)
        };
        let computed: Vec<FrameFeatures> = match pool {
            Some(pool) => {
                pool.install(|| pairs.par_iter().map(extract).collect::<Result<Vec<_>, _>>())?
            }
            None => pairs.iter().map(extract).collect::<Result<_, _>>()?,
        };
        self.features.extend(computed);
        Ok(())
    }

    /// Adds `vmaf` (and `vmaf_neg`) per frame and pooled, and the full report.
    pub(crate) fn finish(self, comparison: &mut Comparison) -> Result<(), CompareError> {
        let mut report = report(&self.features, &self.models);
        for (model, score) in report.models.iter().zip([Score::Vmaf, Score::VmafNeg]) {
            if let Some((frame, &value)) = model
                .per_frame
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
            {
                return Err(CompareError::NonFinite {
                    score,
                    frame: frame as u64,
                    value,
                });
            }
            comparison.per_frame.insert(score, model.per_frame.clone());
            if let Some(pooled) = model.pooled {
                comparison.pooled.insert(score, pooled.mean);
            }
        }
        if !self.keep_features {
            report.features.clear();
        }
        comparison.vmaf = Some(report);
        Ok(())
    }
}
