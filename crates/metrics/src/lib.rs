//! Quality metrics with libvmaf's definitions, and BD-rate.

pub mod bdrate;
