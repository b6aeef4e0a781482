#!/usr/bin/env bash
# Rebuilds the shipped models from the data recipe, with fixed seeds, into models/
# (or OUT): the VAD (vad.esm), then the 20-keyword model (kws.esm), whose per-keyword
# thresholds are calibrated on the validation split for at most 0.5 false alarms per hour
# of keyword-free audio in all and at most 5 % of its near misses accepted (`earshot
# calibrate`). Rebuild the binary afterwards (scripts/build.sh) to compile the new models
# in as the defaults.
#
#   scripts/train-models.sh [--only vad|kws] [--out DIR] [--manifest FILE] [--earshot BIN]
#                           [--smoke]
#
# Needs data/manifest.tsv (scripts/data.sh, 25-85 min). Time on this 2-core machine:
# VAD 35 min (1 thread, the budget), KWS 50 min (1 thread) + 2 min calibration; each
# model's card (models/*.md) records its last run. Logs go to OUT/train-*.log.
# --smoke: tiny models, two epochs, one calibration pass (CI).
set -euo pipefail
cd "$(dirname "$0")/.."

only=
out=models
manifest=data/manifest.tsv
earshot=build/daemon/earshot
smoke=
while [ $# -gt 0 ]; do
  case $1 in
  --only) only=${2:?--only needs vad or kws} && shift 2 ;;
  --out) out=${2:?--out needs a folder} && shift 2 ;;
  --manifest) manifest=${2:?--manifest needs a file} && shift 2 ;;
  --earshot) earshot=${2:?--earshot needs a binary} && shift 2 ;;
  --smoke) smoke=1 && shift ;;
  -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
  *) echo "train-models.sh: unknown argument '$1' (try --help)" >&2 && exit 2 ;;
  esac
done
case $only in '' | vad | kws) ;; *) echo "train-models.sh: --only: '$only' is not vad or kws" >&2 && exit 2 ;; esac
[ -f "$manifest" ] || { echo "train-models.sh: $manifest: missing (run scripts/data.sh first)" >&2 && exit 1; }
[ -x "$earshot" ] || scripts/build.sh >&2
mkdir -p "$out"
# The budgets of the shipped models, or --smoke's few seconds.
if [ -n "$smoke" ]; then
  vad_budget=(--small --epochs 2) kws_budget=(--small --epochs 2) passes=1
else
  vad_budget=(--clips 1000 --minutes 35 --patience 30)
  # The budget ends the run: validation recall was still rising at 50 minutes.
  kws_budget=(--minutes 50 --patience 1000) passes=4
fi
# Near misses (sentence clips of words made to sound like keywords: 'lift', 'heaven') are
# judged one by one, at most this share of them accepted; the hourly budget is for the rest
# of the keyword-free audio (models/kws.md, "Calibration").
near_misses=0.05

if [ -z "$only" ] || [ "$only" = vad ]; then
  echo "train-models.sh: VAD -> $out/vad.esm (log $out/train-vad.log)" >&2
  # A running average of the weights (--weight-average): held-out AUC 0.929 -> 0.936; pauses of
  # up to 2.5 s in the training sequences: 0.941 (models/vad.md). Stopped by the 35-minute
  # budget, which also paces the learning rate: one thread, as the shipped model was trained.
  "$earshot" train "$manifest" -o "$out/vad.esm" --task vad "${vad_budget[@]}" \
    --weight-average 0.995 --threads 1 --seed 1 2> >(tee "$out/train-vad.log" >&2)
fi
if [ -z "$only" ] || [ "$only" = kws ]; then
  raw=$(mktemp --suffix=.esm)
  trap 'rm -f "$raw"' EXIT
  echo "train-models.sh: keywords -> $out/kws.esm (log $out/train-kws.log)" >&2
  # One thread, as the shipped model was trained. Two now give more epochs (472 in the
  # 50 minutes against 342), but that model went over the hourly false-alarm budget on
  # the test voices (models/kws.md, "How it got here").
  # Hard negatives: every 10 epochs the keyword-free clips the model finds most keyword-like
  # lead 30 % of the keyword-free sequences (models/kws.md).
  "$earshot" train "$manifest" -o "$raw" --task kws "${kws_budget[@]}" --threads 1 \
    --min-snr 0 --negative-peak-weight 20 --hard-negatives 10 --seed 1 \
    2> >(tee "$out/train-kws.log" >&2)
  # real:csmash, the one real speaker of keywords outside train, is what scripts/eval.sh
  # reports as "real recorded": it stays out of the calibration too.
  # Four passes (three at other speeds): one pass of the valid split's 2.5 h set thresholds
  # just under the peaks it happened to contain, and the test audio then gave 6.6 false
  # alarms per hour for the 0.41 calibrated; with four, 0.8 for 0.41 (models/kws.md).
  "$earshot" calibrate "$raw" --manifest "$manifest" -o "$out/kws.esm" --max-alarms-per-hour 0.5 \
    --max-near-misses "$near_misses" --exclude-voice real:csmash --passes "$passes" --seed 1 \
    2> >(tee -a "$out/train-kws.log" >&2)
fi
echo "train-models.sh: done; scripts/build.sh compiles them in" >&2
