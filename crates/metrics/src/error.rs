//! Why a metric could not be computed.

/// Why a metric, or a comparison of two clips, failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    /// The two planes of a pair do not have the same geometry.
    #[error(
        "plane {plane} differs in size: reference {ref_width}x{ref_height}, distorted {dist_width}x{dist_height}"
    )]
    PlaneSizeMismatch {
        plane: usize,
        ref_width: usize,
        ref_height: usize,
        dist_width: usize,
        dist_height: usize,
    },
    /// The two frames of a pair do not have the same sample type or plane count.
    #[error("frames differ in sample type or plane count")]
    FrameKindMismatch,
    /// A bit depth outside 8..=16.
    #[error("bit depth {0} is outside 8..=16")]
    BitDepth(u8),
    /// The picture is too small for the metric's filters (libvmaf refuses the same sizes).
    #[error("{metric} cannot be computed on a {width}x{height} picture: {reason}")]
    TooSmall {
        metric: &'static str,
        width: usize,
        height: usize,
        reason: String,
    },
}
