//! The static policy a patched source must pass before it is built, judged on what the source
//! means to the compiler rather than on how it is spelled.
//!
//! Each changed block must stand on its own ([`integrity`]): it lexes and parses alone as
//! complete code of the place it sits in, and the tokens outside the changed blocks are the
//! original's. Then its token tree, macro bodies and arguments included ([`tokens`]), must hold
//! no `unsafe`, no `extern`, no linkage, path or file-reading attribute, no name of a macro that
//! reads files or the environment or emits assembly (under any path or alias), no macro called
//! or attribute built through a metavariable, no shadowing of the macros the fixed code calls,
//! no `std`/`core`/`alloc` module that reaches the outside world, no renamed or glob-imported
//! standard crate; and blocks, literals and the whole source stay within size limits.

mod integrity;
mod names;
mod rules;
mod tokens;

use super::tree::{Block, SourceTree};
use integrity::{Place, parses_alone, places, tokens_outside};
use names::{bound_names, identifiers};
use proc_macro2::TokenStream;
use rules::{ScanContext, scan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tokens::{flatten, nesting_depth};

/// How deep a changed block's delimiters may nest.
const MAX_NESTING: usize = 64;
/// The most violations reported for one block.
const MAX_VIOLATIONS_PER_BLOCK: usize = 40;

/// Size limits of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Largest allowed content of one evolvable block, in bytes.
    pub max_block_bytes: usize,
    /// How many bytes the whole source may grow by.
    pub max_growth_bytes: usize,
    /// Largest single literal (string, byte string, number) in bytes of source.
    pub max_literal_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_block_bytes: 24 * 1024,
            max_growth_bytes: 48 * 1024,
            max_literal_bytes: 1024,
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    Syntax {
        message: String,
    },
    /// The block does not lex on its own: an open comment, string or delimiter.
    DoesNotLex {
        message: String,
    },
    /// The block does not parse on its own as complete code of its place.
    Incomplete {
        place: String,
        message: String,
    },
    /// The tokens outside the changed blocks differ from the original's.
    FixedCodeChanged,
    Unsafe,
    Extern,
    ForbiddenAttribute {
        name: String,
    },
    ForbiddenMacro {
        name: String,
    },
    ForbiddenModule {
        path: String,
    },
    GlobImport {
        path: String,
    },
    RenamedStandardCrate {
        name: String,
    },
    MetavariableMacroCall,
    ShadowedMacro {
        name: String,
    },
    /// A new item or import under a name the fixed code uses.
    ShadowsFixedName {
        name: String,
    },
    IndirectItem,
    /// A `macro_rules!` binding `$x:ident` or `$x:tt`.
    SplicingMacro {
        fragment: String,
    },
    /// An item, `impl` or `use` inside an attribute's string.
    ItemInAttributeString,
    NonAsciiIdentifier {
        name: String,
    },
    InnerAttribute,
    IndirectAttribute,
    IndirectUse,
    ModuleFile {
        name: String,
    },
    NestingTooDeep {
        depth: usize,
        limit: usize,
    },
    LiteralTooLarge {
        bytes: usize,
        limit: usize,
    },
    BlockTooLarge {
        bytes: usize,
        limit: usize,
    },
    SourceGrowth {
        bytes: usize,
        limit: usize,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Syntax { message } => write!(f, "does not parse: {message}"),
            Rule::DoesNotLex { message } => write!(
                f,
                "the block does not stand on its own (an open comment, string or delimiter): {message}"
            ),
            Rule::Incomplete { place, message } => write!(
                f,
                "the block does not parse on its own as complete {place}: {message}"
            ),
            Rule::FixedCodeChanged => write!(
                f,
                "the code outside the evolvable blocks no longer reads as the original, token for token"
            ),
            Rule::Unsafe => write!(f, "`unsafe` is not allowed"),
            Rule::Extern => write!(f, "`extern` is not allowed"),
            Rule::ForbiddenAttribute { name } => write!(f, "attribute `#[{name}]` is not allowed"),
            Rule::ForbiddenMacro { name } => write!(
                f,
                "macro `{name}!` is not allowed: it reads files or the environment at build time or emits assembly, and its name is refused anywhere, under any path or alias"
            ),
            Rule::ForbiddenModule { path } => write!(
                f,
                "`{path}` is not allowed (no files, paths, network, processes, environment, OS or threads)"
            ),
            Rule::GlobImport { path } => write!(
                f,
                "the glob import `{path}::*` is not allowed: it could bring in names the fixed code uses"
            ),
            Rule::RenamedStandardCrate { name } => {
                write!(f, "renaming the standard crate `{name}` is not allowed")
            }
            Rule::MetavariableMacroCall => write!(
                f,
                "a macro called or defined through a metavariable (`$name!`) is not allowed: name macros literally"
            ),
            Rule::ShadowedMacro { name } => write!(
                f,
                "`{name}` is a macro of the standard library or of the fixed code; a block may not define or import another under that name"
            ),
            Rule::ShadowsFixedName { name } => write!(
                f,
                "the fixed code uses the name `{name}`: a block may not add an item or import of that name, which would take the fixed code's place; choose another name"
            ),
            Rule::IndirectItem => write!(
                f,
                "an item must be named literally, not through a metavariable"
            ),
            Rule::SplicingMacro { fragment } => write!(
                f,
                "a `macro_rules!` may not take `$name:{fragment}` fragments: they can assemble names and keywords that no reading of the source can follow; take expressions, types, blocks or items"
            ),
            Rule::ItemInAttributeString => {
                write!(f, "an attribute's string may hold no item, `impl` or `use`")
            }
            Rule::NonAsciiIdentifier { name } => write!(
                f,
                "the identifier `{name}` is not ASCII: blocks name things in ASCII, so that no lookalike stands for a name the policy checks"
            ),
            Rule::InnerAttribute => write!(
                f,
                "an inner attribute (`#![…]`) is not allowed: it would apply to the fixed code around the block"
            ),
            Rule::IndirectAttribute => write!(
                f,
                "an attribute must be written out as `#[…]`, without metavariables"
            ),
            Rule::IndirectUse => write!(
                f,
                "a `use` must name its paths literally, without metavariables"
            ),
            Rule::ModuleFile { name } => write!(
                f,
                "`mod {name};` loads another file; declare modules inline (`mod {name} {{ … }}`)"
            ),
            Rule::NestingTooDeep { depth, limit } => write!(
                f,
                "the block nests {depth} levels of brackets deep, over the limit of {limit}"
            ),
            Rule::LiteralTooLarge { bytes, limit } => write!(
                f,
                "a literal of {bytes} bytes exceeds the limit of {limit}; compute tables instead of embedding them"
            ),
            Rule::BlockTooLarge { bytes, limit } => {
                write!(
                    f,
                    "the block holds {bytes} bytes, over the limit of {limit}"
                )
            }
            Rule::SourceGrowth { bytes, limit } => write!(
                f,
                "the source grew by {bytes} bytes, over the limit of {limit}"
            ),
        }
    }
}

/// A broken rule and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub file: PathBuf,
    pub line: usize,
    pub block: Option<String>,
    pub rule: Rule,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if let Some(block) = &self.block {
            write!(f, " (block `{block}`)")?;
        }
        write!(f, ": {}", self.rule)
    }
}

/// Every violation found in a patched source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("rejected by the static policy:\n{}", self.violations.iter().map(|v| format!("  {v}")).collect::<Vec<_>>().join("\n"))]
pub struct PolicyRejection {
    pub violations: Vec<Violation>,
}

/// Checks the blocks of `patched` that differ from `original`, and that nothing else differs.
pub fn check(
    original: &SourceTree,
    patched: &SourceTree,
    policy: &Policy,
) -> Result<(), PolicyRejection> {
    let violations = violations(original, patched, policy);
    // Lexing keeps every text it saw for its spans; none of them is used past this point.
    proc_macro2::extra::invalidate_current_thread_spans();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(PolicyRejection { violations })
    }
}

fn violations(original: &SourceTree, patched: &SourceTree, policy: &Policy) -> Vec<Violation> {
    let mut violations = Vec::new();
    let whole_tree = |rule| Violation {
        file: PathBuf::new(),
        line: 0,
        block: None,
        rule,
    };
    // Sizes first: nothing larger than the limits is ever lexed or parsed.
    let growth = patched.total_bytes().saturating_sub(original.total_bytes());
    if growth > policy.max_growth_bytes {
        violations.push(whole_tree(Rule::SourceGrowth {
            bytes: growth,
            limit: policy.max_growth_bytes,
        }));
        return violations;
    }
    let (patched_blocks, original_blocks) = match (patched.blocks(), original.blocks()) {
        (Ok(patched_blocks), Ok(original_blocks)) => (patched_blocks, original_blocks),
        (Err(error), _) | (_, Err(error)) => {
            violations.push(whole_tree(Rule::Syntax {
                message: error.to_string(),
            }));
            return violations;
        }
    };
    if patched.files.keys().ne(original.files.keys())
        || patched_blocks.len() != original_blocks.len()
        || patched_blocks
            .iter()
            .zip(&original_blocks)
            .any(|(after, before)| after.name != before.name || after.file != before.file)
    {
        violations.push(whole_tree(Rule::FixedCodeChanged));
        return violations;
    }
    // Blocks pair up by position: the edits keep every marker where it was.
    let pairs: Vec<(&Block, &Block)> = original_blocks.iter().zip(&patched_blocks).collect();
    let content = |tree: &SourceTree, block: &Block| -> String {
        tree.files
            .get(&block.file)
            .and_then(|text| text.get(block.content.clone()))
            .unwrap_or_default()
            .to_owned()
    };
    let changed: Vec<(&Block, &Block)> = pairs
        .into_iter()
        .filter(|(before, after)| content(original, before) != content(patched, after))
        .collect();
    for (_, after) in &changed {
        let bytes = after.content.len();
        if bytes > policy.max_block_bytes {
            violations.push(Violation {
                file: after.file.clone(),
                line: after.start_line,
                block: Some(after.name.clone()),
                rule: Rule::BlockTooLarge {
                    bytes,
                    limit: policy.max_block_bytes,
                },
            });
        }
    }
    if !violations.is_empty() {
        return violations;
    }
    let fixed_names = fixed_identifiers(original, &original_blocks);
    let context = ScanContext {
        max_literal_bytes: policy.max_literal_bytes,
    };
    for (file, patched_text) in &patched.files {
        let Some(original_text) = original.files.get(file) else {
            continue;
        };
        if original_text == patched_text {
            continue;
        }
        let in_file: Vec<(&Block, &Block)> = changed
            .iter()
            .copied()
            .filter(|(_, after)| &after.file == file)
            .collect();
        let before_blocks: Vec<&Block> = in_file.iter().map(|(before, _)| *before).collect();
        let block_places = match places(original_text, &before_blocks) {
            Ok(block_places) => block_places,
            Err(error) => {
                violations.push(Violation {
                    file: file.clone(),
                    line: error.span().start().line,
                    block: None,
                    rule: Rule::Syntax {
                        message: format!("the original source does not parse: {error}"),
                    },
                });
                continue;
            }
        };
        let mut standing = true;
        for ((before, block), place) in in_file.iter().zip(block_places) {
            let found = check_block(
                &original_text[before.content.clone()],
                &patched_text[block.content.clone()],
                place,
                &context,
                &fixed_names,
            );
            standing &= found.iter().all(|(_, rule)| {
                !matches!(rule, Rule::DoesNotLex { .. } | Rule::Incomplete { .. })
            });
            violations.extend(found.into_iter().map(|(line, rule)| Violation {
                file: file.clone(),
                line: block.start_line + line,
                block: Some(block.name.clone()),
                rule,
            }));
        }
        if standing {
            violations.extend(fixed_code_changes(
                file,
                original_text,
                patched_text,
                &in_file,
            ));
        }
    }
    violations
}

/// The rules one changed block (`content`, once `original`) breaks, with lines counted from the
/// block's first line of content (1).
fn check_block(
    original: &str,
    content: &str,
    place: Place,
    context: &ScanContext,
    fixed_names: &BTreeSet<String>,
) -> Vec<(usize, Rule)> {
    let stream = match TokenStream::from_str(content) {
        Ok(stream) => stream,
        Err(error) => {
            let at = error.span().start();
            return vec![(
                at.line,
                Rule::DoesNotLex {
                    message: format!("it stops lexing at column {}", at.column + 1),
                },
            )];
        }
    };
    let tokens = flatten(stream);
    // Parsing and scanning recurse into groups: a nesting no code needs is refused first.
    let depth = nesting_depth(&tokens);
    if depth > MAX_NESTING {
        return vec![(
            1,
            Rule::NestingTooDeep {
                depth,
                limit: MAX_NESTING,
            },
        )];
    }
    let mut found = scan(&tokens, context);
    let already_bound: BTreeSet<String> = TokenStream::from_str(original)
        .map(|stream| bound_names(&flatten(stream)))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut reported = BTreeSet::new();
    for (name, line) in bound_names(&tokens) {
        if fixed_names.contains(&name)
            && !already_bound.contains(&name)
            && reported.insert(name.clone())
        {
            found.push((line, Rule::ShadowsFixedName { name }));
        }
    }
    if let Err(incomplete) = parses_alone(content, place) {
        found.push((
            incomplete.line,
            Rule::Incomplete {
                place: place.describe().into(),
                message: incomplete.message,
            },
        ));
    }
    found.sort_by_key(|(line, _)| *line);
    // Each rule once per line, and a bounded report whatever the block holds.
    let mut seen = BTreeSet::new();
    found.retain(|(line, rule)| seen.insert((*line, rule.to_string())));
    found.truncate(MAX_VIOLATIONS_PER_BLOCK);
    found
}

/// The first place where the tokens outside the changed blocks of `file` stop matching the
/// original's.
fn fixed_code_changes(
    file: &Path,
    original: &str,
    patched: &str,
    changed: &[(&Block, &Block)],
) -> Option<Violation> {
    let before_ranges: Vec<_> = changed.iter().map(|(b, _)| b.content.clone()).collect();
    let after_ranges: Vec<_> = changed.iter().map(|(_, a)| a.content.clone()).collect();
    let violation = |line| Violation {
        file: file.to_path_buf(),
        line,
        block: None,
        rule: Rule::FixedCodeChanged,
    };
    let (Ok(before), Ok(after)) = (
        tokens_outside(original, &before_ranges),
        tokens_outside(patched, &after_ranges),
    ) else {
        return Some(violation(0));
    };
    let first_difference = before
        .iter()
        .zip(&after)
        .position(|(a, b)| a.kind != b.kind)
        .or((before.len() != after.len()).then(|| before.len().min(after.len())))?;
    Some(violation(
        after
            .get(first_difference)
            .or(after.last())
            .map_or(0, |token| token.line),
    ))
}

/// Every identifier of the fixed code (the original outside its blocks), in every file.
fn fixed_identifiers(original: &SourceTree, blocks: &[Block]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (file, text) in &original.files {
        let inside: Vec<_> = blocks
            .iter()
            .filter(|block| &block.file == file)
            .map(|block| block.content.clone())
            .collect();
        if let Ok(fixed) = tokens_outside(text, &inside) {
            names.extend(identifiers(&fixed));
        }
    }
    names
}
