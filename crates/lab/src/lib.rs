//! The laboratory: experiments and their execution, storage, scheduling and the autonomous loop.
//!
//! - [`spec`]: codec specs (JSON, stably hashed) and rate points.
//! - [`adapter`]: one trait over the lab's codec (in-process or as a binary) and ffmpeg encoders.
//! - [`runner`]: measuring one (codec, clip, rate point) under the honesty rules.
//! - [`experiment`]: experiment specs and their analysis (RD curves, BD-rates).
//! - [`anchors`]: the standard anchor encoders and their cache keys.
//! - [`store`]: the single API over SQLite / PostgreSQL (schema, queue, results, logs).
//! - [`artifacts`]: bitstreams, logs and reports in a folder or an S3-compatible bucket.
//! - [`lab`]: the operations built on all of them; [`worker`]: the job loop.
//! - [`llm`]: the planner's model clients and reply parser; [`candidate`]: code edits, static
//!   policy, confined builds and the smoke stage (through the `codeclab-sandbox` crate);
//!   [`secrets`]: what is scrubbed from untrusted output.
//! - [`planner`]: the planners and their loop; [`config`]: the lab's configuration.
//! - [`budget`]: caps and rate limits; [`goals`]: progress towards the goals; [`report`]: the
//!   lab's report; [`alerts`]: events, log warnings and the webhook.

pub mod adapter;
pub mod alerts;
pub mod anchors;
pub mod artifacts;
pub mod budget;
pub mod candidate;
pub mod config;
pub mod experiment;
pub mod goals;
pub mod lab;
pub mod llm;
pub mod planner;
pub mod process;
pub mod report;
pub mod runner;
pub mod secrets;
pub mod spec;
pub mod store;
pub mod worker;

pub use lab::{Lab, LabError};
pub use store::Store;
