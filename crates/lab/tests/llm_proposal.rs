//! The reply parser: every malformed proposal is refused with a precise reason.

use codeclab_codec::Genome;
use codeclab_lab::llm::{
    ProposalRejection, ProposedChange, apply_genome_change, parse_proposal_text,
};

fn rejection(reply: &str) -> ProposalRejection {
    parse_proposal_text(reply).unwrap_err()
}

const HEAD: &str = r#""hypothesis": "h", "reasoning": "r", "expected_effect": "e""#;

#[test]
fn prose_around_the_json_is_ignored() {
    let reply =
        format!("Thinking aloud first.\n{{{HEAD}, \"genome\": {{\"qp_offset\": -1}}}}\nDone.");
    let proposal = parse_proposal_text(&reply).unwrap();
    assert_eq!(proposal.hypothesis, "h");
    assert!(matches!(proposal.change, ProposedChange::Genome(_)));
}

#[test]
fn a_fenced_block_wins_over_braces_in_the_prose() {
    let reply =
        format!("Use {{braces}} freely.\n```json\n{{{HEAD}, \"genome\": {{\"a\": 1}}}}\n```\n");
    assert!(parse_proposal_text(&reply).is_ok());
}

#[test]
fn each_malformation_has_its_own_reason() {
    assert_eq!(rejection("no json here"), ProposalRejection::NoJson);
    assert_eq!(
        rejection(r#"{"reasoning": "r", "expected_effect": "e", "genome": {"a": 1}}"#),
        ProposalRejection::MissingField {
            field: "hypothesis".into()
        }
    );
    assert_eq!(
        rejection(
            r#"{"hypothesis": 3, "reasoning": "r", "expected_effect": "e", "genome": {"a": 1}}"#
        ),
        ProposalRejection::WrongType {
            field: "hypothesis".into(),
            expected: "a string".into()
        }
    );
    assert_eq!(
        rejection(
            r#"{"hypothesis": " ", "reasoning": "r", "expected_effect": "e", "genome": {"a": 1}}"#
        ),
        ProposalRejection::EmptyField {
            field: "hypothesis".into()
        }
    );
    assert_eq!(
        rejection(&format!("{{{HEAD}}}")),
        ProposalRejection::NoChange
    );
    assert_eq!(
        rejection(&format!(
            "{{{HEAD}, \"genome\": {{\"a\": 1}}, \"edits\": []}}"
        )),
        ProposalRejection::BothChanges
    );
    assert_eq!(
        rejection(&format!("{{{HEAD}, \"genome\": {{}}}}")),
        ProposalRejection::EmptyField {
            field: "genome".into()
        }
    );
    assert_eq!(
        rejection(&format!("{{{HEAD}, \"edits\": []}}")),
        ProposalRejection::EmptyField {
            field: "edits".into()
        }
    );
    assert_eq!(
        rejection(&format!(
            "{{{HEAD}, \"edits\": [{{\"block\": \"b\", \"search\": \"s\", \"replace\": \"\"}}, {{\"block\": \"b\", \"replace\": \"r\"}}]}}"
        )),
        ProposalRejection::MissingField {
            field: "edits[1].search".into()
        }
    );
    assert_eq!(rejection("[1, 2] {"), ProposalRejection::NoJson);
}

#[test]
fn an_empty_replace_deletes_and_is_allowed() {
    let reply = format!(
        "{{{HEAD}, \"edits\": [{{\"block\": \"b\", \"search\": \"s\", \"replace\": \"\"}}]}}"
    );
    let ProposedChange::Edits(edits) = parse_proposal_text(&reply).unwrap().change else {
        panic!("expected edits");
    };
    assert_eq!(edits[0].replace, "");
}

#[test]
fn a_genome_change_is_checked_against_the_genome_fields_and_ranges() {
    let base = Genome::default();
    let change = |json: &str| -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(json).unwrap()
    };
    let changed =
        apply_genome_change(&base, &change(r#"{"me_range": 24, "rdoq": false}"#)).unwrap();
    assert_eq!(changed.me_range, 24);
    assert!(!changed.rdoq);
    assert_eq!(
        Genome {
            me_range: base.me_range,
            rdoq: base.rdoq,
            ..changed
        },
        base
    );

    let unknown = apply_genome_change(&base, &change(r#"{"warp_motion": true}"#)).unwrap_err();
    assert!(
        matches!(&unknown, ProposalRejection::InvalidGenome { message } if message.contains("warp_motion")),
        "{unknown}"
    );
    let out_of_range = apply_genome_change(&base, &change(r#"{"max_block_log2": 9}"#)).unwrap_err();
    assert!(matches!(
        out_of_range,
        ProposalRejection::InvalidGenome { .. }
    ));
    let wrong_type = apply_genome_change(&base, &change(r#"{"rdoq": "yes"}"#)).unwrap_err();
    assert!(matches!(
        wrong_type,
        ProposalRejection::InvalidGenome { .. }
    ));
}
