#!/usr/bin/env bash
# Trains the learned in-loop filter's shipped model (crates/codec/src/learned/shipped_model.rs) on
# photographs none of the development clips come from: the nature pictures of Debian's
# mate-backgrounds package (CC licensed), each made into a short 1280x720 pan with ffmpeg, coded
# by the lab's codec with the filter off at QPs 27 to 42; the model learns to correct those
# reconstructions towards their sources. The pictures are fetched at run time, never committed.
#
#   scripts/train-shipped-filter.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-4000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v ffmpeg >/dev/null || { echo "ffmpeg is needed" >&2; exit 1; }
cargo build --release -q -p codeclab-codec --bins
codec=target/release/codeclab-codec
(cd "$work" && apt-get download mate-backgrounds >/dev/null 2>&1)
deb="$(ls "$work"/mate-backgrounds_*.deb)"
dpkg-deb -x "$deb" "$work/pkg"
pictures=()
clips=()
for photo in "$work"/pkg/usr/share/backgrounds/mate/nature/*.jpg; do
  name="$(basename "$photo" .jpg)"
  pictures+=("{\"file\": \"nature/$name.jpg\", \"sha256\": \"$(sha256sum "$photo" | cut -d' ' -f1)\"}")
  # 12 frames panning right and down across the picture scaled to 1600 wide.
  ffmpeg -loglevel error -loop 1 -i "$photo" -frames:v 12 \
    -vf "scale=1600:-2,crop=1280:720:'n*8':'n*2'" -pix_fmt yuv420p -f yuv4mpegpipe \
    "$work/$name.y4m"
  for qp in 27 32 37 42; do
    "$codec" encode --qp "$qp" "$work/$name.y4m" --reconstruction "$work/$name-qp$qp.y4m" \
      2>/dev/null
    clips+=("$work/$name.y4m" "$work/$name-qp$qp.y4m")
  done
done
version="$(dpkg-deb -f "$deb" Version)"
list="$(IFS=,; echo "${pictures[*]}")"
cat >"$work/provenance.json" <<JSON
{"pictures": {"package": "mate-backgrounds", "version": "$version", "license": "see the package's debian/copyright", "files": [$list]},
 "clips": "each picture scaled to 1600 wide, 12 frames of a 1280x720 crop moving 8 right and 2 down per frame (ffmpeg)",
 "coding": "codeclab-codec encode --qp 27, 32, 37 and 42, default genome (filter off); reconstructions as training inputs"}
JSON
target/release/codeclab-filter-train --steps "$steps" --provenance "$work/provenance.json" \
  -o crates/codec/src/learned/shipped_model.rs "${clips[@]}"
