//! Turning a model's reply into a validated proposal, or a precise reason it is not one.
//!
//! The reply must hold one JSON object:
//! `{"hypothesis": str, "reasoning": str, "expected_effect": str, "genome": {..}}` or the same
//! with `"edits": [{"block": str, "search": str, "replace": str}, ..]` instead of `genome`.

use super::{Completion, StopReason};
use crate::candidate::Edit;
use codeclab_codec::Genome;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A validated proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub hypothesis: String,
    pub reasoning: String,
    pub expected_effect: String,
    pub change: ProposedChange,
}

/// What the proposal changes: genome parameters, or code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposedChange {
    /// Genome fields to set, by name (ranges are checked by the genome itself).
    Genome(Map<String, Value>),
    Edits(Vec<Edit>),
}

/// Why a reply is not a usable proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProposalRejection {
    #[error(
        "the reply was cut off at the output limit ({output_tokens:?} tokens); answer more briefly"
    )]
    Truncated { output_tokens: Option<u64> },
    #[error("the model declined to answer")]
    Refused,
    #[error("the reply holds no JSON object")]
    NoJson,
    #[error("the reply's JSON is invalid at line {line}, column {column}: {message}")]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the reply's JSON is not an object")]
    NotAnObject,
    #[error("field `{field}` is missing")]
    MissingField { field: String },
    #[error("field `{field}` must be {expected}")]
    WrongType { field: String, expected: String },
    #[error("field `{field}` is empty")]
    EmptyField { field: String },
    #[error("give either `genome` or `edits`, not both")]
    BothChanges,
    #[error("give either `genome` or `edits`; the reply has neither")]
    NoChange,
    #[error("the genome change is not valid: {message}")]
    InvalidGenome { message: String },
}

/// The genome `base` with a proposal's fields set: unknown fields and values outside the
/// genome's declared ranges are rejected with the genome's own message.
pub fn apply_genome_change(
    base: &Genome,
    fields: &Map<String, Value>,
) -> Result<Genome, ProposalRejection> {
    let invalid = |message: String| ProposalRejection::InvalidGenome { message };
    let mut merged = serde_json::to_value(base).map_err(|error| invalid(error.to_string()))?;
    let Value::Object(current) = &mut merged else {
        return Err(invalid("the genome does not serialise to an object".into()));
    };
    for (name, value) in fields {
        current.insert(name.clone(), value.clone());
    }
    Genome::from_json(&merged.to_string()).map_err(|error| invalid(error.to_string()))
}

/// Validates a completion: a truncated or refused reply is rejected before its text is read.
pub fn parse_proposal(completion: &Completion) -> Result<Proposal, ProposalRejection> {
    match completion.stop_reason {
        StopReason::MaxTokens => Err(ProposalRejection::Truncated {
            output_tokens: completion.usage.map(|usage| usage.output_tokens),
        }),
        StopReason::Refusal => Err(ProposalRejection::Refused),
        _ => parse_proposal_text(&completion.text),
    }
}

/// The JSON text in a reply: a fenced ```json block if there is one, else from the first `{` to
/// the last `}`.
fn json_text(reply: &str) -> Option<&str> {
    if let Some(start) = reply.find("```json") {
        let body = &reply[start + "```json".len()..];
        return Some(body.find("```").map_or(body, |end| &body[..end]));
    }
    let first = reply.find('{')?;
    let last = reply.rfind('}')?;
    (first < last).then(|| &reply[first..=last])
}

fn string_field(object: &Map<String, Value>, field: &str) -> Result<String, ProposalRejection> {
    match object.get(field) {
        None | Some(Value::Null) => Err(ProposalRejection::MissingField {
            field: field.into(),
        }),
        Some(Value::String(text)) if text.trim().is_empty() => Err(ProposalRejection::EmptyField {
            field: field.into(),
        }),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(ProposalRejection::WrongType {
            field: field.into(),
            expected: "a string".into(),
        }),
    }
}

fn edit_field(
    edit: &Map<String, Value>,
    index: usize,
    name: &str,
    may_be_empty: bool,
) -> Result<String, ProposalRejection> {
    let field = format!("edits[{index}].{name}");
    match edit.get(name) {
        None | Some(Value::Null) => Err(ProposalRejection::MissingField { field }),
        Some(Value::String(text)) if text.is_empty() && !may_be_empty => {
            Err(ProposalRejection::EmptyField { field })
        }
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(ProposalRejection::WrongType {
            field,
            expected: "a string".into(),
        }),
    }
}

/// Validates the text of a reply.
pub fn parse_proposal_text(reply: &str) -> Result<Proposal, ProposalRejection> {
    let text = json_text(reply).ok_or(ProposalRejection::NoJson)?;
    let value: Value =
        serde_json::from_str(text).map_err(|error| ProposalRejection::InvalidJson {
            line: error.line(),
            column: error.column(),
            message: error.to_string(),
        })?;
    let Value::Object(object) = value else {
        return Err(ProposalRejection::NotAnObject);
    };
    let hypothesis = string_field(&object, "hypothesis")?;
    let reasoning = string_field(&object, "reasoning")?;
    let expected_effect = string_field(&object, "expected_effect")?;
    let genome = object.get("genome").filter(|v| !v.is_null());
    let edits = object.get("edits").filter(|v| !v.is_null());
    let change = match (genome, edits) {
        (Some(_), Some(_)) => return Err(ProposalRejection::BothChanges),
        (None, None) => return Err(ProposalRejection::NoChange),
        (Some(Value::Object(fields)), None) if fields.is_empty() => {
            return Err(ProposalRejection::EmptyField {
                field: "genome".into(),
            });
        }
        (Some(Value::Object(fields)), None) => ProposedChange::Genome(fields.clone()),
        (Some(_), None) => {
            return Err(ProposalRejection::WrongType {
                field: "genome".into(),
                expected: "an object of genome fields".into(),
            });
        }
        (None, Some(Value::Array(list))) if list.is_empty() => {
            return Err(ProposalRejection::EmptyField {
                field: "edits".into(),
            });
        }
        (None, Some(Value::Array(list))) => {
            let mut edits = Vec::with_capacity(list.len());
            for (index, item) in list.iter().enumerate() {
                let Value::Object(edit) = item else {
                    return Err(ProposalRejection::WrongType {
                        field: format!("edits[{index}]"),
                        expected: "an object with block, search and replace".into(),
                    });
                };
                edits.push(Edit {
                    block: edit_field(edit, index, "block", false)?,
                    search: edit_field(edit, index, "search", false)?,
                    replace: edit_field(edit, index, "replace", true)?,
                });
            }
            ProposedChange::Edits(edits)
        }
        (None, Some(_)) => {
            return Err(ProposalRejection::WrongType {
                field: "edits".into(),
                expected: "an array of {block, search, replace}".into(),
            });
        }
    };
    Ok(Proposal {
        hypothesis,
        reasoning,
        expected_effect,
        change,
    })
}
