#!/usr/bin/env bash
# Rebuilds the shipped clips from Debian packages (see README.md in this folder):
#   demo.wav — real read speech (pocketsphinx-testdata, librivox/ only), silence,
#              and the keywords "left", "stop", "seven" synthesised by espeak-ng.
# Deterministic: the same packages give the same bytes.
set -euo pipefail
cd "$(dirname "$0")"
librivox=/usr/share/pocketsphinx/test/data/librivox
speech=$librivox/sense_and_sensibility_01_austen_64kb-0880.wav  # "he was not an ill disposed young man"
[ -f "$speech" ] || { echo "make_clips: install pocketsphinx-testdata (scripts/setup.sh)" >&2; exit 1; }

# -R: repeatable random numbers, -D: no dither — so the bytes do not change from run to run.
sox() { command sox -R -D "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fmt=(-r 16000 -c 1 -b 16 -e signed-integer)

silence() { sox -n "${fmt[@]}" "$work/$1.wav" trim 0 "$2"; }
keyword() {
  # -s 140: a calm speaking rate; the word is trimmed to its own extent and
  # normalised to the level of the read speech.
  espeak-ng -v en-us -s 140 -w "$work/$1-raw.wav" "$1"
  sox "$work/$1-raw.wav" "${fmt[@]}" "$work/$1.wav" silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse gain -n -6
}

silence lead 0.6
sox "$speech" "${fmt[@]}" "$work/speech.wav"
silence gap1 1.0
keyword left
silence gap2 0.9
keyword stop
silence gap3 0.9
keyword seven
silence tail 0.8

sox "$work/lead.wav" "$work/speech.wav" "$work/gap1.wav" "$work/left.wav" "$work/gap2.wav" \
    "$work/stop.wav" "$work/gap3.wav" "$work/seven.wav" "$work/tail.wav" "${fmt[@]}" "$work/parts.wav"
# A quiet pink-noise floor (about -60 dBFS) under everything: no microphone
# delivers digital silence, and the gaps should not be the only zeros the
# models ever see.
sox -n "${fmt[@]}" "$work/floor.wav" synth "$(soxi -D "$work/parts.wav")" pinknoise vol 0.002
sox -m -v 1 "$work/parts.wav" -v 1 "$work/floor.wav" "${fmt[@]}" demo.wav
# Where each part lies, for the README and for checking results by ear.
for part in lead speech gap1 left gap2 stop gap3 seven tail; do
  echo "$part $(soxi -D "$work/$part.wav")"
done | awk '{ printf "%-7s %6.3f %6.3f\n", $1, t, t + $2; t += $2 }'
