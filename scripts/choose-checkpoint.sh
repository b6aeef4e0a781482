#!/usr/bin/env bash
# Chooses, among keyword models of one training run (its checkpoints, `earshot train
# --checkpoints N`, and the model it kept), the one that finds the most keywords of the
# valid split at the false-alarm budget: each is calibrated (`earshot calibrate`, fewer
# passes than the final calibration) and its total recall compared. The model the trainer
# keeps is the best by its own validation metric (recall at the threshold 5 % of
# keyword-free sequences exceed), which is looser than the budget by two orders of
# magnitude and does not rank models the same way (models/kws.md).
# Prints a table on stderr and the chosen model's path on stdout.
#
#   scripts/choose-checkpoint.sh [--manifest FILE] [--earshot BIN] [--passes N]
#                                [--jobs J] MODEL...
set -euo pipefail
cd "$(dirname "$0")/.."

manifest=data/manifest.tsv
earshot=build/daemon/earshot
passes=2
jobs=2
while [ $# -gt 0 ]; do
  case $1 in
  --manifest) manifest=${2:?--manifest needs a file} && shift 2 ;;
  --earshot) earshot=${2:?--earshot needs a binary} && shift 2 ;;
  --passes) passes=${2:?--passes needs a number} && shift 2 ;;
  --jobs) jobs=${2:?--jobs needs a number} && shift 2 ;;
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
  -*) echo "choose-checkpoint.sh: unknown option '$1' (try --help)" >&2 && exit 2 ;;
  *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "choose-checkpoint.sh: no models given (try --help)" >&2 && exit 2; }
for model in "$@"; do
  [ -f "$model" ] || { echo "choose-checkpoint.sh: $model: no such file" >&2 && exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The same calibration as scripts/train-models.sh's but for the passes: one table per model.
calibrate_one() {
  local model=$1 out
  out=$work/$(printf '%s' "$model" | tr '/' '_')
  if ! "$earshot" calibrate "$model" --manifest "$manifest" -o "$out.esm" \
    --max-alarms-per-hour 0.5 --exclude-voice real:csmash --passes "$passes" --seed 1 \
    > "$out.txt" 2> "$out.log"; then
    echo "choose-checkpoint.sh: $model: calibration failed:" >&2
    cat "$out.log" >&2
    return 1
  fi
}
export -f calibrate_one
export earshot manifest passes work
printf '%s\0' "$@" | xargs -0 -n 1 -P "$jobs" bash -c 'calibrate_one "$1"' _

best= best_recall=-1
printf '%-60s %8s %13s\n' model recall false_alarms >&2
for model in "$@"; do
  table=$work/$(printf '%s' "$model" | tr '/' '_').txt
  # The table's last line: total - POSITIVES RECALL FALSE_ALARMS PER_HOUR (budget ...)
  read -r recall alarms < <(awk '$1 == "total" { print $4, $5 }' "$table")
  printf '%-60s %8s %13s\n' "$model" "$recall" "$alarms" >&2
  if awk -v r="$recall" -v b="$best_recall" 'BEGIN { exit !(r > b) }'; then
    best=$model best_recall=$recall
  fi
done
echo "choose-checkpoint.sh: chosen $best (valid recall $best_recall at the budget, $passes passes)" >&2
echo "$best"
