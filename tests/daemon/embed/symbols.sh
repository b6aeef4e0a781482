#!/bin/sh
# libearshot.so exports exactly the functions earshot.h declares (EARSHOT_API),
# and its soname is libearshot.so.<EARSHOT_ABI_VERSION>.
#   tests/daemon/embed/symbols.sh BUILD/daemon/embed/libearshot.so daemon/embed/earshot.h
set -u
lib=${1:?usage: symbols.sh LIBRARY HEADER}
header=${2:?usage: symbols.sh LIBRARY HEADER}
command -v nm > /dev/null && command -v readelf > /dev/null || exit 77
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# Declarations may wrap: join the header into one line per ';' first.
tr '\n' ' ' < "$header" | tr ';' '\n' | grep 'EARSHOT_API' |
  grep -o 'earshot_[a-z0-9_]*[[:space:]]*(' | tr -d ' (' | sort -u > "$tmp/header"
nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u > "$tmp/library"
if ! cmp -s "$tmp/header" "$tmp/library"; then
  echo "symbols.sh: exported symbols differ from earshot.h (< header, > library):" >&2
  diff "$tmp/header" "$tmp/library" >&2
  exit 1
fi
[ -s "$tmp/header" ] || { echo "symbols.sh: no EARSHOT_API functions found" >&2; exit 1; }

abi=$(sed -n 's/^#define EARSHOT_ABI_VERSION \([0-9]*\).*/\1/p' "$header")
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [ "$soname" != "libearshot.so.$abi" ]; then
  echo "symbols.sh: soname '$soname', expected libearshot.so.$abi" >&2
  exit 1
fi
# Only what the API needs: no libsndfile, PortAudio or other daemon libraries.
if readelf -d "$lib" | grep NEEDED | grep -Eq 'sndfile|portaudio|systemd|mosquitto|inih'; then
  echo "symbols.sh: libearshot needs a library it should not:" >&2
  readelf -d "$lib" | grep NEEDED >&2
  exit 1
fi
echo "symbols.sh: $(wc -l < "$tmp/library") symbols, soname $soname"
