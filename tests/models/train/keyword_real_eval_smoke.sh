#!/usr/bin/env bash
# Smoke test of scripts/keyword-real-eval.sh (custom keywords on real voices) and
# tools/eval/real-phrase.js, so that they run in CI and cannot rot. Real recordings are not
# needed: four espeak-ng clips of "stop" stand in for a phrase's recordings, with one silent
# clip among them (screened out), and a tiny manifest gives the keyword-free words and noise;
# the built-in model is measured on its own keyword "stop". Checks the table row and the
# tab-separated line: 4 clips kept, 1 dropped, some found clean, figures in range.
#
#   tests/models/train/keyword_real_eval_smoke.sh EARSHOT
#
# Exit 0 pass, 1 fail, 77 skip (no espeak-ng, sox or node).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
earshot=$(realpath "$1")
for tool in espeak-ng sox node; do command -v $tool >/dev/null || exit 77; done
work=$(mktemp -d /tmp/earshot-keyword-real-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "keyword_real_eval_smoke: $*" >&2
  exit 1
}

mkdir -p "$work/clips" "$work/data/words"
for v in en-us en-gb en+m3 en-us+f2; do
  espeak-ng -v "$v" -w "$work/clips/stop-$v.wav" "stop" || fail "espeak-ng failed"
done
sox -n -r 16000 -c 1 -b 16 "$work/clips/silent.wav" trim 0 1
{
  printf '# earshot training manifest v1\n'
  i=0
  for text in "hello there" "good morning" "the window"; do
    espeak-ng -v en-us -w "$work/data/words/w$i.wav" "$text"
    printf 'words/w%d.wav\ttest\tsentence\t-\t-\t-\tsc:speaker%d\n' $i $i
    i=$((i + 1))
  done
  sox -n -r 16000 -c 1 -b 16 "$work/data/words/noise.wav" synth 5 pinknoise vol 0.3
  printf 'words/noise.wav\ttest\tnoise\t-\t-\t-\tnoise:generated\n'
} >"$work/data/manifest.tsv"

out=$("$ROOT/scripts/keyword-real-eval.sh" --data "$work/data" --clips "$work/clips" \
  --set "$work/set" --no-alarms --earshot "$earshot" stop builtin 2>"$work/log") ||
  fail "the script failed: $(cat "$work/log")"
row=$(printf '%s\n' "$out" | grep '^| builtin |') || fail "no table row: $out"
line=$(printf '%s\n' "$out" | tail -n 1)
field() { printf '%s\n' "$line" | awk -F'\t' -v k="$1" '{ for (i = 1; i < NF; i += 2) if ($i == k) print $(i + 1) }'; }
[ "$(field clips)" = 4 ] || fail "clips kept: $(field clips), not 4 ($line)"
[ "$(field dropped)" = 1 ] || fail "silent clips dropped: $(field dropped), not 1 ($line)"
found=$(field clean_found)
[ "$found" -ge 1 ] && [ "$found" -le 4 ] || fail "clean clips found: $found of 4 ($line)"
[ "$(field 10db_found)" -le 4 ] || fail "10 dB found out of range ($line)"
[ "$(field fa_per_hour)" = - ] || fail "--no-alarms still measured alarms ($line)"
[ -s "$work/set/real_10.wav" ] && [ -s "$work/set/real.truth.tsv" ] || fail "no stream written"
[ "$(wc -l <"$work/set/real.truth.tsv")" = 4 ] || fail "the truth does not list 4 clips"
echo "keyword_real_eval_smoke: ok: $row"
