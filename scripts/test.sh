#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, and the whole test suite (release build, because
# the metric and codec tests process real clips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh --for-tests
# PostgreSQL and S3-compatible servers on loopback for the lab's tests.
source scripts/test-services.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
