#!/usr/bin/env bash
# Renders the jobs of plan.pl (stdin) into CLIPS_DIR: for job ID, ID.wav (16 kHz
# mono 16-bit, leading and trailing silence trimmed) and ID.tsv (its manifest
# line, paths relative to CLIPS_DIR's parent). Jobs whose .tsv exists are
# skipped, so an interrupted run resumes where it stopped.
#
# Keyword timing: the keyword is the last word of the text, so its end is the
# trimmed clip's end. When the keyword follows a carrier phrase, the carrier is
# rendered alone by the same voice, rate and pitch and trimmed the same way;
# its duration is the keyword's start. Both renderings begin identically, so
# the leading trim cancels. The carrier rendered alone ends with phrase-final
# lengthening, so the start is slightly late (tens of ms): the max-pooling loss
# tolerates that, and the window's first frames are ambiguous anyway.
set -euo pipefail
clips_dir=$1
worker=${2:-0}
prefix_dir=$(basename "$clips_dir")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# synth ENGINE VOICE RATE PITCH TEXT OUT: raw synthesiser output.
synth() {
    case $1 in
    espeak) espeak-ng -v "$2" -s "$3" -p "$4" -w "$6" -- "$5" ;;
    flite) flite -voice "$2" --setf duration_stretch="$3" --setf int_f0_target_mean="$4" \
        -t "$5" -o "$6" >/dev/null ;;
    *) echo "render.sh: unknown engine $1" >&2 && return 1 ;;
    esac
}

# trimmed_16k IN OUT: prints OUT's duration in seconds.
trimmed_16k() {
    sox -G -V1 "$1" -r 16000 -c 1 -b 16 "$2" silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse
    soxi -D "$2"
}

done_count=0
while IFS=$'\t' read -r id engine voice rate pitch text prefix split kind label voice_tag; do
    meta="$clips_dir/$id.tsv"
    [ -s "$meta" ] && continue
    wav="$clips_dir/$id.wav"
    mkdir -p "$(dirname "$wav")"
    synth "$engine" "$voice" "$rate" "$pitch" "$text" "$tmp/full.wav"
    duration=$(trimmed_16k "$tmp/full.wav" "$wav")
    start=- end=-
    if [ "$kind" = keyword ]; then
        start=0 end=$duration
        if [ "$prefix" != - ]; then
            synth "$engine" "$voice" "$rate" "$pitch" "$prefix" "$tmp/prefix.wav"
            start=$(trimmed_16k "$tmp/prefix.wav" "$tmp/prefix16.wav")
        fi
        # A keyword shorter than 0.15 s means the timing failed: fall back to
        # the clip's last 0.4 s rather than a nonsense window.
        start=$(awk -v s="$start" -v e="$end" 'BEGIN {
            if (e - s < 0.15) s = e - 0.4; if (s < 0) s = 0; printf "%.3f", s }')
        end=$(awk -v e="$end" 'BEGIN { printf "%.3f", e }')
    fi
    if awk -v d="$duration" 'BEGIN { exit !(d < 0.05) }'; then
        echo "render.sh: $id: synthesiser produced silence, skipped" >&2
        printf '# %s: silent\n' "$id" >"$meta"
        continue
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$prefix_dir/$id.wav" "$split" "$kind" "$label" \
        "$start" "$end" "$voice_tag" >"$meta.part"
    mv "$meta.part" "$meta"
    done_count=$((done_count + 1))
    if [ $((done_count % 500)) -eq 0 ]; then
        echo "data: worker $worker rendered $done_count clips" >&2
    fi
done
echo "data: worker $worker finished, $done_count new clips" >&2
