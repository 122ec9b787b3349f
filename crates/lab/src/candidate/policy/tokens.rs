//! A block's tokens laid out flat, groups as open and close tokens, with what the policy's rules
//! ask of them: neighbours, matching groups, macro input, `use` declarations.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

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
    /// Byte offset of the token's start in the lexed text.
    pub(super) offset: usize,
    pub(super) kind: Kind,
}

/// `stream` laid out flat, groups as open/close pairs. Iterative, so that no nesting, however
/// deep, exhausts the lab's stack.
pub(super) fn flatten(stream: TokenStream) -> Vec<Token> {
    let mut out = Vec::new();
    // The trees left in each open group, and the group's closing token.
    let mut open: Vec<(proc_macro2::token_stream::IntoIter, Option<Token>)> =
        vec![(stream.into_iter(), None)];
    while let Some((trees, _)) = open.last_mut() {
        let Some(tree) = trees.next() else {
            if let Some((_, Some(close))) = open.pop() {
                out.push(close);
            }
            continue;
        };
        let span = tree.span();
        let (line, offset) = (span.start().line, span.byte_range().start);
        let kind = match tree {
            TokenTree::Ident(ident) => {
                // `r#std` names the same thing as `std`.
                let name = ident.to_string();
                Kind::Ident(name.strip_prefix("r#").map(str::to_owned).unwrap_or(name))
            }
            TokenTree::Punct(punct) => Kind::Punct(punct.as_char(), punct.spacing()),
            TokenTree::Literal(literal) => Kind::Literal(literal.to_string()),
            TokenTree::Group(group) => {
                let close = group.span_close();
                open.push((
                    group.stream().into_iter(),
                    Some(Token {
                        line: close.start().line,
                        offset: close.byte_range().start,
                        kind: Kind::Close(group.delimiter()),
                    }),
                ));
                Kind::Open(group.delimiter())
            }
        };
        out.push(Token { line, offset, kind });
    }
    out
}

/// How deep the groups of `tokens` nest.
pub(super) fn nesting_depth(tokens: &[Token]) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0;
    for token in tokens {
        match token.kind {
            Kind::Open(_) => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Kind::Close(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The flat tokens with what the rules ask of them: neighbours, matching groups, and whether a
/// token is part of a macro's input (an invocation's arguments, a `macro_rules!` body, an
/// attribute), where a macro can rearrange it into anything.
pub(super) struct View<'a> {
    tokens: &'a [Token],
    /// For each open or close token, the index of its partner.
    pub(super) partner: Vec<usize>,
    pub(super) macro_input: Vec<bool>,
    /// The `use` declaration (its `use` token) each token belongs to, if any.
    pub(super) in_use: Vec<Option<usize>>,
}

impl<'a> View<'a> {
    pub(super) fn new(tokens: &'a [Token]) -> Self {
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
            // A `use` inside another's declaration starts none of its own.
            if view.ident(index) == Some("use") && view.in_use[index].is_none() {
                let end = view.statement_end(index);
                view.in_use[index..end].fill(Some(index));
            }
        }
        view
    }

    /// The line of the token at `index` (0 past the end).
    pub(super) fn line(&self, index: usize) -> usize {
        self.tokens.get(index).map_or(0, |token| token.line)
    }

    pub(super) fn kind(&self, index: usize) -> Option<&Kind> {
        self.tokens.get(index).map(|token| &token.kind)
    }

    pub(super) fn ident(&self, index: usize) -> Option<&str> {
        match self.kind(index) {
            Some(Kind::Ident(name)) => Some(name),
            _ => None,
        }
    }

    pub(super) fn ident_before(&self, index: usize) -> Option<&str> {
        index.checked_sub(1).and_then(|i| self.ident(i))
    }

    pub(super) fn punct(&self, index: usize, wanted: char) -> bool {
        matches!(self.kind(index), Some(Kind::Punct(c, _)) if *c == wanted)
    }

    pub(super) fn punct_before(&self, index: usize, wanted: char) -> bool {
        index.checked_sub(1).is_some_and(|i| self.punct(i, wanted))
    }

    /// `::` right after `index`.
    pub(super) fn path_separator_after(&self, index: usize) -> bool {
        self.punct(index + 1, ':') && self.punct(index + 2, ':')
    }

    /// `::` right before `index`.
    pub(super) fn path_separator_before(&self, index: usize) -> bool {
        index >= 2 && self.punct(index - 1, ':') && self.punct(index - 2, ':')
    }

    /// Whether the group opened at `open` is the input of a macro that could rearrange its
    /// tokens into anything: `name!(…)` for a macro other than the standard library's, or a
    /// `macro_rules! name {…}` body. (An attribute's tokens go to the compiler or to a
    /// dependency's derive as they are.)
    fn opens_macro_input(&self, open: usize) -> bool {
        let Some(before) = open.checked_sub(1) else {
            return false;
        };
        if self.ident(before).is_some() && before >= 1 && self.punct(before - 1, '!') {
            return true;
        }
        self.punct(before, '!')
            && !(before >= 1 && self.punct(before - 1, '#'))
            && !self
                .ident_before(before)
                .is_some_and(|name| STANDARD_MACROS.contains(&name))
    }

    /// The index just past the `;` that ends the declaration starting at `start` (at the same
    /// nesting depth), or the end of the enclosing group.
    pub(super) fn statement_end(&self, start: usize) -> usize {
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
    pub(super) fn written_path(&self, index: usize) -> String {
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
    pub(super) fn follows_metavariable(&self, index: usize) -> bool {
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
