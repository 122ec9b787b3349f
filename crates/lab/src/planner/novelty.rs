//! Whether a proposal is worth measuring: one that differs from a program of the run only by
//! amounts below what a measurement can tell apart, or only in how its code is written, would
//! spend an experiment to learn nothing.
//!
//! Two programs are near duplicates when every gene is within [`GENE_TOLERANCE`] of its declared
//! range of the other's (a switch must be equal) and their edits are the same code by meaning:
//! the same blocks, and searches and replacements whose Rust tokens are equal, comments and
//! layout aside, but for numbers within [`NUMBER_TOLERANCE`] of each other.

use std::str::FromStr;

use codeclab_codec::Genome;
use proc_macro2::{Delimiter, TokenStream, TokenTree};

use crate::candidate::Edit;

/// Largest difference of a gene, as a fraction of its declared range, that counts as none.
pub const GENE_TOLERANCE: f64 = 0.005;
/// Largest relative difference of two numbers in code that counts as none.
pub const NUMBER_TOLERANCE: f64 = 0.005;

/// The largest difference between two genomes over their genes, each as a fraction of its
/// declared range; a switch or a choice that differs counts 1.
pub fn genome_distance(a: &Genome, b: &Genome) -> f64 {
    let (a, b) = (serde_json::to_value(a), serde_json::to_value(b));
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (a, b) else {
        return 1.0;
    };
    a.iter()
        .map(|(name, value)| {
            let other = b.get(name);
            match (value.as_f64(), other.and_then(serde_json::Value::as_f64)) {
                (Some(x), Some(y)) => {
                    let span = Genome::RANGES
                        .iter()
                        .find(|range| range.name == name)
                        .map_or(1.0, |range| range.max - range.min);
                    ((x - y).abs() / span).min(1.0)
                }
                _ if Some(value) == other => 0.0,
                _ => 1.0,
            }
        })
        .fold(0.0, f64::max)
}

/// A token of Rust code as compared here: group delimiters, punctuation, identifiers and
/// literals; comments and layout are not tokens.
#[derive(Debug, PartialEq)]
enum Token {
    Open(char),
    Close(char),
    Punct(char),
    Ident(String),
    Literal(String),
}

fn flatten(stream: TokenStream, out: &mut Vec<Token>) {
    for tree in stream {
        match tree {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ('(', ')'),
                    Delimiter::Brace => ('{', '}'),
                    Delimiter::Bracket => ('[', ']'),
                    Delimiter::None => (' ', ' '),
                };
                out.push(Token::Open(open));
                flatten(group.stream(), out);
                out.push(Token::Close(close));
            }
            TokenTree::Punct(punct) => out.push(Token::Punct(punct.as_char())),
            TokenTree::Ident(ident) => out.push(Token::Ident(ident.to_string())),
            TokenTree::Literal(literal) => out.push(Token::Literal(literal.to_string())),
        }
    }
}

/// The tokens of a piece of code, or `None` when it does not tokenize (it is then compared as
/// text).
fn tokens(code: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    flatten(TokenStream::from_str(code).ok()?, &mut out);
    Some(out)
}

/// The value of a numeric literal (`0.85`, `1_000u32`, `2e-3_f64`), when it is one.
fn number(literal: &str) -> Option<f64> {
    // Hexadecimal, octal and binary literals are compared as written.
    if ["0x", "0o", "0b"]
        .iter()
        .any(|radix| literal.starts_with(radix))
    {
        return None;
    }
    let digits: String = literal.chars().filter(|&c| c != '_').collect();
    let end = digits
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(digits.len());
    let value = digits[..end].parse::<f64>().ok()?;
    value.is_finite().then_some(value)
}

fn same_literal(a: &str, b: &str) -> bool {
    a == b
        || match (number(a), number(b)) {
            (Some(x), Some(y)) => (x - y).abs() <= NUMBER_TOLERANCE * x.abs().max(y.abs()),
            _ => false,
        }
}

/// Whether two pieces of code are the same by meaning, up to comments, layout and numbers
/// within [`NUMBER_TOLERANCE`].
fn same_code(a: &str, b: &str) -> bool {
    match (tokens(a), tokens(b)) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter().zip(&b).all(|pair| match pair {
                    (Token::Literal(x), Token::Literal(y)) => same_literal(x, y),
                    (x, y) => x == y,
                })
        }
        _ => a.split_whitespace().eq(b.split_whitespace()),
    }
}

/// Whether two lists of edits change the same blocks to the same code by meaning.
pub fn same_edits(a: &[Edit], b: &[Edit]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.block == y.block
                && same_code(&x.search, &y.search)
                && same_code(&x.replace, &y.replace)
        })
}

/// Whether a program with `genome` and `edits` is a near duplicate of one with `other_genome`
/// and `other_edits`.
pub fn near_duplicate(
    (genome, edits): (&Genome, &[Edit]),
    (other_genome, other_edits): (&Genome, &[Edit]),
) -> bool {
    genome_distance(genome, other_genome) <= GENE_TOLERANCE && same_edits(edits, other_edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(replace: &str) -> Edit {
        Edit {
            block: "lambda".into(),
            search: "let scale = 0.85;".into(),
            replace: replace.into(),
        }
    }

    #[test]
    fn genes_are_near_within_their_tolerance_of_the_range_and_switches_must_be_equal() {
        let base = Genome::default();
        assert_eq!(genome_distance(&base, &base), 0.0);
        // lambda_scale spans 0.1..4: 0.01 is 0.26 % of it, 0.05 is 1.3 %.
        let near = Genome {
            lambda_scale: base.lambda_scale + 0.01,
            ..base.clone()
        };
        let far = Genome {
            lambda_scale: base.lambda_scale + 0.05,
            ..base.clone()
        };
        assert!(genome_distance(&base, &near) <= GENE_TOLERANCE);
        assert!(genome_distance(&base, &far) > GENE_TOLERANCE);
        let switched = Genome {
            learned_filter: !base.learned_filter,
            ..base.clone()
        };
        assert_eq!(genome_distance(&base, &switched), 1.0);
    }

    #[test]
    fn code_is_compared_by_tokens_with_numbers_within_their_tolerance() {
        let original = [edit("let scale = 0.85; // the old factor")];
        let reformatted = [edit("let   scale=0.85 ;\n/* same */")];
        let nudged = [edit("let scale = 0.851;")];
        let changed = [edit("let scale = 0.9;")];
        let renamed = [edit("let factor = 0.85;")];
        assert!(same_edits(&original, &reformatted));
        assert!(same_edits(&original, &nudged));
        assert!(!same_edits(&original, &changed));
        assert!(!same_edits(&original, &renamed));
        assert!(!same_edits(&original, &[]));
        let other_block = [Edit {
            block: "motion_search".into(),
            ..edit("let scale = 0.85;")
        }];
        assert!(!same_edits(&original, &other_block));
        // Code that does not tokenize is compared as words.
        assert!(same_edits(&[edit("let s = \"")], &[edit("let  s = \"")]));
        assert!(!same_edits(&[edit("let s = \"")], &[edit("let t = \"")]));
    }

    #[test]
    fn numbers_are_read_through_separators_and_suffixes() {
        assert_eq!(number("1_000u32"), Some(1000.0));
        assert_eq!(number("2e-3_f64"), Some(0.002));
        assert_eq!(number("0.85"), Some(0.85));
        assert_eq!(number("\"0.85\""), None);
        assert_eq!(number("0x1F"), None);
        assert!(!same_literal("0x1F", "0x20"));
        assert!(!same_literal("\"a\"", "\"b\""));
        assert!(same_literal("100", "100.4"));
        assert!(!same_literal("100", "101"));
    }

    #[test]
    fn a_near_duplicate_needs_both_near_genes_and_the_same_code() {
        let base = Genome::default();
        let near = Genome {
            lambda_scale: base.lambda_scale + 0.01,
            ..base.clone()
        };
        let code = [edit("let scale = 0.9;")];
        assert!(near_duplicate((&near, &code), (&base, &code)));
        assert!(!near_duplicate((&near, &code), (&base, &[])));
    }
}
