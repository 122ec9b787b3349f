//! Quality metrics with libvmaf's definitions, and BD-rate.

pub mod bdrate;
pub mod compare;
pub mod error;
pub mod filter;
pub mod ms_ssim;
pub mod pool;
pub mod psnr;
pub mod ssim;
pub mod vmaf;

pub use compare::{
    CompareError, CompareOptions, Comparison, Metric, Score, compare, compare_files,
};
pub use error::MetricError;
