//! Every adaptive context of the bitstream. A frame starts from the defaults, or with context
//! carrying from the final state of one of its reference pictures (`gop::starting_contexts`).

use super::Prob;

/// Plane classes with separate statistics: luma and chroma.
pub const PLANE_TYPES: usize = 2;
/// Transform sizes 4, 8, 16, 32.
pub const TX_SIZES: usize = 4;
/// Bins of the last-position prefix for the largest transform.
pub const LAST_BINS: usize = 10;
pub const SIG_CONTEXTS: usize = 12;
pub const LEVEL_CONTEXTS: usize = 10;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// [superblock neighbours (left, up) with the learned filter on: 0..=2]
    pub learned_filter: [Prob; 3],
}

/// Contexts of the sample adaptive offset parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaoContexts {
    /// [merge left, merge up]
    pub merge: [Prob; 2],
    /// [plane type][filter on, edge rather than band offset]
    pub kind: [[Prob; 2]; PLANE_TYPES],
    /// Nonzero offset magnitude: [plane type][edge, band offset]
    pub magnitude: [[Prob; 2]; PLANE_TYPES],
}

impl Contexts {
    /// These probabilities with every context's adaptation restarted, as AV1 resets its symbol
    /// counters: a frame that starts from another frame's contexts keeps what they learned but
    /// adapts fast again to its own statistics (another QP, another frame type).
    pub fn restarted(&self) -> Contexts {
        let mut contexts = self.clone();
        contexts.for_each_prob(Prob::restart);
        contexts
    }

    /// Calls `f` on every context.
    fn for_each_prob(&mut self, mut f: impl FnMut(&mut Prob)) {
        let sao = &mut self.sao;
        let groups: [&mut [Prob]; 24] = [
            self.split.as_flattened_mut(),
            &mut self.skip,
            &mut self.intra,
            std::slice::from_mut(&mut self.mpm_flag),
            &mut self.mpm_index,
            std::slice::from_mut(&mut self.chroma_dm),
            std::slice::from_mut(&mut self.merge_flag),
            &mut self.merge_index,
            &mut self.ref_idx,
            std::slice::from_mut(&mut self.bi),
            &mut self.delta_qp,
            self.mvd.as_flattened_mut(),
            self.cbf.as_flattened_mut(),
            &mut self.tx_split,
            &mut self.transform_skip,
            self.last_x.as_flattened_mut().as_flattened_mut(),
            self.last_y.as_flattened_mut().as_flattened_mut(),
            self.significant.as_flattened_mut().as_flattened_mut(),
            self.greater_one.as_flattened_mut(),
            self.greater_two.as_flattened_mut(),
            &mut sao.merge,
            sao.kind.as_flattened_mut(),
            sao.magnitude.as_flattened_mut(),
            &mut self.learned_filter,
        ];
        groups.into_iter().flatten().for_each(&mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarting_reaches_every_context() {
        let mut contexts = Contexts::default();
        let mut count = 0;
        contexts.for_each_prob(|_| count += 1);
        // Every field is a context: the visitor must name them all.
        assert_eq!(
            count * std::mem::size_of::<Prob>(),
            std::mem::size_of::<Contexts>()
        );
    }
}
