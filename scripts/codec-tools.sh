#!/usr/bin/env bash
# Each tool's own contribution: the BD-rate (PSNR-Y, PCHIP, QP 22/27/32/37) of the default
# genome with that one tool switched off, against the default genome, on the clips of
# scripts/codec-rd.sh (same CLIPS, GENERATED, FRAMES, VMAF and WORK variables), with the change
# of encoding time. Positive: the tool saves that much bitrate. Prints a Markdown table.
# TOOLS_ONLY (a regular expression) keeps the matching rows; EXTRA_TOOLS adds rows.
set -euo pipefail
cd "$(dirname "$0")/.."
export WORK=${WORK:-${CARGO_TARGET_DIR:-target}/codec-tools}
mkdir -p "$WORK/genomes"
# name  genome overrides that switch the tool off
TOOLS=(
  "B frames (mini-GOP 1, low delay)|{\"mini_gop\": 1}"
  "mini-GOP 8 instead of 16|{\"mini_gop\": 8}"
  "bi-prediction|{\"bipred\": false}"
  "scene cuts|{\"scene_cut_threshold\": 0}"
  "sample adaptive offset|{\"sao\": false}"
  "deblocking|{\"deblock\": false}"
  "RDOQ|{\"rdoq\": false}"
  "angular intra modes|{\"intra_angular\": false}"
  "64x64 coding units|{\"max_block_log2\": 5}"
  "quarter-sample motion|{\"subpel_precision\": 1}"
  "merge (1 candidate)|{\"merge_candidates\": 1}"
  "temporal MV candidates|{\"temporal_mvp\": false}"
  "bi-predicted merge candidates|{\"bi_merge\": false}"
  "B-layer QP cascade|{\"b_layer_qp_offset\": 0}"
  "sign-data hiding|{\"sign_hiding\": false}"
  "context carrying|{\"context_carry\": false}"
  "full check of every motion-searched prediction (the cheapest by SATD only)|{\"inter_rd_candidates\": 1}"
)
# More rows, one `name|genome JSON` per line (a genome may name a preset: {"preset": "fast"}).
[ -n "${EXTRA_TOOLS:-}" ] && mapfile -t -O "${#TOOLS[@]}" TOOLS <<<"$EXTRA_TOOLS"
[ -n "${TOOLS_ONLY:-}" ] && mapfile -t TOOLS < <(printf '%s\n' "${TOOLS[@]}" | grep -E "$TOOLS_ONLY")
table="| tool switched off | "
header_done=0
rows=()
for entry in "${TOOLS[@]}"; do
  name=${entry%%|*}
  genome="$WORK/genomes/$(tr -c 'a-zA-Z0-9\n' _ <<<"$name").json"
  echo "${entry#*|}" >"$genome"
  out=$(ANCHORS=default GENOME="$genome" REUSE_ANCHORS=1 bash scripts/codec-rd.sh)
  clips=$(grep '^BD-rate' <<<"$out" | sed -E 's/.* on ([^:]+):.*/\1/')
  if [ $header_done = 0 ]; then
    table+=$(tr '\n' '|' <<<"$clips" | sed 's/|/ | /g')"mean | encode time |"
    table+=$'\n|---|'$(sed 's/[^|]//g; s/|/---|/g' <<<"$(tr '\n' '|' <<<"$clips")")"---|---|"
    header_done=1
  fi
  row="| $name |"
  for clip in $clips; do
    bd=$(grep "^BD-rate.* on $clip:" <<<"$out" | sed -E 's/.*psnr_y ([-+0-9.]+) %.*/\1/')
    row+=" $bd % |"
  done
  mean=$(grep '^mean' <<<"$out" | sed -E 's/.*psnr_y ([-+0-9.]+) %.*/\1/')
  times=$(awk '$2 == "codeclab" { c += $7 } $2 == "default" { d += $7 } END { printf "%+.0f %%", 100 * (c / d - 1) }' <<<"$out")
  row+=" $mean % | $times |"
  rows+=("$row")
  echo "$row" >&2
done
echo "$table"
printf '%s\n' "${rows[@]}"
