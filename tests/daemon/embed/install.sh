#!/bin/sh
# libearshot from outside the tree: `cmake --install` into a temporary prefix,
# then examples/ built against the installed copy with nothing but
# `pkg-config --cflags --libs earshot` (shared, and static from libearshot.a).
# wav_events must print exactly what `earshot file` prints for the demo clip;
# mic_events is compiled and linked, and run on the demo clip through ALSA's
# `file` plugin when sox is there to make the raw capture.
#
#   tests/daemon/embed/install.sh BUILD_DIR SOURCE_DIR CC [EXTRA_CFLAGS]
# Exit 0 pass, 1 fail, 77 skip (no pkg-config, or a library the examples need).
set -u
build=$(realpath "${1:?usage: install.sh BUILD SOURCE CC [CFLAGS]}")
src=$(realpath "${2:?}")
cc=${3:?}
extra=${4:-}
command -v pkg-config > /dev/null || { echo "install.sh: no pkg-config: skipped"; exit 77; }
for dep in sndfile portaudio-2.0; do
  pkg-config --exists "$dep" || { echo "install.sh: no $dep.pc: skipped"; exit 77; }
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "install.sh: $*" >&2
  exit 1
}

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
pc=$(find "$prefix" -name earshot.pc)
[ -n "$pc" ] || fail "no earshot.pc installed"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$prefix/include/earshot.h" ] || fail "include/earshot.h not installed"
for f in libearshot.a libearshot.so libearshot.so.0; do
  [ -e "$libdir/$f" ] || fail "$libdir/$f not installed"
done

# From outside: a copy of the examples in a folder of their own, no -I into the tree.
mkdir "$tmp/user" && cp "$src/examples/wav_events.c" "$src/examples/mic_events.c" "$tmp/user/"
cd "$tmp/user" || exit 1
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists earshot || fail "pkg-config does not find earshot.pc"
[ "$(pkg-config --modversion earshot)" = "$(sed -n 's/^project(earshot VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ] ||
  fail "earshot.pc version differs from the project's"
cflags="-std=c11 -Wall -Wextra -Werror $extra"

# shellcheck disable=SC2046,SC2086 # pkg-config's output is meant to be split
$cc $cflags wav_events.c $(pkg-config --cflags --libs earshot sndfile) -o wav_events ||
  fail "wav_events does not build against the installed library"
# shellcheck disable=SC2046,SC2086
$cc $cflags mic_events.c $(pkg-config --cflags --libs earshot portaudio-2.0) -o mic_events ||
  fail "mic_events does not build against the installed library"
# Static: libearshot.a and what `pkg-config --static` adds for it.
# shellcheck disable=SC2046,SC2086
$cc $cflags wav_events.c $(pkg-config --cflags earshot sndfile) "$libdir/libearshot.a" \
  $(pkg-config --static --libs earshot | sed 's/-learshot//') $(pkg-config --libs sndfile) \
  -o wav_events_static || fail "wav_events does not link statically"
if ldd wav_events_static | grep -q libearshot; then fail "the static build still needs libearshot.so"; fi
readelf -d wav_events | grep -q 'NEEDED.*libearshot.so.0' || fail "wav_events does not need libearshot.so.0"

demo=$src/tests/clips/demo.wav
"$build/daemon/earshot" file "$demo" > expected.txt || fail "earshot file failed"
[ -s expected.txt ] || fail "earshot file printed nothing"
LD_LIBRARY_PATH=$libdir ./wav_events "$demo" > shared.txt || fail "wav_events (shared) failed"
./wav_events_static "$demo" > static.txt || fail "wav_events (static) failed"
cmp -s expected.txt shared.txt || { diff expected.txt shared.txt >&2; fail "wav_events differs from earshot file"; }
cmp -s expected.txt static.txt || { diff expected.txt static.txt >&2; fail "static wav_events differs"; }

# mic_events on a "microphone" that plays the demo clip (tests/common/live_fixture.h).
if command -v sox > /dev/null; then
  sox "$demo" -t f32 -e floating-point -r 16000 -c 1 "$tmp/demo.f32" || fail "sox failed"
  cat > "$tmp/asound.conf" << CONF
pcm.!default {
  type plug
  slave {
    pcm { type file  slave.pcm { type null }  file "/dev/null"  infile "$tmp/demo.f32" }
    format FLOAT_LE  rate 16000  channels 1
  }
}
CONF
  ALSA_CONFIG_PATH=$tmp/asound.conf JACK_NO_START_SERVER=1 JACK_DEFAULT_SERVER=earshot-no-server \
    LD_LIBRARY_PATH=$libdir timeout 60 ./mic_events 7 > mic.txt 2> mic.err ||
    { cat mic.err >&2; fail "mic_events failed"; }
  grep -q '^speech ' mic.txt || { cat mic.txt mic.err >&2; fail "mic_events heard no speech"; }
  echo "install.sh: mic_events: $(wc -l < mic.txt) events from the file-backed microphone"
fi
echo "install.sh: installed, examples built (shared + static) and agree with earshot file"
