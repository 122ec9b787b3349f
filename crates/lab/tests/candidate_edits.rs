//! SEARCH/REPLACE edits: applied only inside evolvable blocks, refused with a precise reason
//! otherwise.

use codeclab_lab::candidate::{Edit, EditFailure, SourceTree, apply};
use std::path::{Path, PathBuf};

fn fixture() -> SourceTree {
    SourceTree::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/candidates/codec_like"),
    )
    .unwrap()
}

fn edit(block: &str, search: &str, replace: &str) -> Edit {
    Edit {
        block: block.into(),
        search: search.into(),
        replace: replace.into(),
    }
}

fn lib(tree: &SourceTree) -> &str {
    &tree.files[&PathBuf::from("src/lib.rs")]
}

#[test]
fn the_fixture_has_its_two_blocks() {
    let blocks = fixture().blocks().unwrap();
    let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["transform", "weighting"]);
    assert_eq!(blocks[0].start_line, 5);
    assert_eq!(blocks[0].end_line, 10);
}

#[test]
fn an_edit_inside_its_block_is_applied_and_the_rest_is_untouched() {
    let original = fixture();
    let patched = apply(
        &original,
        &[edit("transform", "byte.wrapping_add(1)", "byte ^ 0x55")],
    )
    .unwrap();
    assert!(lib(&patched).contains("    byte ^ 0x55\n"));
    assert_eq!(
        lib(&patched).replace("byte ^ 0x55", "byte.wrapping_add(1)"),
        lib(&original)
    );
    assert_eq!(patched.files.len(), original.files.len());
}

#[test]
fn edits_apply_in_order_each_on_the_result_of_the_last() {
    let patched = apply(
        &fixture(),
        &[
            edit("transform", "byte.wrapping_add(1)", "byte.wrapping_add(2)"),
            edit("transform", "wrapping_add(2)", "wrapping_sub(2)"),
            edit("weighting", "total * 2", "total * 3"),
        ],
    )
    .unwrap();
    assert!(lib(&patched).contains("byte.wrapping_sub(2)"));
    assert!(patched.files[&PathBuf::from("src/weights.rs")].contains("total * 3"));
}

#[test]
fn a_search_that_is_not_found_is_refused_with_its_index_and_block() {
    let rejection = apply(
        &fixture(),
        &[
            edit("transform", "byte.wrapping_add(1)", "byte"),
            edit("weighting", "total * 7", "total"),
        ],
    )
    .unwrap_err();
    assert_eq!(rejection.index, 2);
    assert_eq!(rejection.block, "weighting");
    assert_eq!(rejection.reason, EditFailure::NotFound);
    assert!(
        rejection
            .to_string()
            .starts_with("edit 2 (block `weighting`)")
    );
}

#[test]
fn a_search_found_only_outside_blocks_is_refused_with_where_it_is() {
    let rejection = apply(&fixture(), &[edit("weighting", "    2\n", "    3\n")]).unwrap_err();
    let EditFailure::OutsideBlocks { locations } = &rejection.reason else {
        panic!("{rejection}");
    };
    assert_eq!(locations.len(), 1);
    assert_eq!(locations[0].file, "src/weights.rs");
    assert_eq!(locations[0].line, 12);
    assert!(
        rejection
            .to_string()
            .contains("only outside evolvable blocks")
    );
}

#[test]
fn a_search_found_in_another_block_names_that_block() {
    let rejection = apply(&fixture(), &[edit("transform", "total * 2", "total")]).unwrap_err();
    assert!(
        matches!(&rejection.reason, EditFailure::WrongBlock { blocks, .. } if blocks == &["weighting"]),
        "{rejection}"
    );
}

#[test]
fn an_ambiguous_search_is_refused_with_every_match() {
    let rejection = apply(&fixture(), &[edit("transform", "byte", "b")]).unwrap_err();
    let EditFailure::Ambiguous { locations } = &rejection.reason else {
        panic!("{rejection}");
    };
    assert_eq!(locations.len(), 4);
    assert!(rejection.to_string().contains("matches 4 times"));
}

#[test]
fn a_search_crossing_the_block_boundary_is_refused() {
    // From the block's name on its START line into its first content line.
    let rejection = apply(
        &fixture(),
        &[edit(
            "transform",
            "transform\n/// Maps",
            "transform\n/// Turns",
        )],
    )
    .unwrap_err();
    assert!(
        matches!(rejection.reason, EditFailure::CrossesBoundary { .. }),
        "{rejection}"
    );
}

#[test]
fn touching_a_marker_is_refused() {
    for (search, replace) in [
        ("// EVOLVE-BLOCK-END", ""),
        (
            "byte.wrapping_add(1)",
            "byte\n// EVOLVE-BLOCK-END\nfn leak() {}",
        ),
    ] {
        let rejection = apply(&fixture(), &[edit("transform", search, replace)]).unwrap_err();
        assert_eq!(rejection.reason, EditFailure::TouchesMarker);
    }
}

#[test]
fn an_unknown_block_is_refused_with_the_known_names() {
    let rejection = apply(&fixture(), &[edit("entropy", "x", "y")]).unwrap_err();
    assert_eq!(
        rejection.reason,
        EditFailure::UnknownBlock {
            known: vec!["transform".into(), "weighting".into()]
        }
    );
}

#[test]
fn an_empty_search_is_refused() {
    let rejection = apply(&fixture(), &[edit("transform", "", "x")]).unwrap_err();
    assert_eq!(rejection.reason, EditFailure::EmptySearch);
}

#[test]
fn unbalanced_markers_are_an_error() {
    let mut tree = SourceTree::default();
    tree.files.insert(
        "src/lib.rs".into(),
        "// EVOLVE-BLOCK-START a\nfn f() {}\n".into(),
    );
    assert!(
        tree.blocks()
            .unwrap_err()
            .to_string()
            .contains("never closed")
    );
    tree.files.insert(
        "src/lib.rs".into(),
        "fn f() {}\n// EVOLVE-BLOCK-END\n".into(),
    );
    assert!(
        tree.blocks()
            .unwrap_err()
            .to_string()
            .contains("END without a START")
    );
}

#[test]
fn the_codec_crate_has_evolvable_blocks_that_edits_can_reach() {
    let codec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../codec");
    let tree = SourceTree::load(&codec).unwrap();
    let blocks = tree.blocks().unwrap();
    assert!(blocks.len() >= 5, "{} blocks", blocks.len());
    // Replacing a block's whole content with itself must be accepted for every block.
    for block in &blocks {
        let content = &tree.files[&block.file][block.content.clone()];
        if content.trim().is_empty() {
            continue;
        }
        let patched = apply(&tree, &[edit(&block.name, content, content)])
            .unwrap_or_else(|rejection| panic!("{rejection}"));
        assert_eq!(patched, tree);
    }
}

#[test]
fn a_replacement_at_the_end_of_a_block_keeps_the_end_marker_on_its_own_line() {
    let original = fixture();
    for (replace, expected) in [
        ("    byte\n}", "u8 {\n    byte\n}\n// EVOLVE-BLOCK-END\n"),
        ("", "u8 {\n// EVOLVE-BLOCK-END\n"),
    ] {
        let patched = apply(
            &original,
            &[edit("transform", "    byte.wrapping_add(1)\n}\n", replace)],
        )
        .unwrap();
        assert!(lib(&patched).contains(expected), "{}", lib(&patched));
        assert_eq!(patched.blocks().unwrap().len(), 2);
    }
}
