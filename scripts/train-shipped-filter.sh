#!/usr/bin/env bash
# Trains the learned in-loop filter's shipped models (crates/codec/src/learned/shipped_model.rs) on
# photographs none of the development clips come from: the nature pictures of Debian's
# mate-backgrounds package (CC licensed), each made into a short 1280x720 pan with ffmpeg, coded
# by the lab's codec with the filter off at each of the QPs below; one model per QP learns to
# correct those reconstructions towards their sources (what coding leaves to correct changes
# with the QP). The pictures are fetched at run time, never committed.
#
#   scripts/train-shipped-filter.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-4000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v ffmpeg >/dev/null || { echo "ffmpeg is needed" >&2; exit 1; }
cargo build --release -q -p codeclab-codec --bins
release="${CARGO_TARGET_DIR:-target}/release"
codec="$release/codeclab-codec"
(cd "$work" && apt-get download mate-backgrounds >/dev/null 2>&1)
deb="$(ls "$work"/mate-backgrounds_*.deb)"
dpkg-deb -x "$deb" "$work/pkg"
qps=(22 27 32 37)
pictures=()
declare -A clips
for photo in "$work"/pkg/usr/share/backgrounds/mate/nature/*.jpg; do
  name="$(basename "$photo" .jpg)"
  pictures+=("{\"file\": \"nature/$name.jpg\", \"sha256\": \"$(sha256sum "$photo" | cut -d' ' -f1)\"}")
  # 12 frames panning right and down across the picture scaled to 1600 wide.
  ffmpeg -loglevel error -loop 1 -i "$photo" -frames:v 12 \
    -vf "scale=1600:-2,crop=1280:720:'n*8':'n*2'" -pix_fmt yuv420p -f yuv4mpegpipe \
    "$work/$name.y4m"
  for qp in "${qps[@]}"; do
    "$codec" encode --qp "$qp" "$work/$name.y4m" -o "$work/$name-qp$qp.bin" \
      --reconstruction "$work/$name-qp$qp.y4m" 2>/dev/null
    clips[$qp]+=" $work/$name.y4m $work/$name-qp$qp.y4m"
  done
done
version="$(dpkg-deb -f "$deb" Version)"
list="$(IFS=,; echo "${pictures[*]}")"
cat >"$work/provenance.json" <<JSON
{"pictures": {"package": "mate-backgrounds", "version": "$version", "license": "see the package's debian/copyright", "files": [$list]},
 "clips": "each picture scaled to 1600 wide, 12 frames of a 1280x720 crop moving 8 right and 2 down per frame (ffmpeg)",
 "coding": "codeclab-codec encode --qp ${qps[*]}, default genome (filter off); reconstructions as training inputs, one model per QP in that order"}
JSON
models=()
for qp in "${qps[@]}"; do
  # shellcheck disable=SC2206 # the paths are mktemp's and the pictures' names, without spaces
  models+=(--model "coded at QP $qp" ${clips[$qp]})
done
"$release/codeclab-filter-train" --steps "$steps" --provenance "$work/provenance.json" \
  -o crates/codec/src/learned/shipped_model.rs "${models[@]}"
