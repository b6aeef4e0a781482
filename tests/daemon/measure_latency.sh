#!/usr/bin/env bash
# Detection latency of the current models on tests/clips/demo.wav, in stream
# time: how long after a word starts the speech probability crosses the VAD
# onset threshold, and how long after a keyword ends its event fires.
#
# Stream time is the same live and offline (daemon_mic checks that `earshot
# mic` and `earshot file` agree frame for frame), so this is measured
# offline; live capture adds only the processing latency that `earshot mic`
# reports on exit (daemon_mic_jack prints it for a real-time JACK stream).
#
# Usage: tests/daemon/measure_latency.sh EARSHOT [earshot file options...]
# The word boundaries are those of tests/clips/README.md.
set -euo pipefail
earshot=${1:?usage: $0 EARSHOT [options]}
shift
clip="$(dirname "$0")/../clips/demo.wav"
onset=0.5
for ((i = 1; i <= $#; i++)); do
  [ "${!i}" = --vad-threshold ] && { j=$((i + 1)); onset=${!j}; }
done

# word, start_s, end_s (tests/clips/README.md)
words="sentence 0.600 3.590
left 4.590 5.063
stop 5.963 6.476
seven 7.376 7.921"

echo "speech onset (end of the frame where p rises through $onset, from 100 ms before the word):"
"$earshot" file --format frames "$@" "$clip" |
  awk -F, -v words="$words" -v onset="$onset" '
    NR == 1 { next }
    { t[NR] = $1; p[NR] = $2; n = NR }
    END {
      count = split(words, line, "\n")
      for (w = 1; w <= count; w++) {
        split(line[w], f, " ")
        found = ""; already = 0
        for (i = 3; i <= n; i++) {
          if (t[i] < f[2] - 0.1 || t[i] >= f[3]) continue
          if (p[i] >= onset && p[i - 1] < onset) { found = t[i] + 0.01; break }
          if (p[i] >= onset && found == "" && t[i] <= f[2] - 0.1 + 0.005) already = 1
        }
        if (already) printf "  %-8s already above the threshold before the word\n", f[1]
        else if (found == "") printf "  %-8s missed\n", f[1]
        else printf "  %-8s %+6.0f ms\n", f[1], 1000 * (found - f[2])
      }
    }'

echo "keywords (event time minus the word's end; sent up to end_wait_ms later):"
"$earshot" file --format jsonl "$@" "$clip" |
  awk -v words="$words" '
    /"type":"keyword"/ {
      match($0, /"keyword":"[^"]*"/); kw = substr($0, RSTART + 11, RLENGTH - 12)
      match($0, /"time":[0-9.]+/); time = substr($0, RSTART + 7, RLENGTH - 7) + 0
      count = split(words, line, "\n"); best = ""
      for (w = 1; w <= count; w++) {
        split(line[w], f, " ")
        if (f[1] == kw && time > f[2] && time < f[3] + 1.5) best = f[3]
      }
      if (best == "") printf "  %-8s at %.2f s: no such word there (false alarm)\n", kw, time
      else printf "  %-8s %+6.0f ms\n", kw, 1000 * (time - best)
      seen[kw] = 1
    }
    END {
      count = split(words, line, "\n")
      for (w = 2; w <= count; w++) { split(line[w], f, " "); if (!seen[f[1]]) printf "  %-8s missed\n", f[1] }
    }'
