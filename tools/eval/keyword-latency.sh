#!/usr/bin/env bash
# Keyword latency on an evaluation set that scripts/eval.sh has run: for every keyword
# found (an event of that keyword between 0.2 s before the word and 1 s after it, as
# report.js counts hits), the event's `time` minus the word's true end, per SNR: median,
# p90 and max in ms. The event itself is sent at the score's peak, at most the detector's
# peak wait (100 ms) after `time`.
#
#   tools/eval/keyword-latency.sh [SET_DIR]     (default data/eval/full)
set -euo pipefail
set_dir=${1:-data/eval/full}
[ -f "$set_dir/kws.truth.tsv" ] || { echo "keyword-latency: $set_dir: no kws.truth.tsv (scripts/eval.sh builds the set)" >&2 && exit 1; }
echo "| SNR | keywords found | fired after the word: median | p90 | max |"
echo "|---|---:|---:|---:|---:|"
for run in "$set_dir"/runs/earshot/kws_*.jsonl; do
  snr=$(basename "$run" .jsonl)
  snr=${snr#kws_}
  awk 'FNR == NR { if ($0 !~ /^#/) { n++; kw[n] = $1; s[n] = $2; e[n] = $3 } next }
    /"type":"keyword"/ {
      match($0, /"keyword":"[^"]*"/); k = substr($0, RSTART + 11, RLENGTH - 12)
      match($0, /"time":[0-9.]+/); t = substr($0, RSTART + 7, RLENGTH - 7) + 0
      for (i = 1; i <= n; i++) if (kw[i] == k && t >= s[i] - 0.2 && t <= e[i] + 1.0) { print (t - e[i]) * 1000; break }
    }' "$set_dir/kws.truth.tsv" "$run" | sort -n |
    awk -v snr="$snr" '{ v[NR] = $1 } END {
      if (!NR) { printf "| %s | 0 | – | – | – |\n", snr; exit }
      p = int(NR * 0.9) + 1; if (p > NR) p = NR
      printf "| %s | %d | %+.0f ms | %+.0f ms | %+.0f ms |\n", snr, NR, v[int(NR / 2) + 1], v[p], v[NR] }'
done
