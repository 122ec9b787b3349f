//! The static policy: candidates that try forbidden things through their source are refused
//! before they are built, each with the rule, the file, the line and the block. The policy judges
//! meaning, not spelling: aliases, paths, raw names and macro indirection reach nothing, and a
//! block cannot reach the fixed code around it.

use codeclab_lab::candidate::{Edit, Policy, Rejection, Rule, SourceTree, check, prepare};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture() -> SourceTree {
    SourceTree::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/candidates/codec_like"),
    )
    .unwrap()
}

/// Replaces the body of `transform` with `body`.
fn candidate(body: &str) -> Vec<Edit> {
    vec![Edit {
        block: "transform".into(),
        search: "    byte.wrapping_add(1)\n".into(),
        replace: body.into(),
    }]
}

/// Adds items after `transform`, inside its block.
fn items(text: &str) -> Vec<Edit> {
    vec![Edit {
        block: "transform".into(),
        search: "    byte.wrapping_add(1)\n}\n".into(),
        replace: format!("    byte.wrapping_add(1)\n}}\n{text}\n"),
    }]
}

/// The rules the policy reports for a candidate's edits of the fixture.
fn rules_of(edits: &[Edit]) -> Vec<Rule> {
    match prepare(&fixture(), edits, &Policy::default()) {
        Ok(_) => Vec::new(),
        Err(Rejection::Policy(rejection)) => {
            for violation in &rejection.violations {
                if matches!(violation.rule, Rule::SourceGrowth { .. }) {
                    continue;
                }
                assert_eq!(violation.file, Path::new("src/lib.rs"));
                assert_eq!(violation.block.as_deref(), Some("transform"));
                assert!((5..=40).contains(&violation.line), "{violation}");
            }
            rejection.violations.into_iter().map(|v| v.rule).collect()
        }
        Err(other) => panic!("expected a policy rejection, got {other}"),
    }
}

/// The rules the policy reports for a candidate body.
fn rules_broken(body: &str) -> Vec<Rule> {
    rules_of(&candidate(body))
}

fn module(path: &str) -> Rule {
    Rule::ForbiddenModule { path: path.into() }
}

fn forbidden_macro(name: &str) -> Rule {
    Rule::ForbiddenMacro { name: name.into() }
}

#[test]
fn a_clean_candidate_passes() {
    assert_eq!(rules_broken("    byte.rotate_left(3) ^ 0x5a\n"), []);
    // Names that are also forbidden modules, used as plain names, are fine.
    assert_eq!(
        rules_broken(
            "    let process = byte.rotate_left(3);\n    let path = [process];\n    path[0] ^ 0x5a\n"
        ),
        []
    );
    assert_eq!(
        rules_of(&items(
            "macro_rules! twice { ($e:expr) => { $e.wrapping_mul(2) } }\npub fn doubled(b: u8) -> u8 { twice!(b) }\nmod helpers { pub fn one() -> u8 { 1 } }"
        )),
        []
    );
}

#[test]
fn opening_a_file_is_refused() {
    assert_eq!(
        rules_broken("    std::fs::read(\"/etc/passwd\").map_or(byte, |d| d[0])\n"),
        [module("std::fs")]
    );
}

#[test]
fn opening_a_socket_is_refused() {
    assert_eq!(
        rules_broken("    { let _ = ::std::net::TcpStream::connect(\"10.0.0.1:80\"); byte }\n"),
        [module("std::net")]
    );
}

#[test]
fn spawning_a_process_is_refused() {
    assert_eq!(
        rules_broken("    { let _ = std::process::Command::new(\"sh\").status(); byte }\n"),
        [module("std::process")]
    );
}

#[test]
fn probing_paths_is_refused() {
    assert_eq!(
        rules_broken("    u8::from(std::path::Path::new(\"/etc/passwd\").exists()) ^ byte\n"),
        [module("std::path")]
    );
}

#[test]
fn reading_the_environment_is_refused_at_run_and_build_time() {
    assert_eq!(
        rules_broken("    std::env::var(\"ANTHROPIC_API_KEY\").map_or(byte, |k| k.len() as u8)\n"),
        [forbidden_macro("env"), module("std::env")]
    );
    assert_eq!(
        rules_broken("    env!(\"HOME\").len() as u8 ^ byte\n"),
        [forbidden_macro("env")]
    );
}

#[test]
fn forbidden_macros_are_refused_under_any_path_alias_or_raw_name() {
    for name in [
        "include",
        "include_bytes",
        "include_str",
        "env",
        "option_env",
        "asm",
        "global_asm",
        "naked_asm",
    ] {
        let spellings = [
            format!("    {{ let _ = ::core::{name}!(\"x\"); byte }}\n"),
            format!("    {{ let _ = std::prelude::v1::{name}!(\"x\"); byte }}\n"),
            format!("    {{ let _ = r#{name}!(\"x\"); byte }}\n"),
            format!("    {{ use core::{name} as innocent; let _ = innocent!(\"x\"); byte }}\n"),
            format!("    {{ use std::{{{name} as innocent}}; let _ = innocent!(\"x\"); byte }}\n"),
        ];
        for body in spellings {
            let rules = rules_broken(&body);
            assert!(
                rules.contains(&forbidden_macro(name)),
                "{body} broke {rules:?}"
            );
        }
    }
}

#[test]
fn a_macro_called_or_defined_through_a_metavariable_is_refused() {
    for definition in [
        "macro_rules! call { ($f:ident) => { $f!(\"x\") } }",
        "macro_rules! call { ($($f:tt)*) => { $($f)*!(\"x\") } }",
        "macro_rules! call { ($($p:ident),*) => { $($p)::*!(\"x\") } }",
        "macro_rules! define { ($name:ident) => { macro_rules! $name { () => {} } } }",
    ] {
        let rules = rules_of(&items(definition));
        assert!(
            rules.contains(&Rule::MetavariableMacroCall),
            "{definition}: {rules:?}"
        );
    }
    // The forbidden name passed to such a macro is refused in its own right.
    let rules = rules_of(&items(
        "macro_rules! call { ($f:ident) => { $f!(\"x\") } }\npub fn leak() { let _ = call!(include_str); }",
    ));
    assert!(rules.contains(&forbidden_macro("include_str")), "{rules:?}");
}

#[test]
fn shadowing_a_macro_of_the_standard_library_or_of_the_fixed_code_is_refused() {
    for shadow in [
        "macro_rules! assert { ($($t:tt)*) => {} }",
        "macro_rules! vec { ($($t:tt)*) => { Vec::new() } }",
        "use crate::doubled as format;\npub fn doubled() {}",
    ] {
        let rules = rules_of(&items(shadow));
        assert!(
            rules
                .iter()
                .any(|rule| matches!(rule, Rule::ShadowedMacro { .. })),
            "{shadow}: {rules:?}"
        );
    }
}

#[test]
fn threads_and_grouped_or_glob_imports_of_forbidden_modules_are_refused() {
    assert_eq!(
        rules_broken("    { use std::{thread, io}; let _ = thread::current(); byte }\n"),
        [module("std::thread"), module("thread")]
    );
    assert_eq!(
        rules_broken("    { use std::*; let _ = fs::read(\"x\"); byte }\n"),
        [Rule::GlobImport { path: "std".into() }, module("fs")]
    );
    assert_eq!(
        rules_broken("    { use core as c; byte }\n"),
        [Rule::RenamedStandardCrate {
            name: "core".into()
        }]
    );
    assert_eq!(
        rules_broken("    { use std::{self as s}; let _ = s::fs::read(\"x\"); byte }\n"),
        [
            Rule::RenamedStandardCrate { name: "std".into() },
            module("s::fs")
        ]
    );
    assert_eq!(
        rules_broken("    { let _ = r#std::r#fs::read(\"x\"); byte }\n"),
        [module("std::fs")]
    );
    // A forbidden module handed to a macro, which could splice it into a path.
    let rules = rules_of(&items(
        "macro_rules! reach { ($m:expr) => { () } }\npub fn leak() { let _ = reach!(fs); }",
    ));
    assert_eq!(rules, [module("fs")]);
}

#[test]
fn nested_groups_hide_neither_a_renamed_standard_crate_nor_a_glob() {
    assert_eq!(
        rules_broken("    { use std::{{self as s}}; byte }\n"),
        [Rule::RenamedStandardCrate { name: "std".into() }]
    );
    assert_eq!(
        rules_broken("    { use std::{{*}}; byte }\n"),
        [Rule::GlobImport { path: "std".into() }]
    );
    assert_eq!(
        rules_broken("    { use core::{cmp::*}; byte }\n"),
        [Rule::GlobImport {
            path: "core::cmp".into()
        }]
    );
}

#[test]
fn code_in_an_attribute_string_a_derive_reads_passes_the_same_rules() {
    for (attribute, expected) in [
        (
            "#[serde(bound = \"[u8; panic!(\\\"{}\\\", include_str!(\\\"/etc/os-release\\\"))]: Sized\")]",
            forbidden_macro("include_str"),
        ),
        (
            "#[serde(bound = \"[(); blk!(unsafe {{ 0 }})]: Sized\")]",
            Rule::Unsafe,
        ),
        (
            "#[serde(serialize_with = \"std::fs::write\")]",
            module("std::fs"),
        ),
    ] {
        let rules = rules_of(&items(&format!(
            "#[derive(serde::Serialize)]\n{attribute}\npub struct Carrier;"
        )));
        assert!(rules.contains(&expected), "{attribute}: {rules:?}");
    }
    // Documentation is text: it may mention anything.
    assert_eq!(
        rules_of(&items(
            "/// Unlike `include_str!`, this never reads std::fs.\npub fn documented() {}"
        )),
        []
    );
}

#[test]
fn a_block_may_not_add_a_name_the_fixed_code_uses() {
    for (items_text, name) in [
        ("#[allow(dead_code)]\nmod std { pub mod io {} }", "std"),
        ("#[allow(non_camel_case_types)]\ntype u64 = u8;", "u64"),
        (
            "trait Hijack { fn iter(self) -> usize; }\nimpl Hijack for &[u8] { fn iter(self) -> usize { 0 } }",
            "iter",
        ),
        ("use core::primitive::u8 as Vec;", "Vec"),
        ("macro_rules! collect { () => {} }", "collect"),
    ] {
        let rules = rules_of(&items(items_text));
        assert!(
            rules.contains(&Rule::ShadowsFixedName { name: name.into() }),
            "{items_text}: {rules:?}"
        );
    }
    // The block's own items keep their names, and new names the fixed code never uses are free.
    assert_eq!(
        rules_broken("    helper(byte)\n}\nfn helper(byte: u8) -> u8 {\n    byte ^ 1\n"),
        []
    );
    // An item named through a metavariable could take any name.
    assert_eq!(
        rules_of(&items(
            "macro_rules! define { ($n:ident) => { fn $n() {} } }"
        )),
        [
            Rule::SplicingMacro {
                fragment: "ident".into()
            },
            Rule::IndirectItem
        ]
    );
}

#[test]
fn names_handed_to_a_macro_cannot_rebuild_what_is_refused() {
    let rules = rules_of(&items(
        "macro_rules! m { ($k:tt $n:tt) => { $k $n; } }\nm!(mod evil);",
    ));
    assert!(
        rules.contains(&Rule::ModuleFile {
            name: "evil".into()
        }),
        "{rules:?}"
    );
    let rules = rules_of(&items(
        "macro_rules! def { ($d:tt, $m:ident, $b:tt, $n:ident) => { $m $b $n { () => {} } } }\ndef!($, macro_rules, !, vec);",
    ));
    assert!(rules.contains(&Rule::MetavariableMacroCall), "{rules:?}");
}

#[test]
fn names_of_forbidden_modules_are_fine_as_plain_names_and_in_standard_macros() {
    assert_eq!(
        rules_broken(
            "    let net = byte.count_ones();\n    debug_assert!(net < 9);\n    byte ^ net as u8\n"
        ),
        []
    );
    assert_eq!(
        rules_of(&items(
            "#[cfg(target_feature = \"avx2\")]\npub fn fast() {}"
        )),
        []
    );
    assert_eq!(
        rules_of(&items(
            "#[cfg_attr(all(), target_feature(enable = \"avx2\"))]\npub fn fast() {}"
        )),
        [Rule::ForbiddenAttribute {
            name: "target_feature".into()
        }]
    );
}

#[test]
fn unsafe_code_is_refused_even_inside_a_macro() {
    assert_eq!(
        rules_broken("    unsafe { std::mem::transmute::<u8, u8>(byte) }\n"),
        [Rule::Unsafe]
    );
    assert_eq!(
        rules_broken("    { let v = vec![unsafe { *(&byte as *const u8) }]; v[0] }\n"),
        [Rule::Unsafe]
    );
    assert_eq!(
        rules_of(&items(
            "macro_rules! peek { ($p:expr) => { unsafe { *$p } } }"
        )),
        [Rule::Unsafe]
    );
}

#[test]
fn embedding_files_and_foreign_code_is_refused() {
    assert_eq!(
        rules_broken("    include_bytes!(\"/etc/shadow\")[0] ^ byte\n"),
        [forbidden_macro("include_bytes")]
    );
    assert_eq!(
        rules_broken("    { unsafe extern \"C\" { fn getpid() -> i32; } byte }\n"),
        [Rule::Unsafe, Rule::Extern]
    );
    for attribute in [
        "#[path = \"/etc/passwd\"]",
        "#[cfg_attr(all(), path = \"/etc/passwd\")]",
    ] {
        assert_eq!(
            rules_of(&items(&format!("{attribute}\nmod stolen;"))),
            [
                Rule::ForbiddenAttribute {
                    name: "path".into()
                },
                Rule::ModuleFile {
                    name: "stolen".into()
                }
            ]
        );
    }
    for module in [
        "macro_rules! load { () => { mod stolen; } }",
        "macro_rules! load { ($m:ident) => { mod $m; } }",
    ] {
        let rules = rules_of(&items(module));
        assert!(
            rules
                .iter()
                .any(|rule| matches!(rule, Rule::ModuleFile { .. })),
            "{module}: {rules:?}"
        );
    }
    assert_eq!(
        rules_of(&items("#[unsafe(no_mangle)]\nfn exported() {}")),
        [
            Rule::ForbiddenAttribute {
                name: "no_mangle".into()
            },
            Rule::Unsafe
        ]
    );
    assert_eq!(
        rules_of(&items(
            "#[doc = include_str!(\"/etc/passwd\")]\nfn documented() {}"
        )),
        [forbidden_macro("include_str")]
    );
    assert_eq!(
        rules_of(&items(
            "#[debugger_visualizer(gdb_script_file = \"/etc/passwd\")]\nmod shown {}"
        )),
        [Rule::ForbiddenAttribute {
            name: "debugger_visualizer".into()
        }]
    );
    assert_eq!(
        rules_of(&items("extern crate std as s;")),
        [
            Rule::Extern,
            Rule::RenamedStandardCrate { name: "std".into() }
        ]
    );
}

#[test]
fn attributes_must_be_literal_outer_attributes() {
    assert_eq!(
        rules_of(&items(
            "macro_rules! exported { ($a:meta) => { #[$a] fn hook() {} } }"
        )),
        [Rule::IndirectAttribute]
    );
    assert_eq!(
        rules_of(&items(
            "macro_rules! exported { ($a:block) => { # $a fn hook() {} } }"
        )),
        [Rule::IndirectAttribute]
    );
    let rules = rules_of(&items("#![allow(unused)]\nfn f() {}"));
    assert!(rules.contains(&Rule::InnerAttribute), "{rules:?}");
    assert_eq!(
        rules_of(&items("macro_rules! imports { ($m:path) => { use $m; } }")),
        [Rule::IndirectUse]
    );
}

#[test]
fn a_macro_may_not_take_fragments_that_splice_names_and_keywords() {
    for fragment in ["ident", "tt"] {
        let definition =
            format!("macro_rules! helpers {{ ($name:{fragment} $kw:expr) => {{ () }} }}");
        assert_eq!(
            rules_of(&items(&definition)),
            [Rule::SplicingMacro {
                fragment: fragment.into()
            }],
            "{definition}"
        );
    }
}

#[test]
fn an_attribute_string_holds_no_item_and_messages_are_text() {
    let rules = rules_of(&items(
        "#[derive(serde::Serialize)]\n#[serde(bound = \"[(); matches!({ impl Codec { fn default() {} } 0u8 }, _) as usize]: Sized\")]\npub struct Hijack;",
    ));
    assert!(rules.contains(&Rule::ItemInAttributeString), "{rules:?}");
    for message in [
        "#[must_use = \"an unsafe quantiser; include it in every path\"]\npub fn level() -> u8 { 1 }",
        "#[deprecated(note = \"set by env, see std::fs\")]\npub fn old() {}",
        "#[derive(serde::Serialize)]\npub struct Named {\n    #[serde(rename = \"env\")]\n    value: u8,\n}",
    ] {
        assert_eq!(rules_of(&items(message)), [], "{message}");
    }
}

#[test]
fn identifiers_are_ascii_so_that_no_lookalike_passes_for_another_name() {
    let rules = rules_of(&items("const \u{212A}EY: u8 = 0;"));
    assert!(
        rules
            .iter()
            .any(|rule| matches!(rule, Rule::NonAsciiIdentifier { .. })),
        "{rules:?}"
    );
}

#[test]
fn a_pathological_block_gets_a_bounded_report() {
    let body = format!(
        "const _: () = {{ let _ = stringify!({}); }};",
        "use ".repeat(5000)
    );
    let rejection = prepare(&fixture(), &items(&body), &Policy::default()).unwrap_err();
    let Rejection::Policy(rejection) = &rejection else {
        panic!("expected a policy rejection, got {rejection}");
    };
    assert!(
        rejection.violations.len() <= 40,
        "{}",
        rejection.violations.len()
    );
    assert!(rejection.to_string().len() < 20_000);
}

#[test]
fn a_huge_embedded_table_is_refused() {
    let table = |entries: usize| {
        let values: Vec<String> = (0..entries).map(|i| (i % 256).to_string()).collect();
        format!(
            "    const TABLE: [u8; {entries}] = [{}];\n    TABLE[byte as usize]\n",
            values.join(",")
        )
    };
    let policy = Policy::default();
    assert!(
        matches!(rules_broken(&table(8_000)).as_slice(), [Rule::BlockTooLarge { limit, .. }] if *limit == policy.max_block_bytes)
    );
    // Past the growth limit, nothing of the source is even read.
    assert!(
        matches!(rules_broken(&table(40_000)).as_slice(), [Rule::SourceGrowth { limit, .. }] if *limit == policy.max_growth_bytes)
    );
    let long_string = format!("    \"{}\".len() as u8 ^ byte\n", "x".repeat(5000));
    assert!(matches!(
        rules_broken(&long_string).as_slice(),
        [Rule::LiteralTooLarge { bytes: 5002, .. }]
    ));
}

#[test]
fn a_block_that_does_not_lex_on_its_own_is_refused_with_its_line() {
    let rules = rules_broken("    byte.wrapping_add(1\n");
    assert!(
        matches!(rules.as_slice(), [Rule::DoesNotLex { .. }]),
        "{rules:?}"
    );
    // A comment opened at the end of a block would swallow the fixed code after it.
    let rules = rules_of(&items("/*"));
    assert!(
        matches!(rules.as_slice(), [Rule::DoesNotLex { .. }]),
        "{rules:?}"
    );
    let rules = rules_of(&items("const QUOTE: &str = \""));
    assert!(
        matches!(rules.as_slice(), [Rule::DoesNotLex { .. }]),
        "{rules:?}"
    );
}

#[test]
fn an_attribute_left_dangling_onto_the_fixed_code_is_refused() {
    let rules = rules_of(&items("#[cfg(any())]"));
    assert!(
        matches!(rules.as_slice(), [Rule::Incomplete { place, .. }] if place == "items"),
        "{rules:?}"
    );
}

/// A one-file crate with a block of statements inside a function and a block of items inside
/// an `impl`, each followed by fixed code.
fn statements_fixture() -> SourceTree {
    let text = "pub struct Codec;

impl Codec {
    // EVOLVE-BLOCK-START methods
    pub fn scale(&self) -> u32 {
        2
    }
    // EVOLVE-BLOCK-END

    pub fn fixed(&self) -> u32 {
        1
    }
}

pub fn predict(a: u32) -> u32 {
    let base = a + 1;
    // EVOLVE-BLOCK-START prediction
    let b = base * 2;
    // EVOLVE-BLOCK-END
    (b + 1) * Codec.scale()
}

pub fn last(a: u32) -> u32 {
    // EVOLVE-BLOCK-START tail
    a + 1
    // EVOLVE-BLOCK-END
}
";
    SourceTree {
        files: BTreeMap::from([(PathBuf::from("src/lib.rs"), text.to_owned())]),
    }
}

fn rules_in(tree: &SourceTree, block: &str, search: &str, replace: &str) -> Vec<Rule> {
    let edits = [Edit {
        block: block.into(),
        search: search.into(),
        replace: replace.into(),
    }];
    match prepare(tree, &edits, &Policy::default()) {
        Ok(_) => Vec::new(),
        Err(Rejection::Policy(rejection)) => {
            rejection.violations.into_iter().map(|v| v.rule).collect()
        }
        Err(other) => panic!("expected a policy rejection, got {other}"),
    }
}

#[test]
fn blocks_parse_on_their_own_as_the_code_their_place_expects() {
    let tree = statements_fixture();
    // Statements that stand on their own pass, in a body and at its end.
    assert_eq!(
        rules_in(
            &tree,
            "prediction",
            "    let b = base * 2;\n",
            "    let b = base * 3;\n"
        ),
        []
    );
    assert_eq!(
        rules_in(&tree, "tail", "    a + 1\n", "    a * 2 + 1\n"),
        []
    );
    assert_eq!(rules_in(&tree, "methods", "        2\n", "        3\n"), []);
    // An expression left open would take the fixed `(b + 1)` as its call's arguments.
    let rules = rules_in(
        &tree,
        "prediction",
        "    let b = base * 2;\n",
        "    let b = base * 2;\n    b.max\n",
    );
    assert!(
        matches!(rules.as_slice(), [Rule::Incomplete { place, message }] if place == "statements" && message.contains("join the fixed code")),
        "{rules:?}"
    );
    // An attribute left at the end of the impl's block would remove the fixed method after it.
    let rules = rules_in(
        &tree,
        "methods",
        "        2\n    }\n",
        "        2\n    }\n    #[cfg(any())]\n",
    );
    assert!(
        matches!(rules.as_slice(), [Rule::Incomplete { place, .. }] if place == "items of an `impl`"),
        "{rules:?}"
    );
    // An inner attribute in a body applies to the fixed function around it.
    let rules = rules_in(
        &tree,
        "prediction",
        "    let b = base * 2;\n",
        "    #![cfg(any())]\n    let b = base * 2;\n",
    );
    assert!(rules.contains(&Rule::InnerAttribute), "{rules:?}");
}

#[test]
fn code_outside_the_blocks_must_stay_the_original_token_for_token() {
    let original = statements_fixture();
    let mut patched = original.clone();
    let text = patched.files.get_mut(Path::new("src/lib.rs")).unwrap();
    *text = text.replace("        1\n    }\n}", "        7\n    }\n}");
    let rejection = check(&original, &patched, &Policy::default()).unwrap_err();
    assert_eq!(
        rejection
            .violations
            .iter()
            .map(|v| &v.rule)
            .collect::<Vec<_>>(),
        [&Rule::FixedCodeChanged]
    );
    assert_eq!(rejection.violations[0].line, 11, "{rejection}");
    // Reformatting the fixed code changes no token.
    let mut reformatted = original.clone();
    let text = reformatted.files.get_mut(Path::new("src/lib.rs")).unwrap();
    *text = text.replace("        1\n    }\n}", "        1 } }");
    assert!(check(&original, &reformatted, &Policy::default()).is_ok());
}

#[test]
fn an_edit_outside_a_block_is_refused_before_the_policy() {
    let edits = vec![Edit {
        block: "weighting".into(),
        search: "pub fn scale() -> u64 {\n    2".into(),
        replace: "pub fn scale() -> u64 {\n    3".into(),
    }];
    let rejection = prepare(&fixture(), &edits, &Policy::default()).unwrap_err();
    assert!(matches!(rejection, Rejection::Edit(_)), "{rejection}");
    assert!(
        rejection
            .to_string()
            .contains("only outside evolvable blocks")
    );
}

fn codec() -> SourceTree {
    SourceTree::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../codec")).unwrap()
}

#[test]
fn the_unchanged_codec_passes_its_own_policy() {
    let codec = codec();
    assert!(check(&codec, &codec, &Policy::default()).is_ok());
}

#[test]
fn every_block_of_the_codec_stands_on_its_own_and_passes_the_policy_when_touched() {
    let codec = codec();
    let blocks = codec.blocks().unwrap();
    assert!(blocks.len() >= 10, "{} blocks", blocks.len());
    for block in blocks {
        let content = codec.files[&block.file][block.content.clone()].to_owned();
        let edits = [Edit {
            block: block.name.clone(),
            search: content.clone(),
            replace: format!("{content}// Touched.\n"),
        }];
        if let Err(rejection) = prepare(&codec, &edits, &Policy::default()) {
            panic!("block `{}`: {rejection}", block.name);
        }
    }
}

#[test]
fn rejections_read_well_and_serialise() {
    let rejection = prepare(
        &fixture(),
        &candidate("    std::fs::read(\"x\").map_or(byte, |d| d[0])\n"),
        &Policy::default(),
    )
    .unwrap_err();
    let message = rejection.to_string();
    assert!(
        message.contains("src/lib.rs:8 (block `transform`): `std::fs` is not allowed"),
        "{message}"
    );
    let json = serde_json::to_value(&rejection).unwrap();
    assert_eq!(json["stage"], "policy");
    assert_eq!(rejection.stage(), "policy");
}

#[test]
fn deeply_nested_code_is_refused_without_harm_to_the_lab() {
    let depth = 10_000;
    let body = format!("    {}byte{}\n", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(
        rules_broken(&body),
        [Rule::NestingTooDeep {
            depth: depth + 1,
            limit: 64
        }]
    );
    // The same text inside an attribute's string.
    let rules = rules_of(&items(&format!(
        "#[derive(serde::Serialize)]\n#[serde(bound = \"{}\")]\npub struct Deep;",
        "(".repeat(500) + &")".repeat(500)
    )));
    assert!(
        rules
            .iter()
            .all(|rule| matches!(rule, Rule::LiteralTooLarge { .. })),
        "{rules:?}"
    );
}
