#!/usr/bin/env bash
# Rate-distortion of the lab codec against the anchors, on the real corpus clips and on generated
# 1280x720 clips (a camera pan over texture and a scene cut, 60 frames each).
#
# Every clip becomes a Y4M source once. The anchors encode it at CRF 22/27/32/37 (SVT-AV1, whose
# CRF scale runs to 63, at 27/35/43/51 as the lab's AV1 anchors), one thread,
# as their users run them: x265 -preset medium -tune psnr (`x265-psnr`), x265 -preset medium
# (`x265`, untuned), SVT-AV1 preset 8 (`svtav1`), x264 -preset medium (`x264`); the version-1
# codec (`v1`, built from commit $V1_COMMIT, the last before B frames) and codeclab encode it at
# QP 22/27/32/37, codeclab with the default genome (or $GENOME, or $PRESET). Every stream is decoded from its
# bytes alone and scored against the source with `codeclab metrics` (PSNR-Y, SSIM, and VMAF when
# VMAF=1); bitrate = stream bytes x 8 x fps / frames, every header byte counted. `codeclab
# bdrate` gives the BD-rate (PCHIP) of codeclab against each anchor per clip and metric, then
# the mean over clips.
#
# Environment: CLIPS (corpus file names, default both real clips), GENERATED (patterns, default
# "pan scene-cut"; empty for none), FRAMES (frames of the real clips, all when unset), ANCHORS
# (default "x265-psnr x265 svtav1 x264 v1"), VMAF (1 to score VMAF too), GENOME (a genome JSON
# file), PRESET (a preset name), V1_COMMIT (default 9dcb714), WORK (scratch folder, default
# target/codec-rd), REUSE_ANCHORS (1: keep an anchor's scores from an earlier run in the same
# WORK), CARGO_TARGET_DIR as usual. The anchor `default` is codeclab with the default genome, to
# weigh a GENOME against it (scripts/codec-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
QPS="22 27 32 37"
AV1_CRFS="27 35 43 51"
CLIPS=${CLIPS:-"bikes_640x272.mp4 carphone_qcif.mp4"}
GENERATED=${GENERATED-"pan scene-cut"}
ANCHORS=${ANCHORS:-"x265-psnr x265 svtav1 x264 v1"}
V1_COMMIT=${V1_COMMIT:-9dcb714}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=${WORK:-$TARGET/codec-rd}
CORPUS=${CODECLAB_CORPUS:-../shared/corpus}
mkdir -p "$WORK"
for tool in ffmpeg jq bc; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
cargo build --release --bin codeclab >&2
CODECLAB="$TARGET/release/codeclab"
frames_opt=()
[ -n "${FRAMES:-}" ] && frames_opt=(-frames:v "$FRAMES")
genome_opt=()
[ -n "${GENOME:-}" ] && genome_opt=(--genome "$GENOME")
[ -n "${PRESET:-}" ] && genome_opt+=(--preset "$PRESET")
# The version-1 codec, from the project's own history.
if [[ " $ANCHORS " == *" v1 "* ]]; then
  V1_SRC="$WORK/v1-src"
  if [ ! -f "$V1_SRC/Cargo.toml" ]; then
    mkdir -p "$V1_SRC"
    git archive "$V1_COMMIT" | tar -x -C "$V1_SRC"
  fi
  cargo build --release --bin codeclab --manifest-path "$V1_SRC/Cargo.toml" --target-dir "$WORK/v1-target" >&2
  CODECLAB_V1="$WORK/v1-target/release/codeclab"
fi
metrics="psnr,ssim"
vmaf_opt=()
[ "${VMAF:-0}" = 1 ] && vmaf_opt=(--vmaf)
scores="psnr_y ssim"
[ "${VMAF:-0}" = 1 ] && scores="psnr_y ssim vmaf"

# The sources: real clips decoded once, generated clips rendered once.
sources=()
for clip in $CLIPS; do
  src="$WORK/${clip%.*}.y4m"
  [ -f "$src" ] || ffmpeg -loglevel error -y -i "$CORPUS/$clip" "${frames_opt[@]}" -pix_fmt yuv420p -f yuv4mpegpipe "$src"
  sources+=("$src")
done
for pattern in $GENERATED; do
  id="$pattern-1280x720"
  src="$WORK/generated/corpus/clips/$id.y4m"
  [ -f "$src" ] || "$CODECLAB" corpus generate --data-dir "$WORK/generated" --pattern "$pattern" \
    --width 1280 --height 720 --frames 60 --seed 1 --id "$id" >/dev/null
  sources+=("$src")
done

# x264 and x265 write their version and settings into the stream as SEI text (0.7 and 2.4 KB),
# which is not coded video: it is dropped, as the lab's anchors drop it.
H264_SEI=(-bsf:v "filter_units=remove_types=6")
HEVC_SEI=(-bsf:v "filter_units=remove_types=39|40")
# encode CODEC POINT SOURCE STREAM
encode() {
  case $1 in
    x265-psnr) ffmpeg -loglevel error -y -i "$3" -c:v libx265 -preset medium -tune psnr -crf "$2" \
                 -x265-params log-level=error:pools=1:frame-threads=1 "${HEVC_SEI[@]}" -f hevc "$4" ;;
    x265) ffmpeg -loglevel error -y -i "$3" -c:v libx265 -preset medium -crf "$2" \
            -x265-params log-level=error:pools=1:frame-threads=1 "${HEVC_SEI[@]}" -f hevc "$4" ;;
    svtav1) ffmpeg -loglevel error -y -i "$3" -c:v libsvtav1 -preset 8 -crf "$2" \
              -svtav1-params lp=1 -f ivf "$4" ;;
    x264) ffmpeg -loglevel error -y -i "$3" -c:v libx264 -preset medium -threads 1 -crf "$2" \
            "${H264_SEI[@]}" -f h264 "$4" ;;
    v1) "$CODECLAB_V1" encode --qp "$2" "$3" -o "$4" 2>/dev/null ;;
    default) "$CODECLAB" encode --qp "$2" "$3" -o "$4" 2>/dev/null ;;
    codeclab) "$CODECLAB" encode --qp "$2" "${genome_opt[@]}" "$3" -o "$4" 2>/dev/null ;;
  esac
}

declare -A sums counts
count=0
printf '%-24s %-10s %5s %10s %9s %8s %8s %8s\n' clip codec point kbps psnr_y ssim enc_s dec_s
for src in "${sources[@]}"; do
  name=$(basename "$src" .y4m)
  header=$(head -c 200 "$src" | head -n 1)
  fps=$(sed -E 's/.* F([0-9]+):([0-9]+).*/\1 \2/' <<<"$header" | awk '{ printf "%.6f", $1 / $2 }')
  # Frames from the file's size: every frame is `FRAME\n` and a 4:2:0 picture (no frame tags).
  frames=$(awk -v size="$(stat -c %s "$src")" -v len="${#header}" '{
      for (i = 1; i <= NF; i++) { if ($i ~ /^W/) w = substr($i, 2); if ($i ~ /^H/) h = substr($i, 2) }
      bytes = ($0 ~ / C420p1[0-9]/) ? 2 : 1
      printf "%d", (size - len - 1) / (6 + bytes * (w * h + 2 * int((w + 1) / 2) * int((h + 1) / 2)))
    }' <<<"$header")
  for codec in $ANCHORS codeclab; do
    for score in $scores; do echo "kbps,$score" >"$WORK/$name.$codec.$score.csv"; done
    points=$QPS
    [ "$codec" = svtav1 ] && points=$AV1_CRFS
    for point in $points; do
      stream="$WORK/$name.$codec.$point.bin"
      decoded="$WORK/$name.$codec.$point.y4m"
      # Named after how anchors are measured, so that scores from before SEI stripping are
      # not reused.
      saved="$WORK/$name.$codec.$point.sei-stripped.scores"
      if [ "${REUSE_ANCHORS:-0}" = 1 ] && [ "$codec" != codeclab ] && [ -f "$saved" ]; then
        read -r t0 t1 t2 result <"$saved"
      else
        t0=$(date +%s.%N)
        encode "$codec" "$point" "$src" "$stream"
        t1=$(date +%s.%N)
        case $codec in
          codeclab | default) "$CODECLAB" decode "$stream" -o "$decoded" 2>/dev/null ;;
          v1) "$CODECLAB_V1" decode "$stream" -o "$decoded" 2>/dev/null ;;
          *) ffmpeg -loglevel error -y -i "$stream" -pix_fmt yuv420p -f yuv4mpegpipe "$decoded" ;;
        esac
        t2=$(date +%s.%N)
        result=$("$CODECLAB" metrics --json --metrics "$metrics" "${vmaf_opt[@]}" "$src" "$decoded" 2>/dev/null | jq -c .)
        echo "$t0 $t1 $t2 $result" >"$saved"
      fi
      decoded_frames=$(jq -r .frames <<<"$result")
      [ "$decoded_frames" = "$frames" ] || { echo "error: $decoded has $decoded_frames frames, not $frames" >&2; exit 1; }
      rate=$(awk -v b="$(stat -c %s "$stream")" -v n="$frames" -v f="$fps" 'BEGIN { printf "%.3f", b * 8 * f / n / 1000 }')
      for score in $scores; do
        echo "$rate,$(jq -r ".pooled.$score" <<<"$result")" >>"$WORK/$name.$codec.$score.csv"
      done
      printf '%-24s %-10s %5s %10s %9.4f %8.5f %8.2f %8.2f\n' "$name" "$codec" "$point" "$rate" \
        "$(jq -r .pooled.psnr_y <<<"$result")" "$(jq -r .pooled.ssim <<<"$result")" \
        "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
      rm -f "$decoded"
    done
  done
  for anchor in $ANCHORS; do
    line="BD-rate (PCHIP) of codeclab vs $anchor on $name:"
    for score in $scores; do
      # Curves that share no quality range have no BD-rate; the mean then leaves the clip out.
      if ! bd=$("$CODECLAB" bdrate --json "$WORK/$name.$anchor.$score.csv" "$WORK/$name.codeclab.$score.csv" 2>/dev/null | jq -r '.pchip'); then
        line+=" $score n/a (no overlap)"
        continue
      fi
      line+=" $score $(printf '%+.2f' "$bd") %"
      sums[$anchor.$score]=$(echo "${sums[$anchor.$score]:-0} + $bd" | bc -l)
      counts[$anchor.$score]=$((${counts[$anchor.$score]:-0} + 1))
    done
    echo "$line"
  done
  count=$((count + 1))
done
for anchor in $ANCHORS; do
  line="mean BD-rate (PCHIP) of codeclab vs $anchor over $count clips:"
  for score in $scores; do
    n=${counts[$anchor.$score]:-0}
    if [ "$n" = 0 ]; then
      line+=" $score n/a"
    else
      line+=" $score $(printf '%+.2f' "$(echo "${sums[$anchor.$score]} / $n" | bc -l)") % ($n clips)"
    fi
  done
  echo "$line"
done
