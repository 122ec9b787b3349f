//! A crate's Rust sources held in memory, and the evolvable blocks marked in them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const BLOCK_START: &str = "EVOLVE-BLOCK-START";
pub const BLOCK_END: &str = "EVOLVE-BLOCK-END";

/// Every `.rs` file under a crate's `src/`, by path relative to the crate root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceTree {
    pub files: BTreeMap<PathBuf, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {problem}")]
    Markers {
        file: PathBuf,
        line: usize,
        problem: String,
    },
}

/// One evolvable block: the text strictly between its START line and its END line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub name: String,
    pub file: PathBuf,
    /// Byte range of the editable content in the file.
    pub content: std::ops::Range<usize>,
    /// Byte range from the start of the START line to the end of the END line.
    pub whole: std::ops::Range<usize>,
    /// 1-based line of the START marker.
    pub start_line: usize,
    /// 1-based line of the END marker.
    pub end_line: usize,
}

impl SourceTree {
    /// Loads every `.rs` file under `crate_root/src`.
    pub fn load(crate_root: &Path) -> Result<Self, TreeError> {
        let mut files = BTreeMap::new();
        let mut pending = vec![crate_root.join("src")];
        while let Some(dir) = pending.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|source| TreeError::Read {
                path: dir.clone(),
                source,
            })?;
            for entry in entries {
                let path = entry
                    .map_err(|source| TreeError::Read {
                        path: dir.clone(),
                        source,
                    })?
                    .path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| TreeError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    let relative = path.strip_prefix(crate_root).unwrap_or(&path).to_path_buf();
                    files.insert(relative, text);
                }
            }
        }
        Ok(Self { files })
    }

    /// Writes every file under `crate_root`, creating directories as needed.
    pub fn write(&self, crate_root: &Path) -> Result<(), TreeError> {
        for (relative, text) in &self.files {
            let path = crate_root.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| TreeError::Write {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&path, text).map_err(|source| TreeError::Write { path, source })?;
        }
        Ok(())
    }

    /// Every evolvable block, in file then position order.
    pub fn blocks(&self) -> Result<Vec<Block>, TreeError> {
        let mut blocks = Vec::new();
        for (file, text) in &self.files {
            blocks.extend(blocks_in(file, text)?);
        }
        Ok(blocks)
    }

    /// Everything an edit may not change: per file, the text outside the blocks' contents and
    /// the names of its blocks.
    pub(crate) fn skeleton(&self) -> Result<Vec<(PathBuf, String, Vec<String>)>, TreeError> {
        let mut skeleton = Vec::new();
        for (file, text) in &self.files {
            let blocks = blocks_in(file, text)?;
            let mut outside = String::new();
            let mut at = 0;
            for block in &blocks {
                outside.push_str(&text[at..block.content.start]);
                at = block.content.end;
            }
            outside.push_str(&text[at..]);
            let names = blocks.into_iter().map(|block| block.name).collect();
            skeleton.push((file.clone(), outside, names));
        }
        Ok(skeleton)
    }

    pub fn total_bytes(&self) -> usize {
        self.files.values().map(String::len).sum()
    }
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

fn blocks_in(file: &Path, text: &str) -> Result<Vec<Block>, TreeError> {
    let marker_error = |line: usize, problem: String| TreeError::Markers {
        file: file.to_path_buf(),
        line,
        problem,
    };
    let mut blocks = Vec::new();
    // (name, start of START line, end of START line incl. newline, line number)
    let mut open: Option<(String, usize, usize, usize)> = None;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_number = index + 1;
        let trimmed = line.trim();
        let line_end = offset + line.len();
        if let Some(rest) = trimmed.strip_prefix("//").map(str::trim) {
            if let Some(name) = rest.strip_prefix(BLOCK_START) {
                let name = name.trim();
                if name.is_empty() {
                    return Err(marker_error(line_number, "block without a name".into()));
                }
                if let Some((outer, ..)) = &open {
                    return Err(marker_error(
                        line_number,
                        format!("block {name} opens inside block {outer}"),
                    ));
                }
                open = Some((name.to_owned(), offset, line_end, line_number));
            } else if rest.starts_with(BLOCK_END) {
                let Some((name, whole_start, content_start, start_line)) = open.take() else {
                    return Err(marker_error(line_number, "END without a START".into()));
                };
                blocks.push(Block {
                    name,
                    file: file.to_path_buf(),
                    content: content_start..offset,
                    whole: whole_start..line_end,
                    start_line,
                    end_line: line_number,
                });
            }
        }
        offset = line_end;
    }
    if let Some((name, _, _, line)) = open {
        return Err(marker_error(line, format!("block {name} is never closed")));
    }
    Ok(blocks)
}
