//! The offline planner: evolutionary search over the codec genome.
