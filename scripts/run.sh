#!/usr/bin/env bash
# Builds codeclab and runs the main job with its embedded defaults; extra arguments go to `codeclab run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cargo build --release --bin codeclab
exec target/release/codeclab run "$@"
