//! One module per subcommand: its `clap` arguments and a `run` function.

pub mod bdrate;
pub mod bench;
pub mod metrics;
pub mod bench_vmaf;
pub mod corpus;
pub mod decode;
pub mod encode;
