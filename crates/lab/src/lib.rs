//! The laboratory: experiments and their execution, storage, scheduling and the autonomous loop.

pub mod candidate;
pub mod llm;
pub mod sandbox;
