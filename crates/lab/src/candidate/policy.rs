//! The static policy a patched source must pass before it is built.
//!
//! The parsed token tree of every changed block is checked, macro bodies included (syn does not
//! look inside macros, so the check walks tokens rather than the syntax tree): no `unsafe`, no
//! `extern`, no linkage or path attributes, no file-embedding, environment or assembly macros, no
//! `std`/`core`/`alloc` modules that reach the outside world, no renamed or glob-imported standard
//! crates, and size limits on blocks, literals and the whole source.

use super::tree::{Block, SourceTree};
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

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

/// Standard modules that reach files, the network, processes, the environment or threads.
const FORBIDDEN_MODULES: &[&str] = &[
    "fs",
    "net",
    "process",
    "env",
    "os",
    "thread",
    "arch",
    "intrinsics",
];
const STANDARD_CRATES: &[&str] = &["std", "core", "alloc"];
/// Macros that read files or the environment at build time, or emit assembly.
const FORBIDDEN_MACROS: &[&str] = &[
    "include",
    "include_bytes",
    "include_str",
    "env",
    "option_env",
    "asm",
    "global_asm",
    "naked_asm",
    "llvm_asm",
    "concat_idents",
];
/// Attributes that change linkage, module paths, or the crate's runtime.
const FORBIDDEN_ATTRIBUTES: &[&str] = &[
    "path",
    "link",
    "link_name",
    "link_section",
    "link_ordinal",
    "no_mangle",
    "export_name",
    "used",
    "naked",
    "no_std",
    "no_main",
    "no_builtins",
    "global_allocator",
    "panic_handler",
    "target_feature",
    "instruction_set",
    "ffi_pure",
    "ffi_const",
];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    Syntax { message: String },
    Unsafe,
    Extern,
    ForbiddenAttribute { name: String },
    ForbiddenMacro { name: String },
    ForbiddenModule { path: String },
    GlobImportOfStandardCrate { path: String },
    RenamedStandardCrate { name: String },
    LiteralTooLarge { bytes: usize, limit: usize },
    BlockTooLarge { bytes: usize, limit: usize },
    SourceGrowth { bytes: usize, limit: usize },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Syntax { message } => write!(f, "does not parse: {message}"),
            Rule::Unsafe => write!(f, "`unsafe` is not allowed"),
            Rule::Extern => write!(f, "`extern` is not allowed"),
            Rule::ForbiddenAttribute { name } => write!(f, "attribute `#[{name}]` is not allowed"),
            Rule::ForbiddenMacro { name } => write!(f, "macro `{name}!` is not allowed"),
            Rule::ForbiddenModule { path } => write!(
                f,
                "`{path}` is not allowed (no files, network, processes, environment, OS or threads)"
            ),
            Rule::GlobImportOfStandardCrate { path } => {
                write!(
                    f,
                    "glob import `{path}::*` of a standard crate is not allowed"
                )
            }
            Rule::RenamedStandardCrate { name } => {
                write!(f, "renaming the standard crate `{name}` is not allowed")
            }
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

/// Checks the blocks of `patched` that differ from `original`.
pub fn check(
    original: &SourceTree,
    patched: &SourceTree,
    policy: &Policy,
) -> Result<(), PolicyRejection> {
    let mut violations = Vec::new();
    let growth = patched.total_bytes().saturating_sub(original.total_bytes());
    if growth > policy.max_growth_bytes {
        violations.push(Violation {
            file: PathBuf::new(),
            line: 0,
            block: None,
            rule: Rule::SourceGrowth {
                bytes: growth,
                limit: policy.max_growth_bytes,
            },
        });
    }
    let (patched_blocks, original_blocks) = match (patched.blocks(), original.blocks()) {
        (Ok(patched_blocks), Ok(original_blocks)) => (patched_blocks, original_blocks),
        (Err(error), _) | (_, Err(error)) => {
            violations.push(Violation {
                file: PathBuf::new(),
                line: 0,
                block: None,
                rule: Rule::Syntax {
                    message: error.to_string(),
                },
            });
            return Err(PolicyRejection { violations });
        }
    };
    let content = |tree: &SourceTree, block: &Block| -> String {
        tree.files
            .get(&block.file)
            .and_then(|text| text.get(block.content.clone()))
            .unwrap_or_default()
            .to_owned()
    };
    let changed: Vec<&Block> = patched_blocks
        .iter()
        .filter(|block| {
            let before = original_blocks
                .iter()
                .find(|b| b.name == block.name && b.file == block.file);
            before.is_none_or(|before| content(original, before) != content(patched, block))
        })
        .collect();
    for block in &changed {
        let bytes = block.content.len();
        if bytes > policy.max_block_bytes {
            violations.push(Violation {
                file: block.file.clone(),
                line: block.start_line,
                block: Some(block.name.clone()),
                rule: Rule::BlockTooLarge {
                    bytes,
                    limit: policy.max_block_bytes,
                },
            });
        }
    }
    let mut files: Vec<&PathBuf> = changed.iter().map(|block| &block.file).collect();
    files.dedup();
    for file in files {
        let Some(text) = patched.files.get(file) else {
            continue;
        };
        let in_changed_block = |line: usize| {
            changed
                .iter()
                .find(|b| &b.file == file && b.start_line < line && line < b.end_line)
                .map(|b| b.name.clone())
        };
        if let Err(error) = syn::parse_file(text) {
            let line = error.span().start().line;
            violations.push(Violation {
                file: file.clone(),
                line,
                block: in_changed_block(line),
                rule: Rule::Syntax {
                    message: error.to_string(),
                },
            });
            continue;
        }
        let Ok(stream) = TokenStream::from_str(text) else {
            continue;
        };
        let mut tokens = Vec::new();
        flatten(stream, &mut tokens);
        for (line, rule) in scan(&tokens, policy) {
            if let Some(block) = in_changed_block(line) {
                violations.push(Violation {
                    file: file.clone(),
                    line,
                    block: Some(block),
                    rule,
                });
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(PolicyRejection { violations })
    }
}

/// A token stream laid out flat, groups as open/close pairs, each token with its line.
#[derive(Debug)]
enum Token {
    Ident(String),
    Punct(char),
    Literal(usize),
    Open(Delimiter),
    Close,
}

fn flatten(stream: TokenStream, out: &mut Vec<(usize, Token)>) {
    for tree in stream {
        let line = tree.span().start().line;
        match tree {
            TokenTree::Ident(ident) => {
                // `r#std` names the same crate as `std`: compare identifiers without the prefix.
                let name = ident.to_string();
                let name = name.strip_prefix("r#").map(str::to_owned).unwrap_or(name);
                out.push((line, Token::Ident(name)))
            }
            TokenTree::Punct(punct) => out.push((line, Token::Punct(punct.as_char()))),
            TokenTree::Literal(literal) => {
                out.push((line, Token::Literal(literal.to_string().len())))
            }
            TokenTree::Group(group) => {
                out.push((line, Token::Open(group.delimiter())));
                flatten(group.stream(), out);
                out.push((group.span_close().start().line, Token::Close));
            }
        }
    }
}

fn ident_at(tokens: &[(usize, Token)], index: usize) -> Option<&str> {
    match tokens.get(index) {
        Some((_, Token::Ident(name))) => Some(name.as_str()),
        _ => None,
    }
}

fn punct_at(tokens: &[(usize, Token)], index: usize, wanted: char) -> bool {
    matches!(tokens.get(index), Some((_, Token::Punct(c))) if *c == wanted)
}

/// Index just past the group opened at `open` (or the end).
fn group_end(tokens: &[(usize, Token)], open: usize) -> usize {
    let mut depth = 0usize;
    for (index, (_, token)) in tokens.iter().enumerate().skip(open) {
        match token {
            Token::Open(_) => depth += 1,
            Token::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

fn scan(tokens: &[(usize, Token)], policy: &Policy) -> Vec<(usize, Rule)> {
    let mut found = Vec::new();
    for (index, (line, token)) in tokens.iter().enumerate() {
        let line = *line;
        match token {
            Token::Literal(bytes) if *bytes > policy.max_literal_bytes => found.push((
                line,
                Rule::LiteralTooLarge {
                    bytes: *bytes,
                    limit: policy.max_literal_bytes,
                },
            )),
            Token::Ident(name) if name == "unsafe" => found.push((line, Rule::Unsafe)),
            Token::Ident(name) if name == "extern" => found.push((line, Rule::Extern)),
            Token::Ident(name)
                if FORBIDDEN_MACROS.contains(&name.as_str())
                    && punct_at(tokens, index + 1, '!') =>
            {
                found.push((line, Rule::ForbiddenMacro { name: name.clone() }))
            }
            Token::Ident(name) if STANDARD_CRATES.contains(&name.as_str()) => {
                if ident_at(tokens, index + 1) == Some("as") {
                    found.push((line, Rule::RenamedStandardCrate { name: name.clone() }));
                }
                if !(punct_at(tokens, index + 1, ':') && punct_at(tokens, index + 2, ':')) {
                    continue;
                }
                let next = index + 3;
                match tokens.get(next) {
                    Some((_, Token::Ident(module)))
                        if FORBIDDEN_MODULES.contains(&module.as_str()) =>
                    {
                        found.push((
                            line,
                            Rule::ForbiddenModule {
                                path: format!("{name}::{module}"),
                            },
                        ))
                    }
                    Some((_, Token::Punct('*'))) => {
                        found.push((line, Rule::GlobImportOfStandardCrate { path: name.clone() }))
                    }
                    Some((_, Token::Open(Delimiter::Brace))) => {
                        // `use std::{fs, io::Read}`: any forbidden module named in the group,
                        // and `use std::{self as s}`, a renaming.
                        let group = &tokens[next..group_end(tokens, next)];
                        for (position, (inner_line, inner)) in group.iter().enumerate() {
                            let Token::Ident(module) = inner else {
                                continue;
                            };
                            if FORBIDDEN_MODULES.contains(&module.as_str()) {
                                found.push((
                                    *inner_line,
                                    Rule::ForbiddenModule {
                                        path: format!("{name}::{module}"),
                                    },
                                ));
                            } else if module == "self"
                                && ident_at(group, position + 1) == Some("as")
                            {
                                found.push((
                                    *inner_line,
                                    Rule::RenamedStandardCrate { name: name.clone() },
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
            Token::Punct('#') => {
                let mut at = index + 1;
                if punct_at(tokens, at, '!') {
                    at += 1;
                }
                if !matches!(tokens.get(at), Some((_, Token::Open(Delimiter::Bracket)))) {
                    continue;
                }
                // Every name in the attribute, so that `#[cfg_attr(all(), path = "..")]` is
                // caught as surely as `#[path = ".."]`.
                for (_, inner) in &tokens[at..group_end(tokens, at)] {
                    if let Token::Ident(name) = inner
                        && FORBIDDEN_ATTRIBUTES.contains(&name.as_str())
                    {
                        found.push((line, Rule::ForbiddenAttribute { name: name.clone() }));
                    }
                }
            }
            _ => {}
        }
    }
    found
}
