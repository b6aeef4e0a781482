#!/usr/bin/env bash
# Quick start (b): set up, build, and run every test.
# With SANITIZERS=1 it also runs the suite in ASan+UBSan and TSan builds (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
werror=-DES_WERROR=ON
BUILD_DIR=build scripts/build.sh $werror
ctest --test-dir build --output-on-failure -j2
if [ "${SANITIZERS:-0}" = 1 ]; then
  BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh $werror -DES_SANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j2 -LE no-asan
  BUILD_DIR=build-tsan BUILD_TYPE=Debug scripts/build.sh $werror -DES_TSAN=ON
  TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j2 -L tsan
fi
