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

# render_job: one job's clip and sidecar; non-zero when a tool failed.
render_job() {
    local id=$1 engine=$2 voice=$3 rate=$4 pitch=$5 text=$6 prefix=$7 split=$8 kind=$9
    local label=${10} voice_tag=${11}
    local meta="$clips_dir/$id.tsv" wav="$clips_dir/$id.wav"
    mkdir -p "$(dirname "$wav")" || return 1
    synth "$engine" "$voice" "$rate" "$pitch" "$text" "$tmp/full.wav" || return 1
    local duration start=- end=-
    duration=$(trimmed_16k "$tmp/full.wav" "$wav") || return 1
    if [ "$kind" = keyword ]; then
        start=0 end=$duration
        if [ "$prefix" != - ]; then
            synth "$engine" "$voice" "$rate" "$pitch" "$prefix" "$tmp/prefix.wav" || return 1
            start=$(trimmed_16k "$tmp/prefix.wav" "$tmp/prefix16.wav") || return 1
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
        return 0
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$prefix_dir/$id.wav" "$split" "$kind" "$label" \
        "$start" "$end" "$voice_tag" >"$meta.part" || return 1
    mv "$meta.part" "$meta"
}

done_count=0 failed_count=0
while IFS=$'\t' read -r id engine voice rate pitch text prefix split kind label voice_tag; do
    [ -s "$clips_dir/$id.tsv" ] && continue
    if render_job "$id" "$engine" "$voice" "$rate" "$pitch" "$text" "$prefix" "$split" "$kind" \
        "$label" "$voice_tag"; then
        done_count=$((done_count + 1))
    else
        echo "render.sh: $id: rendering failed, skipped (a rerun retries it)" >&2
        failed_count=$((failed_count + 1))
    fi
    if [ $(((done_count + failed_count) % 500)) -eq 0 ]; then
        echo "data: worker $worker rendered $done_count clips" >&2
    fi
done
echo "data: worker $worker finished, $done_count new clips, $failed_count failed" >&2
