//! Block integrity: an evolvable block is a boundary only if what a candidate writes inside it
//! cannot reach the fixed code around it. Each changed block must lex on its own (balanced
//! delimiters, no open comment or string), parse on its own as complete items or statements of
//! the place it stands in (no attribute left dangling onto the next fixed item, no expression
//! left open to swallow the next fixed statement), and the tokens outside the changed blocks must
//! be the original's, one for one.

use super::tokens::{Token, flatten};
use crate::candidate::tree::Block;
use proc_macro2::TokenStream;
use std::ops::Range;
use std::str::FromStr;
use syn::parse::{ParseStream, Parser};
use syn::visit::Visit;

/// What the code around a block expects it to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// Items of a file or an inline module.
    Items,
    ImplItems,
    TraitItems,
    /// Statements of a function body or another block; `last` when nothing but the closing
    /// brace follows the block, so that it may end with a value.
    Statements {
        last: bool,
    },
}

impl Place {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Place::Items => "items",
            Place::ImplItems => "items of an `impl`",
            Place::TraitItems => "items of a trait",
            Place::Statements { .. } => "statements",
        }
    }
}

/// The braces of every item, module and block of a file, with the place they open.
struct Containers {
    found: Vec<(Range<usize>, Place)>,
}

impl<'ast> Visit<'ast> for Containers {
    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        self.found
            .push((item.brace_token.span.join().byte_range(), Place::ImplItems));
        syn::visit::visit_item_impl(self, item);
    }

    fn visit_item_trait(&mut self, item: &'ast syn::ItemTrait) {
        self.found
            .push((item.brace_token.span.join().byte_range(), Place::TraitItems));
        syn::visit::visit_item_trait(self, item);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if let Some((brace, _)) = &item.content {
            self.found
                .push((brace.span.join().byte_range(), Place::Items));
        }
        syn::visit::visit_item_mod(self, item);
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.found.push((
            block.brace_token.span.join().byte_range(),
            Place::Statements { last: false },
        ));
        syn::visit::visit_block(self, block);
    }
}

/// Where each block of `original` (a file's text) stands: the innermost braces around it.
pub(super) fn places(original: &str, blocks: &[&Block]) -> Result<Vec<Place>, syn::Error> {
    let file = syn::parse_file(original)?;
    let mut containers = Containers { found: Vec::new() };
    containers.visit_file(&file);
    Ok(blocks
        .iter()
        .map(|block| {
            let around = containers
                .found
                .iter()
                .filter(|(braces, _)| {
                    braces.start < block.whole.start && block.whole.end < braces.end
                })
                .min_by_key(|(braces, _)| braces.len());
            match around {
                None => Place::Items,
                Some((braces, Place::Statements { .. })) => {
                    // Only the closing brace may follow the block for it to end with a value.
                    let after = &original[block.whole.end..braces.end - 1];
                    let last = TokenStream::from_str(after).is_ok_and(|rest| rest.is_empty());
                    Place::Statements { last }
                }
                Some((_, place)) => *place,
            }
        })
        .collect())
}

/// Why a block does not stand on its own, and the line of the block's text where.
#[derive(Debug)]
pub(super) struct Incomplete {
    pub(super) line: usize,
    pub(super) message: String,
}

/// Checks that `content` parses as complete code of `place`.
pub(super) fn parses_alone(content: &str, place: Place) -> Result<(), Incomplete> {
    let incomplete = |error: syn::Error| Incomplete {
        line: error.span().start().line,
        message: error.to_string(),
    };
    match place {
        Place::Items => all_of::<syn::Item>(content).map_err(incomplete),
        Place::ImplItems => all_of::<syn::ImplItem>(content).map_err(incomplete),
        Place::TraitItems => all_of::<syn::TraitItem>(content).map_err(incomplete),
        Place::Statements { last } => {
            let statements =
                Parser::parse_str(syn::Block::parse_within, content).map_err(incomplete)?;
            match statements.last() {
                Some(syn::Stmt::Expr(expression, None)) if !last && !block_like(expression) => {
                    Err(Incomplete {
                        line: syn::spanned::Spanned::span(expression).start().line,
                        message: "the block ends with an expression that is not a complete \
                                  statement, which would join the fixed code after it; end it \
                                  with `;`"
                            .into(),
                    })
                }
                _ => Ok(()),
            }
        }
    }
}

fn all_of<T: syn::parse::Parse>(content: &str) -> syn::Result<()> {
    let parser = |input: ParseStream| {
        while !input.is_empty() {
            input.parse::<T>()?;
        }
        Ok(())
    };
    parser.parse_str(content)
}

/// Expressions that end a statement by themselves (`if`, `match`, loops, blocks).
fn block_like(expression: &syn::Expr) -> bool {
    matches!(
        expression,
        syn::Expr::If(_)
            | syn::Expr::Match(_)
            | syn::Expr::Block(_)
            | syn::Expr::Loop(_)
            | syn::Expr::While(_)
            | syn::Expr::ForLoop(_)
            | syn::Expr::Unsafe(_)
            | syn::Expr::Const(_)
            | syn::Expr::TryBlock(_)
    )
}

/// The tokens of `text` outside `excluded` (byte ranges).
pub(super) fn tokens_outside(
    text: &str,
    excluded: &[Range<usize>],
) -> Result<Vec<Token>, proc_macro2::LexError> {
    let stream = TokenStream::from_str(text)?;
    Ok(flatten(stream)
        .into_iter()
        .filter(|token| !excluded.iter().any(|range| range.contains(&token.offset)))
        .collect())
}
