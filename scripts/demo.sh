#!/usr/bin/env bash
# Quick start (a): set up, build, and run `earshot file` on a shipped clip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build/daemon/earshot file "${1:-tests/clips/demo.wav}"
