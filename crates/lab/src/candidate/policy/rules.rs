//! The rules a changed block's tokens must follow, judged on the lexed token tree (macro bodies
//! and arguments included, since syn does not look inside them, and the code a dependency's
//! derive reads out of an attribute's strings) rather than on spellings: a forbidden macro is
//! refused under any path or alias because its name may not appear at all, names cannot be
//! smuggled through metavariables into a macro call, an item, a `use` or an attribute, and the
//! standard crates cannot be renamed.

use super::Rule;
use super::tokens::{Kind, STANDARD_MACROS, Token, View, flatten};
use proc_macro2::{Delimiter, TokenStream};
use std::str::FromStr;

/// Macros that read files or the environment at build time, or emit assembly. Their names are
/// refused wherever they appear, so that no alias, path, re-export or macro argument reaches them.
pub(super) const FORBIDDEN_MACROS: &[&str] = &[
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

/// Standard modules that reach files, the network, processes, the environment, threads or the
/// machine: refused as a path segment and in `use` trees on any root (the lab's own code may
/// have imported them), and anywhere inside a macro's input, where a macro could splice them
/// into a path.
pub(super) const FORBIDDEN_MODULES: &[&str] = &[
    "fs",
    "net",
    "process",
    "env",
    "os",
    "thread",
    "arch",
    "intrinsics",
    "path",
];

pub(super) const STANDARD_CRATES: &[&str] = &["std", "core", "alloc"];

/// Attributes that change linkage, module paths, the crate's runtime, or read files.
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
    "debugger_visualizer",
];

/// What the scan needs besides the tokens.
pub(super) struct ScanContext {
    pub(super) max_literal_bytes: usize,
}

/// How deep strings holding code may nest (a string of code inside an attribute inside a string
/// of code …) before the scan refuses to look further.
const MAX_CODE_STRING_DEPTH: usize = 4;

/// Every broken rule in a block's tokens, with its line in the lexed text.
pub(super) fn scan(tokens: &[Token], context: &ScanContext) -> Vec<(usize, Rule)> {
    scan_at_depth(tokens, context, 0)
}

fn scan_at_depth(tokens: &[Token], context: &ScanContext, depth: usize) -> Vec<(usize, Rule)> {
    let view = View::new(tokens);
    let mut found = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let mut report = |rule| found.push((token.line, rule));
        match &token.kind {
            Kind::Literal(text) if text.len() > context.max_literal_bytes => {
                report(Rule::LiteralTooLarge {
                    bytes: text.len(),
                    limit: context.max_literal_bytes,
                })
            }
            Kind::Ident(name) => {
                for rule in ident_rules(&view, index, name) {
                    report(rule);
                }
            }
            Kind::Punct('!', _) => {
                if let Some(rule) = bang_rule(&view, index) {
                    report(rule);
                }
            }
            Kind::Punct('#', _) => {
                for rule in attribute_rules(&view, index, context, depth) {
                    report(rule);
                }
            }
            // `$name:ident` and `$name:tt` in a macro's matcher.
            Kind::Punct('$', _) => {
                if let (Some(_), true, Some(fragment @ ("ident" | "tt"))) = (
                    view.ident(index + 1),
                    view.punct(index + 2, ':'),
                    view.ident(index + 3),
                ) {
                    report(Rule::SplicingMacro {
                        fragment: fragment.into(),
                    });
                }
            }
            _ => {}
        }
    }
    found
}

fn ident_rules(view: &View<'_>, index: usize, name: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    if !name.is_ascii() {
        rules.push(Rule::NonAsciiIdentifier { name: name.into() });
    }
    match name {
        "unsafe" => rules.push(Rule::Unsafe),
        "extern" => rules.push(Rule::Extern),
        _ => {}
    }
    if FORBIDDEN_MACROS.contains(&name) {
        rules.push(Rule::ForbiddenMacro { name: name.into() });
    }
    // `$name:path` names a macro's fragment, not a module.
    let fragment = index >= 3 && view.punct(index - 1, ':') && view.punct(index - 3, '$');
    if FORBIDDEN_MODULES.contains(&name)
        && !fragment
        && (view.path_separator_after(index)
            || view.path_separator_before(index)
            || view.in_use[index].is_some()
            || view.macro_input[index])
    {
        let path = view.written_path(index);
        rules.push(Rule::ForbiddenModule { path });
    }
    if STANDARD_CRATES.contains(&name) && view.ident(index + 1) == Some("as") {
        rules.push(Rule::RenamedStandardCrate { name: name.into() });
    }
    if name == "as"
        && let Some(alias) = view.ident(index + 1)
        && STANDARD_MACROS.contains(&alias)
    {
        rules.push(Rule::ShadowedMacro { name: alias.into() });
    }
    if name == "mod" {
        // `mod name;` reads a file; so may `mod $name`, or `mod name` handed to a macro.
        match (view.ident(index + 1), view.punct(index + 1, '$')) {
            (Some(module), _)
                if view.punct(index + 2, ';')
                    || (view.macro_input[index]
                        && !matches!(view.kind(index + 2), Some(Kind::Open(Delimiter::Brace)))) =>
            {
                rules.push(Rule::ModuleFile {
                    name: module.into(),
                })
            }
            (None, true) => rules.push(Rule::ModuleFile {
                name: "$…".into()
            }),
            _ => {}
        }
    }
    if ITEM_KEYWORDS.contains(&name) && view.punct(index + 1, '$') {
        rules.push(Rule::IndirectItem);
    }
    // `macro_rules` is only ever written out to define a macro, never handed to another macro.
    if name == "macro_rules" && !view.punct(index + 1, '!') {
        rules.push(Rule::MetavariableMacroCall);
    }
    if name == "use" && view.in_use[index] == Some(index) {
        let statement = index + 1..view.statement_end(index);
        if statement.clone().any(|i| view.punct(i, '$')) {
            rules.push(Rule::IndirectUse);
        }
        // `use std::{self as s}`, at any depth of braces.
        let root = statement
            .clone()
            .find_map(|i| view.ident(i))
            .filter(|root| STANDARD_CRATES.contains(root));
        if let Some(root) = root
            && statement
                .clone()
                .any(|i| view.ident(i) == Some("self") && view.ident(i + 1) == Some("as"))
        {
            rules.push(Rule::RenamedStandardCrate { name: root.into() });
        }
        if let Some(star) = statement.clone().find(|&i| view.punct(i, '*')) {
            // The path the glob imports from: what precedes `::*`.
            let from = star
                .checked_sub(3)
                .filter(|&i| view.path_separator_after(i));
            rules.push(Rule::GlobImport {
                path: view.written_path(from.unwrap_or(index + 1)),
            });
        }
    }
    rules
}

/// Keywords that introduce a named item.
pub(super) const ITEM_KEYWORDS: &[&str] = &[
    "fn", "struct", "enum", "union", "trait", "type", "mod", "static", "const",
];

/// A `!` that calls or defines a macro must name it literally, and `macro_rules!` may not
/// shadow a macro of the standard library.
fn bang_rule(view: &View<'_>, index: usize) -> Option<Rule> {
    let next = view.kind(index + 1);
    let calls = matches!(next, Some(Kind::Open(_)));
    let defines = view.ident_before(index) == Some("macro_rules");
    if !calls && !defines {
        return None;
    }
    if view.follows_metavariable(index) {
        return Some(Rule::MetavariableMacroCall);
    }
    if defines {
        return match view.ident(index + 1) {
            Some(name) if STANDARD_MACROS.contains(&name) => {
                Some(Rule::ShadowedMacro { name: name.into() })
            }
            Some(_) => None,
            None => Some(Rule::MetavariableMacroCall),
        };
    }
    None
}

/// A `#` must open a literal outer attribute: `#![…]` would apply to the fixed code around the
/// block, and an attribute built from a metavariable could hide any name. The attributes it
/// names (directly, or applied through `cfg_attr`) must not be forbidden ones, and the strings it
/// holds, which a dependency's derive may read as code (`#[serde(bound = "…")]`), must pass the
/// same rules as the block itself.
fn attribute_rules(
    view: &View<'_>,
    index: usize,
    context: &ScanContext,
    depth: usize,
) -> Vec<Rule> {
    if view.punct(index + 1, '!') {
        return vec![Rule::InnerAttribute];
    }
    let Some(Kind::Open(Delimiter::Bracket)) = view.kind(index + 1) else {
        return vec![Rule::IndirectAttribute];
    };
    let close = view.partner[index + 1];
    if (index + 2..close).any(|inner| view.punct(inner, '$')) {
        return vec![Rule::IndirectAttribute];
    }
    let mut rules: Vec<Rule> = attribute_names(view, index + 2, close)
        .into_iter()
        .filter(|name| FORBIDDEN_ATTRIBUTES.contains(name))
        .map(|name| Rule::ForbiddenAttribute { name: name.into() })
        .collect();
    // Messages and documentation are text, never code.
    if view
        .ident(index + 2)
        .is_some_and(|name| MESSAGE_ATTRIBUTES.contains(&name))
    {
        return rules;
    }
    for inner in index + 2..close {
        let Some(Kind::Literal(literal)) = view.kind(inner) else {
            continue;
        };
        let key = view
            .punct(inner - 1, '=')
            .then(|| view.ident(inner - 2))
            .flatten();
        if key.is_some_and(|key| MESSAGE_KEYS.contains(&key)) {
            continue;
        }
        let Some(code) = code_in_string(literal) else {
            continue;
        };
        if depth >= MAX_CODE_STRING_DEPTH {
            rules.push(Rule::IndirectAttribute);
            continue;
        }
        // A bound or a path, not a place for items (whose names no check of the block sees).
        if code.iter().any(|token| {
            matches!(&token.kind, Kind::Ident(name)
                if ITEM_KEYWORDS.contains(&name.as_str()) || ["impl", "use", "macro_rules"].contains(&name.as_str()))
        }) {
            rules.push(Rule::ItemInAttributeString);
        }
        rules.extend(
            scan_at_depth(&code, context, depth + 1)
                .into_iter()
                .map(|(_, rule)| rule),
        );
    }
    rules
}

/// Attributes whose strings are messages: their text is never read as code.
const MESSAGE_ATTRIBUTES: &[&str] = &["doc", "must_use", "deprecated", "error", "diagnostic"];
/// Keys of a derive's attributes whose strings are names or messages (`#[serde(rename = "…")]`),
/// not code.
const MESSAGE_KEYS: &[&str] = &[
    "rename",
    "alias",
    "rename_all",
    "rename_all_fields",
    "tag",
    "content",
    "expecting",
    "note",
    "since",
];

/// The names of the attributes in the attribute tokens `start..end`: the path it starts with,
/// and, through `cfg_attr(predicate, attributes…)` and `unsafe(attribute)`, the attributes it
/// applies. Names inside arguments (`cfg(target_feature = …)`, `serde(rename = …)`) are none.
fn attribute_names<'a>(view: &'a View<'_>, start: usize, end: usize) -> Vec<&'a str> {
    let Some(name) = view.ident(start) else {
        return Vec::new();
    };
    let mut names = vec![name];
    let group = start + 1;
    if !matches!(view.kind(group), Some(Kind::Open(Delimiter::Parenthesis))) || group >= end {
        return names;
    }
    let close = view.partner[group];
    let applied_from = match name {
        "unsafe" => group + 1,
        "cfg_attr" => match (group + 1..close).find(|&i| view.punct(i, ',')) {
            Some(comma) => comma + 1,
            None => return names,
        },
        _ => return names,
    };
    // Each comma-separated attribute applied, from its own start.
    let mut at = applied_from;
    while at < close {
        names.extend(attribute_names(view, at, close));
        let mut next = at;
        while next < close && !view.punct(next, ',') {
            next = match view.kind(next) {
                Some(Kind::Open(_)) => view.partner[next] + 1,
                _ => next + 1,
            };
        }
        at = next + 1;
    }
    names
}

/// The tokens of a string literal's value, when it is one and its value lexes as code.
fn code_in_string(literal: &str) -> Option<Vec<Token>> {
    let value = syn::parse_str::<syn::LitStr>(literal).ok()?.value();
    let stream = TokenStream::from_str(&value).ok()?;
    Some(flatten(stream))
}
