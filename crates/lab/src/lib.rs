//! The laboratory: experiments and their execution, storage, scheduling and the autonomous loop.
