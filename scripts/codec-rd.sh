#!/usr/bin/env bash
# Rate-distortion of the lab codec against x264 and x265 on the real corpus clips.
#
# Every clip is decoded to Y4M once (the source); x264 (-preset medium -bf 0 -threads 1) and x265
# (-preset medium, one thread) encode it at CRF 22/27/32/37 into raw Annex B streams; codeclab
# encodes it at 4 QPs. Every stream is decoded, PSNR-Y (libvmaf's definition, mean over frames)
# comes from `codeclab metrics --json`, bitrate = stream bytes x 8 x fps / frames (every header
# byte counted), and `codeclab bdrate --json` gives the BD-rate (PCHIP) per clip; the mean over
# clips closes the table.
#
# Environment: QPS (default "22 27 32 37"), CLIPS (corpus file names, default both), FRAMES (all
# when unset), GENOME (a genome JSON for codeclab), WORK (scratch folder, default
# target/codec-rd), CARGO_TARGET_DIR as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
QPS=${QPS:-"22 27 32 37"}
CRFS="22 27 32 37"
CLIPS=${CLIPS:-"bikes_640x272.mp4 carphone_qcif.mp4"}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=${WORK:-$TARGET/codec-rd}
CORPUS=${CODECLAB_CORPUS:-../shared/corpus}
mkdir -p "$WORK"
for tool in ffmpeg jq; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
cargo build --release --bin codeclab >&2
CODECLAB="$TARGET/release/codeclab"
frames_opt=()
[ -n "${FRAMES:-}" ] && frames_opt=(-frames:v "$FRAMES")
genome_opt=()
[ -n "${GENOME:-}" ] && genome_opt=(--genome "$GENOME")

# measure FILE.y4m SOURCE.y4m -> "frames mean-PSNR-Y"
measure() {
  "$CODECLAB" metrics --json --metrics psnr "$2" "$1" | jq -r '"\(.frames) \(.pooled.psnr_y)"'
}
# kbps BYTES FRAMES FPS
kbps() {
  awk -v b="$1" -v n="$2" -v f="$3" 'BEGIN { printf "%.3f", b * 8 * f / n / 1000 }'
}

sum_x264=0; sum_x265=0; count=0
printf '%-22s %-8s %6s %10s %9s %9s %9s\n' clip codec point kbps psnr_y enc_s dec_s
for clip in $CLIPS; do
  name=${clip%.*}
  src="$WORK/$name.y4m"
  [ -f "$src" ] || ffmpeg -loglevel error -y -i "$CORPUS/$clip" "${frames_opt[@]}" -pix_fmt yuv420p -f yuv4mpegpipe "$src"
  header=$(head -c 200 "$src" | head -n 1)
  fps=$(sed -E 's/.* F([0-9]+):([0-9]+).*/\1 \2/' <<<"$header" | awk '{ printf "%.6f", $1 / $2 }')
  frames=$(measure "$src" "$src" | cut -d' ' -f1)
  for codec in x264 x265 codeclab; do
    echo "kbps,psnr_y" >"$WORK/$name.$codec.csv"
    points=$CRFS; [ "$codec" = codeclab ] && points=$QPS
    for point in $points; do
      stream="$WORK/$name.$codec.$point.bin"
      decoded="$WORK/$name.$codec.$point.y4m"
      t0=$(date +%s.%N)
      case $codec in
        x264) ffmpeg -loglevel error -y -i "$src" -c:v libx264 -preset medium -bf 0 -threads 1 -crf "$point" -f h264 "$stream" ;;
        x265) ffmpeg -loglevel error -y -i "$src" -c:v libx265 -preset medium -crf "$point" \
                -x265-params log-level=error:pools=1:frame-threads=1 -f hevc "$stream" ;;
        codeclab) "$CODECLAB" encode --qp "$point" "${genome_opt[@]}" "$src" -o "$stream" 2>/dev/null ;;
      esac
      t1=$(date +%s.%N)
      if [ "$codec" = codeclab ]; then
        "$CODECLAB" decode "$stream" -o "$decoded" 2>/dev/null
      else
        ffmpeg -loglevel error -y -i "$stream" -pix_fmt yuv420p -f yuv4mpegpipe "$decoded"
      fi
      t2=$(date +%s.%N)
      read -r decoded_frames quality < <(measure "$decoded" "$src")
      [ "$decoded_frames" = "$frames" ] || { echo "error: $decoded has $decoded_frames frames, not $frames" >&2; exit 1; }
      rate=$(kbps "$(stat -c %s "$stream")" "$frames" "$fps")
      echo "$rate,$quality" >>"$WORK/$name.$codec.csv"
      printf '%-22s %-8s %6s %10s %9.4f %9.2f %9.2f\n' "$name" "$codec" "$point" "$rate" "$quality" \
        "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
      rm -f "$decoded"
    done
  done
  bd264=$("$CODECLAB" bdrate --json "$WORK/$name.x264.csv" "$WORK/$name.codeclab.csv" | jq -r '.pchip')
  bd265=$("$CODECLAB" bdrate --json "$WORK/$name.x265.csv" "$WORK/$name.codeclab.csv" | jq -r '.pchip')
  echo "BD-rate PSNR-Y (PCHIP) $name: vs x264 ${bd264} %, vs x265 ${bd265} %"
  sum_x264=$(echo "$sum_x264 + $bd264" | bc -l); sum_x265=$(echo "$sum_x265 + $bd265" | bc -l)
  count=$((count + 1))
done
echo "mean BD-rate PSNR-Y (PCHIP) over $count clips: vs x264 $(echo "scale=2; $sum_x264 / $count" | bc -l) %, vs x265 $(echo "scale=2; $sum_x265 / $count" | bc -l) %"
