#!/usr/bin/env bash
# Failure behaviour of the `earshot` binary on careless or hostile input
# (issue 35; README "Failure behaviour"), each case as a user would meet it:
#
#   1  `file -o X X`, through a symbolic link, `-o *.wav`: refused, inputs intact;
#      -o output appears whole (written beside it, renamed at the end)
#   5  RTTM of files named with spaces and newlines: 10 fields a line
#   6  JSON of a file name that is not UTF-8: valid UTF-8, U+FFFD
#   8  `train` / `train-keyword` with an -o they cannot write: refused at once
#   9  `train-keyword` stopped by SIGTERM or SIGINT: its work folder is removed
#   13 `listen` with stdout closed: exit 1 at once, not events into the socket
#   14 a speech model given as --kws-model: refused with the reason
#   15 a long path keeps the reason; a directory as a daemon source says so
#
#   tests/daemon/cli/failures.sh BUILD/daemon/earshot
#
# Exit 0 pass, 1 fail, 77 skip (no sox). Cases 9 skip alone without espeak-ng.
set -u
EARSHOT=$(realpath "${1:?usage: failures.sh PATH/TO/earshot}")
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CLIP=$ROOT/tests/clips/demo.wav
command -v sox > /dev/null || {
  echo "failures: sox not installed: skipped"
  exit 77
}
work=$(mktemp -d /tmp/earshot-failures-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null; done
  wait 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# Every case runs, whatever failed before it: one run shows all that is wrong.
failed=0
fail() {
  echo "failures: FAIL: $*" >&2
  failed=$((failed + 1))
}
die() {
  echo "failures: FAIL: $*" >&2
  exit 1
}
# expect STATUS NEEDLE CMD...: CMD exits with STATUS and says NEEDLE on stderr.
expect() {
  local want=$1 needle=$2
  shift 2
  "$@" > "$work/out" 2> "$work/err"
  local got=$?
  [ "$got" = "$want" ] && grep -qF -- "$needle" "$work/err" ||
    fail "$* -> status $got (want $want), stderr: $(cat "$work/err") (want: $needle)"
  no_sanitizer_report "$work/err"
}
# In the ASan+UBSan build a report may share the exit status 1 a refusal has.
no_sanitizer_report() {
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1"; then
    fail "sanitizer report in $1: $(grep -m1 -E 'Sanitizer|runtime error:' "$1")"
  fi
  return 0
}
cd "$work" || die "cd $work"

# ---- 1: the output is never an input -----------------------------------------
sox "$CLIP" -r 16000 a.wav trim 0 3 && cp a.wav b.wav && cp a.wav keep.wav || die "sox"
ln -s a.wav link.wav
expect 2 "earshot: a.wav: is also the input a.wav" "$EARSHOT" file -o a.wav a.wav
expect 2 "earshot: link.wav: is also the input a.wav" "$EARSHOT" file -o link.wav a.wav
# `earshot file -o *.wav` with a.wav first: a.wav is the output and an input.
expect 2 "is also the input" "$EARSHOT" file -o a.wav b.wav link.wav
expect 2 "is also the input stdin" "$EARSHOT" file -o a.wav - < a.wav
cmp -s a.wav keep.wav && cmp -s b.wav keep.wav || fail "an input was changed"
# A good -o: complete, the mode of a new file, no temporary file left.
"$EARSHOT" file -o out.jsonl b.wav 2> "$work/err" || fail "file -o: $(cat "$work/err")"
"$EARSHOT" file b.wav | cmp -s - out.jsonl || fail "-o differs from stdout"
[ "$(stat -c %a out.jsonl)" = "$(umask -S > /dev/null; printf '%o' $((0666 & ~$(umask))))" ] ||
  fail "out.jsonl has mode $(stat -c %a out.jsonl)"
ls -A | grep -q '^\.earshot-' && fail "a temporary output file was left"
# Through a link to an existing output, the file is replaced, the link kept.
ln -s out.jsonl out-link.jsonl
"$EARSHOT" file --format rttm -o out-link.jsonl b.wav 2> /dev/null || fail "-o through a link"
[ -L out-link.jsonl ] && grep -q '^SPEAKER' out.jsonl || fail "-o through a link: link or file wrong"
# Stopped while it writes (its stdin, a FIFO held open here, has not ended):
# no temporary file, no output, and it ends by the signal.
mkfifo hold.fifo
for sig in TERM INT; do
  set -m # job control: a background job takes SIGINT as from a terminal
  "$EARSHOT" file -o stopped.jsonl - < hold.fifo 2> /dev/null &
  pid=$!
  set +m
  pids+=("$pid")
  exec 3> hold.fifo
  cat b.wav >&3
  for _ in $(seq 100); do ls -A | grep -q '^\.earshot-' && break; sleep 0.05; done
  kill -"$sig" "$pid"
  status=0
  wait "$pid" || status=$?
  exec 3>&-
  [ "$status" = $((128 + $(kill -l "$sig"))) ] || fail "file -o on SIG$sig: status $status"
  ls -A | grep -q '^\.earshot-' && fail "SIG$sig left the temporary output $(ls -A | grep '^\.earshot-')"
  [ -e stopped.jsonl ] && fail "SIG$sig left a partial stopped.jsonl"
done
# Devices are written in place (nothing to rename over /dev/null).
"$EARSHOT" file -o /dev/null b.wav || fail "-o /dev/null"

# ---- 5: RTTM keeps 10 fields, whatever the file is called -----------------------
cp b.wav "my file.wav"
cp b.wav "$(printf 'new\nline.wav')"
"$EARSHOT" file --format rttm "my file.wav" "$(printf 'new\nline.wav')" > rttm.txt ||
  fail "rttm of odd names"
[ "$(wc -l < rttm.txt)" -gt 1 ] || fail "rttm: no segments"
awk 'NF != 10 { bad = 1 } END { exit bad }' rttm.txt || fail "rttm lines without 10 fields: $(cat rttm.txt)"
grep -q '^SPEAKER my%20file 1 ' rttm.txt && grep -q '^SPEAKER new%0Aline 1 ' rttm.txt ||
  fail "rttm ids not encoded: $(cat rttm.txt)"

# ---- 6: JSON is UTF-8 even when a file name is not -----------------------------
bad=$(printf 'caf\xe9.wav') # Latin-1
cp b.wav "$bad"
"$EARSHOT" file "$bad" > bad.jsonl || fail "file of a Latin-1 name"
iconv -f UTF-8 -t UTF-8 bad.jsonl > /dev/null 2>&1 || fail "JSON is not UTF-8: $(od -c bad.jsonl | head -3)"
grep -q "\"source\":\"caf$(printf '\xef\xbf\xbd').wav\"" bad.jsonl || fail "no U+FFFD: $(head -1 bad.jsonl)"
if command -v jq > /dev/null; then jq -e . bad.jsonl > /dev/null || fail "jq rejects the JSON"; fi

# ---- 8: output paths are checked before any work -------------------------------
mkdir folder
printf '# path\tsplit\tkind\tlabel\n' > manifest.tsv
expect 1 "earshot: /nonexistent-dir/m.esm: folder /nonexistent-dir:" \
  "$EARSHOT" train manifest.tsv -o /nonexistent-dir/m.esm
expect 1 "earshot: folder: is a directory" "$EARSHOT" train manifest.tsv -o folder
expect 1 "earshot: /nonexistent-dir/m.esm: folder /nonexistent-dir:" \
  "$EARSHOT" train-keyword computer -o /nonexistent-dir/m.esm
grep -q "step 1/4" "$work/err" && fail "train-keyword started before checking -o"
expect 1 "earshot: folder: is a directory" "$EARSHOT" train-keyword computer -o folder

# ---- 9: train-keyword removes its work folder when stopped ----------------------
# stop_at SIGNAL WHEN: WHEN is "clips" (while rendering) or "train" (while training).
stop_at() {
  local sig=$1 when=$2 tmp=$work/tk-$1-$2
  mkdir "$tmp"
  # Job control, so that a background job takes SIGINT as a terminal's would.
  set -m
  TMPDIR=$tmp "$EARSHOT" train-keyword computer --small -o "$work/never.esm" 2> "$tmp.err" &
  local pid=$!
  set +m
  pids+=("$pid")
  for _ in $(seq 600); do
    if [ "$when" = clips ]; then
      ls "$tmp"/earshot-train-keyword-*/clips 2> /dev/null | grep -q . && break
    else
      grep -q "earshot: train: epoch" "$tmp.err" && break
    fi
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  if ! kill -"$sig" "$pid" 2> /dev/null; then
    fail "train-keyword ended before $sig ($when): $(tail -3 "$tmp.err")"
    return 1
  fi
  local status=0
  wait "$pid" || status=$?
  local want=$((128 + $(kill -l "$sig")))
  [ "$status" = "$want" ] || fail "train-keyword on $sig ($when): status $status, want $want: $(tail -3 "$tmp.err")"
  [ -z "$(ls -A "$tmp")" ] || fail "train-keyword on $sig ($when) left $(ls "$tmp")"
  grep -q "its work folder is removed" "$tmp.err" || fail "no word of the stop: $(tail -2 "$tmp.err")"
  no_sanitizer_report "$tmp.err"
  [ -e "$work/never.esm" ] && fail "a stopped train-keyword wrote a model"
  return 0
}
if command -v espeak-ng > /dev/null; then
  stop_at TERM clips
  stop_at INT clips
  stop_at TERM train
  stop_at INT train
else
  echo "failures: espeak-ng not installed: train-keyword interruption skipped"
fi

# ---- 13, 15: listen with stdout closed; a directory as a daemon source ----------
mkfifo in.fifo
mkdir audio-dir
cat > earshot.conf << EOF
[source.fifo]
file = $work/in.fifo
[source.dir]
file = $work/audio-dir
[events]
socket = $work/events.sock
stdout = no
EOF
"$EARSHOT" daemon --config earshot.conf 2> daemon.err &
daemon=$!
pids+=("$daemon")
for _ in $(seq 200); do grep -q 'earshot: ready' daemon.err && break; sleep 0.05; done
grep -q 'earshot: ready' daemon.err || die "the daemon did not get ready: $(cat daemon.err)"
timeout 10 "$EARSHOT" listen --socket "$work/events.sock" > /dev/null 2> listen.err 1>&-
status=$?
[ "$status" = 1 ] && grep -q "earshot: listen: stdout:" listen.err ||
  fail "listen with stdout closed: status $status, stderr: $(cat listen.err)"
for _ in $(seq 100); do grep -q 'source dir:' daemon.err && break; sleep 0.05; done
grep -q "source dir: $work/audio-dir: is a directory" daemon.err ||
  fail "a directory source: $(grep 'source dir' daemon.err)"
grep 'source dir' daemon.err | grep -q 'a pipe must carry' && fail "a directory source gets the pipe hint"
kill -TERM "$daemon"
wait "$daemon"
no_sanitizer_report daemon.err
no_sanitizer_report listen.err

# ---- 14: a speech model is not a keyword model --------------------------------
expect 1 "models/vad.esm: not a keyword model: its output \"speech\"" \
  "$EARSHOT" file --kws-model "$ROOT/models/vad.esm" b.wav
[ -s "$work/out" ] && fail "events from a speech model as keyword model"

# ---- 15: long paths do not cost the reason --------------------------------------
# Nine folders of 100 characters: far beyond the 512 bytes messages were cut at.
long=$work
for i in 1 2 3 4 5 6 7 8 9; do long=$long/folder-$i-$(printf 'x%.0s' {1..91}); done
mkdir -p "$long"
expect 1 "$long/missing.wav: No such file or directory" "$EARSHOT" file "$long/missing.wav"
printf 'not a model at all' > "$long/model.esm"
expect 1 "/model.esm: not an earshot model: the magic" "$EARSHOT" file --kws-model "$long/model.esm" b.wav
grep -q "^earshot: $work" "$work/err" || fail "the model's path does not lead: $(cat "$work/err")"

[ "$failed" = 0 ] || die "$failed checks failed"
echo "failures: all cases behave as README's Failure behaviour says"
