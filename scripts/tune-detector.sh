#!/usr/bin/env bash
# Chooses the VAD detector's defaults on the validation split (never the test split).
#
#   scripts/tune-detector.sh [--earshot BIN] [--manifest FILE] [--out DIR] [--grid full|small]
#                            [--seed N] [--vad-model PATH]
#
# 1. Builds a validation set with tools/eval/build.js --split valid (the same kind of
#    set scripts/eval.sh builds from the test split, minus the unseen-noise list): valid
#    sentences, real speech and keyword clips with silences between, one stream mixed with
#    the valid split's noise at clean, 20, 10, 5 and 0 dB; speech truth from the clean
#    clips' energy (tools/eval/lib.js speechFrames, like the trainer's labels).
#    Cached in DIR (default data/tune/valid).
# 2. Runs `earshot file --format frames` once per SNR (per-frame speech probabilities).
# 3. Shows how fast the probability itself rises at speech onsets (vad_sweep --model).
# 4. Replays the real detector (daemon/detect/detect.c, compiled into tools/tune/vad_sweep)
#    over those probabilities for a grid of onset/offset thresholds, minimum speech,
#    minimum silence and padding, scores each (tools/tune/vad_sweep.c says how) and
#    picks the defaults:
#      constraints: onset latency p90 <= 100 ms, speech_start latency (the event sent
#                   when a segment is sure to be kept) p90 <= 100 ms, missed onsets <= 5 %,
#                   min silence >= 150 ms (the truth itself closes shorter pauses),
#                   min speech >= 30 ms (a click is not a segment);
#      score:       mean of F1 frames and F1 segments (each the mean over the SNRs);
#      choice:      among settings within 0.002 of the best score, the one whose events
#                   come soonest after the end of speech (lowest end_p90), then score.
# Max speech is not tuned (30 s: the validation utterances are far shorter).
# Prints the tables and the chosen knobs; writes DIR/sweep.tsv and DIR/chosen.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

earshot=build/daemon/earshot
manifest=data/manifest.tsv
out=data/tune/valid
grid=full
seed=1
model_args=()
while [ $# -gt 0 ]; do
  case $1 in
  --earshot) earshot=${2:?} && shift ;;
  --manifest) manifest=${2:?} && shift ;;
  --out) out=${2:?} && shift ;;
  --grid) grid=${2:?} && shift ;;
  --seed) seed=${2:?} && shift ;;
  --vad-model) model_args=(--vad-model "${2:?}") && shift ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' && exit 0 ;;
  *) echo "tune-detector: unknown argument '$1' (try --help)" >&2 && exit 2 ;;
  esac
  shift
done
log() { echo "tune-detector: $*" >&2; }
[ -x "$earshot" ] || { log "$earshot: not built (scripts/build.sh, or --earshot BIN)" && exit 1; }
[ -f "$manifest" ] || { log "$manifest: no manifest (scripts/data.sh makes it)" && exit 1; }

# 1. the validation set (valid split only; a short keyword-free part, not used here)
nice -n 10 node tools/eval/build.js --out "$out" --manifest "$manifest" --split valid \
  --size full --hours 0.02 --seed "$seed"
snrs=$(node -e 'console.log(require(process.argv[1]).snrs.join(" "))' "$PWD/$out/meta.json")

# 2. per-frame probabilities, once per SNR
mkdir -p "$out/runs"
files=()
for snr in $snrs; do
  csv=$out/runs/vad_$snr.frames.csv
  nice -n 10 "$earshot" file --format frames "${model_args[@]}" -o "$csv" "$out/vad_$snr.wav"
  files+=("$snr=$csv")
done

# 3 and 4. the detector replayed offline
bin=$out/vad_sweep
cc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Idaemon/detect -Icommon -o "$bin" tools/tune/vad_sweep.c daemon/detect/detect.c common/error.c -lm
echo "## How fast the speech probability rises at onsets (ms after the true start; valid split)"
echo
"$bin" --model "$out/vad.truth.tsv" "${files[@]}" | column -t
echo
"$bin" --only default "$out/vad.truth.tsv" "${files[@]}" >"$out/compiled.tsv"
"$bin" --only 0.5,0.35,250,300,30 "$out/vad.truth.tsv" "${files[@]}" >"$out/untuned.tsv"
log "sweeping the detector knobs ($grid grid)"
nice -n 10 "$bin" --grid "$grid" "$out/vad.truth.tsv" "${files[@]}" >"$out/sweep.tsv"
node tools/tune/choose.js "$out/sweep.tsv" "$out/compiled.tsv" "$out/untuned.tsv" | tee "$out/chosen.txt"
