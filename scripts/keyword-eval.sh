#!/usr/bin/env bash
# Trains custom keyword models with `earshot train-keyword` for "hey nova", "computer" and
# "open sesame" (or the phrases given) and prints a markdown table of what each model card
# measured: recall on voices never used in training or calibration (the test split's
# espeak-ng variants), false alarms per hour on held-out keyword-free speech and noise, and
# the calibrated threshold, the share of held-out confusables (near misses) it accepts; and,
# when data/eval/full exists (scripts/eval.sh), its false alarms on that set's 5 h of
# keyword-free speech, music and noise (test-split voices, noise kinds never trained on),
# audio the model never saw in training or calibration, made for the 20 built-in keywords:
# the few sentences there that say the phrase count as found or missed, not as false alarms
# (tools/eval/phrase-alarms.js). Models, cards and logs go to OUT (default data/keywords/).
#
#   scripts/keyword-eval.sh [--minutes M] [--data DIR] [--out DIR] [--earshot BIN] [PHRASE...]
#                           [-- TRAIN-KEYWORD-OPTION...]
#
# Options after "--" go to every `earshot train-keyword` run (e.g. -- --made-voices 100 --seed 2).
# One phrase after another (each uses both cores); 15 minutes each by default.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=15
data=data
out=data/keywords
earshot=${EARSHOT:-build/daemon/earshot}
phrases=()
train_options=()
while [ $# -gt 0 ]; do
  case $1 in
  --minutes) minutes=$2 && shift 2 ;;
  --data) data=$2 && shift 2 ;;
  --out) out=$2 && shift 2 ;;
  --earshot) earshot=$2 && shift 2 ;;
  --) shift && train_options=("$@") && break ;;
  -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
  -*) echo "keyword-eval.sh: unknown option $1" >&2 && exit 2 ;;
  *) phrases+=("$1") && shift ;;
  esac
done
[ ${#phrases[@]} -gt 0 ] || phrases=("hey nova" "computer" "open sesame")
[ -x "$earshot" ] || { echo "keyword-eval.sh: no earshot binary at $earshot (--earshot BIN)" >&2 && exit 2; }
[ -f "$data/manifest.tsv" ] || echo "keyword-eval.sh: no $data/manifest.tsv: a modest synthesised set instead" >&2
mkdir -p "$out"

# MODEL on the evaluation set's keyword-free hours: "F in H h (R / h); N of M sentences that
# say it found" (tools/eval/phrase-alarms.js: a few of its sentences may say the phrase), or "-".
eval_set=$data/eval/full
natural_alarms() {
  local model=$1 phrase=$2 files=()
  [ -f "$eval_set/meta.json" ] && [ -f "$data/text/jobs.tsv" ] || { echo "-" && return; }
  mapfile -t files < <(ls "$eval_set"/fa_*.wav 2>/dev/null)
  [ ${#files[@]} -gt 0 ] || { echo "-" && return; }
  "$earshot" file -j 2 --kws-model "$model" "${files[@]}" |
    node tools/eval/phrase-alarms.js --set "$eval_set" --text "$data/text/jobs.tsv" --phrase "$phrase" ||
    echo "-"
}

rows=()
for phrase in "${phrases[@]}"; do
  name=$(printf '%s' "$phrase" | tr ' ' '-')
  echo "keyword-eval.sh: \"$phrase\" ($minutes min budget), log in $out/$name.log" >&2
  data_arg=(--data none)
  [ -f "$data/manifest.tsv" ] && data_arg=(--data "$data")
  if line=$("$earshot" train-keyword "$phrase" -o "$out/$name.esm" --minutes "$minutes" \
    "${data_arg[@]}" ${train_options[@]+"${train_options[@]}"} 2>"$out/$name.log" | grep '^phrase'); then
    natural=$(natural_alarms "$out/$name.esm" "$phrase")
    rows+=("$(printf '%s\n' "$line" | awk -F'\t' -v natural="$natural" '{
      printf "| %s | %s | %.1f %% of %d clips | %s (%.2f h) | %.1f %% of %d | %s | %s, %s ms |",
        $2, $4, 100 * $6, $14, $8, $10, 100 * $16, $18, natural, $12, $20 }')")
  else
    rows+=("| $phrase | failed: see $out/$name.log | | | | | |")
  fi
  tail -n 1 "$out/$name.log" >&2
done

echo "| phrase | minutes (whole run) | recall, unseen voices | false alarms / hour (held-out audio) | confusables accepted | false alarms on data/eval's keyword-free hours; its sentences that say the phrase found | threshold, smoothing |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
