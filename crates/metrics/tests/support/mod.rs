//! Test support shared by the metric test suites: the shared VMAF fixtures of
//! `shared/vmaf/fixtures/expected.json`, decoded once to Y4M into a cache under the target
//! directory exactly as the manifest's `decode` line says, and checked against its `y4m_sha256`.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use codeclab_video::ffmpeg::{DecodeRequest, decode_to_y4m};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One reference/distorted pair of the manifest, with its decoded Y4M files.
pub struct FixturePair {
    /// The distorted file's name, e.g. `bikes60__x264_crf22.mp4`.
    pub name: String,
    pub reference: PathBuf,
    pub distorted: PathBuf,
    /// The pair's `expected` block: `pooled_mean`, `pooled_harmonic_mean`, `per_frame`, `ffmpeg`.
    pub expected: Value,
}

impl FixturePair {
    /// `expected[block][key]` as a number, `None` when absent.
    pub fn number(&self, block: &str, key: &str) -> Option<f64> {
        self.expected.get(block)?.get(key)?.as_f64()
    }

    /// `expected.per_frame[key]`, `None` when absent.
    pub fn per_frame(&self, key: &str) -> Option<Vec<f64>> {
        let values = self.expected.get("per_frame")?.get(key)?.as_array()?;
        values.iter().map(Value::as_f64).collect()
    }
}

/// The shared data folder; tests need it.
pub fn shared_dir() -> PathBuf {
    codeclab_video::shared::shared_dir()
        .expect("the shared data folder (../shared from the workspace) is missing")
}

/// The parsed manifest.
pub fn manifest() -> Value {
    let path = shared_dir().join("vmaf/fixtures/expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where decoded fixtures are cached.
pub fn cache_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vmaf-fixtures");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Decodes `input` (first `frames` frames, all when `None`) as `pix_fmt` into the cache unless a
/// file with the expected sha256 is already there; panics when the decoded bytes differ from
/// `sha256` (another ffmpeg build would not compare the frames libvmaf compared).
pub fn decoded(input: &Path, frames: Option<u64>, pix_fmt: &str, sha256: &str) -> PathBuf {
    let stem = input
        .file_stem()
        .map_or_else(|| "clip".into(), |s| s.to_string_lossy());
    let frames_tag = frames.map_or_else(|| "all".to_string(), |n| n.to_string());
    let output = cache_dir().join(format!("{stem}_{frames_tag}_{pix_fmt}.y4m"));
    if sha256_file(&output).is_ok_and(|h| h == sha256) {
        return output;
    }
    // Decode to a name of our own, then rename: test binaries running side by side may decode
    // the same fixture at once.
    let partial = output.with_extension(format!("{}.partial", std::process::id()));
    decode_to_y4m(&DecodeRequest {
        input,
        output: &partial,
        frames,
        pix_fmt,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let got = sha256_file(&partial).unwrap_or_else(|e| panic!("{}: {e}", partial.display()));
    assert_eq!(
        got,
        sha256,
        "{} decoded to different frames than the manifest's (ffmpeg version?)",
        input.display()
    );
    std::fs::rename(&partial, &output).unwrap_or_else(|e| panic!("{}: {e}", output.display()));
    output
}

/// Every pair of the manifest, decoded.
pub fn fixture_pairs() -> Vec<FixturePair> {
    let shared = shared_dir();
    let manifest = manifest();
    let pairs = manifest["pairs"].as_array().expect("`pairs` is a list");
    pairs
        .iter()
        .map(|pair| {
            let r = &pair["ref"];
            let d = &pair["dist"];
            let text = |v: &Value, key: &str| -> String {
                v[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("`{key}` missing in {v}"))
                    .to_string()
            };
            let reference = decoded(
                &shared.join("corpus").join(text(r, "source")),
                r["frames"].as_u64(),
                &text(r, "pix_fmt"),
                &text(r, "y4m_sha256"),
            );
            let name = text(d, "file");
            let distorted = decoded(
                &shared.join("vmaf/fixtures").join(&name),
                None,
                &text(d, "pix_fmt"),
                &text(d, "y4m_sha256"),
            );
            FixturePair {
                name,
                reference,
                distorted,
                expected: pair["expected"].clone(),
            }
        })
        .collect()
}
