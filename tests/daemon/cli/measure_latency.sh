#!/usr/bin/env bash
# Detection latency of the current models and detector settings on
# tests/clips/demo.wav, in stream time, against where speech and each keyword
# really start and end (tests/clips/demo.truth.tsv):
#   speech onset   end of the frame at which the detector opened the segment
#                  (the speech probability reached the onset threshold) minus
#                  the true start of the speech;
#   speech start   the `time` of the segment's speech_start event (`earshot file
#                  --speech-start`: sent once the segment reached min speech
#                  and can no longer be dropped) minus the true start of the
#                  speech; median and max over the clip's speech parts
#                  (target <= 100 ms, issue #5);
#   speech event   stream time at which the segment's event is sent (its
#                  silence reached max(min silence, 2 x padding)) minus the true
#                  end of the speech;
#   keyword        the event's `time` (the detector fired) minus the true end
#                  of the word, and when the event is sent (at the smoothed
#                  posterior's peak: at most peak_wait_ms after `time`).
#
# Stream time is the same live and offline (daemon_mic checks that `earshot
# mic` and `earshot file` agree frame for frame), so this is measured
# offline; live capture adds only the processing latency that `earshot mic`
# reports on exit (daemon_mic_jack prints it for a real-time JACK stream).
#
# Usage: tests/daemon/cli/measure_latency.sh EARSHOT [earshot file options...]
# e.g. tests/daemon/cli/measure_latency.sh build/daemon/earshot --kws-model kws.esm
# Exit status 0 whatever the figures (it measures, it does not judge).
set -euo pipefail
earshot=${1:?usage: $0 EARSHOT [earshot file options]}
shift
here=$(dirname "$0")
clip=$here/../../clips/demo.wav
truth=$here/../../clips/demo.truth.tsv

# Every earshot option of the runs below is passed on: --min-speech-ms,
# --vad-threshold etc. change the figures.
# The detector's knobs: unless given, the binary's defaults as its help states them
# (es_vad_config_default, daemon/detect/detect.c).
default_of() { "$earshot" file --help | sed -n "s/^ *--$1 [A-Z]* .*(\([0-9.]*\))\$/\1/p"; }
onset=$(default_of vad-threshold) min_silence_ms=$(default_of min-silence-ms) pad_ms=$(default_of speech-pad-ms)
[ -n "$onset" ] && [ -n "$min_silence_ms" ] && [ -n "$pad_ms" ] ||
  { echo "$0: cannot read the detector defaults from '$earshot file --help'" >&2 && exit 1; }
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
  --vad-threshold) onset=${args[i + 1]} ;;
  --min-silence-ms) min_silence_ms=${args[i + 1]} ;;
  --speech-pad-ms) pad_ms=${args[i + 1]} ;;
  --vad-threshold=*) onset=${args[i]#*=} ;;
  --min-silence-ms=*) min_silence_ms=${args[i]#*=} ;;
  --speech-pad-ms=*) pad_ms=${args[i]#*=} ;;
  esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$earshot" file --format frames "$@" "$clip" >"$tmp/frames.csv"
"$earshot" file --format jsonl "$@" "$clip" >"$tmp/events.jsonl"
"$earshot" file --format jsonl --speech-start "$@" "$clip" >"$tmp/starts.jsonl"

echo "speech (onset threshold $onset, min silence $min_silence_ms ms, padding $pad_ms ms):"
awk -v onset="$onset" -v close_s="$(awk -v a="$min_silence_ms" -v b="$pad_ms" 'BEGIN { c = 2 * b; print (a > c ? a : c) / 1000 }')" \
  -v pad_s="$(awk -v b="$pad_ms" 'BEGIN { print b / 1000 }')" '
  FILENAME ~ /truth/ { if ($1 == "speech") { n++; label[n] = $2; ts[n] = $3; te[n] = $4 } next }
  FILENAME ~ /frames/ { if (FNR > 1) { split($0, f, ","); t[FNR - 1] = f[1]; p[FNR - 1] = f[2]; frames = FNR - 1 } next }
  /"type":"speech"/ {
    match($0, /"start":[0-9.]+/); s = substr($0, RSTART + 8, RLENGTH - 8) + 0
    match($0, /"end":[0-9.]+/); e = substr($0, RSTART + 6, RLENGTH - 6) + 0
    m++; es[m] = s; ee[m] = e
  }
  END {
    printf "  %-9s %8s %11s %12s\n", "part", "truth", "onset", "event sent"
    for (i = 1; i <= n; i++) {
      first = 0; last = 0
      for (j = 1; j <= m; j++) if (ee[j] > ts[i] - 0.3 && es[j] < te[i]) { if (!first) first = j; last = j }
      if (!first) { printf "  %-9s %.2f-%.2f  missed\n", label[i], ts[i], te[i]; continue }
      # the segment opened at its first frame at or after its start that reached the threshold
      k = 1; while (k <= frames && (t[k] + 0.0001 < es[first] || p[k] < onset)) k++
      on = (k <= frames) ? sprintf("%+6.0f ms", 1000 * (t[k] + 0.01 - ts[i])) : "?"
      sent = ee[last] - pad_s + close_s
      printf "  %-9s %.2f-%.2f %11s %+9.0f ms\n", label[i], ts[i], te[i], on, 1000 * (sent - te[i])
    }
  }' "$truth" "$tmp/frames.csv" "$tmp/events.jsonl"

peak_wait_s=0.10 # es_kws_config_default's peak_wait_ms
echo "keywords (fired: the event's time minus the word's true end; sent: at the latest, time + the peak wait; start/end: the event's bounds minus the word's):"
awk -v wait="$peak_wait_s" '
  FILENAME ~ /truth/ { if ($1 == "keyword") { n++; word[n] = $2; ws[n] = $3; we[n] = $4 } next }
  /"type":"keyword"/ {
    match($0, /"keyword":"[^"]*"/); kw = substr($0, RSTART + 11, RLENGTH - 12)
    match($0, /"time":[0-9.]+/); time = substr($0, RSTART + 7, RLENGTH - 7) + 0
    match($0, /"start":[0-9.]+/); start = substr($0, RSTART + 8, RLENGTH - 8) + 0
    match($0, /"end":[0-9.]+/); end = substr($0, RSTART + 6, RLENGTH - 6) + 0
    best = 0
    for (w = 1; w <= n; w++) if (word[w] == kw && time > ws[w] && time < we[w] + 1.5) best = w
    if (!best) { printf "  %-8s at %.2f s: no such word there (false alarm)\n", kw, time; fa++; next }
    printf "  %-8s fired %+5.0f ms, sent by %+5.0f ms; start %+5.0f ms, end %+5.0f ms\n", kw, 1000 * (time - we[best]),
      1000 * (time + wait - we[best]), 1000 * (start - ws[best]), 1000 * (end - we[best])
    if (!seen[best]) { hits++; fired = 1000 * (time - we[best]); sent = 1000 * (time + wait - we[best])
      if (hits == 1 || fired > max_fired) max_fired = fired; if (hits == 1 || sent > max_sent) max_sent = sent }
    seen[best] = 1
  }
  END {
    for (w = 1; w <= n; w++) if (!seen[w]) printf "  %-8s missed\n", word[w]
    if (hits) printf "  found %d of %d, %d false alarms; latest fired %+.0f ms, latest sent %+.0f ms after the word (target <= 300 ms)\n", hits, n, fa, max_fired, max_sent
    else printf "  found 0 of %d, %d false alarms: no keyword latency (the keyword model never fired on a keyword)\n", n, fa
  }
' "$(dirname "$truth")/demo.truth.tsv" "$tmp/events.jsonl"

echo "speech start (speech_start event's time minus the true start of the speech; --speech-start):"
awk '
  FILENAME ~ /truth/ { if ($1 == "speech") { n++; label[n] = $2; ts[n] = $3; te[n] = $4 } next }
  /"type":"speech_start"/ {
    match($0, /"start":[0-9.]+/); pending_start = substr($0, RSTART + 8, RLENGTH - 8) + 0
    match($0, /"time":[0-9.]+/); pending_time = substr($0, RSTART + 7, RLENGTH - 7) + 0
    pending = 1; next
  }
  /"type":"speech"/ {
    match($0, /"start":[0-9.]+/); s = substr($0, RSTART + 8, RLENGTH - 8) + 0
    match($0, /"end":[0-9.]+/); e = substr($0, RSTART + 6, RLENGTH - 6) + 0
    if (!pending || s != pending_start) { printf "  speech at %.3f s without its speech_start\n", s; bad++ }
    m++; es[m] = s; ee[m] = e; st[m] = pending_time; pending = 0
  }
  END {
    printf "  %-9s %8s %10s %10s\n", "part", "truth", "sent at", "latency"
    for (i = 1; i <= n; i++) {
      first = 0
      for (j = 1; j <= m; j++) if (ee[j] > ts[i] - 0.3 && es[j] < te[i]) { first = j; break }
      if (!first) { printf "  %-9s %.2f-%.2f  missed\n", label[i], ts[i], te[i]; continue }
      lat = 1000 * (st[first] - ts[i])
      printf "  %-9s %.2f-%.2f %8.3f s %+7.0f ms\n", label[i], ts[i], te[i], st[first], lat
      k++; v[k] = lat
    }
    if (!k) { print "  no speech part found"; exit }
    for (a = 2; a <= k; a++) { x = v[a]; b = a - 1; while (b >= 1 && v[b] > x) { v[b + 1] = v[b]; b-- } v[b + 1] = x }
    median = (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    printf "  speech start latency over %d of %d parts: median %+.0f ms, max %+.0f ms (target <= 100 ms)%s\n",
      k, n, median, v[k], bad ? "; speech events without a speech_start!" : ""
  }' "$truth" "$tmp/starts.jsonl"
