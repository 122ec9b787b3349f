//! The LLM planner.
