'use strict';
// Builds the held-out evaluation set from the `test` split of a data manifest
// (models/MANIFEST.md): voices, clips and noise that training never saw.
//
//   vad_<snr>.wav   test sentences, keyword clips and real recordings (a third of the clips)
//                   with silences between, vad.clips.tsv says which clip is real,
//                   one clean stream mixed with held-out noise at each SNR; vad.truth.tsv
//                   holds its speech segments (from the clean clips, lib.speechLabels:
//                   the training labels' rule).
//   kws_<snr>.wav   keyword clips of test voices between keyword-free test sentences,
//                   the same stream at each SNR; kws.truth.tsv holds every keyword's times.
//   fa_NN.wav       keyword-free audio for false alarms: test speech (clean or noisy),
//                   music and noise, in files of at most one hour; fa_NN.truth.tsv says
//                   which stretch is which and, for speech, which clip (as the manifest
//                   names it) it plays: tools/eval/phrase-alarms.js tells a custom
//                   phrase's sentences apart by it.
//
// Deterministic for a given manifest, seed and size; each part is rebuilt only when its
// inputs change (a .key file beside it), so asking for more hours adds files.
//
// Usage: node build.js --out DIR (--manifest FILE | --smoke) [--size full|quick|smoke]
//                      [--hours H] [--seed N] [--split test|valid|train] [--noise-list FILE]
// --noise-list names more noise files, one path a line: sounds of kinds that training never
// heard (scripts/eval.sh passes ringtones and desktop sounds), mixed in beside the split's.
// --split valid builds the same kind of set from the validation voices, for tuning
// (thresholds of peers, say) without touching the test voices; --split train from the
// voices a model learnt from: whether it misses words it was trained on (it underfits) or
// only words of new voices (it overfits).
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawnSync } = require('child_process');
const L = require('./lib.js');

const VERSION = 4; // bump when what is built changes: cached parts are then rebuilt
const SIZES = {
  // vad_s: length of the VAD stream; kw_per: keyword clips per keyword (and twice as many
  // real ones if the test split has real voices: they lead the report); fa_h: hours of keyword-free audio. Near-miss
  // clips (words made to sound like a keyword) are about a tenth of it and are counted apart
  // (report.js), so a full set has 6 h to hold 5 h of keyword-free audio without them.
  // The full VAD stream is 40 min per SNR: at 10 min (75 real clips) its real-speech AUCs
  // moved by ~0.01 from one set to another, as much as the gaps to peers it measures.
  full: { vad_s: 2400, kw_per: 25, fa_h: 6, snrs: ['clean', '20', '10', '5', '0'] },
  quick: { vad_s: 180, kw_per: 6, fa_h: 0.25, snrs: ['clean', '20', '10', '5', '0'] },
  smoke: { vad_s: 12, kw_per: 1, kw_max: 8, fa_h: 12 / 3600, snrs: ['clean', '10'] },
};
const SPEECH_DBFS = -26; // active speech level that the noise is scaled against

function parseArgs(argv) {
  const o = { seed: 1, size: null, hours: null, manifest: null, out: null, smoke: false, split: 'test', noiseList: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out') o.out = val();
    else if (a === '--manifest') o.manifest = val();
    else if (a === '--seed') o.seed = Number(val());
    else if (a === '--size') o.size = val();
    else if (a === '--hours') o.hours = Number(val());
    else if (a === '--smoke') o.smoke = true;
    else if (a === '--split') o.split = val();
    else if (a === '--noise-list') o.noiseList = val();
    else usage(`unknown option ${a}`);
  }
  o.size = o.size || (o.smoke ? 'smoke' : 'full');
  if (!SIZES[o.size]) usage(`--size must be full, quick or smoke`);
  if (!o.out || (!o.manifest && !o.smoke)) usage('--out and one of --manifest or --smoke are required');
  if (o.hours !== null && !(o.hours > 0)) usage('--hours must be a positive number');
  if (!Number.isInteger(o.seed)) usage('--seed must be an integer');
  if (!['test', 'valid', 'train'].includes(o.split)) usage('--split must be test, valid or train');
  return o;
}

function usage(msg) {
  process.stderr.write(`build: ${msg}\nusage: node build.js --out DIR (--manifest FILE | --smoke) [--size full|quick|smoke] [--hours H] [--seed N] [--split test|valid|train] [--noise-list FILE]\n`);
  process.exit(2);
}

const dbToPower = (db) => Math.pow(10, db / 10);
const snrDb = (name) => (name === 'clean' ? null : Number(name));
const isReal = L.isRecorded;

// Decoded clips, levelled to SPEECH_DBFS, kept while the set is built: every part draws
// from the same split, so each clip is decoded once.
class Clips {
  constructor() {
    this.cache = new Map();
  }
  get(row) {
    let c = this.cache.get(row.path);
    if (!c) {
      const x = L.decode(row.path);
      const lab = L.speechFrames(x);
      const p = L.activePower(x, lab);
      if (p > 0) for (let i = 0; i < x.length; i++) x[i] *= Math.sqrt(dbToPower(SPEECH_DBFS) / p);
      c = { row, x, lab, truth: L.speechLabels(x) };
      this.cache.set(row.path, c);
    }
    return c;
  }
}

const CLIPS = new Clips();

// A stream being laid out: clips placed on 10 ms frame boundaries so labels line up.
class Layout {
  constructor() {
    this.items = [];
    this.pos = 0; // samples
  }
  gap(seconds) {
    this.pos += Math.round((seconds * L.RATE) / L.HOP) * L.HOP;
  }
  place(clip, gainDb = 0) {
    const at = this.pos;
    this.items.push({ clip, at, gain: Math.pow(10, gainDb / 20) });
    this.pos += Math.ceil(clip.x.length / L.HOP) * L.HOP;
    return at / L.RATE;
  }
  render(length = this.pos) {
    const y = new Float32Array(length);
    const lab = new Uint8Array(Math.floor(length / L.HOP));
    for (const { clip, at, gain } of this.items) {
      const n = Math.min(clip.x.length, length - at);
      for (let i = 0; i < n; i++) y[at + i] += gain * clip.x[i];
      const f0 = at / L.HOP;
      for (let t = 0; t < clip.truth.length && f0 + t < lab.length; t++) lab[f0 + t] |= clip.truth[t];
    }
    return { y, lab };
  }
}

function mix(clean, bed, snr) {
  const y = Float32Array.from(clean);
  if (snr !== null) {
    const g = Math.sqrt(dbToPower(SPEECH_DBFS - snr));
    for (let i = 0; i < y.length; i++) y[i] += g * bed[i];
  }
  let peak = 0;
  for (let i = 0; i < y.length; i++) peak = Math.max(peak, Math.abs(y[i]));
  if (peak > 0.98) for (let i = 0; i < y.length; i++) y[i] *= 0.98 / peak; // SNR unchanged
  return y;
}

function buildVad(out, pools, noiseClips, size, seed) {
  const rand = L.rng(seed * 7919 + 1);
  const clips = CLIPS;
  const lay = new Layout();
  lay.gap(1);
  const placed = [];
  while (lay.pos < size.vad_s * L.RATE) {
    // A third of the clips are real recordings when the split has them (they lead the
    // report: report.js scores the real and the synthetic clips apart), the rest synthetic
    // sentences and keywords.
    const u = rand();
    const pool = pools.realSpeech.length && u < 1 / 3 ? pools.realSpeech : pools.kw.length && u < 1 / 3 + 0.15 ? pools.kw : pools.speech;
    const clip = clips.get(rand.pick(pool));
    const at = lay.place(clip, rand.uniform(-2, 2));
    placed.push([at, at + clip.x.length / L.RATE, isReal(clip.row.voice) ? 'real' : 'synthetic']);
    lay.gap(rand.uniform(0.3, 2.5));
  }
  fs.writeFileSync(
    path.join(out, 'vad.clips.tsv'),
    '# start_s\tend_s\tvoice (real|synthetic): the clips of the VAD stream\n' + placed.map(([s, e, v]) => `${s.toFixed(2)}\t${e.toFixed(2)}\t${v}\n`).join(''),
  );
  const { y, lab } = lay.render();
  const bed = L.noiseBed(y.length, noiseClips, rand);
  const files = size.snrs.map((snr) => {
    const file = `vad_${snr}.wav`;
    L.writeWav(path.join(out, file), mix(y, bed, snrDb(snr)), rand);
    return { snr, file, seconds: y.length / L.RATE };
  });
  const segs = L.labelsToSegments(lab);
  fs.writeFileSync(path.join(out, 'vad.truth.tsv'), '# start_s\tend_s (speech)\n' + segs.map(([s, e]) => `${s.toFixed(2)}\t${e.toFixed(2)}\n`).join(''));
  return { files, frames: lab.length, speech_frames: lab.reduce((a, b) => a + b, 0) };
}

// Up to `per` clips of each keyword, spread over the voices that say it.
function chooseKeywords(rows, per, rand) {
  const chosen = [];
  for (const kw of L.KEYWORDS) {
    const byVoice = new Map();
    for (const r of rows) if (r.label === kw) byVoice.set(r.voice, [...(byVoice.get(r.voice) || []), r]);
    const voices = rand.shuffle([...byVoice.keys()].sort());
    voices.forEach((v) => rand.shuffle(byVoice.get(v)));
    let taken = 0;
    while (taken < per && voices.length) {
      for (let v = 0; v < voices.length && taken < per; v++) {
        const list = byVoice.get(voices[v]);
        if (list.length) {
          chosen.push(list.pop());
          taken++;
        }
      }
      for (let v = voices.length - 1; v >= 0; v--) if (!byVoice.get(voices[v]).length) voices.splice(v, 1);
    }
  }
  return chosen;
}

function buildKws(out, pools, noiseClips, size, seed) {
  const rand = L.rng(seed * 7919 + 2);
  const clips = CLIPS;
  const synth = pools.kw.filter((r) => !isReal(r.voice));
  const real = pools.realKw;
  const chosen = rand
    .shuffle([...chooseKeywords(synth, size.kw_per, rand), ...chooseKeywords(real, 2 * size.kw_per, rand)])
    .slice(0, size.kw_max || Infinity);
  const lay = new Layout();
  const truth = [];
  lay.gap(1);
  for (const row of chosen) {
    if (pools.speech.length && rand() < 0.7) {
      lay.place(clips.get(rand.pick(pools.speech)), rand.uniform(-2, 2));
      lay.gap(rand.uniform(0.4, 1.2));
    }
    const c = clips.get(row);
    let { start, end } = row;
    if (start === null || end === null) {
      const segs = L.labelsToSegments(c.lab);
      start = segs.length ? segs[0][0] : 0;
      end = segs.length ? segs[segs.length - 1][1] : c.x.length / L.RATE;
    }
    const at = lay.place(c, rand.uniform(-2, 2));
    truth.push([row.label, at + start, at + end, row.voice]);
    lay.gap(rand.uniform(0.4, 1.2));
  }
  lay.gap(1);
  const { y } = lay.render();
  const bed = L.noiseBed(y.length, noiseClips, rand);
  const files = size.snrs.map((snr) => {
    const file = `kws_${snr}.wav`;
    L.writeWav(path.join(out, file), mix(y, bed, snrDb(snr)), rand);
    return { snr, file, seconds: y.length / L.RATE };
  });
  fs.writeFileSync(
    path.join(out, 'kws.truth.tsv'),
    '# keyword\tstart_s\tend_s\tvoice\n' + truth.map(([k, s, e, v]) => `${k}\t${s.toFixed(3)}\t${e.toFixed(3)}\t${v}\n`).join(''),
  );
  return { files, keywords: truth.length, real_keywords: truth.filter((t) => isReal(t[3])).length };
}

// One file of keyword-free audio: test speech (about 60% of the time; clean or with noise
// at 20/10/5 dB) and stretches of held-out music and noise between.
const FA_SPEECH_SHARE = 0.6;
function buildFaPart(out, index, seconds, pools, noiseClips, seed) {
  const rand = L.rng(seed * 7919 + 100 + index);
  const length = Math.round(seconds * L.RATE);
  const y = new Float32Array(length);
  const truth = [];
  const clips = CLIPS;
  let pos = 0;
  let speech = 0;
  while (pos < length) {
    if (pools.speech.length && speech < FA_SPEECH_SHARE * pos + 1) {
      const c = clips.get(rand.pick(pools.speech));
      const n = Math.min(c.x.length, length - pos);
      const g = Math.pow(10, rand.uniform(-3, 3) / 20);
      for (let i = 0; i < n; i++) y[pos + i] += g * c.x[i];
      const snr = rand.pick([null, 20, 10, 5]);
      if (snr !== null) {
        const bed = L.noiseBed(n, noiseClips, rand);
        const gn = g * Math.sqrt(dbToPower(SPEECH_DBFS - snr));
        for (let i = 0; i < n; i++) y[pos + i] += gn * bed[i];
      }
      const pause = Math.round(rand.uniform(0.2, 1.5) * L.RATE); // counted with the speech
      truth.push([pos, pos + n + pause, isReal(c.row.voice) ? 'real-speech' : 'synthetic-speech', c.row.clip]);
      speech += n;
      pos += n + pause;
    } else {
      const n = Math.min(length - pos, Math.round(rand.uniform(3, 15) * L.RATE));
      const bed = L.noiseBed(n, noiseClips, rand);
      const g = Math.sqrt(dbToPower(SPEECH_DBFS + rand.uniform(-12, 0)));
      for (let i = 0; i < n; i++) y[pos + i] += g * bed[i];
      truth.push([pos, pos + n, 'music-noise', '-']);
      pos += n;
    }
  }
  const file = `fa_${String(index).padStart(2, '0')}.wav`;
  L.writeWav(path.join(out, file), mix(y, null, null), rand);
  const rowsOut = truth.map(
    ([s, e, cat, clip]) => `${file}\t${(s / L.RATE).toFixed(2)}\t${(Math.min(e, length) / L.RATE).toFixed(2)}\t${cat}\t${clip}\n`,
  );
  fs.writeFileSync(path.join(out, file.replace('.wav', '.truth.tsv')), rowsOut.join(''));
  return { file, seconds };
}

// Without a manifest (CI smoke): a few test-style clips spoken by espeak-ng, and
// generated noise. Enough to run every stage; the figures mean nothing.
function smokeManifest(dir) {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src, { recursive: true });
  const manifest = path.join(src, 'manifest.tsv');
  if (fs.existsSync(manifest)) return manifest;
  const rows = [];
  const say = (voice, text, name) => {
    const file = path.join(src, name);
    const r = spawnSync('espeak-ng', ['-v', voice, '-w', file, text]);
    if (r.error || r.status !== 0) throw new Error(`espeak-ng failed (scripts/setup.sh installs it): ${r.error ? r.error.message : r.stderr}`);
    return name;
  };
  const voices = ['en-us+m3', 'en-gb+f2'];
  const sentences = ['the weather is nice today', 'please open the window in the kitchen', 'we walked along the river after lunch'];
  voices.forEach((v, vi) => {
    L.KEYWORDS.slice(vi * 5, vi * 5 + 10).forEach((kw) => rows.push([say(v, kw, `kw_${vi}_${kw}.wav`), 'test', 'keyword', kw, '-', '-', `espeak:${v}`]));
    sentences.forEach((s, si) => rows.push([say(v, s, `s_${vi}_${si}.wav`), 'test', 'sentence', '-', '-', '-', `espeak:${v}`]));
  });
  for (const [name, synth] of [
    ['brown.wav', ['brownnoise']],
    ['hum.wav', ['sine', '50', 'sine', '150']],
  ]) {
    const r = spawnSync('sox', ['-V1', '-R', '-n', '-r', '16000', '-c', '1', '-b', '16', path.join(src, name), 'synth', '6', ...synth, 'vol', '0.3']);
    if (r.status !== 0) throw new Error(`sox synth failed: ${r.stderr}`);
    rows.push([name, 'test', 'noise', '-', '-', '-', 'noise:generated']);
  }
  fs.writeFileSync(manifest, '# smoke set made by tools/eval/build.js\n' + rows.map((r) => r.join('\t') + '\n').join(''));
  return manifest;
}

function stamp(file, key) {
  return { fresh: fs.existsSync(file) && fs.readFileSync(file, 'utf8') === key, write: () => fs.writeFileSync(file, key) };
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const size = { ...SIZES[o.size] };
  if (o.hours !== null) size.fa_h = o.hours;
  fs.mkdirSync(o.out, { recursive: true });
  const manifest = o.smoke ? smokeManifest(o.out) : o.manifest;
  if (!fs.existsSync(manifest)) throw new Error(`${manifest}: no such manifest (scripts/data.sh writes data/manifest.tsv)`);
  const all = L.readManifest(manifest);
  const rows = all.filter((r) => r.split === o.split);
  const isKw = (r) => r.kind === 'keyword' && L.KEYWORDS.includes(r.label);
  const pools = {
    speech: rows.filter((r) => r.kind === 'sentence' || r.kind === 'speech'),
    kw: rows.filter(isKw),
    // Real recorded keywords are few (models/recipe: one speaker trains, one validates);
    // when the test split has none, the validation speaker's are the only ones never
    // trained on, so they are measured (and reported) apart from the test voices.
    realKw: rows.filter((r) => isKw(r) && isReal(r.voice)),
    // Real recordings of any kind (keywords, other words, read speech) for the VAD stream.
    realSpeech: rows.filter((r) => r.kind !== 'noise' && isReal(r.voice)),
    noise: rows.filter((r) => r.kind === 'noise'),
  };
  if (!pools.realKw.length) pools.realKw = all.filter((r) => r.split === 'valid' && isKw(r) && isReal(r.voice));
  if (!pools.speech.length || !pools.kw.length) {
    throw new Error(`${manifest}: the ${o.split} split needs keyword clips and sentence/speech clips (has ${pools.kw.length} and ${pools.speech.length})`);
  }
  const st = fs.statSync(manifest);
  const extraNoise = o.noiseList ? fs.readFileSync(o.noiseList, 'utf8').split('\n').filter((l) => l.trim()) : [];
  const noiseSources = [...new Set(pools.noise.map((r) => r.voice.replace(/-.*/, '')))].sort();
  let noiseNote =
    `the manifest's ${o.split}-split noise files (${pools.noise.length}: ${noiseSources.join(', ')})` +
    (extraNoise.length ? ` and ${extraNoise.length} files of kinds never trained on (${o.noiseList})` : '');
  const base = `v${VERSION} seed=${o.seed} split=${o.split} manifest=${path.resolve(manifest)}:${st.size}:${st.mtimeMs} noise=${extraNoise.join(',')}`;
  let noiseClipsMemo = null;
  const noiseClips = () => {
    if (noiseClipsMemo) return noiseClipsMemo;
    if (pools.noise.length || extraNoise.length) {
      noiseClipsMemo = [...pools.noise.map((r) => r.path), ...extraNoise].map((f) => L.decode(f));
    } else {
      // No held-out noise: brown noise and hum, which training may also have used.
      process.stderr.write(`build: warning: the ${o.split} split has no noise clips; mixing generated noise instead\n`);
      noiseNote = `generated (brown noise, mains hum): the ${o.split} split had no noise`;
      const r = L.rng(o.seed);
      const brown = new Float32Array(10 * L.RATE);
      let b = 0;
      for (let i = 0; i < brown.length; i++) brown[i] = b = 0.98 * b + 0.1 * (r() - 0.5);
      const hum = new Float32Array(10 * L.RATE).map((_, i) => Math.sin((2 * Math.PI * 50 * i) / L.RATE) + 0.3 * Math.sin((2 * Math.PI * 150 * i) / L.RATE));
      noiseClipsMemo = [brown, hum];
    }
    return noiseClipsMemo;
  };

  const metaFile = path.join(o.out, 'meta.json');
  const old = fs.existsSync(metaFile) ? JSON.parse(fs.readFileSync(metaFile, 'utf8')) : {};
  const meta = { version: VERSION, size: o.size, split: o.split, seed: o.seed, manifest: path.resolve(manifest), snrs: size.snrs };
  const sizeKey = (part) => crypto.createHash('sha1').update(`${base} ${part}`).digest('hex') + '\n';

  const vadStamp = stamp(path.join(o.out, 'vad.key'), sizeKey(`vad ${size.vad_s} ${size.snrs} labels.c, a third real`));
  if (vadStamp.fresh && old.vad) meta.vad = old.vad;
  else {
    process.stderr.write(`build: VAD streams (${size.vad_s} s x ${size.snrs.length} SNRs)\n`);
    meta.vad = buildVad(o.out, pools, noiseClips(), size, o.seed);
    vadStamp.write();
  }
  const kwsStamp = stamp(path.join(o.out, 'kws.key'), sizeKey(`kws ${size.kw_per} ${size.snrs}`));
  if (kwsStamp.fresh && old.kws) meta.kws = old.kws;
  else {
    process.stderr.write(`build: KWS streams (up to ${size.kw_per} clips per keyword x ${size.snrs.length} SNRs)\n`);
    meta.kws = buildKws(o.out, pools, noiseClips(), size, o.seed);
    kwsStamp.write();
  }
  meta.fa = [];
  const parts = Math.ceil(size.fa_h - 1e-9);
  for (let i = 0; i < parts; i++) {
    const seconds = Math.round(Math.min(1, size.fa_h - i) * 3600 * 100) / 100;
    const file = `fa_${String(i).padStart(2, '0')}.wav`;
    const s = stamp(path.join(o.out, file.replace('.wav', '.key')), sizeKey(`fa ${i} ${seconds} clips`));
    if (!s.fresh) {
      process.stderr.write(`build: keyword-free audio ${file} (${(seconds / 60).toFixed(1)} min)\n`);
      buildFaPart(o.out, i, seconds, pools, noiseClips(), o.seed);
      s.write();
    }
    meta.fa.push({ file, seconds });
  }
  // drop parts of an earlier, longer build so that they are not counted
  for (const f of fs.readdirSync(o.out)) {
    const m = /^fa_(\d+)\.(wav|truth\.tsv|key)$/.exec(f);
    if (m && Number(m[1]) >= parts) fs.unlinkSync(path.join(o.out, f));
  }
  meta.noise = noiseClipsMemo ? noiseNote : old.noise || noiseNote;
  meta.test_clips = { speech: pools.speech.length, keyword: pools.kw.length, noise: pools.noise.length };
  // Recorded speakers by source (sc:, fsdd:, real:...): how many people the real figures hear.
  const speakers = {};
  for (const r of pools.realKw) (speakers[`${r.voice.replace(/:.*/, '')} (${r.split} split)`] ||= new Set()).add(r.voice);
  meta.real_keywords_from = Object.entries(speakers)
    .sort()
    .map(([source, voices]) => `${source}: ${voices.size} speaker${voices.size === 1 ? '' : 's'}`);
  fs.writeFileSync(metaFile, JSON.stringify(meta, null, 1) + '\n');
  process.stderr.write(`build: ${o.out} ready\n`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`build: ${e.message}\n`);
  process.exit(1);
}
