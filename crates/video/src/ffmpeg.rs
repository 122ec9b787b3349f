//! Decoding other containers to Y4M through the `ffmpeg` command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum FfmpegError {
    #[error(
        "the `ffmpeg` command was not found on PATH; install it (Debian: `apt-get install ffmpeg`) to import {0}"
    )]
    Missing(PathBuf),
    #[error("ffmpeg failed to decode {path}: {stderr}")]
    Failed { path: PathBuf, stderr: String },
    #[error("could not run ffmpeg on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What to decode: the first `frames` frames (all when `None`) as `pix_fmt` (e.g. `yuv420p`,
/// `yuv420p10le`).
#[derive(Clone, Debug)]
pub struct DecodeRequest<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    pub frames: Option<u64>,
    pub pix_fmt: &'a str,
}

/// True when an `ffmpeg` binary answers on PATH.
pub fn available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Decodes `req.input` to a Y4M file at `req.output`.
///
/// `-strict -1` lets ffmpeg write the Y4M colour-space tags of deep formats (`C420p10`).
pub fn decode_to_y4m(req: &DecodeRequest<'_>) -> Result<(), FfmpegError> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(req.input);
    if let Some(n) = req.frames {
        cmd.arg("-frames:v").arg(n.to_string());
    }
    cmd.args([
        "-pix_fmt",
        req.pix_fmt,
        "-strict",
        "-1",
        "-f",
        "yuv4mpegpipe",
    ])
    .arg(req.output)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FfmpegError::Missing(req.input.to_path_buf()),
        _ => FfmpegError::Io {
            path: req.input.to_path_buf(),
            source: e,
        },
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FfmpegError::Failed {
            path: req.input.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
