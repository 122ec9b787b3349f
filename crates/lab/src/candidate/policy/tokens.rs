//! The rules a changed block's tokens must follow, judged on the lexed token tree (macro bodies
//! and arguments included, since syn does not look inside them) rather than on spellings: a
//! forbidden macro is refused under any path or alias because its name may not appear at all,
//! names cannot be smuggled through metavariables into a macro call or an attribute, and the
//! standard crates cannot be renamed.

use super::Rule;
use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use std::collections::BTreeSet;

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

const STANDARD_CRATES: &[&str] = &["std", "core", "alloc"];

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

/// Macros of the standard library that a block's `macro_rules!` or `use … as` may not shadow: the
/// lab's fixed code calls them and must keep getting the real ones.
pub(super) const STANDARD_MACROS: &[&str] = &[
    "addr_of",
    "addr_of_mut",
    "asm",
    "assert",
    "assert_eq",
    "assert_matches",
    "assert_ne",
    "cfg",
    "cfg_match",
    "column",
    "compile_error",
    "concat",
    "concat_idents",
    "const_format_args",
    "dbg",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_matches",
    "debug_assert_ne",
    "env",
    "eprint",
    "eprintln",
    "file",
    "format",
    "format_args",
    "format_args_nl",
    "global_asm",
    "include",
    "include_bytes",
    "include_str",
    "is_x86_feature_detected",
    "join",
    "line",
    "log_syntax",
    "matches",
    "module_path",
    "naked_asm",
    "offset_of",
    "option_env",
    "panic",
    "pin",
    "print",
    "println",
    "ready",
    "select",
    "stringify",
    "thread_local",
    "todo",
    "trace_macros",
    "try",
    "unimplemented",
    "unreachable",
    "vec",
    "write",
    "writeln",
];

/// Keywords that may stand right before a unary `!` (`if !(a)`, `return !x`): no macro call.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "type", "unsafe", "use", "where", "while",
    "yield",
];

/// One token of a block laid out flat: groups become an open and a close token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Ident(String),
    Punct(char, Spacing),
    /// A literal and its length in bytes of source.
    Literal(String),
    Open(Delimiter),
    Close(Delimiter),
}

#[derive(Debug)]
pub(super) struct Token {
    /// 1-based line within the lexed text.
    pub(super) line: usize,
    pub(super) kind: Kind,
}

/// `stream` laid out flat, groups as open/close pairs.
pub(super) fn flatten(stream: TokenStream) -> Vec<Token> {
    let mut tokens = Vec::new();
    push_flat(stream, &mut tokens);
    tokens
}

fn push_flat(stream: TokenStream, out: &mut Vec<Token>) {
    for tree in stream {
        let line = tree.span().start().line;
        match tree {
            TokenTree::Ident(ident) => {
                // `r#std` names the same thing as `std`.
                let name = ident.to_string();
                let name = name.strip_prefix("r#").map(str::to_owned).unwrap_or(name);
                out.push(Token {
                    line,
                    kind: Kind::Ident(name),
                })
            }
            TokenTree::Punct(punct) => out.push(Token {
                line,
                kind: Kind::Punct(punct.as_char(), punct.spacing()),
            }),
            TokenTree::Literal(literal) => out.push(Token {
                line,
                kind: Kind::Literal(literal.to_string()),
            }),
            TokenTree::Group(group) => {
                out.push(Token {
                    line,
                    kind: Kind::Open(group.delimiter()),
                });
                push_flat(group.stream(), out);
                out.push(Token {
                    line: group.span_close().start().line,
                    kind: Kind::Close(group.delimiter()),
                });
            }
        }
    }
}

/// What the scan needs besides the tokens.
pub(super) struct ScanContext<'a> {
    pub(super) max_literal_bytes: usize,
    /// Macros the fixed code defines or calls: a block may not shadow them.
    pub(super) fixed_macros: &'a BTreeSet<String>,
}

/// Every broken rule in a block's tokens, with its line in the lexed text.
pub(super) fn scan(tokens: &[Token], context: &ScanContext<'_>) -> Vec<(usize, Rule)> {
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
                for rule in ident_rules(&view, index, name, context) {
                    report(rule);
                }
            }
            Kind::Punct('!', _) => {
                if let Some(rule) = bang_rule(&view, index, context) {
                    report(rule);
                }
            }
            Kind::Punct('#', _) => {
                if let Some(rule) = attribute_rule(&view, index) {
                    report(rule);
                }
            }
            _ => {}
        }
    }
    found
}

/// The flat tokens with what the rules ask of them: neighbours, matching groups, and whether a
/// token is part of a macro's input (an invocation's arguments, a `macro_rules!` body, an
/// attribute), where a macro can rearrange it into anything.
struct View<'a> {
    tokens: &'a [Token],
    /// For each open or close token, the index of its partner.
    partner: Vec<usize>,
    macro_input: Vec<bool>,
    /// The `use` declaration (its `use` token) each token belongs to, if any.
    in_use: Vec<Option<usize>>,
}

impl<'a> View<'a> {
    fn new(tokens: &'a [Token]) -> Self {
        let mut partner: Vec<usize> = (0..tokens.len()).collect();
        let mut opened = Vec::new();
        for (index, token) in tokens.iter().enumerate() {
            match token.kind {
                Kind::Open(_) => opened.push(index),
                Kind::Close(_) => {
                    if let Some(open) = opened.pop() {
                        partner[open] = index;
                        partner[index] = open;
                    }
                }
                _ => {}
            }
        }
        let mut view = View {
            tokens,
            partner,
            macro_input: vec![false; tokens.len()],
            in_use: vec![None; tokens.len()],
        };
        for (index, token) in tokens.iter().enumerate() {
            if matches!(token.kind, Kind::Open(_)) && view.opens_macro_input(index) {
                let close = view.partner[index];
                view.macro_input[index..=close].fill(true);
            }
            if view.ident(index) == Some("use") {
                let end = view.statement_end(index);
                view.in_use[index..end].fill(Some(index));
            }
        }
        view
    }

    fn kind(&self, index: usize) -> Option<&Kind> {
        self.tokens.get(index).map(|token| &token.kind)
    }

    fn ident(&self, index: usize) -> Option<&str> {
        match self.kind(index) {
            Some(Kind::Ident(name)) => Some(name),
            _ => None,
        }
    }

    fn ident_before(&self, index: usize) -> Option<&str> {
        index.checked_sub(1).and_then(|i| self.ident(i))
    }

    fn punct(&self, index: usize, wanted: char) -> bool {
        matches!(self.kind(index), Some(Kind::Punct(c, _)) if *c == wanted)
    }

    fn punct_before(&self, index: usize, wanted: char) -> bool {
        index.checked_sub(1).is_some_and(|i| self.punct(i, wanted))
    }

    /// `::` right after `index`.
    fn path_separator_after(&self, index: usize) -> bool {
        self.punct(index + 1, ':') && self.punct(index + 2, ':')
    }

    /// `::` right before `index`.
    fn path_separator_before(&self, index: usize) -> bool {
        index >= 2 && self.punct(index - 1, ':') && self.punct(index - 2, ':')
    }

    /// Whether the group opened at `open` is a macro's input: `name!(…)` or `macro_rules! name
    /// {…}`. (An attribute's tokens go to the compiler or to a dependency's derive as they are.)
    fn opens_macro_input(&self, open: usize) -> bool {
        let Some(before) = open.checked_sub(1) else {
            return false;
        };
        (self.punct(before, '!') && !(before >= 1 && self.punct(before - 1, '#')))
            || (self.ident(before).is_some() && before >= 1 && self.punct(before - 1, '!'))
    }

    /// The index just past the `;` that ends the declaration starting at `start` (at the same
    /// nesting depth), or the end of the enclosing group.
    fn statement_end(&self, start: usize) -> usize {
        let mut index = start + 1;
        while let Some(kind) = self.kind(index) {
            match kind {
                Kind::Punct(';', _) => return index + 1,
                Kind::Open(_) => index = self.partner[index] + 1,
                Kind::Close(_) => return index,
                _ => index += 1,
            }
        }
        index
    }

    /// The path written up to and including the identifier at `index`, through `use` groups:
    /// `std::fs` for `std::fs`, `use std::{io, fs}` and `s::fs`.
    fn written_path(&self, index: usize) -> String {
        let mut segments = vec![self.ident(index).unwrap_or_default().to_owned()];
        let mut at = index;
        loop {
            if self.path_separator_before(at)
                && let Some(segment) = (at - 2).checked_sub(1).filter(|&s| self.ident(s).is_some())
            {
                segments.push(self.ident(segment).unwrap_or_default().to_owned());
                at = segment;
                continue;
            }
            // Out of a `use` group: back to the `{` and the path before it.
            let mut back = at;
            while back > 0 {
                match self.kind(back - 1) {
                    Some(Kind::Open(_)) => break,
                    Some(Kind::Close(_)) => back = self.partner[back - 1],
                    _ => back -= 1,
                }
            }
            match back.checked_sub(1) {
                Some(open)
                    if self.in_use[at].is_some()
                        && matches!(self.kind(open), Some(Kind::Open(Delimiter::Brace)))
                        && self.path_separator_before(open) =>
                {
                    match (open - 2)
                        .checked_sub(1)
                        .filter(|&s| self.ident(s).is_some())
                    {
                        Some(segment) => {
                            segments.push(self.ident(segment).unwrap_or_default().to_owned());
                            at = segment;
                        }
                        None => break,
                    }
                }
                _ => break,
            }
        }
        segments.reverse();
        segments.join("::")
    }

    /// Whether the token at `index` follows a metavariable or a macro repetition: `$name`,
    /// `$(…)`, or `$(…)` with a separator and an operator (`$(…),*`, `$(…)::*`).
    fn follows_metavariable(&self, index: usize) -> bool {
        let Some(before) = index.checked_sub(1) else {
            return false;
        };
        if self.ident(before).is_some() && self.punct_before(before, '$') {
            return true;
        }
        // Back over at most an operator and a two-character separator to the repetition.
        for at in (index.saturating_sub(4)..index).rev() {
            match self.kind(at) {
                Some(Kind::Close(_)) => return self.punct_before(self.partner[at], '$'),
                Some(Kind::Open(_)) => return false,
                _ => {}
            }
        }
        false
    }
}

fn ident_rules(view: &View<'_>, index: usize, name: &str, context: &ScanContext<'_>) -> Vec<Rule> {
    let mut rules = Vec::new();
    match name {
        "unsafe" => rules.push(Rule::Unsafe),
        "extern" => rules.push(Rule::Extern),
        _ => {}
    }
    if FORBIDDEN_MACROS.contains(&name) {
        rules.push(Rule::ForbiddenMacro { name: name.into() });
    }
    if FORBIDDEN_MODULES.contains(&name)
        && (view.path_separator_after(index)
            || view.path_separator_before(index)
            || view.in_use[index].is_some()
            || view.macro_input[index])
    {
        let path = view.written_path(index);
        rules.push(Rule::ForbiddenModule { path });
    }
    if STANDARD_CRATES.contains(&name) {
        if view.ident(index + 1) == Some("as") {
            rules.push(Rule::RenamedStandardCrate { name: name.into() });
        }
        if view.path_separator_after(index) {
            match view.kind(index + 3) {
                Some(Kind::Punct('*', _)) => {
                    rules.push(Rule::GlobImportOfStandardCrate { path: name.into() })
                }
                Some(Kind::Open(Delimiter::Brace)) => {
                    // `use std::{self as s}` renames the crate; `use std::{*}` globs it.
                    let close = view.partner[index + 3];
                    let mut inner = index + 4;
                    while inner < close {
                        if view.ident(inner) == Some("self") && view.ident(inner + 1) == Some("as")
                        {
                            rules.push(Rule::RenamedStandardCrate { name: name.into() });
                        }
                        if view.punct(inner, '*') {
                            rules.push(Rule::GlobImportOfStandardCrate { path: name.into() });
                        }
                        inner = match view.kind(inner) {
                            Some(Kind::Open(_)) => view.partner[inner] + 1,
                            _ => inner + 1,
                        };
                    }
                }
                _ => {}
            }
        }
    }
    if name == "as"
        && let Some(alias) = view.ident(index + 1)
        && (STANDARD_MACROS.contains(&alias) || context.fixed_macros.contains(alias))
    {
        rules.push(Rule::ShadowedMacro { name: alias.into() });
    }
    if name == "mod" {
        // `mod name;` reads a file; `mod $name` may expand to that.
        match (view.ident(index + 1), view.punct(index + 1, '$')) {
            (Some(module), _) if view.punct(index + 2, ';') => rules.push(Rule::ModuleFile {
                name: module.into(),
            }),
            (None, true) => rules.push(Rule::ModuleFile {
                name: "$…".into()
            }),
            _ => {}
        }
    }
    if let Some(start) = view.in_use[index]
        && name == "use"
        && index == start
        && (start + 1..view.statement_end(start)).any(|i| view.punct(i, '$'))
    {
        rules.push(Rule::IndirectUse);
    }
    rules
}

/// A `!` that calls or defines a macro must name it literally, and `macro_rules!` may not
/// shadow a macro the fixed code relies on.
fn bang_rule(view: &View<'_>, index: usize, context: &ScanContext<'_>) -> Option<Rule> {
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
            Some(name)
                if STANDARD_MACROS.contains(&name) || context.fixed_macros.contains(name) =>
            {
                Some(Rule::ShadowedMacro { name: name.into() })
            }
            Some(_) => None,
            None => Some(Rule::MetavariableMacroCall),
        };
    }
    None
}

/// A `#` must open a literal outer attribute: `#![…]` would apply to the fixed code around the
/// block, and an attribute built from a metavariable could hide any name.
fn attribute_rule(view: &View<'_>, index: usize) -> Option<Rule> {
    if view.punct(index + 1, '!') {
        return Some(Rule::InnerAttribute);
    }
    let Some(Kind::Open(Delimiter::Bracket)) = view.kind(index + 1) else {
        return Some(Rule::IndirectAttribute);
    };
    let close = view.partner[index + 1];
    for inner in index + 2..close {
        if view.punct(inner, '$') {
            return Some(Rule::IndirectAttribute);
        }
        if let Some(name) = view.ident(inner)
            && FORBIDDEN_ATTRIBUTES.contains(&name)
        {
            return Some(Rule::ForbiddenAttribute { name: name.into() });
        }
    }
    None
}

/// The macros `tokens` define (`macro_rules! name`) or call (`name!`).
pub(super) fn macro_names(tokens: &[Token], names: &mut BTreeSet<String>) {
    let view = View::new(tokens);
    for index in 0..tokens.len() {
        if !view.punct(index, '!') {
            continue;
        }
        if view.ident_before(index) == Some("macro_rules") {
            if let Some(name) = view.ident(index + 1) {
                names.insert(name.to_owned());
            }
        } else if matches!(view.kind(index + 1), Some(Kind::Open(_)))
            && let Some(name) = view.ident_before(index)
            && !KEYWORDS.contains(&name)
        {
            names.insert(name.to_owned());
        }
    }
}
