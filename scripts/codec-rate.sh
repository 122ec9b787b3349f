#!/usr/bin/env bash
# How closely target-bitrate mode (`codeclab encode --bitrate`) lands: every clip is coded at
# three targets (0.02, 0.06 and 0.2 bits per pixel, low to high quality), with the default genome
# and in low delay (mini-GOP 1), and the stream's real bitrate (every byte counted) is set against
# the target. Clips: the real corpus clips whole and their first 48 frames, and generated 1280x720
# clips (60 frames). Prints a Markdown table and the largest error.
#
# Environment: CLIPS (corpus file names), GENERATED (patterns, default "pan scene-cut"), WORK
# (scratch folder, default target/codec-rate), CARGO_TARGET_DIR as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${CLIPS:-"bikes_640x272.mp4 carphone_qcif.mp4"}
GENERATED=${GENERATED-"pan scene-cut"}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=${WORK:-$TARGET/codec-rate}
CORPUS=${CODECLAB_CORPUS:-../shared/corpus}
BITS_PER_PIXEL="0.02 0.06 0.2"
mkdir -p "$WORK"
command -v ffmpeg >/dev/null || { echo "error: ffmpeg is required" >&2; exit 1; }
cargo build --release --bin codeclab >&2
CODECLAB="$TARGET/release/codeclab"
echo '{"mini_gop": 1}' >"$WORK/low-delay.json"

sources=()
for clip in $CLIPS; do
  for frames in all 48; do
    src="$WORK/${clip%.*}-$frames.y4m"
    limit=()
    [ "$frames" = all ] || limit=(-frames:v "$frames")
    [ -f "$src" ] || ffmpeg -loglevel error -y -i "$CORPUS/$clip" "${limit[@]}" -pix_fmt yuv420p \
      -f yuv4mpegpipe "$src"
    sources+=("$src")
  done
done
for pattern in $GENERATED; do
  id="$pattern-1280x720"
  src="$WORK/generated/corpus/clips/$id.y4m"
  [ -f "$src" ] || "$CODECLAB" corpus generate --data-dir "$WORK/generated" --pattern "$pattern" \
    --width 1280 --height 720 --frames 60 --seed 1 --id "$id" >/dev/null
  sources+=("$src")
done

echo "| clip | frames | GOP | target kbps | actual kbps | error |"
echo "|---|---|---|---|---|---|"
worst=0
for src in "${sources[@]}"; do
  header=$(head -c 200 "$src" | head -n 1)
  read -r width height fps <<<"$(awk '{
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^W/) w = substr($i, 2); if ($i ~ /^H/) h = substr($i, 2)
        if ($i ~ /^F/) { split(substr($i, 2), f, ":"); r = f[1] / f[2] }
      }
      printf "%d %d %.6f", w, h, r }' <<<"$header")"
  for gop in default low-delay; do
    genome=()
    [ "$gop" = low-delay ] && genome=(--genome "$WORK/low-delay.json")
    for bpp in $BITS_PER_PIXEL; do
      kbps=$(awk -v b="$bpp" -v w="$width" -v h="$height" -v f="$fps" 'BEGIN { printf "%.1f", b * w * h * f / 1000 }')
      summary=$("$CODECLAB" encode --bitrate "$kbps" "${genome[@]}" "$src" -o "$WORK/stream.bin" 2>&1 | tail -n 1)
      frames=$(sed -E 's/^encode: ([0-9]+) frames.*/\1/' <<<"$summary")
      actual=$(awk -v s="$(stat -c %s "$WORK/stream.bin")" -v n="$frames" -v f="$fps" 'BEGIN { printf "%.1f", s * 8 * f / n / 1000 }')
      error=$(awk -v a="$actual" -v t="$kbps" 'BEGIN { printf "%+.1f", 100 * (a / t - 1) }')
      worst=$(awk -v w="$worst" -v e="$error" 'BEGIN { e = e < 0 ? -e : e; print (e > w ? e : w) }')
      echo "| $(basename "$src" .y4m) | $frames | $gop | $kbps | $actual | $error % |"
    done
  done
done
echo
echo "largest error: $worst %"
