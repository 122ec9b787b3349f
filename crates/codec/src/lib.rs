//! The lab's own hybrid block video codec.
