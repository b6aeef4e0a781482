#!/usr/bin/env bash
# Rebuilds real-keywords.wav and real-keywords.truth.tsv: each of the 20 keywords said
# by a real person of the Speech Commands test speakers (scripts/data.sh puts them in
# the test split of data/manifest.tsv: no model trains on them), one speaker per
# keyword, 0.8 s apart, on a quiet pink-noise floor. A change that loses real voices'
# keywords fails the regression test that reads them (tests/daemon/cli/test_cli.c).
#
#   tests/clips/make_real_clips.sh [DATA_DIR]    (default: data, made by scripts/data.sh)
#
# Deterministic for the same data: the speaker of each keyword is the first in byte
# order of the test speakers that said it and were not taken yet.
set -euo pipefail
cd "$(dirname "$0")"
data=$(cd "${1:-../../data}" && pwd)
lines=$data/real-speech/lines.tsv
[ -f "$lines" ] || { echo "make_real_clips: $lines: missing (run scripts/data.sh)" >&2 && exit 1; }
sox() { command sox -R -D "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fmt=(-r 16000 -c 1 -b 16 -e signed-integer)

sox -n "${fmt[@]}" "$work/gap.wav" trim 0 0.8
parts=("$work/gap.wav")
truth="# What real-keywords.wav contains (make_real_clips.sh), for regression tests.
# kind	label	start_s	end_s	speaker (Speech Commands id; CC-BY-4.0, README.md)"
t=0.8
declare -A taken=()
while read -r word; do
  [ -z "$word" ] || [ "${word:0:1}" = "#" ] && continue
  pick=$(awk -F'\t' -v w="$word" '$2 == "test" && $3 == "keyword" && $4 == w && $7 ~ /^sc:/' "$lines" |
    sort -t$'\t' -k7,7 -k1,1 | while IFS=$'\t' read -r path _ _ _ start end voice; do
      [ -n "${taken[$voice]:-}" ] || printf '%s\t%s\t%s\t%s\n' "$path" "$start" "$end" "$voice"
    done | awk 'NR == 1')
  [ -n "$pick" ] || { echo "make_real_clips: no test speaker says '$word'" >&2 && exit 1; }
  IFS=$'\t' read -r path start end voice <<<"$pick"
  taken[$voice]=1
  # The word alone, as the recipe found it, with 0.1 s of its own room either side.
  from=$(awk -v s="$start" 'BEGIN { s -= 0.1; printf "%.3f", s < 0 ? 0 : s }')
  sox "$data/$path" "${fmt[@]}" "$work/$word.wav" trim "$from" "=$(awk -v e="$end" 'BEGIN { printf "%.3f", e + 0.1 }')"
  length=$(soxi -D "$work/$word.wav")
  truth+=$'\n'"$(awk -v t="$t" -v w="$word" -v s="$start" -v e="$end" -v f="$from" -v v="${voice#sc:}" \
    'BEGIN { printf "keyword\t%s\t%.3f\t%.3f\t%s", w, t + s - f, t + e - f, v }')"
  t=$(awk -v t="$t" -v l="$length" 'BEGIN { printf "%.3f", t + l + 0.8 }')
  parts+=("$work/$word.wav" "$work/gap.wav")
done <../../models/recipe/keywords.txt

sox "${parts[@]}" "${fmt[@]}" "$work/parts.wav"
sox -n "${fmt[@]}" "$work/floor.wav" synth "$(soxi -D "$work/parts.wav")" pinknoise vol 0.002
sox -m -v 1 "$work/parts.wav" -v 1 "$work/floor.wav" "${fmt[@]}" real-keywords.wav
printf '%s\n' "$truth" >real-keywords.truth.tsv
echo "make_real_clips: real-keywords.wav ($(soxi -D real-keywords.wav) s), real-keywords.truth.tsv" >&2
