#!/usr/bin/env bash
# Measures custom keyword models (`earshot train-keyword`) on real voices: the phrase's real
# recordings (Mycroft Precise's wake-word clips in ../shared/data/real-speech/mycroft-precise:
# athena, amelia, computer, hey chatterbox; no model trains on them), each after one or two
# keyword-free words said by real people of data/'s test split, 0.5-1.5 s apart, in a
# stream run clean and mixed at 10 dB SNR with noise never trained on
# (tools/eval/real-phrase.js), through `earshot file --kws-model MODEL` at the model's own
# calibrated threshold and smoothing. A clip is found when the phrase fires within it or
# 0.5 s after. Also: false alarms per hour on data/eval/full's keyword-free hours (speech,
# among it real people's, music and noise never trained on; scripts/eval.sh builds them,
# tools/eval/phrase-alarms.js counts), and from the model card (MODEL.md, train-keyword's)
# the test split's synthetic recall and confusables accepted.
#
#   scripts/keyword-real-eval.sh [options] "PHRASE" MODEL...
#     --clips DIR      the phrase's recordings (default: REAL/mycroft-precise/<phrase without
#                      spaces>, REAL = $EARSHOT_REAL_SPEECH or ../shared/data/real-speech)
#     --limit N        N of them at random (smoke tests); default all
#     --data DIR       scripts/data.sh's output: its manifest's test split gives the
#                      keyword-free words and noise, DIR/eval/full the false-alarm hours
#     --set DIR        where the stream is built and kept (default DIR/real-phrase/<phrase>,
#                      or a temporary folder with --limit)
#     --no-alarms      skip the false-alarm hours (smoke tests)
#     --threshold P    measure at threshold P instead of the model's calibrated one (the
#                      smoothing stays the model's): other operating points
#     --earshot BIN    default build/daemon/earshot
#
# Prints a markdown table, one row per model, then one tab-separated line per model:
#   model M phrase P clips N dropped D clean_recall R clean_found F 10db_recall R10 10db_found F10
#   stream_alarms A stream_hours H fa_per_hour X fa_hours Y confusables C synthetic_recall S threshold T
# ("-" where a figure is not to be had).
set -euo pipefail
cd "$(dirname "$0")/.."

data=data
clips=
limit=0
set_dir=
alarms=1
override=()
earshot=${EARSHOT:-build/daemon/earshot}
real=${EARSHOT_REAL_SPEECH:-../shared/data/real-speech}
[ -d "$real" ] || real=/work/shared/data/real-speech
args=()
while [ $# -gt 0 ]; do
  case $1 in
  --clips) clips=$2 && shift 2 ;;
  --limit) limit=$2 && shift 2 ;;
  --data) data=$2 && shift 2 ;;
  --set) set_dir=$2 && shift 2 ;;
  --no-alarms) alarms=0 && shift ;;
  --threshold) override=(--kw-threshold-for "PLACEHOLDER=$2") && threshold_override=$2 && shift 2 ;;
  --earshot) earshot=$2 && shift 2 ;;
  -h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
  -*) echo "keyword-real-eval.sh: unknown option $1" >&2 && exit 2 ;;
  *) args+=("$1") && shift ;;
  esac
done
[ ${#args[@]} -ge 2 ] || { echo "usage: scripts/keyword-real-eval.sh [options] \"PHRASE\" MODEL... (--help)" >&2 && exit 2; }
phrase=${args[0]}
models=("${args[@]:1}")
[ ${#override[@]} -eq 0 ] || override=(--kw-threshold-for "$phrase=$threshold_override")
name=$(printf '%s' "$phrase" | tr -d ' ')
[ -n "$clips" ] || clips=$real/mycroft-precise/$name
[ -d "$clips" ] || { echo "keyword-real-eval.sh: no recordings of \"$phrase\" at $clips (--clips DIR)" >&2 && exit 2; }
[ -f "$data/manifest.tsv" ] || { echo "keyword-real-eval.sh: no $data/manifest.tsv (scripts/data.sh; --data DIR)" >&2 && exit 2; }
[ -x "$earshot" ] || { echo "keyword-real-eval.sh: no earshot binary at $earshot (--earshot BIN)" >&2 && exit 2; }

tmp=
if [ -z "$set_dir" ]; then
  if [ "$limit" -gt 0 ]; then
    tmp=$(mktemp -d /tmp/earshot-real-phrase-XXXXXX)
    set_dir=$tmp
  else
    set_dir=$data/real-phrase/$name
  fi
fi
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT
noise_list=()
[ -f "$data/eval/full/unseen-noise.txt" ] && noise_list=(--noise-list "$data/eval/full/unseen-noise.txt")
if [ ! -f "$set_dir/real.json" ]; then
  node tools/eval/real-phrase.js build --clips "$clips" --manifest "$data/manifest.tsv" --out "$set_dir" \
    --limit "$limit" ${noise_list[@]+"${noise_list[@]}"}
fi

# The test row of a train-keyword model card: "synthetic recall<TAB>confusables accepted".
card_figures() {
  local card=${1%.*}.md
  [ -f "$card" ] || { printf -- '-\t-\n' && return; }
  awk -F'|' '/^\| test \(voices never used\)/ {
    gsub(/ /, "", $5); c = $11; sub(/^ */, "", c); sub(/ *$/, "", c)
    printf "%s\t%s\n", $5, c; found = 1; exit }
    END { if (!found) printf "-\t-\n" }' "$card"
}

# The model's calibrated threshold, as `earshot file` uses it (from its card), or "-".
card_threshold() {
  local card=${1%.*}.md
  [ -f "$card" ] && sed -n 's/.*Threshold \*\*\([0-9.]*\)\*\* with the posterior smoothed over \*\*\([0-9]*\) ms.*/\1 (\2 ms)/p' "$card" | head -n 1 || true
}

rows=()
lines=()
for model in "${models[@]}"; do
  real_line=$("$earshot" file -j 2 --kws-model "$model" ${override[@]+"${override[@]}"} "$set_dir/real_clean.wav" "$set_dir/real_10.wav" |
    node tools/eval/real-phrase.js score --set "$set_dir" --phrase "$phrase")
  fa="-" fa_hours="-" fa_text="-"
  if [ $alarms = 1 ] && ls "$data"/eval/full/fa_*.wav >/dev/null 2>&1 && [ -f "$data/text/jobs.tsv" ]; then
    fa_text=$("$earshot" file -j 2 --kws-model "$model" ${override[@]+"${override[@]}"} "$data"/eval/full/fa_*.wav |
      node tools/eval/phrase-alarms.js --set "$data/eval/full" --text "$data/text/jobs.tsv" --phrase "$phrase")
    read -r fa fa_hours < <(printf '%s\n' "$fa_text" | sed -n 's/^\([0-9]*\) in \([0-9.]*\) h.*/\1 \2/p')
  fi
  IFS=$'\t' read -r synthetic confusables < <(card_figures "$model")
  threshold=$(card_threshold "$model")
  [ -n "$threshold" ] || threshold="-"
  [ ${#override[@]} -eq 0 ] || threshold="$threshold_override (set; calibrated ${threshold})"
  rows+=("$(printf '%s\n' "$real_line" | awk -F'\t' -v model="$model" -v fa="$fa" -v fah="$fa_hours" \
    -v fa_text="$fa_text" -v conf="$confusables" -v syn="$synthetic" -v thr="$threshold" '{
      n = $2; fa_rate = fa == "-" ? "-" : sprintf("%.2f / h (%d in %s h)", fa / fah, fa, fah)
      syn_pct = syn == "-" ? "-" : sprintf("%.1f %%", 100 * syn)
      printf "| %s | %.1f %% (%d/%d) | %.1f %% (%d/%d) | %s | %s | %d in %.2f h | %s | %s | %d of %d dropped (no speech), %d clipped kept |",
        model, n ? 100 * $8 / n : 0, $8, n, n ? 100 * $12 / n : 0, $12, n, fa_rate, conf,
        $10 + $14, 2 * $16, syn_pct, thr, $4, n + $4, $6 }')")
  lines+=("$(printf '%s\n' "$real_line" | awk -F'\t' -v OFS='\t' -v model="$model" -v phrase="$phrase" \
    -v fa="$fa" -v fah="$fa_hours" -v conf="$confusables" -v syn="$synthetic" -v thr="$threshold" '{
      n = $2
      print "model", model, "phrase", phrase, "clips", n, "dropped", $4,
        "clean_recall", sprintf("%.3f", n ? $8 / n : 0), "clean_found", $8,
        "10db_recall", sprintf("%.3f", n ? $12 / n : 0), "10db_found", $12,
        "stream_alarms", $10 + $14, "stream_hours", sprintf("%.3f", 2 * $16),
        "fa_per_hour", fa == "-" ? "-" : sprintf("%.2f", fa / fah), "fa_hours", fah,
        "confusables", conf == "" ? "-" : conf, "synthetic_recall", syn, "threshold", thr }')")
done

echo "| model | real recall, clean | real recall, 10 dB | false alarms, data/eval keyword-free hours | confusables accepted (card) | false alarms in the real stream | synthetic test recall (card) | threshold (smoothing) | real clips screened |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
printf '%s\n' "${lines[@]}"
