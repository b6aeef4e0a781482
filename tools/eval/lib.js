'use strict';
// Shared pieces of the evaluation tools: a seeded random generator, audio in and out
// (sox decodes whatever the manifest points at), the manifest reader, and the
// frame-level speech labels of a clean clip.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const RATE = 16000;
const HOP = 160; // 10 ms frames, as earshot's `--format frames`
const KEYWORDS = 'yes no up down left right on off stop go zero one two three four five six seven eight nine'.split(' ');

// mulberry32: small, fast, and the same sequence on every machine for a given seed.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.uniform = (lo, hi) => lo + (hi - lo) * next();
  next.int = (n) => Math.floor(next() * n);
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  next.shuffle = (arr) => {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [arr[i], arr[j]] = [arr[j], arr[i]];
    }
    return arr;
  };
  return next;
}

// Any file sox reads -> Float32Array at 16 kHz, one channel.
function decode(file) {
  const r = spawnSync('sox', ['-V1', file, '-t', 'raw', '-e', 'floating-point', '-b', '32', '-L', '-r', String(RATE), '-c', '1', '-'], {
    maxBuffer: 1 << 30,
  });
  if (r.error) throw new Error(`sox: ${r.error.message} (is sox installed? scripts/setup.sh installs it)`);
  if (r.status !== 0) throw new Error(`${file}: sox could not decode it: ${String(r.stderr).trim()}`);
  const b = Buffer.from(r.stdout);
  return new Float32Array(b.buffer, b.byteOffset, b.length >> 2);
}

// 16-bit PCM WAV, one channel, 16 kHz, with TPDF dither so that no stretch is exact
// digital silence (some detectors misbehave on runs of zeros, real inputs never have them).
function writeWav(file, samples, rand) {
  const n = samples.length;
  const buf = Buffer.alloc(44 + 2 * n);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + 2 * n, 4);
  buf.write('WAVEfmt ', 8, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(RATE, 24);
  buf.writeUInt32LE(RATE * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(2 * n, 40);
  const pcm = new Int16Array(buf.buffer, buf.byteOffset + 44, n);
  for (let i = 0; i < n; i++) {
    const v = Math.round(samples[i] * 32767 + rand() - rand());
    pcm[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file + '.tmp', buf);
  fs.renameSync(file + '.tmp', file);
}

// models/MANIFEST.md, format v1. Paths become absolute.
function readManifest(file) {
  const dir = path.dirname(path.resolve(file));
  const rows = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim() || line.startsWith('#')) return;
    const f = line.split('\t');
    if (f[0] === 'path') return; // a header line
    if (f.length < 7) throw new Error(`${file}:${i + 1}: expected 7 tab-separated columns, got ${f.length}`);
    const num = (s) => (s === '-' ? null : Number(s));
    rows.push({
      path: path.resolve(dir, f[0]),
      clip: f[0], // as the manifest says it: relative to its folder
      split: f[1],
      kind: f[2],
      label: f[3],
      start: num(f[4]),
      end: num(f[5]),
      voice: f[6].trim(),
    });
  });
  return rows;
}

// Speech frames of a clean clip, for its level (SNR is set on them) and keyword spans: 10 ms
// frames whose energy is within 35 dB of the clip's loudest frame and 12 dB above its quiet
// floor, with gaps under 150 ms closed (pauses inside a word or between close words) and
// islands under 30 ms dropped (clicks). The VAD truth is speechLabels, the training's rule.
function speechFrames(x) {
  const n = Math.floor(x.length / HOP);
  const db = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    let e = 0;
    for (let i = t * HOP; i < (t + 1) * HOP; i++) e += x[i] * x[i];
    db[t] = 10 * Math.log10(e / HOP + 1e-12);
  }
  const sorted = Array.from(db).sort((a, b) => a - b);
  const floor = sorted[Math.floor(0.1 * (n - 1))] ?? -120;
  const peak = sorted[n - 1] ?? -120;
  const thr = Math.max(peak - 35, floor + 12);
  const lab = new Uint8Array(n);
  for (let t = 0; t < n; t++) lab[t] = db[t] > thr ? 1 : 0;
  dropShortRuns(lab, 0, 15, true);
  dropShortRuns(lab, 1, 3, false);
  return lab;
}

// The truth of the VAD sets: models/train/labels.c's rule, step for step, so that every split
// marks speech the same way (issue #33: pauses over 100 ms are not speech). Frame t is the
// 25 ms window starting at t * HOP; it is speech when its energy is 12 dB above the clip's
// floor (5th percentile), within 40 dB of its loudest frame and above -65 dBFS; speech runs
// under 60 ms are clicks; non-speech runs of up to 8 frames between speech (a 100 ms pause)
// are filled; speech lasts 5 frames past its last loud one. One label per HOP of the clip
// (the last frames, whose window does not fit, are speech only by the hangover).
const LABEL_WINDOW = 400;
function speechLabels(x) {
  const n = Math.floor(x.length / HOP);
  const lab = new Uint8Array(n);
  const frames = x.length < LABEL_WINDOW ? 0 : 1 + Math.floor((x.length - LABEL_WINDOW) / HOP);
  if (frames === 0) return lab;
  const db = new Float64Array(frames);
  for (let t = 0; t < frames; t++) {
    let e = 0;
    for (let i = t * HOP; i < t * HOP + LABEL_WINDOW; i++) e += x[i] * x[i];
    db[t] = 10 * Math.log10(e / LABEL_WINDOW + 1e-12);
  }
  const sorted = Array.from(db).sort((a, b) => a - b);
  const thr = Math.max(sorted[Math.floor(0.05 * (frames - 1))] + 12, sorted[frames - 1] - 40, -65);
  for (let t = 0; t < frames; t++) lab[t] = db[t] > thr ? 1 : 0;
  dropShortRuns(lab.subarray(0, frames), 1, 6, false);
  dropShortRuns(lab.subarray(0, frames), 0, 9, true);
  let quietFor = 6;
  for (let t = 0; t < n; t++) {
    quietFor = lab[t] ? 0 : quietFor + 1;
    lab[t] = quietFor <= 5 ? 1 : 0;
  }
  return lab;
}

// Runs of `value` shorter than `minRun` frames flip to the other value, but for a run that
// touches either end when `keepEdges` (labels.c's drop_short_runs).
function dropShortRuns(lab, value, minRun, keepEdges) {
  let t = 0;
  while (t < lab.length) {
    if (lab[t] !== value) {
      t++;
      continue;
    }
    let e = t;
    while (e < lab.length && lab[e] === value) e++;
    const atEdge = t === 0 || e === lab.length;
    if (e - t < minRun && !(keepEdges && atEdge)) lab.fill(1 - value, t, e);
    t = e;
  }
}

function power(x, from = 0, to = x.length) {
  let e = 0;
  for (let i = from; i < to; i++) e += x[i] * x[i];
  return e / Math.max(1, to - from);
}

// Mean power of the speech frames only, so that SNR means the same for long and short clips.
function activePower(x, lab) {
  let e = 0;
  let k = 0;
  for (let t = 0; t < lab.length; t++) {
    if (!lab[t]) continue;
    for (let i = t * HOP; i < (t + 1) * HOP; i++) e += x[i] * x[i];
    k += HOP;
  }
  return k ? e / k : power(x);
}

// Runs of 1 in a frame label array -> [[start_s, end_s], ...]
function labelsToSegments(lab) {
  const segs = [];
  let t = 0;
  while (t < lab.length) {
    if (!lab[t]) {
      t++;
      continue;
    }
    let e = t;
    while (e < lab.length && lab[e]) e++;
    segs.push([(t * HOP) / RATE, (e * HOP) / RATE]);
    t = e;
  }
  return segs;
}

function segmentsToLabels(segs, n) {
  const lab = new Uint8Array(n);
  for (const [s, e] of segs) {
    const a = Math.max(0, Math.round((s * RATE) / HOP));
    const b = Math.min(n, Math.round((e * RATE) / HOP));
    if (b > a) lab.fill(1, a, b);
  }
  return lab;
}

// The command-line tools' shared ends: a wrong invocation (exit 2) and the run of a
// tool's main() when it is the script node was started with (other errors exit 1).
// A bed of held-out noise of the given length, unit power, from random stretches of the
// noise clips (each stretch normalised so that changing clip does not change level).
function noiseBed(length, noiseClips, rand) {
  const bed = new Float32Array(length);
  let pos = 0;
  let guard = 0;
  while (pos < length) {
    const c = rand.pick(noiseClips);
    const want = Math.min(length - pos, Math.round(rand.uniform(3, 20) * RATE));
    if (want < HOP) break; // a few samples at the very end stay silent
    const off = c.length > want ? rand.int(c.length - want) : 0;
    const n = Math.min(want, c.length - off);
    const p = power(c, off, off + n);
    if (n < HOP || p < 1e-9) {
      if (++guard > 1000) throw new Error('the held-out noise clips are silent');
      continue;
    }
    const g = 1 / Math.sqrt(p);
    for (let i = 0; i < n; i++) bed[pos + i] = g * c[off + i];
    pos += n;
  }
  return bed;
}

function usageError(message) {
  return Object.assign(new Error(message), { usage: true });
}

function runAsScript(mod, name, main) {
  if (require.main !== mod) return;
  try {
    main();
  } catch (e) {
    process.stderr.write(`${name}: ${e.message}\n`);
    process.exit(e.usage ? 2 : 1);
  }
}

// A recorded voice (a person), as the trainer counts them (--recorded-weight): any
// speech voice tag but the synthesisers' (espeak:, flite:); noise is nobody's voice.
const isRecorded = (voice) => !/^(espeak|flite|noise):/.test(voice);

module.exports = {
  noiseBed,
  isRecorded,
  usageError,
  runAsScript,
  RATE,
  HOP,
  KEYWORDS,
  rng,
  decode,
  writeWav,
  readManifest,
  speechFrames,
  speechLabels,
  power,
  activePower,
  labelsToSegments,
  segmentsToLabels,
};
