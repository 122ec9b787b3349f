//! Every adaptive context of the bitstream, reset at the start of each frame.

use super::Prob;

/// Plane classes with separate statistics: luma and chroma.
pub const PLANE_TYPES: usize = 2;
/// Transform sizes 4, 8, 16, 32.
pub const TX_SIZES: usize = 4;
/// Bins of the last-position prefix for the largest transform.
pub const LAST_BINS: usize = 10;
pub const SIG_CONTEXTS: usize = 12;
pub const LEVEL_CONTEXTS: usize = 10;

#[derive(Clone, Debug, Default)]
pub struct Contexts {
    /// [neighbours deeper than this node: 0..=2][node size 64, 32, 16]
    pub split: [[Prob; 3]; 3],
    /// [skipped neighbours: 0..=2]
    pub skip: [Prob; 3],
    /// [intra neighbours: 0..=2]
    pub intra: [Prob; 3],
    pub mpm_flag: Prob,
    pub mpm_index: [Prob; 2],
    pub chroma_dm: Prob,
    pub merge_flag: Prob,
    pub merge_index: [Prob; 4],
    pub ref_idx: [Prob; 3],
    /// Two vectors averaged, in bi-predicted frames.
    pub bi: Prob,
    /// [bin: nonzero, magnitude above one, above two] of a coding unit's QP difference.
    pub delta_qp: [Prob; 3],
    /// [component][bin: nonzero, greater than one]
    pub mvd: [[Prob; 2]; 2],
    /// [plane type][intra, inter]
    pub cbf: [[Prob; 2]; PLANE_TYPES],
    /// [coding unit 16x16, 32x32] of the flag that splits an inter unit's luma residual.
    pub tx_split: [Prob; 2],
    /// [plane type] of the transform skip flag of 4x4 blocks.
    pub transform_skip: [Prob; PLANE_TYPES],
    pub last_x: [[[Prob; LAST_BINS]; TX_SIZES]; PLANE_TYPES],
    pub last_y: [[[Prob; LAST_BINS]; TX_SIZES]; PLANE_TYPES],
    /// [plane type][small (4, 8) or large transform][template class]
    pub significant: [[[Prob; SIG_CONTEXTS]; 2]; PLANE_TYPES],
    pub greater_one: [[Prob; LEVEL_CONTEXTS]; PLANE_TYPES],
    pub greater_two: [[Prob; LEVEL_CONTEXTS]; PLANE_TYPES],
    pub sao: SaoContexts,
}

/// Contexts of the sample adaptive offset parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct SaoContexts {
    /// [merge left, merge up]
    pub merge: [Prob; 2],
    /// [plane type][filter on, edge rather than band offset]
    pub kind: [[Prob; 2]; PLANE_TYPES],
    /// Nonzero offset magnitude: [plane type][edge, band offset]
    pub magnitude: [[Prob; 2]; PLANE_TYPES],
}
