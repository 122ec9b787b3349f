//! Properties of edits, policy and reply parsing over arbitrary input: nothing panics, and an
//! applied edit never changes a byte outside the evolvable blocks.

use codeclab_lab::candidate::{Edit, EditFailure, Policy, SourceTree, apply, check};
use codeclab_lab::llm::parse_proposal_text;
use proptest::prelude::*;
use std::path::Path;

fn fixture() -> SourceTree {
    SourceTree::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/candidates/codec_like"),
    )
    .unwrap()
}

/// Each file with its block contents removed: what no edit may change.
fn skeleton(tree: &SourceTree) -> Vec<String> {
    let blocks = tree.blocks().unwrap();
    tree.files
        .iter()
        .map(|(file, text)| {
            let mut kept = String::new();
            let mut at = 0;
            for block in blocks.iter().filter(|b| &b.file == file) {
                kept.push_str(&text[at..block.content.start]);
                at = block.content.end;
            }
            kept.push_str(&text[at..]);
            kept
        })
        .collect()
}

fn floor_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

proptest! {
    #[test]
    fn any_reply_text_is_parsed_or_refused_without_panicking(reply in ".{0,400}") {
        let _ = parse_proposal_text(&reply);
    }

    #[test]
    fn an_edit_taken_from_inside_a_block_applies_or_is_ambiguous_and_never_leaks_outside(
        block_pick in 0usize..2,
        start in 0usize..200,
        length in 1usize..80,
        replace in "[a-z0-9 +*()_.;\n]{0,40}",
    ) {
        let tree = fixture();
        let blocks = tree.blocks().unwrap();
        let block = &blocks[block_pick % blocks.len()];
        let content = &tree.files[&block.file][block.content.clone()];
        let from = floor_boundary(content, start % content.len());
        let to = floor_boundary(content, from + length);
        prop_assume!(to > from);
        let edit = Edit {
            block: block.name.clone(),
            search: content[from..to].to_owned(),
            replace,
        };
        match apply(&tree, &[edit]) {
            Ok(patched) => prop_assert_eq!(skeleton(&patched), skeleton(&tree)),
            Err(rejection) => prop_assert!(
                matches!(rejection.reason, EditFailure::Ambiguous { .. }),
                "{}", rejection
            ),
        }
    }

    #[test]
    fn any_search_and_replace_is_applied_inside_blocks_or_refused(
        search in "[a-z0-9 *()_.{}\n/-]{1,30}",
        replace in ".{0,60}",
    ) {
        let tree = fixture();
        for block in ["transform", "weighting", "missing"] {
            let edit = Edit { block: block.into(), search: search.clone(), replace: replace.clone() };
            if let Ok(patched) = apply(&tree, &[edit]) {
                prop_assert_eq!(skeleton(&patched), skeleton(&tree));
                // Whatever the text, the policy answers instead of panicking.
                let _ = check(&tree, &patched, &Policy::default());
            }
        }
    }
}
