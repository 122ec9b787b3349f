//! The names a block binds and the names the fixed code uses. Rust resolves a name to the
//! nearest item in scope, so an item or import a block adds under a name the fixed code uses
//! would take the fixed code's place: a `mod std` redirects its `std::…` paths, a `type u32`
//! its integers, a helper trait's `fn len(self)` its `.len()` calls. A block may therefore bind
//! no new name that the fixed code uses.

use super::rules::{ITEM_KEYWORDS, STANDARD_CRATES};
use super::tokens::{Kind, Token, View};
use std::collections::BTreeSet;

/// Each name `tokens` bind, with its line: items (`fn`, `struct`, `enum`, `union`, `trait`,
/// `type`, `mod`, `static`, `const`), macros (`macro_rules! name`), and the names `use`
/// declarations bring in (a path's last segment, or its alias).
pub(super) fn bound_names(tokens: &[Token]) -> Vec<(String, usize)> {
    let view = View::new(tokens);
    let mut names = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let Kind::Ident(keyword) = &token.kind else {
            continue;
        };
        let bound = match keyword.as_str() {
            "macro_rules" if view.punct(index + 1, '!') => view.ident(index + 2),
            // `static mut NAME`, but not `const fn` or `const _`.
            "static" => match view.ident(index + 1) {
                Some("mut") => view.ident(index + 2),
                other => other,
            },
            "const" if view.punct(index + 2, ':') => view.ident(index + 1),
            "const" => None,
            keyword if ITEM_KEYWORDS.contains(&keyword) => view.ident(index + 1),
            _ => None,
        };
        if let Some(name) = bound.filter(|name| *name != "_") {
            names.push((name.to_owned(), token.line));
        }
        if keyword == "use" && view.in_use[index] == Some(index) {
            names.extend(imported_names(&view, index));
        }
    }
    names
}

/// The names a `use` declaration starting at `start` brings in. A standard item imported under
/// its own name is left out: it can only stand where the fixed code would find that same item
/// or fail to compile.
fn imported_names(view: &View<'_>, start: usize) -> Vec<(String, usize)> {
    let end = view.statement_end(start);
    let mut names = Vec::new();
    for index in start + 1..end {
        let Some(name) = view.ident(index) else {
            continue;
        };
        let line = view.line(index);
        if view.ident(index - 1) == Some("as") {
            // `as _` brings a trait's methods in without a name.
            if name != "_" {
                names.push((name.to_owned(), line));
            }
            continue;
        }
        let renamed = view.ident(index + 1) == Some("as");
        if view.path_separator_after(index) || renamed || name == "as" {
            continue;
        }
        let path = view.written_path(index);
        let root = path.split("::").next().unwrap_or_default();
        if STANDARD_CRATES.contains(&root) {
            continue;
        }
        // `use a::b::{self}` brings in `b`.
        let bound = if name == "self" {
            path.rsplit("::").nth(1)
        } else {
            Some(name)
        };
        names.extend(bound.map(|bound| (bound.to_owned(), line)));
    }
    names
}

/// Every identifier in `tokens`.
pub(super) fn identifiers(tokens: &[Token]) -> BTreeSet<String> {
    tokens
        .iter()
        .filter_map(|token| match &token.kind {
            Kind::Ident(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}
