'use strict';
// Real recordings of a custom phrase (Mycroft Precise's wake-word clips in
// ../shared/data/real-speech/mycroft-precise: athena, amelia, computer, hey chatterbox),
// laid in a stream for `earshot file --kws-model MODEL`, and that model's events scored
// against it. No model trains on those clips (models/recipe/real_speech.sh leaves them out):
// they are a custom keyword's real-voice test.
//
//   node real-phrase.js build --clips DIR --manifest FILE --out DIR [--noise-list FILE]
//                             [--limit N] [--seed S]
//   earshot file --kws-model MODEL OUT/real_clean.wav OUT/real_10.wav |
//     node real-phrase.js score --set OUT --phrase "PHRASE"
//
// build screens the clips (a clip whose loudest 10 ms frame above 200 Hz is under -90 dBFS
// or less than 10 dB above its floor holds no speech and is dropped; clips with over 0.1 %
// of samples at full scale are counted as clipped and kept, as a user's microphone would give
// them), levels each to -26 dBFS of active speech (+-2 dB), and lays them out one by one,
// 0.5-1.5 s apart, each after one to two keyword-free clips of the manifest's test split
// said by real people (Speech Commands words and digits: never trained on, never the
// phrase). The stream is written "clean" (over a faint -60 dBFS pink floor, a quiet room)
// and mixed at 10 dB SNR with the test split's noise
// and the noise list's files (scripts/eval.sh's kinds never trained on), as
// tools/eval/build.js mixes data/eval. Writes real_clean.wav, real_10.wav, real.truth.tsv
// (phrase clip start and end, s) and real.json (what was screened).
//
// score reads `earshot file`'s JSON lines: a phrase clip is found when the phrase fires
// from its start to 0.5 s after its end; every other event of the phrase is a false alarm
// on real keyword-free speech. Prints one tab-separated line:
//   clips N dropped D clipped C clean_found F clean_alarms A 10_found F10 10_alarms A10 hours H
const fs = require('fs');
const path = require('path');
const L = require('./lib.js');

const SPEECH_DBFS = -26;
const AFTER_S = 0.5;
const FLOOR_DBFS = -60; // the quiet room under the "clean" stream
const MIN_RANGE_DB = 10; // the loudest frame over the floor: less is steady noise, not a word
const dbToPower = (db) => Math.pow(10, db / 10);

function parseArgs(argv) {
  const o = { seed: 1, limit: 0, noiseList: null };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (i + 1 >= argv.length) throw L.usageError(`${argv[i]} needs a value`);
    const v = argv[i + 1];
    if (key === 'clips') o.clips = v;
    else if (key === 'manifest') o.manifest = v;
    else if (key === 'out' || key === 'set') o.out = v;
    else if (key === 'noise-list') o.noiseList = v;
    else if (key === 'limit') o.limit = Number(v);
    else if (key === 'seed') o.seed = Number(v);
    else if (key === 'phrase') o.phrase = v;
    else throw L.usageError(`unknown option ${argv[i]}`);
  }
  return o;
}

function listFlac(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFlac(p));
    else if (/\.(flac|wav)$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

// 2nd-order Butterworth high-pass at 200 Hz: the screen's view of a clip without the rumble
// and hum some recordings are loudest in.
function highPass(x) {
  const k = Math.tan((Math.PI * 200) / L.RATE);
  const q = Math.SQRT1_2;
  const norm = 1 / (1 + k / q + k * k);
  const b0 = norm;
  const a1 = 2 * (k * k - 1) * norm;
  const a2 = (1 - k / q + k * k) * norm;
  const y = new Float32Array(x.length);
  let x1 = 0;
  let x2 = 0;
  let y1 = 0;
  let y2 = 0;
  for (let i = 0; i < x.length; i++) {
    const v = b0 * (x[i] - 2 * x1 + x2) - a1 * y1 - a2 * y2;
    x2 = x1;
    x1 = x[i];
    y2 = y1;
    y1 = v;
    y[i] = v;
  }
  return y;
}

// A clip levelled to SPEECH_DBFS of active speech, or a reason it holds none. Levels are
// those above 200 Hz, relative to the clip's own floor (its quietest tenth of 10 ms frames):
// some recordings are very quiet (loudest frame -75 dBFS) or loudest in rumble, yet hold
// the word clearly; some are short and loud throughout (a small range, still speech).
function screen(x) {
  const h = highPass(x);
  let full = 0;
  for (let i = 0; i < x.length; i++) if (Math.abs(x[i]) >= 0.999) full++;
  const db = [];
  for (let t = 0; (t + 1) * L.HOP <= h.length; t++) db.push(10 * Math.log10(L.power(h, t * L.HOP, (t + 1) * L.HOP) + 1e-12));
  db.sort((a, b) => a - b);
  const floor = db.length ? db[Math.floor(0.1 * (db.length - 1))] : -120;
  const loudest = db.length ? db[db.length - 1] : -120;
  if (loudest < -90 || loudest - floor < MIN_RANGE_DB) return { silent: true };
  const lab = L.speechFrames(h);
  const p = L.activePower(x, lab);
  const g = Math.sqrt(dbToPower(SPEECH_DBFS) / p);
  return { x: x.map((v) => v * g), clipped: full > 0.001 * x.length };
}

// Pink noise (Paul Kellet's economy filter over white noise), unscaled.
function pinkNoise(length, rand) {
  const y = new Float32Array(length);
  let b0 = 0;
  let b1 = 0;
  let b2 = 0;
  for (let i = 0; i < length; i++) {
    const w = rand() * 2 - 1;
    b0 = 0.99765 * b0 + w * 0.099046;
    b1 = 0.963 * b1 + w * 0.2965164;
    b2 = 0.57 * b2 + w * 1.0526913;
    y[i] = b0 + b1 + b2 + w * 0.1848;
  }
  return y;
}

function build(o) {
  if (!o.clips || !o.manifest || !o.out) throw L.usageError('build needs --clips, --manifest and --out');
  const rand = L.rng(o.seed * 7919 + 34);
  let files = listFlac(o.clips);
  if (!files.length) throw new Error(`${o.clips}: no recordings`);
  if (o.limit > 0) files = rand.shuffle(files).slice(0, o.limit).sort();
  const rows = L.readManifest(o.manifest).filter((r) => r.split === 'test');
  // Real people's keyword-free words: Speech Commands and digits, never a custom phrase.
  const filler = rows.filter((r) => (r.kind === 'keyword' || r.kind === 'sentence') && /^(sc|fsdd|ds):/.test(r.voice));
  const noiseFiles = rows.filter((r) => r.kind === 'noise').map((r) => r.path);
  if (o.noiseList) noiseFiles.push(...fs.readFileSync(o.noiseList, 'utf8').split('\n').filter((l) => l.trim()));
  if (!filler.length || !noiseFiles.length) throw new Error(`${o.manifest}: its test split needs recorded speech and noise`);
  const pieces = [];
  const truth = [];
  let dropped = 0;
  let clipped = 0;
  let pos = Math.round(L.RATE);
  const place = (x, gainDb) => {
    const g = Math.pow(10, gainDb / 20);
    pieces.push({ at: pos, x, g });
    const start = pos;
    pos += x.length;
    return start;
  };
  const gap = () => (pos += Math.round(rand.uniform(0.5, 1.5) * L.RATE));
  for (const f of files) {
    const s = screen(L.decode(f));
    if (s.silent) {
      dropped++;
      continue;
    }
    if (s.clipped) clipped++;
    for (let k = 1 + rand.int(2); k > 0; k--) {
      const c = screen(L.decode(rand.pick(filler).path));
      if (c.silent) continue;
      place(c.x, rand.uniform(-2, 2));
      gap();
    }
    const start = place(s.x, rand.uniform(-2, 2));
    truth.push([start / L.RATE, pos / L.RATE, path.basename(f)]);
    gap();
  }
  pos += L.RATE;
  const clean = new Float32Array(pos);
  for (const { at, x, g } of pieces) for (let i = 0; i < x.length; i++) clean[at + i] += g * x[i];
  // A faint pink floor under everything, as any microphone has: between clips the stream
  // would otherwise be digital silence (dither alone), which no device gives and which cost
  // the default "computer" model of 2026-12-07 most of its real clips (at threshold 0.2: 6
  // of 57 found over silence, 23 over this floor, 34 over a -50 dBFS one).
  const floor = pinkNoise(pos, rand);
  const gf = Math.sqrt(dbToPower(FLOOR_DBFS) / L.power(floor));
  for (let i = 0; i < pos; i++) clean[i] += gf * floor[i];
  const bed = L.noiseBed(pos, noiseFiles.map((f) => L.decode(f)), rand);
  const noisy = Float32Array.from(clean);
  const gn = Math.sqrt(dbToPower(SPEECH_DBFS - 10));
  for (let i = 0; i < pos; i++) noisy[i] += gn * bed[i];
  for (const y of [clean, noisy]) {
    let peak = 0;
    for (let i = 0; i < y.length; i++) peak = Math.max(peak, Math.abs(y[i]));
    if (peak > 0.98) for (let i = 0; i < y.length; i++) y[i] *= 0.98 / peak; // SNR unchanged
  }
  fs.mkdirSync(o.out, { recursive: true });
  L.writeWav(path.join(o.out, 'real_clean.wav'), clean, rand);
  L.writeWav(path.join(o.out, 'real_10.wav'), noisy, rand);
  fs.writeFileSync(path.join(o.out, 'real.truth.tsv'), truth.map(([s, e, n]) => `${s.toFixed(3)}\t${e.toFixed(3)}\t${n}\n`).join(''));
  const meta = { clips: files.length, kept: truth.length, dropped, clipped, seconds: pos / L.RATE, noise_files: noiseFiles.length };
  fs.writeFileSync(path.join(o.out, 'real.json'), JSON.stringify(meta, null, 1) + '\n');
  process.stderr.write(`real-phrase: ${truth.length} of ${files.length} clips kept (${dropped} without speech dropped, ${clipped} clipped kept), ${(pos / L.RATE / 60).toFixed(1)} min\n`);
}

function score(o) {
  if (!o.out || !o.phrase) throw L.usageError('score needs --set and --phrase');
  const meta = JSON.parse(fs.readFileSync(path.join(o.out, 'real.json'), 'utf8'));
  const truth = fs
    .readFileSync(path.join(o.out, 'real.truth.tsv'), 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => l.split('\t').map(Number));
  const events = { real_clean: [], real_10: [] };
  const input = fs.readFileSync(0, 'utf8');
  for (const line of input.split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line);
    if (e.type !== 'keyword' || e.keyword !== o.phrase) continue;
    const which = path.basename(e.source, '.wav');
    if (events[which]) events[which].push(e.time);
  }
  const fields = ['clips', truth.length, 'dropped', meta.dropped, 'clipped', meta.clipped];
  for (const [which, name] of [
    ['real_clean', 'clean'],
    ['real_10', '10'],
  ]) {
    const found = new Set();
    let alarms = 0;
    for (const t of events[which]) {
      const i = truth.findIndex(([s, e]) => t >= s && t <= e + AFTER_S);
      if (i >= 0) found.add(i);
      else alarms++;
    }
    fields.push(`${name}_found`, found.size, `${name}_alarms`, alarms);
  }
  fields.push('hours', (meta.seconds / 3600).toFixed(3));
  console.log(fields.join('\t'));
}

module.exports = { screen, highPass };

L.runAsScript(module, 'real-phrase', () => {
  const [mode, ...rest] = process.argv.slice(2);
  const o = parseArgs(rest);
  if (mode === 'build') build(o);
  else if (mode === 'score') score(o);
  else throw L.usageError('usage: real-phrase.js build|score [options] (see the head of the file)');
});
