//! SEARCH/REPLACE edits confined to evolvable blocks.

use super::tree::{BLOCK_END, BLOCK_START, Block, SourceTree, line_of};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Replace the only occurrence of `search` inside the block named `block` with `replace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub block: String,
    pub search: String,
    pub replace: String,
}

/// A place in the source tree, for messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

fn list(locations: &[Location]) -> String {
    locations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why one edit could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EditFailure {
    #[error("the SEARCH text is empty")]
    EmptySearch,
    #[error("there is no evolvable block of that name; the blocks are: {}", known.join(", "))]
    UnknownBlock { known: Vec<String> },
    #[error("SEARCH or REPLACE contains an EVOLVE-BLOCK marker; markers cannot be edited")]
    TouchesMarker,
    #[error(
        "the SEARCH text is not found anywhere (it must match the current source exactly, whitespace included)"
    )]
    NotFound,
    #[error("the SEARCH text matches {} times in the block (at {}); add context so that it matches once", locations.len(), list(locations))]
    Ambiguous { locations: Vec<Location> },
    #[error(
        "the SEARCH text crosses the block boundary (at {}); only the lines between the markers can change",
        list(locations)
    )]
    CrossesBoundary { locations: Vec<Location> },
    #[error("the SEARCH text is found only in other evolvable blocks ({}), at {}", blocks.join(", "), list(locations))]
    WrongBlock {
        blocks: Vec<String>,
        locations: Vec<Location>,
    },
    #[error(
        "the SEARCH text is found only outside evolvable blocks (at {}); only evolvable blocks can change",
        list(locations)
    )]
    OutsideBlocks { locations: Vec<Location> },
    #[error("the edit would change the block markers or the code around them")]
    BreaksBlocks,
    #[error("the source's block markers are broken: {0}")]
    Markers(String),
}

/// An edit that was refused, which one and why: fed back to the planner as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("edit {index} (block `{block}`): {reason}")]
pub struct EditRejection {
    /// 1-based position of the edit in the proposal.
    pub index: usize,
    pub block: String,
    pub reason: EditFailure,
}

/// Applies `edits` in order to a copy of `tree`. Each SEARCH must match exactly once, inside the
/// named block, without touching the markers; the first edit that does not is reported.
pub fn apply(tree: &SourceTree, edits: &[Edit]) -> Result<SourceTree, EditRejection> {
    let mut patched = tree.clone();
    for (position, edit) in edits.iter().enumerate() {
        let reject = |reason| EditRejection {
            index: position + 1,
            block: edit.block.clone(),
            reason,
        };
        apply_one(&mut patched, edit).map_err(reject)?;
    }
    Ok(patched)
}

fn apply_one(tree: &mut SourceTree, edit: &Edit) -> Result<(), EditFailure> {
    if edit.search.is_empty() {
        return Err(EditFailure::EmptySearch);
    }
    if [&edit.search, &edit.replace]
        .iter()
        .any(|text| text.contains(BLOCK_START) || text.contains(BLOCK_END))
    {
        return Err(EditFailure::TouchesMarker);
    }
    let blocks = tree
        .blocks()
        .map_err(|error| EditFailure::Markers(error.to_string()))?;
    let targets: Vec<&Block> = blocks.iter().filter(|b| b.name == edit.block).collect();
    if targets.is_empty() {
        let mut known: Vec<String> = blocks.iter().map(|b| b.name.clone()).collect();
        known.dedup();
        return Err(EditFailure::UnknownBlock { known });
    }

    let mut inside = Vec::new();
    let mut crossing = Vec::new();
    let mut elsewhere_blocks = Vec::new();
    let mut elsewhere_in_blocks = Vec::new();
    let mut outside = Vec::new();
    for (file, text) in &tree.files {
        for (start, _) in text.match_indices(edit.search.as_str()) {
            let range = start..start + edit.search.len();
            let location = Location {
                file: file.display().to_string(),
                line: line_of(text, start),
            };
            let file_blocks = || blocks.iter().filter(|b| &b.file == file);
            if let Some(block) =
                file_blocks().find(|b| b.content.start <= range.start && range.end <= b.content.end)
            {
                if block.name == edit.block {
                    inside.push((file.clone(), range, block.content.clone()));
                } else {
                    elsewhere_blocks.push(block.name.clone());
                    elsewhere_in_blocks.push(location);
                }
            } else if file_blocks().any(|b| range.start < b.whole.end && b.whole.start < range.end)
            {
                crossing.push(location);
            } else {
                outside.push(location);
            }
        }
    }
    match inside.as_slice() {
        [(file, range, content)] => {
            let before = tree
                .skeleton()
                .map_err(|e| EditFailure::Markers(e.to_string()))?;
            if let Some(text) = tree.files.get_mut(file) {
                let mut replacement = edit.replace.clone();
                // The END marker must stay on a line of its own: a replacement that reaches the
                // end of the block keeps its final newline.
                let starts_line =
                    range.start == content.start || text[..range.start].ends_with('\n');
                let ends_line =
                    replacement.ends_with('\n') || (replacement.is_empty() && starts_line);
                if range.end == content.end && !ends_line {
                    replacement.push('\n');
                }
                text.replace_range(range.clone(), &replacement);
            }
            match tree.skeleton() {
                Ok(after) if after == before => Ok(()),
                _ => Err(EditFailure::BreaksBlocks),
            }
        }
        [] if !crossing.is_empty() => Err(EditFailure::CrossesBoundary {
            locations: crossing,
        }),
        [] if !elsewhere_in_blocks.is_empty() => {
            elsewhere_blocks.dedup();
            Err(EditFailure::WrongBlock {
                blocks: elsewhere_blocks,
                locations: elsewhere_in_blocks,
            })
        }
        [] if !outside.is_empty() => Err(EditFailure::OutsideBlocks { locations: outside }),
        [] => Err(EditFailure::NotFound),
        several => Err(EditFailure::Ambiguous {
            locations: several
                .iter()
                .map(|(file, range, _)| Location {
                    file: file.display().to_string(),
                    line: tree.files.get(file).map_or(0, |t| line_of(t, range.start)),
                })
                .collect(),
        }),
    }
}
