//! Code candidates: SEARCH/REPLACE edits confined to the codec's evolvable blocks, the static
//! policy on the patched source, the confined offline build, and the sandboxed smoke stage, taken
//! in that order by [`Candidates::evaluate`]. Every way a candidate can be refused is a
//! [`Rejection`] whose text goes back to the planner.

mod edit;
mod pipeline;
mod policy;
mod smoke;
mod tree;
mod workspace;

pub use edit::{Edit, EditFailure, EditRejection, Location, apply};
pub use pipeline::{CODEC_BINARY, Candidates, PipelineError};
pub use policy::{Policy, PolicyRejection, Rule, Violation, check};
pub use smoke::{
    Decibels, MIN_SMOKE_PSNR_Y, Output, SmokeError, SmokeFailure, SmokeReport, SmokeSpec,
    smoke_test,
};
pub use tree::{BLOCK_END, BLOCK_START, Block, SourceTree, TreeError};
pub use workspace::{Project, WorkspaceError};

use crate::llm::ProposalRejection;
use crate::secrets::Secrets;
use codeclab_sandbox::{BuildFailure, Outcome};
use serde::{Deserialize, Serialize};

/// Why a proposal did not become a measured candidate, in a form the loop stores and feeds back
/// to the planner in its next prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Rejection {
    #[error("the reply was rejected: {0}")]
    Reply(ProposalRejection),
    #[error("the edits were rejected: {0}")]
    Edit(EditRejection),
    #[error("{0}")]
    Policy(PolicyRejection),
    #[error("{0}")]
    Build(BuildFailure),
    #[error("the candidate binary {outcome}; its last output:\n{stderr_tail}")]
    Run {
        outcome: Outcome,
        stderr_tail: String,
    },
    #[error("the smoke test failed: {0}")]
    Smoke(SmokeFailure),
}

impl Rejection {
    /// The stage of the pipeline that refused the candidate.
    pub fn stage(&self) -> &'static str {
        match self {
            Rejection::Reply(_) => "reply",
            Rejection::Edit(_) => "edit",
            Rejection::Policy(_) => "policy",
            Rejection::Build(_) => "build",
            Rejection::Run { .. } | Rejection::Smoke(_) => "smoke",
        }
    }

    /// The rejection with the secrets scrubbed from what it quotes of the compiler's or the
    /// candidate's output (the rest is the lab's own words, or the planner's, which the planner
    /// scrubs itself).
    pub fn scrubbed(self, secrets: &Secrets) -> Rejection {
        match self {
            Rejection::Build(BuildFailure::Compile { diagnostics }) => {
                Rejection::Build(BuildFailure::Compile {
                    diagnostics: secrets.scrub(&diagnostics),
                })
            }
            Rejection::Build(BuildFailure::Environment { message }) => {
                Rejection::Build(BuildFailure::Environment {
                    message: secrets.scrub(&message),
                })
            }
            Rejection::Run {
                outcome,
                stderr_tail,
            } => Rejection::Run {
                outcome,
                stderr_tail: secrets.scrub(&stderr_tail),
            },
            Rejection::Smoke(SmokeFailure::NotY4m { output, message }) => {
                Rejection::Smoke(SmokeFailure::NotY4m {
                    output,
                    message: secrets.scrub(&message),
                })
            }
            Rejection::Smoke(SmokeFailure::DamagedFrame {
                output,
                frame,
                message,
            }) => Rejection::Smoke(SmokeFailure::DamagedFrame {
                output,
                frame,
                message: secrets.scrub(&message),
            }),
            other => other,
        }
    }
}

impl From<ProposalRejection> for Rejection {
    fn from(rejection: ProposalRejection) -> Self {
        Rejection::Reply(rejection)
    }
}

impl From<EditRejection> for Rejection {
    fn from(rejection: EditRejection) -> Self {
        Rejection::Edit(rejection)
    }
}

impl From<PolicyRejection> for Rejection {
    fn from(rejection: PolicyRejection) -> Self {
        Rejection::Policy(rejection)
    }
}

impl From<BuildFailure> for Rejection {
    fn from(failure: BuildFailure) -> Self {
        Rejection::Build(failure)
    }
}

/// Applies the edits to `original` and checks the result against the policy: the patched source,
/// ready to build, or the first reason it cannot be.
pub fn prepare(
    original: &SourceTree,
    edits: &[Edit],
    policy: &Policy,
) -> Result<SourceTree, Rejection> {
    let patched = apply(original, edits)?;
    check(original, &patched, policy)?;
    Ok(patched)
}

/// The last `max_bytes` of a program's stderr, cut on a character boundary, for feedback.
pub fn output_tail(stderr: &[u8], max_bytes: usize) -> String {
    let text = String::from_utf8_lossy(stderr);
    let start = text.len().saturating_sub(max_bytes);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}
