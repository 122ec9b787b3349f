//! One module per subcommand: its `clap` arguments and a `run` function.

pub mod baseline;
pub mod bdrate;
pub mod bench;
pub mod bench_codec;
pub mod bench_vmaf;
pub mod bench_web;
pub mod candidate;
pub mod corpus;
pub mod decode;
pub mod encode;
pub mod experiment;
pub mod genome;
pub mod metrics;
pub mod report;
pub mod run;
pub mod serve;
pub mod worker;
