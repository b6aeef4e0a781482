#!/usr/bin/env bash
# Soak test of `earshot daemon` (issue #6): SOAK_MINUTES of 16 kHz audio
# (default 5; 60 for the full hour) pushed through a FIFO source as fast as
# the daemon takes it, with two `earshot listen` subscribers connected.
#
#   tests/daemon/service/soak.sh BUILD/daemon/earshot             # 5 minutes (ctest)
#   SOAK_MINUTES=60 tests/daemon/service/soak.sh BUILD/daemon/earshot
#
# Checks:
#   - both subscribers receive exactly the events `earshot file -` finds in
#     the same audio (lines compared with "source" and "wallclock" removed);
#   - the daemon reports the whole stream and 0 ring drops, STATUS shows
#     0 ring drops and no subscriber dropped as slow;
#   - the daemon's RSS (VmRSS, sampled every 0.05 s) grows by less than
#     SOAK_RSS_BOUND_KB (default 2048; 8192 in sanitizer builds, whose
#     allocator keeps a quarantine of freed memory) between 10 % of the run
#     and its end;
#   - exit 0 on SIGTERM, and no sanitizer report on stderr (leaks included).
# The audio is made at test time from tests/clips/demo.wav (speech and
# keywords) and silence; nothing hour-long is stored anywhere but the FIFO.
# SOAK_DAEMON_WRAPPER runs the daemon under a tool, e.g.
#   SOAK_DAEMON_WRAPPER="valgrind --error-exitcode=99 --leak-check=full" (its
# RSS is then valgrind's; raise SOAK_RSS_BOUND_KB).
# Prints: audio hours, wall seconds, x real time, RSS warm/end/max, events,
# drops. Exit 0 pass, 1 fail, 77 skip (no sox).
set -u
EARSHOT=${1:?usage: soak.sh PATH/TO/earshot}
EARSHOT=$(realpath "$EARSHOT")
MINUTES=${SOAK_MINUTES:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
CLIP=$HERE/../../clips/demo.wav
command -v sox >/dev/null || { echo "soak: sox not installed: skipped"; exit 77; }

sanitized=0
if ldd "$EARSHOT" 2>/dev/null | grep -qE 'lib(asan|tsan|ubsan)' ||
    nm "$EARSHOT" 2>/dev/null | grep -q '__asan_init'; then
    sanitized=1
fi
if [ $sanitized = 1 ]; then RSS_BOUND_KB=${SOAK_RSS_BOUND_KB:-8192}; else RSS_BOUND_KB=${SOAK_RSS_BOUND_KB:-2048}; fi

DIR=$(mktemp -d /tmp/earshot-soak-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
    echo "soak: FAIL: $*" >&2
    echo "--- daemon stderr (last 30 lines) ---" >&2
    tail -n 30 "$DIR/daemon.err" >&2 2>/dev/null
    exit 1
}

# ---- the audio: one ~21 s unit (the clip, silence, the clip 12 dB quieter,
# silence) repeated; one header for the whole stream --------------------------
sox "$CLIP" -r 16000 -c 1 -b 16 -e signed -t raw "$DIR/a.raw" || fail "sox"
sox "$CLIP" -r 16000 -c 1 -b 16 -e signed -t raw "$DIR/b.raw" vol 0.25 pad 0.7 0 || fail "sox"
sox -n -r 16000 -c 1 -b 16 -e signed -t raw "$DIR/s.raw" trim 0 2.3 || fail "sox"
cat "$DIR/a.raw" "$DIR/s.raw" "$DIR/b.raw" "$DIR/s.raw" >"$DIR/unit.raw"
unit_bytes=$(stat -c %s "$DIR/unit.raw")
repeats=$(((MINUTES * 60 * 32000 + unit_bytes - 1) / unit_bytes))
data_bytes=$((repeats * unit_bytes))
audio_s=$(awk -v b=$data_bytes 'BEGIN { printf "%.2f", b / 32000 }')

le32() {
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) \
        $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"
}
{
    printf 'RIFF'; le32 $((36 + data_bytes)); printf 'WAVEfmt '
    le32 16; printf '\x01\x00\x01\x00'; le32 16000; le32 32000; printf '\x02\x00\x10\x00'
    printf 'data'; le32 $data_bytes
} >"$DIR/header"
stream() {
    cat "$DIR/header"
    for ((i = 0; i < repeats; i++)); do cat "$DIR/unit.raw"; done
}
normalise() { sed -E 's/"source":"[^"]*",//; s/,"wallclock":"[^"]*"//' "$1"; }

# ---- what `earshot file` finds in the same audio ----------------------------
stream | "$EARSHOT" file - >"$DIR/file.jsonl" 2>"$DIR/file.err" || fail "earshot file -: $(cat "$DIR/file.err")"
normalise "$DIR/file.jsonl" >"$DIR/expected"
expected_count=$(wc -l <"$DIR/expected")
[ "$expected_count" -gt 0 ] || fail "earshot file found no events"

# ---- the daemon, its STATUS, two subscribers ---------------------------------
mkfifo "$DIR/in.fifo"
cat >"$DIR/earshot.conf" <<EOF
[source.soak]
file = $DIR/in.fifo
[events]
socket = $DIR/events.sock
stdout = no
EOF
# sd_notify datagrams, recorded when python3 is there (STATUS= figures).
have_notify=0
if command -v python3 >/dev/null; then
    python3 - "$DIR/notify.sock" >"$DIR/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print(s.recv(4096).decode(errors="replace").replace("\n", " | "), flush=True)
EOF
    pids+=($!)
    for _ in $(seq 100); do [ -S "$DIR/notify.sock" ] && break; sleep 0.05; done
    [ -S "$DIR/notify.sock" ] && have_notify=1
fi
wrapper=(${SOAK_DAEMON_WRAPPER:-})
if [ $have_notify = 1 ]; then
    NOTIFY_SOCKET=$DIR/notify.sock "${wrapper[@]}" "$EARSHOT" daemon --config "$DIR/earshot.conf" 2>"$DIR/daemon.err" &
else
    "${wrapper[@]}" "$EARSHOT" daemon --config "$DIR/earshot.conf" 2>"$DIR/daemon.err" &
fi
daemon=$!
pids+=($daemon)
for _ in $(seq 1200); do grep -q 'earshot: ready' "$DIR/daemon.err" && break; sleep 0.05; done
grep -q 'earshot: ready' "$DIR/daemon.err" || fail "the daemon did not get ready"
fds() { ls /proc/$daemon/fd 2>/dev/null | wc -l; }
idle_fds=$(fds)
"$EARSHOT" listen --socket "$DIR/events.sock" >"$DIR/sub1.jsonl" 2>"$DIR/sub1.err" &
sub1=$!
"$EARSHOT" listen --socket "$DIR/events.sock" >"$DIR/sub2.jsonl" 2>"$DIR/sub2.err" &
sub2=$!
pids+=($sub1 $sub2)
for _ in $(seq 200); do [ "$(fds)" -ge $((idle_fds + 2)) ] && break; sleep 0.05; done
[ "$(fds)" -ge $((idle_fds + 2)) ] || fail "the subscribers did not connect"

# ---- push the audio, sample RSS ----------------------------------------------
(while kill -0 $daemon 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$daemon/status 2>/dev/null)
    [ -n "$rss" ] && echo "$(date +%s.%N) $rss"
    sleep 0.05
done) >"$DIR/rss.log" &
sampler=$!
pids+=($sampler)
t0=$(date +%s.%N)
stream >"$DIR/in.fifo"
for _ in $(seq 6000); do grep -q 'stream ended' "$DIR/daemon.err" && break; sleep 0.05; done
t1=$(date +%s.%N)
grep -q 'stream ended' "$DIR/daemon.err" || fail "the stream did not end within 300 s of its last byte"
sleep 1.2 # one more STATUS=
kill -TERM $daemon
wait $daemon
daemon_rc=$?
kill $sampler 2>/dev/null
wait $sampler 2>/dev/null
for p in $sub1 $sub2; do
    for _ in $(seq 100); do kill -0 $p 2>/dev/null || break; sleep 0.05; done
done

# ---- figures -----------------------------------------------------------------
wall_s=$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.1f", b - a }')
xrt=$(awk -v a=$audio_s -v w=$wall_s 'BEGIN { printf "%.0f", a / w }')
read -r rss_warm rss_end rss_max rss_samples < <(awk -v t0=$t0 -v t1=$t1 '
    { if ($1 < t0 || $1 > t1) next; n++; t[n] = $1; r[n] = $2 }
    END {
        from = t0 + 0.1 * (t1 - t0); warm = -1; max = 0
        for (i = 1; i <= n; i++) if (t[i] >= from) {
            if (warm < 0) warm = r[i]
            if (r[i] > max) max = r[i]
            last = r[i]
        }
        print warm, last, max, n
    }' "$DIR/rss.log")
ended=$(grep -o 'stream ended: .*' "$DIR/daemon.err" | head -1)
daemon_audio_s=$(echo "$ended" | sed -E 's/stream ended: ([0-9.]+) s.*/\1/')
ring_drops=$(echo "$ended" | sed -nE 's/.* ([0-9]+) ring drops.*/\1/p')
status=$(grep 'STATUS=' "$DIR/notify.log" 2>/dev/null | tail -1 | sed 's/.*STATUS=//')
printf 'soak: %s h of audio (%s s, %d events) in %s s wall = %s x real time; %s\n' \
    "$(awk -v a=$audio_s 'BEGIN { printf "%.3f", a / 3600 }')" "$audio_s" "$expected_count" \
    "$wall_s" "$xrt" "$([ $sanitized = 1 ] && echo 'sanitizer build' || echo 'plain build')"
printf 'soak: daemon RSS kB: %s at 10%% of the run, %s at the end, %s max (%d samples); growth bound %s kB\n' \
    "$rss_warm" "$rss_end" "$rss_max" "$rss_samples" "$RSS_BOUND_KB"
printf 'soak: daemon: %s\n' "$ended"
[ -n "$status" ] && printf 'soak: last STATUS=%s\n' "$status"

# ---- checks ------------------------------------------------------------------
[ $daemon_rc = 0 ] || fail "the daemon exited with $daemon_rc"
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$DIR/daemon.err"; then
    fail "sanitizer report"
fi
if [ -n "${SOAK_DAEMON_WRAPPER:-}" ]; then
    grep -E '==[0-9]+== (ERROR SUMMARY|definitely|indirectly|possibly)' "$DIR/daemon.err" | sed 's/^/soak: /'
fi
[ "$daemon_audio_s" = "$audio_s" ] ||
    fail "the daemon read $daemon_audio_s s of $audio_s s"
[ "$ring_drops" = 0 ] || fail "ring drops: $ring_drops"
if [ -n "$status" ]; then
    echo "$status" | grep -q '(0 dropped as slow); 0 ring drops' || fail "STATUS=$status"
fi
for s in 1 2; do
    n=$(wc -l <"$DIR/sub$s.jsonl")
    normalise "$DIR/sub$s.jsonl" | cmp -s - "$DIR/expected" ||
        fail "subscriber $s got $n events, not earshot file's $expected_count (or different ones)"
done
echo "soak: both subscribers got earshot file's $expected_count events exactly"
[ "$rss_warm" -gt 0 ] 2>/dev/null || fail "no RSS samples"
growth=$((rss_max - rss_warm))
[ $growth -lt "$RSS_BOUND_KB" ] || fail "RSS grew by $growth kB (bound $RSS_BOUND_KB kB)"
echo "soak: RSS growth after warm-up $growth kB < $RSS_BOUND_KB kB: pass"
exit 0
