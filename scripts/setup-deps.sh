#!/usr/bin/env bash
# Installs, through apt, the system tools codeclab calls: ffmpeg (importing clips, anchor encoders)
# and valgrind (decoder instruction counts). Only what is missing is installed.
set -euo pipefail

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
# The lab's tests run against a real PostgreSQL server and a local S3-compatible server (moto).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v curl >/dev/null 2>&1 || missing+=(curl)
for extra in "$@"; do
  dpkg -s "$extra" >/dev/null 2>&1 || missing+=("$extra")
done

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
