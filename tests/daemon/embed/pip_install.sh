#!/bin/sh
# `pip install ./python` works offline with nothing but pip (the in-tree,
# standard-library build backend: no setuptools, no wheel, nothing fetched),
# and the installed module finds the library and hears the demo's events. A
# copy of python/ is installed so that no build files land in the tree.
#   tests/daemon/embed/pip_install.sh PYTHON SOURCE_DIR LIBRARY
# Exit 0 pass, 1 fail, 77 skip (the interpreter has no pip).
set -u
python=${1:?usage: pip_install.sh PYTHON SOURCE LIBRARY}
src=$(realpath "${2:?}")
library=$(realpath "${3:?}")
"$python" -m pip --version > /dev/null 2>&1 || { echo "pip_install.sh: no pip: skipped"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/python" "$tmp/src"
rm -rf "$tmp/src/tests"
find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
# --no-index: any attempt to fetch a build dependency fails the test.
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$python" -m pip install --no-index --no-deps \
  --target "$tmp/site" "$tmp/src" > "$tmp/pip.log" 2>&1 ||
  { cat "$tmp/pip.log" >&2; echo "pip_install.sh: pip install failed" >&2; exit 1; }
[ -f "$tmp/site/earshot/__init__.py" ] || { echo "pip_install.sh: module not installed" >&2; exit 1; }
ls -d "$tmp"/site/earshot-*.dist-info > /dev/null || { echo "pip_install.sh: no dist-info" >&2; exit 1; }
cd "$tmp" || exit 1
PYTHONPATH=$tmp/site EARSHOT_LIBRARY=$library "$python" - "$src/tests/clips/demo.wav" "$tmp/site" << 'PY' || exit 1
import sys, wave, earshot
assert earshot.__file__.startswith(sys.argv[2]), earshot.__file__
with wave.open(sys.argv[1]) as w, earshot.Detector(sample_rate=w.getframerate()) as det:
    events = det.feed(w.readframes(w.getnframes())) + det.finish()
kinds = {e.type for e in events}
assert kinds == {"speech", "keyword"}, events
print("pip_install.sh: installed module heard %d events" % len(events))
PY
