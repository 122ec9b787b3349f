//! The static policy: candidates that try forbidden things through their source are refused
//! before they are built, each with the rule, the file, the line and the block.

use codeclab_lab::candidate::{Edit, Policy, Rejection, Rule, SourceTree, check, prepare};
use std::path::Path;

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

/// The rules the policy reports for a candidate body.
fn rules_broken(body: &str) -> Vec<Rule> {
    match prepare(&fixture(), &candidate(body), &Policy::default()) {
        Ok(_) => Vec::new(),
        Err(Rejection::Policy(rejection)) => {
            for violation in &rejection.violations {
                if matches!(violation.rule, Rule::SourceGrowth { .. }) {
                    continue;
                }
                assert_eq!(violation.file, Path::new("src/lib.rs"));
                assert_eq!(violation.block.as_deref(), Some("transform"));
                assert!((5..=14).contains(&violation.line), "{violation}");
            }
            rejection.violations.into_iter().map(|v| v.rule).collect()
        }
        Err(other) => panic!("expected a policy rejection, got {other}"),
    }
}

#[test]
fn a_clean_candidate_passes() {
    assert_eq!(rules_broken("    byte.rotate_left(3) ^ 0x5a\n"), []);
}

#[test]
fn opening_a_file_is_refused() {
    assert_eq!(
        rules_broken("    std::fs::read(\"/etc/passwd\").map_or(byte, |d| d[0])\n"),
        [Rule::ForbiddenModule {
            path: "std::fs".into()
        }]
    );
}

#[test]
fn opening_a_socket_is_refused() {
    assert_eq!(
        rules_broken("    { let _ = ::std::net::TcpStream::connect(\"10.0.0.1:80\"); byte }\n"),
        [Rule::ForbiddenModule {
            path: "std::net".into()
        }]
    );
}

#[test]
fn spawning_a_process_is_refused() {
    assert_eq!(
        rules_broken("    { let _ = std::process::Command::new(\"sh\").status(); byte }\n"),
        [Rule::ForbiddenModule {
            path: "std::process".into()
        }]
    );
}

#[test]
fn reading_the_environment_is_refused_at_run_and_build_time() {
    assert_eq!(
        rules_broken("    std::env::var(\"ANTHROPIC_API_KEY\").map_or(byte, |k| k.len() as u8)\n"),
        [Rule::ForbiddenModule {
            path: "std::env".into()
        }]
    );
    assert_eq!(
        rules_broken("    env!(\"HOME\").len() as u8 ^ byte\n"),
        [Rule::ForbiddenMacro { name: "env".into() }]
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
}

#[test]
fn threads_and_grouped_or_glob_imports_of_forbidden_modules_are_refused() {
    assert_eq!(
        rules_broken("    { use std::{thread, io}; let _ = thread::current(); byte }\n"),
        [Rule::ForbiddenModule {
            path: "std::thread".into()
        }]
    );
    assert_eq!(
        rules_broken("    { use std::*; let _ = fs::read(\"x\"); byte }\n"),
        [Rule::GlobImportOfStandardCrate { path: "std".into() }]
    );
    assert_eq!(
        rules_broken("    { use core as c; byte }\n"),
        [Rule::RenamedStandardCrate {
            name: "core".into()
        }]
    );
    assert_eq!(
        rules_broken("    { use std::{self as s}; let _ = s::fs::read(\"x\"); byte }\n"),
        [Rule::RenamedStandardCrate { name: "std".into() }]
    );
    assert_eq!(
        rules_broken("    { let _ = r#std::r#fs::read(\"x\"); byte }\n"),
        [Rule::ForbiddenModule {
            path: "std::fs".into()
        }]
    );
}

#[test]
fn embedding_files_and_foreign_code_is_refused() {
    assert_eq!(
        rules_broken("    include_bytes!(\"/etc/shadow\")[0] ^ byte\n"),
        [Rule::ForbiddenMacro {
            name: "include_bytes".into()
        }]
    );
    assert_eq!(
        rules_broken("    { unsafe extern \"C\" { fn getpid() -> i32; } byte }\n"),
        [Rule::Unsafe, Rule::Extern]
    );
    for attribute in [
        "#[path = \"/etc/passwd\"]",
        "#[cfg_attr(all(), path = \"/etc/passwd\")]",
    ] {
        let body = format!("    byte\n}}\n{attribute}\nmod stolen;\nfn unused() {{\n");
        assert_eq!(
            rules_broken(&body),
            [Rule::ForbiddenAttribute {
                name: "path".into()
            }]
        );
    }
    assert_eq!(
        rules_broken("    byte\n}\n#[unsafe(no_mangle)]\nfn exported() {\n"),
        [
            Rule::ForbiddenAttribute {
                name: "no_mangle".into()
            },
            Rule::Unsafe
        ]
    );
}

#[test]
fn a_huge_embedded_table_is_refused() {
    let table: Vec<String> = (0..40_000).map(|i| (i % 256).to_string()).collect();
    let body = format!(
        "    const TABLE: [u8; 40000] = [{}];\n    TABLE[byte as usize]\n",
        table.join(",")
    );
    let rules = rules_broken(&body);
    assert!(
        rules
            .iter()
            .any(|rule| matches!(rule, Rule::BlockTooLarge { limit, .. } if *limit == Policy::default().max_block_bytes)),
        "{rules:?}"
    );
    let long_string = format!("    \"{}\".len() as u8 ^ byte\n", "x".repeat(5000));
    assert!(matches!(
        rules_broken(&long_string).as_slice(),
        [Rule::LiteralTooLarge { bytes: 5002, .. }]
    ));
}

#[test]
fn source_that_does_not_parse_is_refused_with_its_line() {
    let rules = rules_broken("    byte.wrapping_add(1\n");
    assert!(
        matches!(rules.as_slice(), [Rule::Syntax { .. }]),
        "{rules:?}"
    );
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

#[test]
fn the_unchanged_codec_passes_its_own_policy() {
    let codec = SourceTree::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../codec")).unwrap();
    assert!(check(&codec, &codec, &Policy::default()).is_ok());
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
}
