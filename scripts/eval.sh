#!/usr/bin/env bash
# Measures earshot on the held-out evaluation set (tools/eval/build.js builds it from the
# test split of data/manifest.tsv and caches it under data/eval/):
#   VAD: frame ROC-AUC overall and per SNR, F1 of the speech segments;
#   KWS: recall per keyword and SNR, recall on real recorded keywords, false alarms per
#        hour of keyword-free speech, music and noise.
# Prints markdown tables and writes them to data/eval/results.md (a --quick or --smoke run:
# to data/eval/quick/results.md or data/eval/smoke/results.md, leaving the full one).
#
#   scripts/eval.sh [--quick | --smoke] [--hours H] [--seed N] [--manifest FILE] [--earshot BIN]
#                   [--vad-model FILE] [--kws-model FILE] [--split test|valid|train]
# --vad-model / --kws-model: measure that model instead of the built-in one (results stay
# in the set's folder: data/eval/results.md keeps the shipped models' figures).
# --split train: a set of the voices the models learnt from (data/eval/SIZE-train/): recall
# as low there as on unseen voices means the model underfits; valid: the calibration voices.
#
# --quick: 3 min of VAD audio per SNR, 6 keyword clips per keyword, 0.25 h keyword-free.
# --smoke: about a minute of espeak-ng audio made on the spot; needs no data/ (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/eval/common.sh
eval_parse_args "$@"

eval_build_set
eval_log "running $earshot on $set_dir"
eval_run_earshot
node tools/eval/report.js eval --set "$set_dir" --system earshot >"$set_dir/results.md"
report=$set_dir/results.md
# data/eval/results.md is the shipped models' record; other models' results stay in the set.
if eval_is_record; then
  cp "$report" data/eval/results.md
  report=data/eval/results.md
fi
cat "$report"
eval_log "wrote $report"
