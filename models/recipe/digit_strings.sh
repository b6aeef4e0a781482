#!/usr/bin/env bash
# digit_strings.sh SRC DEST [--small] — cuts the digit strings of
# SRC/digit-strings (70 speakers, each reading a phone number digit by digit:
# shared/data/real-speech/README.md) into one clip per digit, by forced
# alignment, and prints one plan line per kept digit on stdout:
#   CLIP<TAB>SPEAKER<TAB>DIGIT<TAB>START_S<TAB>END_S
# (CLIP relative to DEST; START/END the word's span inside the clip).
#
# pocketsphinx (Debian's, US English models) is a data tool here, never a
# runtime dependency:
# 1. align: the recording is decoded as one utterance (a long -vad_postspeech:
#    pauses between digits must not split it; wide beams: accented speech falls out
#    of the default ones) with a grammar that is exactly its digit
#    sequence ("oh" allowed for 0), which gives each digit's start and end; a
#    recording whose alignment does not return every digit is dropped whole;
# 2. check: each cut (the word with CONTEXT_S of audio either side) is decoded
#    alone with a grammar of the ten digits; a cut that does not decode as its
#    own digit is dropped (a misread digit, a bad boundary).
# The counts (recordings aligned, digits kept and dropped) go to stderr.
set -euo pipefail
src=$1/digit-strings
dest=$2
small=${3:-}
context_s=0.15
command -v pocketsphinx_continuous >/dev/null || {
    echo "digit_strings.sh: pocketsphinx_continuous not found (apt-get install pocketsphinx pocketsphinx-en-us)" >&2
    exit 1
}
[ -f "$src/digits.tsv" ] || { echo "digit_strings.sh: $src/digits.tsv: missing" >&2 && exit 1; }
mkdir -p "$dest/ds"
work=$(mktemp -d /tmp/earshot-digits-XXXXXX)
trap 'rm -rf "$work"' EXIT
names=(zero one two three four five six seven eight nine)

# decode WAV GRAMMAR_RULE: the words pocketsphinx hears, one per line with
# start and end (alternates like "one(2)" folded, silences and fillers left out).
decode() {
    printf '#JSGF V1.0;\ngrammar g;\npublic <s> = %s;\n' "$2" >"$work/g.jsgf"
    pocketsphinx_continuous -infile "$1" -jsgf "$work/g.jsgf" -time yes -vad_postspeech 30000 -beam 1e-100 -wbeam 1e-80 -pbeam 1e-100 -logfn /dev/null 2>/dev/null |
        awk 'NF == 4 && $1 !~ /^[<[]/ { sub(/\(.*\)$/, "", $1); sub(/^oh$/, "zero", $1); print $1, $2, $3 }'
}
any_digit="(zero | oh | one | two | three | four | five | six | seven | eight | nine)"

recordings=0 aligned=0 kept=0 dropped=0
while IFS=$'\t' read -r file digits _; do
    [ "$file" = file ] && continue
    [ -n "$small" ] && [ $recordings -ge 3 ] && break
    recordings=$((recordings + 1))
    speaker=${file%.flac}
    wav=$work/$speaker.wav
    sox -V1 "$src/$file" -r 16000 -c 1 -b 16 "$wav"
    rule=""
    for ((i = 0; i < ${#digits}; i++)); do
        d=${digits:i:1}
        [ "$d" = 0 ] && rule+=" (zero | oh)" || rule+=" ${names[$d]}"
    done
    decode "$wav" "$rule" >"$work/align.txt"
    if [ "$(wc -l <"$work/align.txt")" -ne ${#digits} ]; then
        dropped=$((dropped + ${#digits}))
        continue
    fi
    aligned=$((aligned + 1))
    duration=$(soxi -D "$wav")
    i=0
    while read -r word start end; do
        expected=${names[${digits:i:1}]}
        i=$((i + 1))
        # The cut: the word and CONTEXT_S either side (less at the file's ends).
        read -r from to <<<"$(awk -v s="$start" -v e="$end" -v c=$context_s -v d="$duration" \
            'BEGIN { f = s - c; if (f < 0) f = 0; t = e + c; if (t > d) t = d; printf "%.3f %.3f", f, t }')"
        clip=ds/$speaker/$i-$expected.wav
        mkdir -p "$dest/ds/$speaker"
        sox -V1 "$wav" "$dest/$clip" trim "$from" "=$to"
        heard=$(decode "$dest/$clip" "$any_digit" | awk '{ printf "%s%s", sep, $1; sep = " " }')
        if [ "$word" != "$expected" ] || [ "$heard" != "$expected" ]; then
            rm -f "$dest/$clip"
            dropped=$((dropped + 1))
            continue
        fi
        kept=$((kept + 1))
        awk -v c="$clip" -v sp="$speaker" -v w="$expected" -v s="$start" -v e="$end" -v f="$from" \
            'BEGIN { printf "%s\t%s\t%s\t%.3f\t%.3f\n", c, sp, w, s - f, e - f }'
    done <"$work/align.txt"
done <"$src/digits.tsv"
echo "data: digit strings: $aligned of $recordings recordings aligned; $kept digits kept, $dropped dropped (alignment or check failed)" >&2
