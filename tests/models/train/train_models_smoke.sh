#!/usr/bin/env bash
# Smoke test of scripts/train-models.sh, the one command that rebuilds the shipped
# models: its --smoke mode (tiny models, two epochs, one calibration pass) over a
# manifest of a few clips synthesised here with espeak-ng, so that the script's
# every step — VAD training, keyword training, calibration with near misses judged
# one by one — runs in CI and cannot rot; then tools/eval/cross-voice.sh on the
# keyword model.
#
#   tests/daemon/train_models_smoke.sh BUILD/daemon/earshot
#
# Checks: both models are written and load in `earshot file`, the keyword model
# with the filler and the manifest's keywords as outputs. Exit 0 pass, 1 fail,
# 77 skip (no espeak-ng or sox).
set -u
EARSHOT=$(realpath "${1:?usage: train_models_smoke.sh PATH/TO/earshot}")
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
command -v espeak-ng > /dev/null && command -v sox > /dev/null || exit 77
work=$(mktemp -d /tmp/earshot-train-models-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "train_models_smoke: $*" >&2
  exit 1
}

# A clip of TEXT by VOICE, 16 kHz mono (what the calibration reads).
speak() {
  if ! espeak-ng -v "$1" -w "$work/raw.wav" "$2" ||
    ! sox "$work/raw.wav" -r 16000 -c 1 -b 16 "$work/$3.wav"; then
    fail "cannot synthesise '$2'"
  fi
}
manifest=$work/manifest.tsv
printf '# path\tsplit\tkind\tlabel\tstart_s\tend_s\tvoice\n' > "$manifest"
voices=(en-us en-us+m3 en-gb+f2 en-us+f3)
splits=(train train valid valid)
for v in 0 1 2 3; do
  for keyword in yes left nine; do
    speak "${voices[$v]}" "$keyword" "kw-$v-$keyword"
    printf 'kw-%s-%s.wav\t%s\tkeyword\t%s\t0.05\t0.40\tespeak:%s\n' "$v" "$keyword" "${splits[$v]}" \
      "$keyword" "${voices[$v]}" >> "$manifest"
  done
  s=0
  for sentence in "the weather is mild this morning" "please open the window"; do
    speak "${voices[$v]}" "$sentence" "sent-$v-$s"
    printf 'sent-%s-%s.wav\t%s\tsentence\t-\t-\t-\tespeak:%s\n' "$v" "$s" "${splits[$v]}" \
      "${voices[$v]}" >> "$manifest"
    s=$((s + 1))
  done
done
# A near miss of the valid voice: a sentence clip labelled with the word it says.
speak en-gb+f2 lift near-lift
printf 'near-lift.wav\tvalid\tsentence\tlift\t-\t-\tespeak:en-gb+f2\n' >> "$manifest"
sox -R -n -r 16000 -c 1 -b 16 "$work/pink.wav" synth 3 pinknoise || fail "cannot make noise"
printf 'pink.wav\ttrain\tnoise\t-\t-\t-\tnoise:generated\n' >> "$manifest"

"$ROOT/scripts/train-models.sh" --smoke --out "$work/models" --manifest "$manifest" \
  --earshot "$EARSHOT" > "$work/out.txt" 2>&1 || {
  cat "$work/out.txt" >&2
  fail "train-models.sh --smoke failed"
}
for model in vad kws; do
  [ -s "$work/models/$model.esm" ] || fail "$model.esm was not written"
done
"$EARSHOT" file --format frames --vad-model "$work/models/vad.esm" \
  --kws-model "$work/models/kws.esm" "$work/kw-2-yes.wav" > "$work/frames.csv" 2> "$work/file.log" || {
  cat "$work/file.log" >&2
  fail "the models do not load in earshot file"
}
header=$(head -n 1 "$work/frames.csv")
for column in speech yes left nine; do
  case ",$header," in *",$column,"*) ;; *) fail "no $column column in: $header" ;; esac
done
grep -q "1 of them near misses, each judged on its own" "$work/out.txt" ||
  fail "the near miss was not judged on its own: $(cat "$work/out.txt")"
# tools/eval/cross-voice.sh: thresholds chosen on one valid voice (with the tail
# extrapolated), counted on the other (`earshot calibrate --check`), both ways.
ES_FOLD_A=f2 "$ROOT/tools/eval/cross-voice.sh" "$work/models/kws.esm" --manifest "$manifest" \
  --out "$work/cross" --earshot "$EARSHOT" -- --max-false-alarms 100 --extrapolate-tail \
  > "$work/cross.txt" 2>&1 || {
  cat "$work/cross.txt" "$work"/cross/*.log >&2
  fail "cross-voice.sh failed"
}
grep -q "counted on fold B: recall" "$work/cross.txt" && grep -q "counted on fold A: recall" "$work/cross.txt" &&
  grep -q "held-out folds together: [0-9]* false alarms in" "$work/cross.txt" ||
  fail "cross-voice.sh: no figures in: $(cat "$work/cross.txt")"
grep -q "expected from the tails" "$work/cross/kws-A.txt" || fail "the tail was not extrapolated"
grep -q "the model's own thresholds" "$work/cross/kws-A-on-B.txt" || fail "--check did not measure"
echo "train_models_smoke: passed ($(wc -l < "$work/frames.csv") frames; $(grep -c . "$manifest") manifest lines)"
