#!/usr/bin/env bash
# Smoke test of the real-speech part of the data recipe (models/recipe/real_speech.sh
# and word_span.pl), so that it runs in CI and cannot rot:
# - word_span.pl finds a 0.4 s tone burst in a second of noise within 50 ms of where it
#   is (25 ms frames, widened by 20 ms), gives a clip of noise alone no word, and
#   --whole the clip's own length;
# - real_speech.sh --small over the shared real recordings writes manifest lines whose
#   keyword clips have spans inside their clips, whose speakers each keep to one split, and
#   never a Mycroft wake-word recording (kept for testing custom keywords);
# - digit_strings.sh (run by it) cuts digits from the first recordings by forced
#   alignment: some are kept, each decodes as its own digit (checked again here).
#
#   tests/models/train/real_speech_smoke.sh [REAL_SPEECH_DIR]   (default ../shared/data/real-speech)
#
# Exit 0 pass, 1 fail, 77 skip (no sox, or no shared recordings for the second part).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
real=${1:-$ROOT/../shared/data/real-speech}
command -v sox >/dev/null || exit 77
work=$(mktemp -d /tmp/earshot-real-speech-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "real_speech_smoke: $*" >&2
  exit 1
}

sox -R -n -r 16000 -c 1 -b 16 "$work/noise.wav" synth 1 pinknoise vol 0.01
sox -R -n -r 16000 -c 1 -b 16 "$work/tone.wav" synth 0.4 sine 440 vol 0.5 pad 0.35 0.25
sox -m "$work/noise.wav" "$work/tone.wav" "$work/word.wav"
read -r _ start end _ < <(perl "$ROOT/models/recipe/word_span.pl" "$work/word.wav")
awk -v s="$start" -v e="$end" 'BEGIN { exit !(s > 0.30 && s < 0.38 && e > 0.72 && e < 0.80) }' ||
  fail "tone at 0.35-0.75 s found at $start-$end"
read -r _ start _ < <(perl "$ROOT/models/recipe/word_span.pl" "$work/noise.wav")
[ "$start" = - ] || fail "a word found in noise alone (from $start s)"
read -r _ start end _ < <(perl "$ROOT/models/recipe/word_span.pl" --whole "$work/word.wav")
[ "$start" = 0.000 ] && [ "$end" = 1.000 ] || fail "--whole gave $start-$end, not 0.000-1.000"

[ -d "$real" ] || { echo "real_speech_smoke: no $real: recipe part skipped" >&2 && exit 77; }
bash "$ROOT/models/recipe/real_speech.sh" "$real" "$work/data" --small 2>"$work/log" ||
  fail "real_speech.sh failed: $(cat "$work/log")"
lines=$work/data/real-speech/lines.tsv
for split in train valid test; do
  grep -q "	$split	keyword	" "$lines" || fail "no $split keyword clips in $lines"
done
# Spans inside their clips; one split per speaker; no wake-word recording.
awk -F'\t' -v d="$work/data" '
  $3 == "keyword" { cmd = "soxi -D \"" d "/" $1 "\""; cmd | getline len; close(cmd)
    if (!($5 >= 0 && $5 < $6 && $6 <= len + 0.001)) { print "bad span: " $0; bad = 1 } }
  $7 !~ /^noise:/ { if (($7 in where) && where[$7] != $2) { print "two splits: " $7; bad = 1 }; where[$7] = $2 }
  $1 ~ /mycroft/ && $1 !~ /notwakeword/ { print "wake word read: " $1; bad = 1 }
  END { exit bad }' "$lines" || fail "bad lines in $lines"
# The digit strings' cuts (pocketsphinx: a data tool; skipped without it).
if command -v pocketsphinx_continuous >/dev/null; then
  digits=$(grep -c '	ds:' "$lines")
  [ "$digits" -ge 5 ] || fail "only $digits digits cut from the digit strings: $(cat "$work/log")"
  grep '	ds:' "$lines" | head -n 3 | while IFS=$'\t' read -r clip _ _ digit _; do
    printf '#JSGF V1.0;\ngrammar g;\npublic <s> = (zero | oh | one | two | three | four | five | six | seven | eight | nine);\n' >"$work/g.jsgf"
    heard=$(pocketsphinx_continuous -infile "$work/data/$clip" -jsgf "$work/g.jsgf" -logfn /dev/null 2>/dev/null)
    [ "$heard" = "$digit" ] || fail "$clip decodes as '$heard', not $digit"
  done || exit 1
fi
echo "real_speech_smoke: $(wc -l <"$lines") lines checked"
