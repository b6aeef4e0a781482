#!/usr/bin/env bash
# Runs earshot and its peers on the same files of the evaluation set, in the same run, and
# prints one markdown comparison (also written to data/eval/compare.md; --quick and --smoke
# runs to data/eval/quick/ and data/eval/smoke/):
#   VAD: earshot vs WebRTC VAD vs Silero VAD: ROC-AUC, F1, and speed (x real time in CPU
#        time on the set's first keyword-free file, one hour in a full set; Silero on one
#        thread) with the ratio to earshot;
#   KWS: earshot vs pocketsphinx -kws: recall and false alarms per hour.
# Needs scripts/peers.sh (run here when its packages are missing).
#
#   scripts/compare.sh [--quick | --smoke] [--hours H] [--seed N] [--manifest FILE] [--earshot BIN]
#                      [--vad-model FILE] [--kws-model FILE] [--split test|valid|train]
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/eval/common.sh
eval_parse_args "$@"

if [ ! -d tools/peers/node_modules ] || ! command -v pocketsphinx_continuous >/dev/null; then
  scripts/peers.sh
fi

eval_build_set
eval_log "running $earshot on $set_dir"
eval_run_earshot

peers=tools/peers
for sys in webrtc silero pocketsphinx; do
  mkdir -p "$set_dir/runs/$sys"
  rm -f "$set_dir/runs/$sys"/*
done
eval_log "running WebRTC VAD and Silero VAD on the VAD streams"
for f in $(eval_files vad); do
  nice -n 10 node $peers/webrtc.mjs "$set_dir/$f" "$set_dir/runs/webrtc/${f%.wav}.frames.csv"
  nice -n 10 node $peers/silero.js "$set_dir/$f" "$set_dir/runs/silero/${f%.wav}.frames.csv"
done
eval_log "running pocketsphinx on the keyword streams and the keyword-free audio"
for f in $(eval_files kws) $(eval_files fa); do
  nice -n 10 node $peers/pocketsphinx.js "$set_dir/$f" "$set_dir/runs/pocketsphinx/${f%.wav}.jsonl"
done

# Speed: CPU seconds (user + sys, children included) of one whole process on one file.
speed_file=$set_dir/$(eval_files fa | head -n 1)
audio_s=$(soxi -D "$speed_file")
eval_log "timing every system on $speed_file (${audio_s} s)"
cpu_time() {
  local sys=$1 t
  shift
  TIMEFORMAT='%R %U %S'
  t=$({ time nice -n 10 "$@" >/dev/null; } 2>&1 | tail -n 1)
  read -r wall user sys_s <<<"$t"
  awk -v s="$sys" -v a="$audio_s" -v u="$user" -v k="$sys_s" -v w="$wall" 'BEGIN { printf "%s\t%s\t%.3f\t%s\n", s, a, u + k, w }'
}
{
  cpu_time earshot "$earshot" file --format jsonl -o /dev/null "$speed_file"
  cpu_time webrtc node $peers/webrtc.mjs "$speed_file" /dev/null --modes 3
  cpu_time silero node $peers/silero.js "$speed_file" /dev/null
  cpu_time pocketsphinx node $peers/pocketsphinx.js "$speed_file" /dev/null
} >"$set_dir/runs/speed.tsv"

node tools/eval/report.js compare --set "$set_dir" >"$set_dir/compare.md"
report=$set_dir/compare.md
if eval_is_record; then
  cp "$report" data/eval/compare.md
  report=data/eval/compare.md
fi
cat "$report"
eval_log "wrote $report"
