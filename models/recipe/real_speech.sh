#!/usr/bin/env bash
# real_speech.sh SRC OUT [--small] — brings the real recorded speech of SRC
# (shared/data/real-speech: its README) into OUT/real-speech/, one 16 kHz mono
# WAV and one manifest line (OUT/real-speech/lines.tsv) per usable clip.
#
# Split by speaker, never by clip: a speaker id's CRC (cksum) modulo 20 puts
# 4 in 20 speakers in test, 3 in 20 in valid, the rest in train, so the same
# speaker lands in the same split on every run and in every set.
# - Speech Commands (v2 test part and the extra clips): a keyword of
#   models/recipe/keywords.txt is a `keyword` clip with the word's span found by
#   word_span.pl (clips where no word stands out are dropped and counted); any
#   other word is a keyword-free `sentence` labelled with the word, so
#   calibration and evaluation judge it as a near miss ("tree", "dog", ...);
#   the background cuts are `noise`.
# - Free Spoken Digit Dataset: keyword clips of six speakers (10 takes of each digit
#   each, not 50: speakers, not clips, teach variety), split the same way;
#   they are trimmed to the word, so the whole clip is its span.
# - Mycroft's not-wake-word recordings: keyword-free `sentence` clips, split by
#   file (their speakers are not given). Its wake-word recordings (athena,
#   amelia, computer, hey chatterbox, hey computer) are not read: they are kept
#   to test custom keywords on real voices, so no model may train on them.
# - Real noise: `noise`, split by file.
# - The digit strings: cut into digits by forced alignment and checked one by
#   one (digit_strings.sh, pocketsphinx), keyword clips split by speaker; run
#   once (resumable: kept while OUT/real-speech/ds.tsv exists).
# Not used yet: AN4 (its utterances mix keywords into sentences without word times).
set -euo pipefail
src=$1
out=$2
small=${3:-}
recipe=$(cd "$(dirname "$0")" && pwd)
dest=$out/real-speech
mkdir -p "$dest"
log() { echo "data: real speech: $*" >&2; }

speaker_split() {
    local bucket=$(($(printf '%s' "$1" | cksum | cut -d' ' -f1) % 20))
    if [ $bucket -lt 4 ]; then echo test; elif [ $bucket -lt 7 ]; then echo valid; else echo train; fi
}
declare -A keyword=()
while read -r w; do [ -n "$w" ] && [ "${w:0:1}" != "#" ] && keyword[$w]=1; done <"$recipe/keywords.txt"

# The plan: one line per clip, SOURCE<TAB>NAME<TAB>SPLIT<TAB>KIND<TAB>LABEL<TAB>VOICE.
plan=$dest/plan.tsv
{
    sc=$src/speech-commands-v2-test
    tail -n +2 "$sc/clips.tsv" | while IFS=$'\t' read -r path word speaker; do
        if [ "$word" = _background_ ]; then
            name=$(basename "$path" .flac)
            printf '%s\tsc-noise/%s\t%s\tnoise\t-\tnoise:speech-commands-%s\n' "$sc/$path" "$name" \
                "$(speaker_split "$name")" "$name"
        else
            kind=sentence
            [ -n "${keyword[$word]:-}" ] && kind=keyword
            printf '%s\tsc/%s/%s\t%s\t%s\t%s\tsc:%s\n' "$sc/$path" "$word" "$(basename "$path" .flac)" \
                "$(speaker_split "$speaker")" $kind "$word" "$speaker"
        fi
    done
    for f in "$src"/speech-commands-extra/*/*.flac; do
        word=$(basename "$(dirname "$f")")
        name=$(basename "$f" .flac)
        speaker=${name%%_*}
        kind=sentence
        [ -n "${keyword[$word]:-}" ] && kind=keyword
        printf '%s\tsc/%s/%s\t%s\t%s\t%s\tsc:%s\n' "$f" "$word" "$name" "$(speaker_split "$speaker")" \
            $kind "$word" "$speaker"
    done
    digits=(zero one two three four five six seven eight nine)
    for f in "$src"/fsdd/*.flac; do
        name=$(basename "$f" .flac)
        IFS=_ read -r digit speaker take <<<"$name"
        # 10 of each speaker's 50 takes of a digit: six speakers with 500 clips
        # each would outnumber the 250 other real speakers' clips.
        [ "$take" -ge 10 ] && continue
        printf '%s\tfsdd/%s\t%s\tkeyword\t%s\tfsdd:%s\n' "$f" "$name" "$(speaker_split "fsdd-$speaker")" \
            "${digits[$digit]}" "$speaker"
    done
    for f in "$src"/mycroft-precise/not-wake-words/*/*.flac; do
        name=$(basename "$f" .flac)
        printf '%s\tmycroft/%s\t%s\tsentence\t-\tmycroft:%s\n' "$f" "$name" "$(speaker_split "$name")" "$name"
    done
    find "$src/noise" -name '*.flac' | sort | while read -r f; do
        name=$(basename "$f" .flac)
        printf '%s\tnoise/%s\t%s\tnoise\t-\tnoise:real-%s\n' "$f" "$name" "$(speaker_split "$name")" "$name"
    done
} >"$plan.part"
# --small (CI's smoke data): a few clips of each kind and split, same rules.
if [ "$small" = --small ]; then
    awk -F'\t' '{ k = $3 " " $4; if (n[k]++ < 6) print }' "$plan.part" >"$plan"
    rm "$plan.part"
else
    mv "$plan.part" "$plan"
fi

# Convert (16 kHz mono 16-bit; resumable: a WAV is made once), two at a time.
cut -f1,2 "$plan" | awk -F'\t' -v d="$dest" '{ print $1 "\t" d "/" $2 ".wav" }' |
    while IFS=$'\t' read -r from to; do
        [ -s "$to" ] && continue
        printf '%s\0%s\0' "$from" "$to"
    done | xargs -0 -r -n 2 -P 2 sh -c 'mkdir -p "$(dirname "$2")" && sox -V1 "$1" -r 16000 -c 1 -b 16 "$2.part.wav" && mv "$2.part.wav" "$2"' convert

# Word spans of the keyword clips, then the manifest lines.
# FSDD is trimmed to the word already: its whole clip is the span.
{
    awk -F'\t' -v d="$dest" '$4 == "keyword" && $2 !~ /^fsdd\// { print d "/" $2 ".wav" }' "$plan" |
        xargs -r perl "$recipe/word_span.pl"
    awk -F'\t' -v d="$dest" '$4 == "keyword" && $2 ~ /^fsdd\// { print d "/" $2 ".wav" }' "$plan" |
        xargs -r perl "$recipe/word_span.pl" --whole
} >"$dest/spans.tsv"
awk -F'\t' -v OFS='\t' -v dest="$dest" -v root="$(basename "$dest")" '
    FNR == NR { if (index($1, dest "/") == 1) $1 = substr($1, length(dest) + 2)
                start[$1] = $2; end[$1] = $3; next }
    {
        rel = $2 ".wav"
        s = "-"; e = "-"
        if ($4 == "keyword") {
            if (!(rel in start) || start[rel] == "-") { dropped++; next }
            s = start[rel]; e = end[rel]
        }
        label = $4 == "noise" ? "-" : $5
        print root "/" rel, $3, $4, label, s, e, $6
    }
    END { printf "data: real speech: %d keyword clips without a word found, dropped\n", dropped > "/dev/stderr" }' \
    "$dest/spans.tsv" "$plan" >"$dest/lines.tsv"
# The digit strings' cuts (their spans come from the aligner).
if [ ! -s "$dest/ds.tsv" ]; then
    "$recipe/digit_strings.sh" "$src" "$dest" $small >"$dest/ds.tsv.part"
    mv "$dest/ds.tsv.part" "$dest/ds.tsv"
fi
while IFS=$'\t' read -r clip speaker digit start end; do
    printf '%s/%s\t%s\tkeyword\t%s\t%s\t%s\tds:%s\n' "$(basename "$dest")" "$clip" \
        "$(speaker_split "ds-$speaker")" "$digit" "$start" "$end" "$speaker"
done <"$dest/ds.tsv" >>"$dest/lines.tsv"
log "$(wc -l <"$dest/lines.tsv") clips, $(cut -f7 "$dest/lines.tsv" | grep -vc '^noise:' || true) of them speech; \
$(cut -f7 "$dest/lines.tsv" | grep -v '^noise:' | sort -u | wc -l) speakers or recordings"
