#!/usr/bin/env bash
# Installs, through apt, the system tools codeclab calls: ffmpeg (importing clips, anchor encoders),
# valgrind (decoder instruction counts) and jq (scripts/codec-rd.sh). With `--for-tests`, also what
# the test suite needs: a PostgreSQL server, python3-venv and curl for a local S3-compatible
# server (moto), and Chromium for the dashboard's browser tests (run headless). Only what is
# missing is installed.
set -euo pipefail

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ "${1:-}" = "--for-tests" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing with apt: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: codeclab needs a stable Rust toolchain (1.85 or newer, with cargo) on PATH" >&2
  exit 1
fi
