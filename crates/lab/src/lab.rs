//! The lab: the store, the artifacts, the corpus and the runner's settings, and the operations
//! built on them (submit, execute a job, analyse, compute anchors, write reports).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use codeclab_video::corpus::{Clip, ClipLabel, ClipSet, Corpus, Silent};
use codeclab_video::generate::{GeneratorSpec, Pattern};
use serde::Serialize;

use crate::adapter::{AdapterConfig, adapter_for};
use crate::anchors::{self, AnchorDef};
use crate::artifacts::{ArtifactError, Artifacts, experiment_prefix};
use crate::experiment::{self, AnchorCurves, ExperimentSpec};
use crate::runner::{self, PointRecord, QualityMetric, RunnerConfig, SourceClip};
use crate::spec::CodecSpec;
use crate::store::{AnchorRecord, ClaimedJob, ClipRecord, ExperimentState, Store, StoreError};

/// Why a lab operation failed (a failed *experiment* is not an error: it is recorded).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    #[error("corpus: {0}")]
    Corpus(#[from] codeclab_video::corpus::CorpusError),
    #[error("experiment spec: {0}")]
    Spec(String),
    #[error("a blocking task failed: {0}")]
    Join(String),
    #[error("the report: {0}")]
    Report(#[from] crate::report::ReportError),
}

/// Everything a worker or a command needs.
#[derive(Clone, Debug)]
pub struct Lab {
    pub store: Store,
    pub artifacts: Artifacts,
    /// Holds `corpus/` and the runner's scratch space.
    pub data_dir: PathBuf,
    pub adapters: AdapterConfig,
    pub runner: RunnerConfig,
    /// Attempts a job gets before a lost lease fails it.
    pub max_attempts: i64,
}

/// What submitting did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Submitted {
    pub id: i64,
    pub state: ExperimentState,
    pub reason: Option<String>,
}

/// Sets its flag when dropped: the future holding it was abandoned, or it ended.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn source_clip(corpus: &Corpus, clip: &Clip) -> SourceClip {
    SourceClip {
        id: clip.id.clone(),
        path: corpus.clip_path(clip),
        sha256: clip.sha256.clone(),
        format: codeclab_video::VideoFormat {
            width: clip.width,
            height: clip.height,
            bit_depth: clip.bit_depth,
            chroma: clip.chroma,
            fps: clip.fps,
            aspect: codeclab_video::Rational { num: 0, den: 0 },
        },
        frames: clip.frames,
    }
}

fn clip_record(clip: &Clip) -> ClipRecord {
    ClipRecord {
        id: clip.id.clone(),
        sha256: clip.sha256.clone(),
        width: clip.width as i64,
        height: clip.height as i64,
        frames: clip.frames as i64,
        fps: format!("{}/{}", clip.fps.num, clip.fps.den),
        clip_set: clip.set.to_string(),
        class: clip.class.clone(),
    }
}

impl Lab {
    pub fn new(store: Store, artifacts: Artifacts, data_dir: PathBuf) -> Lab {
        let runner = RunnerConfig::new(data_dir.join("work"));
        Lab {
            store,
            artifacts,
            data_dir,
            adapters: AdapterConfig::default(),
            runner,
            max_attempts: 3,
        }
    }

    pub fn corpus(&self) -> Result<Corpus, LabError> {
        Ok(Corpus::open(&self.data_dir)?)
    }

    /// Records an experiment and queues its jobs. A spec that cannot run (unknown codec, bad
    /// genome, missing clip) is still recorded, as a failed experiment with the reason.
    pub async fn submit(
        &self,
        spec: &ExperimentSpec,
        rerun_of: Option<i64>,
    ) -> Result<Submitted, LabError> {
        self.submit_inner(spec, rerun_of, None).await
    }

    async fn submit_inner(
        &self,
        spec: &ExperimentSpec,
        rerun_of: Option<i64>,
        anchor_name: Option<&str>,
    ) -> Result<Submitted, LabError> {
        let corpus = self.corpus()?;
        let problem = self.check_spec(spec, &corpus);
        for clip in spec.clips.iter().filter_map(|id| corpus.clip(id)) {
            self.store.put_clip(&clip_record(clip)).await?;
        }
        let id = self
            .store
            .submit(spec, rerun_of, anchor_name, self.max_attempts)
            .await?;
        if let Some(reason) = &problem {
            self.store.fail_experiment(id, reason).await?;
        }
        Ok(Submitted {
            id,
            state: if problem.is_some() {
                ExperimentState::Failed
            } else {
                ExperimentState::Queued
            },
            reason: problem,
        })
    }

    fn check_spec(&self, spec: &ExperimentSpec, corpus: &Corpus) -> Option<String> {
        if let Err(reason) = spec.check_shape() {
            return Some(reason);
        }
        if let Err(err) = adapter_for(&spec.codec, &self.adapters) {
            return Some(err.to_string());
        }
        if let Some(missing) = spec.clips.iter().find(|id| corpus.clip(id).is_none()) {
            return Some(format!("clip {missing} is not in the corpus"));
        }
        if let Some(unknown) = spec.anchors.iter().find(|a| anchors::anchor(a).is_none()) {
            return Some(format!("unknown anchor {unknown}"));
        }
        None
    }

    /// Reruns an experiment: a new one with the same spec, linked to the old.
    pub async fn rerun(&self, id: i64) -> Result<Submitted, LabError> {
        let old = self
            .store
            .experiment(id)
            .await?
            .ok_or(StoreError::NoSuchExperiment(id))?;
        self.submit_inner(&old.spec, Some(id), old.anchor_name.as_deref())
            .await
    }

    /// Measures a claimed job (on a blocking thread) and returns its point and files, or the
    /// reason it cannot be measured. Dropping the future (a worker that lost the job's lease)
    /// kills the programs the measurement runs, with their process groups; an encode or decode
    /// inside this process runs to its end on its thread, and its result is discarded.
    pub async fn execute(
        &self,
        job: &ClaimedJob,
    ) -> Result<Result<runner::RunOutput, String>, LabError> {
        let Some(experiment) = self.store.experiment(job.experiment_id).await? else {
            return Ok(Err(format!("experiment {} vanished", job.experiment_id)));
        };
        let corpus = self.corpus()?;
        let Some(clip) = corpus.clip(&job.clip_id) else {
            return Ok(Err(format!(
                "clip {} is not in this worker's corpus",
                job.clip_id
            )));
        };
        let recorded = self.store.clips().await?;
        if let Some(record) = recorded.iter().find(|c| c.id == clip.id)
            && record.sha256 != clip.sha256
        {
            return Ok(Err(format!(
                "clip {} on this worker (sha256 {}) differs from the one submitted ({})",
                clip.id, clip.sha256, record.sha256
            )));
        }
        let source = source_clip(&corpus, clip);
        let codec = experiment.spec.codec.clone();
        let adapters = self.adapters.clone();
        let runner_config = self.runner.clone();
        let point = job.rate_point;
        let abandoned = Arc::new(AtomicBool::new(false));
        let _kill_children_if_dropped = SetOnDrop(abandoned.clone());
        tokio::task::spawn_blocking(move || {
            codeclab_sandbox::stop_children_when(abandoned, || {
                let adapter = adapter_for(&codec, &adapters).map_err(|e| e.to_string())?;
                runner::run_point(adapter.as_ref(), &source, point, &runner_config)
                    .map_err(|e| e.to_string())
            })
        })
        .await
        .map_err(|e| LabError::Join(e.to_string()))
    }

    /// Uploads a point's bitstream and logs under keys that name their content (see
    /// [`crate::artifacts`]), after checking that the bitstream is still the one measured, so
    /// that the point's `bitstream_sha256` always names a stored object with those bytes.
    pub async fn store_point_artifacts(
        &self,
        job: &ClaimedJob,
        output: &runner::RunOutput,
    ) -> Result<(), LabError> {
        let base = format!(
            "{}/{}/{}",
            experiment_prefix(job.experiment_id),
            job.clip_id,
            job.rate_index
        );
        if let Some(name) = output.bitstream.file_name() {
            let bytes = tokio::fs::read(&output.bitstream)
                .await
                .map_err(ArtifactError::from)?;
            let found = crate::spec::sha256_hex(&bytes);
            if found != output.record.bitstream_sha256 {
                return Err(ArtifactError::ChangedFile {
                    file: output.bitstream.display().to_string(),
                    expected: output.record.bitstream_sha256.clone(),
                    found,
                }
                .into());
            }
            self.artifacts
                .put_addressed(&base, &name.to_string_lossy(), bytes)
                .await?;
        }
        // The decoder of a separate codec binary is the binary itself: kept once per experiment
        // (the experiment names one binary, and the first copy stays).
        if let Some(experiment) = self.store.experiment(job.experiment_id).await?
            && let Ok(CodecSpec::LabBinary { binary, .. }) =
                serde_json::from_value::<CodecSpec>(experiment.spec.codec)
        {
            let binary = PathBuf::from(binary);
            let name = binary
                .file_name()
                .map_or("codec".into(), |n| n.to_string_lossy().into_owned());
            let key = format!("{}/decoder/{name}", experiment_prefix(job.experiment_id));
            if self.artifacts.list(&key).await?.is_empty() {
                let bytes = tokio::fs::read(&binary)
                    .await
                    .map_err(ArtifactError::from)?;
                self.artifacts.put(&key, bytes).await?;
            }
        }
        for log in &output.logs {
            if let (true, Some(name)) = (log.is_file(), log.file_name()) {
                let bytes = tokio::fs::read(log).await.map_err(ArtifactError::from)?;
                self.artifacts
                    .put_addressed(&base, &name.to_string_lossy(), bytes)
                    .await?;
            }
        }
        Ok(())
    }

    /// Analyses a completed experiment if every anchor it compares with is settled (computed,
    /// failed or never requested); returns whether it is now analysed.
    pub async fn analyse(&self, id: i64) -> Result<bool, LabError> {
        let Some(record) = self.store.experiment(id).await? else {
            return Err(StoreError::NoSuchExperiment(id).into());
        };
        if record.state != ExperimentState::Completed {
            return Ok(record.state == ExperimentState::Analysed);
        }
        let curves = experiment::curves(&self.store.points(id).await?);
        let mut anchor_curves: AnchorCurves = BTreeMap::new();
        if record.anchor_name.is_none() {
            let names: Vec<AnchorDef> = if record.spec.anchors.is_empty() {
                anchors::standard_anchors()
            } else {
                record
                    .spec
                    .anchors
                    .iter()
                    .filter_map(|name| anchors::anchor(name))
                    .collect()
            };
            for anchor in names {
                let mut per_clip = BTreeMap::new();
                for clip in curves.keys() {
                    match self.anchor_curve(&anchor, clip).await? {
                        AnchorState::Ready(points) => {
                            per_clip.insert(clip.clone(), Ok(points));
                        }
                        AnchorState::Unavailable(reason) => {
                            per_clip.insert(clip.clone(), Err(reason));
                        }
                        AnchorState::Pending => return Ok(false),
                    }
                }
                anchor_curves.insert(anchor.name.to_string(), per_clip);
            }
        }
        let analysis = experiment::analyse(curves, &anchor_curves);
        let json = serde_json::to_value(&analysis).map_err(|e| LabError::Spec(e.to_string()))?;
        self.artifacts
            .put(
                &format!("{}/rd.json", experiment_prefix(id)),
                serde_json::to_vec_pretty(&json).unwrap_or_default(),
            )
            .await?;
        self.artifacts
            .put(
                &format!("{}/rd.csv", experiment_prefix(id)),
                rd_csv(&analysis.curves).into_bytes(),
            )
            .await?;
        Ok(self.store.record_analysis(id, &json).await?)
    }

    /// The state of an anchor's curve on a clip of this lab's corpus.
    async fn anchor_curve(
        &self,
        anchor: &AnchorDef,
        clip_id: &str,
    ) -> Result<AnchorState, LabError> {
        let Some(key) = self.anchor_key(anchor, clip_id).await? else {
            return Ok(AnchorState::Unavailable(format!(
                "{} cannot run here",
                anchor.name
            )));
        };
        let Some(stored) = self.store.anchor(&key).await? else {
            return Ok(AnchorState::Unavailable(format!(
                "{} has no curve on {clip_id} for this clip, encoder build and settings (run `codeclab baseline run`)",
                anchor.name
            )));
        };
        let Some(experiment) = self.store.experiment(stored.experiment_id).await? else {
            return Ok(AnchorState::Unavailable("its experiment is gone".into()));
        };
        Ok(match experiment.state {
            ExperimentState::Queued | ExperimentState::Running => AnchorState::Pending,
            ExperimentState::Completed | ExperimentState::Analysed => {
                let points = experiment::curves(&self.store.points(experiment.id).await?);
                match points.get(clip_id) {
                    Some(points) => AnchorState::Ready(points.clone()),
                    None => AnchorState::Unavailable("its experiment has no points".into()),
                }
            }
            ExperimentState::Failed | ExperimentState::Cancelled => {
                AnchorState::Unavailable(format!(
                    "anchor experiment {} {}: {}",
                    experiment.id,
                    experiment.state,
                    experiment.reason.unwrap_or_default()
                ))
            }
        })
    }

    async fn anchor_key(
        &self,
        anchor: &AnchorDef,
        clip_id: &str,
    ) -> Result<Option<String>, LabError> {
        let corpus = self.corpus()?;
        let Some(clip) = corpus.clip(clip_id) else {
            return Ok(None);
        };
        let spec = serde_json::to_value(&anchor.spec).map_err(|e| LabError::Spec(e.to_string()))?;
        let adapters = self.adapters.clone();
        let version = tokio::task::spawn_blocking(move || {
            adapter_for(&spec, &adapters).and_then(|a| a.version())
        })
        .await
        .map_err(|e| LabError::Join(e.to_string()))?;
        Ok(version
            .ok()
            .map(|version| anchors::anchor_key(anchor, &clip.sha256, &version)))
    }

    /// Queues the anchors' curves that are missing or stale on the given clips (every corpus
    /// clip when `clips` is empty). Returns per (anchor, clip) what was done.
    pub async fn baseline(
        &self,
        names: &[String],
        clips: &[String],
    ) -> Result<Vec<BaselineEntry>, LabError> {
        let corpus = self.corpus()?;
        let clip_ids: Vec<String> = if clips.is_empty() {
            corpus.clips().iter().map(|c| c.id.clone()).collect()
        } else {
            clips.to_vec()
        };
        let chosen: Vec<AnchorDef> = if names.is_empty() {
            anchors::standard_anchors()
        } else {
            let mut chosen = Vec::new();
            for name in names {
                chosen.push(
                    anchors::anchor(name)
                        .ok_or_else(|| LabError::Spec(format!("unknown anchor {name}")))?,
                );
            }
            chosen
        };
        let mut entries = Vec::new();
        for anchor in &chosen {
            for clip in &clip_ids {
                let Some(key) = self.anchor_key(anchor, clip).await? else {
                    entries.push(BaselineEntry {
                        anchor: anchor.name.into(),
                        clip: clip.clone(),
                        experiment_id: None,
                        status: "unavailable (encoder missing or clip unknown)".into(),
                    });
                    continue;
                };
                if let Some(stored) = self.store.anchor(&key).await?
                    && let Some(experiment) = self.store.experiment(stored.experiment_id).await?
                    && !matches!(
                        experiment.state,
                        ExperimentState::Failed | ExperimentState::Cancelled
                    )
                {
                    entries.push(BaselineEntry {
                        anchor: anchor.name.into(),
                        clip: clip.clone(),
                        experiment_id: Some(experiment.id),
                        status: format!("cached ({})", experiment.state),
                    });
                    continue;
                }
                let spec = ExperimentSpec {
                    codec: serde_json::to_value(&anchor.spec)
                        .map_err(|e| LabError::Spec(e.to_string()))?,
                    parents: Vec::new(),
                    proposer: "baseline".into(),
                    hypothesis: format!("anchor curve of {} on {clip}", anchor.name),
                    clips: vec![clip.clone()],
                    rate_points: anchor.rate_points.clone(),
                    anchors: Vec::new(),
                };
                let submitted = self.submit_inner(&spec, None, Some(anchor.name)).await?;
                self.store
                    .put_anchor(&AnchorRecord {
                        key,
                        name: anchor.name.into(),
                        clip_id: clip.clone(),
                        experiment_id: submitted.id,
                    })
                    .await?;
                entries.push(BaselineEntry {
                    anchor: anchor.name.into(),
                    clip: clip.clone(),
                    experiment_id: Some(submitted.id),
                    status: "queued".into(),
                });
            }
        }
        Ok(entries)
    }

    /// Makes sure the shared real clips (decoded once) and the standard generated clips are in
    /// the corpus.
    pub fn ensure_corpus(&self) -> Result<(), LabError> {
        let mut corpus = self.corpus()?;
        corpus.ensure_real_clips(&mut Silent)?;
        for (spec, label) in standard_generated_clips() {
            let present = corpus
                .clip(&label.id)
                .is_some_and(|clip| corpus.clip_path(clip).is_file());
            if !present {
                corpus.remove(&label.id);
                corpus.generate(&spec, label, &mut Silent)?;
            }
        }
        corpus.save()?;
        Ok(())
    }

    /// Analyses every completed experiment whose anchors are settled.
    pub async fn analyse_pending(&self) -> Result<usize, LabError> {
        let mut analysed = 0;
        for record in self
            .store
            .experiments(Some(ExperimentState::Completed), 1000)
            .await?
        {
            if self.analyse(record.id).await? {
                analysed += 1;
            }
        }
        Ok(analysed)
    }
}

/// Generated clips every lab measures on besides the real ones: a dev clip with what the real
/// dev clip lacks (a camera pan with sub-pixel steps over fine texture, at CIF).
pub fn standard_generated_clips() -> Vec<(GeneratorSpec, ClipLabel)> {
    vec![(
        GeneratorSpec {
            pattern: Pattern::Pan,
            width: 352,
            height: 288,
            frames: 48,
            fps: codeclab_video::Rational::new(30, 1),
            seed: 1,
            bit_depth: 8,
        },
        ClipLabel {
            id: "pan_cif".into(),
            class: "pan".into(),
            source: "codeclab generator: pan 352x288, 48 frames, seed 1".into(),
            set: ClipSet::Dev,
        },
    )]
}

enum AnchorState {
    Ready(Vec<PointRecord>),
    Unavailable(String),
    Pending,
}

/// What `baseline` did for one (anchor, clip).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineEntry {
    pub anchor: String,
    pub clip: String,
    pub experiment_id: Option<i64>,
    pub status: String,
}

/// The RD data as CSV: one row per (clip, rate point); empty cells are not measured.
pub fn rd_csv(curves: &BTreeMap<String, Vec<PointRecord>>) -> String {
    let mut csv = String::from(
        "clip,rate_point,bytes,kbps,psnr_y,psnr_yuv,ssim,ms_ssim,vmaf,encode_s,decode_s,decoder_instructions_per_pixel,learned_mac_per_pixel\n",
    );
    let cell = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for (clip, points) in curves {
        for p in points {
            let qualities: Vec<String> = QualityMetric::ALL
                .iter()
                .map(|m| cell(p.quality(*m)))
                .collect();
            csv.push_str(&format!(
                "{clip},{},{},{},{},{},{},{},{}\n",
                p.rate_point.to_string().replace(' ', ":"),
                p.bytes,
                p.kbps,
                qualities.join(","),
                p.encode.wall_seconds,
                p.decode.wall_seconds,
                cell(p.decoder_instructions_per_pixel),
                cell(p.learned_mac_per_pixel)
            ));
        }
    }
    csv
}
