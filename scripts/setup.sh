#!/usr/bin/env bash
# Installs every Debian package that building, testing and training earshot need.
# Idempotent and non-interactive: safe to run on every CI run and every quick start.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang clang-format llvm libclang-rt-14-dev
  # libraries earshot links
  libportaudio2 portaudio19-dev libsndfile1-dev libfftw3-dev libcmocka-dev
  libsoxr-dev libsystemd-dev libinih-dev libespeak-ng-dev libmosquitto-dev
  # tests: audio tools, live-capture fakes, service checks
  sox valgrind systemd jackd2 jack-tools
  # tests: a real MQTT broker on loopback and its command-line clients
  mosquitto mosquitto-clients
  # training data (models/)
  espeak-ng flite
  # the digit strings of the real speech, cut by forced alignment (a data tool only)
  pocketsphinx pocketsphinx-en-us
  # real read speech (librivox/ folder only) for the shipped demo clip and regressions
  pocketsphinx-testdata
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all build, test and training packages present" >&2
