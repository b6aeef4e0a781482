'use strict';
// Scores the runs of an evaluation set (tools/eval/build.js) and prints markdown.
//
//   node report.js eval    --set DIR [--system earshot]
//   node report.js compare --set DIR
//
// Runs live in DIR/runs/<system>/: <file>.frames.csv (time_s,speech,... as earshot's
// `--format frames`) and <file>.jsonl (events); DIR/runs/speed.tsv holds speed runs
// (system, audio_s, cpu_s, wall_s). Scoring rules:
//   VAD   frame ROC-AUC of the `speech` column against vad.truth.tsv; F1 of frames with
//         speech >= 0.5 ("raw"), and F1 of the jsonl speech segments rasterised to frames.
//   KWS   a truth keyword is found when an event of the same keyword fires (its `time`)
//         between 0.2 s before the word starts and 1 s after it ends; every other event
//         is a false alarm. Recall for test voices per keyword and SNR; recall of real
//         recorded keywords apart; false alarms per hour of the keyword-free fa_*.wav,
//         in all and without the near misses (the manifest's sentence clips labelled with
//         the word they say, 'lift', 'we heard heaven': confusables made to sound like a
//         keyword, said alone or phrase-final, far denser than in any conversation),
//         which are also judged one by one: the share of them that set off a keyword.
const fs = require('fs');
const path = require('path');
const L = require('./lib.js');

const EARLY_S = 0.2;
const LATE_S = 1.0;

function readTsv(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split('\t'));
}

function readFrames(file, column = 'speech') {
  return readFrameColumns(file, [column])[column];
}

// Several columns of one frames CSV, read once: { column: Float64Array by frame }.
function readFrameColumns(file, columns) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const head = lines[0].split(',');
  const at = columns.map((c) => head.indexOf(c));
  const missing = columns.filter((_, j) => at[j] < 0);
  if (head[0] !== 'time_s' || missing.length) throw new Error(`${file}: header must be time_s,${missing.join(',') || columns[0]},...`);
  const out = columns.map(() => []);
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i]) continue;
    const f = lines[i].split(',');
    const frame = Math.round(Number(f[0]) / (L.HOP / L.RATE));
    at.forEach((c, j) => (out[j][frame] = Number(f[c])));
  }
  return Object.fromEntries(columns.map((c, j) => [c, Float64Array.from(out[j], (v) => (Number.isFinite(v) ? v : 0))]));
}

function readEvents(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      try {
        return JSON.parse(l);
      } catch (e) {
        throw new Error(`${file}:${i + 1}: not JSON: ${e.message}`);
      }
    });
}

// Mann-Whitney form of the ROC area; ties count one half.
function rocAuc(scores, labels) {
  const n = Math.min(scores.length, labels.length);
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j < n && scores[idx[j]] === scores[idx[i]]) j++;
    const avgRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (labels[idx[k]]) (pos++, (rankSum += avgRank));
    i = j;
  }
  const neg = n - pos;
  return pos && neg ? (rankSum - (pos * (pos + 1)) / 2) / (pos * neg) : NaN;
}

function f1(pred, labels) {
  const n = Math.min(pred.length, labels.length);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < n; i++) {
    if (pred[i] && labels[i]) tp++;
    else if (pred[i]) fp++;
    else if (labels[i]) fn++;
  }
  return tp ? (2 * tp) / (2 * tp + fp + fn) : 0;
}

const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(d));
const pct = (hit, n) => (n ? `${((100 * hit) / n).toFixed(1)}% (${hit}/${n})` : '–');
const snrName = (s) => (s === 'clean' ? 'clean' : `${s} dB`);
// Events per hour, one decimal; '–' for no hours.
const rate = (events, hours) => (hours ? fmt(events / hours, 1) : '–');
// The category of keyword-free stretches that are near misses (EvalSet.category).
const NEAR_MISS = 'near-miss-speech';
const notNearMiss = (c) => c !== NEAR_MISS;

function table(head, rows) {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n');
}

class EvalSet {
  constructor(dir) {
    this.dir = dir;
    this.meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
    this.vadTruth = L.segmentsToLabels(
      readTsv(path.join(dir, 'vad.truth.tsv')).map((r) => [Number(r[0]), Number(r[1])]),
      this.meta.vad.frames,
    );
    // Which clip each VAD frame belongs to: 0 a pause between clips, 1 a real recording,
    // 2 a synthetic one (sets built before vad.clips.tsv have none: all frames count once).
    const clipsFile = path.join(dir, 'vad.clips.tsv');
    this.vadVoice = null;
    if (fs.existsSync(clipsFile)) {
      this.vadVoice = new Uint8Array(this.meta.vad.frames);
      for (const [s, e, voice] of readTsv(clipsFile))
        this.vadVoice.fill(voice === 'real' ? 1 : 2, Math.round(Number(s) * 100), Math.min(this.meta.vad.frames, Math.round(Number(e) * 100)));
    }
    this.kwTruth = readTsv(path.join(dir, 'kws.truth.tsv')).map((r) => ({
      kw: r[0],
      start: Number(r[1]),
      end: Number(r[2]),
      voice: r[3],
      real: L.isRecorded(r[3]),
    }));
  }
  // The truth category of a keyword-free stretch: a clip that is one of the manifest's
  // near misses (a synthetic confusable, or a real recording of another word: "tree",
  // "dog", "follow") becomes 'near-miss-speech'.
  category(row) {
    if (this.nearMisses === undefined) this.nearMisses = nearMissClips(this.meta.manifest);
    return row[3].endsWith('-speech') && this.nearMisses.has(row[4]) ? NEAR_MISS : row[3];
  }
  run(system, file, ext) {
    const p = path.join(this.dir, 'runs', system, file.replace(/\.wav$/, ext));
    return fs.existsSync(p) ? p : null;
  }

  // AUC of the frames of the pauses and of one kind of clip (1 real, 2 synthetic): how well
  // a system tells that kind of speech from the stream's non-speech. `voices` and `labels`
  // run beside `scores` (one SNR's frames, or every SNR's one after another).
  static aucOf(scores, labels, voices, voice) {
    const s = [];
    const l = [];
    for (let i = 0; i < scores.length && i < labels.length; i++)
      if (voices[i] === 0 || voices[i] === voice) s.push(scores[i]), l.push(labels[i]);
    return l.some((x) => x) ? rocAuc(s, l) : NaN;
  }

  // { perSnr: {snr: {auc, aucReal, aucSynthetic, f1raw, f1seg}}, all: {...} } or null if the
  // system has no VAD runs (aucReal and aucSynthetic NaN for a set without vad.clips.tsv)
  vad(system) {
    const perSnr = {};
    const allScores = [];
    const allLabels = [];
    const allVoices = [];
    let any = false;
    for (const { snr, file } of this.meta.vad.files) {
      const csv = this.run(system, file, '.frames.csv');
      const jsonl = this.run(system, file, '.jsonl');
      const r = { auc: NaN, aucReal: NaN, aucSynthetic: NaN, f1raw: NaN, f1seg: NaN };
      if (csv) {
        any = true;
        const s = readFrames(csv);
        const n = Math.min(s.length, this.vadTruth.length);
        r.auc = rocAuc(s.subarray(0, n), this.vadTruth);
        if (this.vadVoice) {
          r.aucReal = EvalSet.aucOf(s.subarray(0, n), this.vadTruth, this.vadVoice, 1);
          r.aucSynthetic = EvalSet.aucOf(s.subarray(0, n), this.vadTruth, this.vadVoice, 2);
        }
        r.f1raw = f1(Array.from(s.subarray(0, n), (v) => v >= 0.5), this.vadTruth);
        for (let i = 0; i < n; i++) allScores.push(s[i]), allLabels.push(this.vadTruth[i]);
        if (this.vadVoice) for (let i = 0; i < n; i++) allVoices.push(this.vadVoice[i]);
      }
      if (jsonl) {
        any = true;
        const segs = readEvents(jsonl)
          .filter((e) => e.type === 'speech')
          .map((e) => [e.start, e.end]);
        r.f1seg = f1(L.segmentsToLabels(segs, this.vadTruth.length), this.vadTruth);
      }
      perSnr[snr] = r;
    }
    if (!any) return null;
    const mean = (k) => {
      const v = Object.values(perSnr)
        .map((r) => r[k])
        .filter((x) => !Number.isNaN(x));
      return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
    };
    const aucOfAll = (voice) => (this.vadVoice ? EvalSet.aucOf(allScores, allLabels, allVoices, voice) : NaN);
    return {
      perSnr,
      all: { auc: rocAuc(allScores, allLabels), aucReal: aucOfAll(1), aucSynthetic: aucOfAll(2), f1raw: mean('f1raw'), f1seg: mean('f1seg') },
    };
  }

  // Recall and false alarms of a system's keyword events.
  kws(system) {
    const hits = {}; // `${snr}|${kw}|real|synthetic` -> [found, total]
    let streamFalse = 0;
    let streamHours = 0;
    let any = false;
    for (const { snr, file, seconds } of this.meta.kws.files) {
      const jsonl = this.run(system, file, '.jsonl');
      if (!jsonl) continue;
      any = true;
      streamHours += seconds / 3600;
      const events = readEvents(jsonl).filter((e) => e.type === 'keyword');
      const used = new Array(events.length).fill(false);
      for (const t of this.kwTruth) {
        let found = false;
        events.forEach((e, i) => {
          if (e.keyword === t.kw && e.time >= t.start - EARLY_S && e.time <= t.end + LATE_S) {
            found = true;
            used[i] = true; // repeats within the window are not false alarms
          }
        });
        const key = `${snr}|${t.kw}|${t.real ? 'real' : 'synthetic'}`;
        const h = (hits[key] = hits[key] || [0, 0]);
        h[0] += found ? 1 : 0;
        h[1] += 1;
      }
      streamFalse += used.filter((u) => !u).length;
    }
    const fa = { total: 0, hours: 0, byCategory: {}, byKeyword: {}, nearMisses: 0, nearAccepted: 0 };
    for (const { file, seconds } of this.meta.fa) {
      const jsonl = this.run(system, file, '.jsonl');
      if (!jsonl) continue;
      any = true;
      fa.hours += seconds / 3600;
      const cats = readTsv(path.join(this.dir, file.replace('.wav', '.truth.tsv'))).map((r) => [...r.slice(0, 3), this.category(r), r[4]]);
      for (const c of cats) {
        const b = (fa.byCategory[c[3]] = fa.byCategory[c[3]] || { events: 0, hours: 0 });
        b.hours += (Number(c[2]) - Number(c[1])) / 3600;
      }
      const accepted = new Set();
      for (const e of readEvents(jsonl).filter((x) => x.type === 'keyword')) {
        fa.total++;
        fa.byKeyword[e.keyword] = (fa.byKeyword[e.keyword] || 0) + 1;
        // the stretch the event falls in, or the one before the pause it falls in
        const c = cats.filter((r) => Number(r[1]) <= e.time).pop() || cats[0];
        const b = (fa.byCategory[c[3]] = fa.byCategory[c[3]] || { events: 0, hours: 0 });
        b.events++;
        if (c[3] === NEAR_MISS) accepted.add(c);
      }
      fa.nearMisses += cats.filter((c) => c[3] === NEAR_MISS).length;
      fa.nearAccepted += accepted.size;
    }
    if (!any) return null;
    const sum = (pred) =>
      Object.entries(hits)
        .filter(([k]) => pred(k.split('|')))
        .reduce((a, [, h]) => [a[0] + h[0], a[1] + h[1]], [0, 0]);
    return { hits, sum, streamFalse, streamHours, fa };
  }

  speed() {
    const p = path.join(this.dir, 'runs', 'speed.tsv');
    if (!fs.existsSync(p)) return {};
    const out = {};
    for (const [system, audio, cpu, wall] of readTsv(p)) out[system] = { audio: Number(audio), cpu: Number(cpu), wall: Number(wall) };
    return out;
  }
}

function header(set) {
  const m = set.meta;
  const fa = m.fa.reduce((a, f) => a + f.seconds, 0) / 3600;
  return [
    `Evaluation set \`${set.dir}\` (${m.size}, seed ${m.seed}) from \`${m.manifest}\`: ` +
      `VAD ${(m.vad.files[0].seconds / 60).toFixed(1)} min per SNR (${m.vad.frames} frames, ${((100 * m.vad.speech_frames) / m.vad.frames).toFixed(0)}% speech); ` +
      `KWS ${m.kws.keywords} keywords per SNR (${m.kws.real_keywords} real recorded); ${fa >= 0.1 ? `${fa.toFixed(2)} h` : `${(fa * 60).toFixed(1)} min`} keyword-free. ` +
      `Noise: ${m.noise}.` +
      (m.real_keywords_from && m.real_keywords_from.length ? ` Real keywords from: ${m.real_keywords_from.join(', ')}.` : ''),
    '',
  ].join('\n');
}

function evalReport(set, system) {
  const out = [header(set)];
  const v = set.vad(system);
  if (v) {
    out.push(`### VAD (${system})\n`);
    out.push(
      table(
        ['SNR', 'ROC-AUC, real recorded speech', 'ROC-AUC, synthetic speech', 'ROC-AUC, all', 'F1 frames >= 0.5', 'F1 speech segments'],
        [...set.meta.snrs.map((s) => [snrName(s), ...vadCells(v.perSnr[s])]), ['all', ...vadCells(v.all)]],
      ),
    );
  }
  const k = set.kws(system);
  if (k) {
    const snrs = set.meta.snrs;
    const [realFound, realTotal] = k.sum(([, , r]) => r === 'real');
    if (realTotal) {
      out.push(`### KWS (${system}): recall of real recorded speakers never trained on\n`);
      const realRows = L.KEYWORDS.map((kw) => [kw, ...snrs.map((s) => pct(...k.sum(([sn, w, r]) => sn === s && w === kw && r === 'real')))]);
      realRows.push(['**all**', ...snrs.map((s) => pct(...k.sum(([sn, , r]) => sn === s && r === 'real')))]);
      out.push(table(['keyword', ...snrs.map(snrName)], realRows));
    }
    out.push(`### KWS (${system}): recall of synthetic test voices (espeak-ng, flite)\n`);
    const rows = L.KEYWORDS.map((kw) => [kw, ...snrs.map((s) => pct(...k.sum(([sn, w, r]) => sn === s && w === kw && r === 'synthetic'))), pct(...k.sum(([, w, r]) => w === kw && r === 'real'))]);
    rows.push(['**all**', ...snrs.map((s) => pct(...k.sum(([sn, , r]) => sn === s && r === 'synthetic'))), pct(...k.sum(([, , r]) => r === 'real'))]);
    out.push(table(['keyword', ...snrs.map(snrName), 'real recorded (all SNRs)'], rows));
    out.push(`### KWS (${system}): false alarms\n`);
    const cats = Object.entries(k.fa.byCategory).sort();
    out.push(
      table(
        ['audio', 'hours', 'false alarms', 'per hour'],
        [
          ...cats.map(([c, b]) => [c, fmt(b.hours, 2), String(b.events), rate(b.events, b.hours)]),
          ['**keyword-free total**', fmt(k.fa.hours, 2), String(k.fa.total), rate(k.fa.total, k.fa.hours)],
          ...(k.fa.nearMisses ? [withoutNearMisses(k.fa)] : []),
          ['keyword streams (wrong word or time)', fmt(k.streamHours, 2), String(k.streamFalse), rate(k.streamFalse, k.streamHours)],
        ],
      ),
    );
    if (k.fa.nearMisses)
      out.push(
        `Near misses: ${k.fa.nearAccepted} of the ${k.fa.nearMisses} near-miss clips (confusables such as 'lift', 'we heard heaven') set off a keyword (${pct(k.fa.nearAccepted, k.fa.nearMisses)}).\n`,
      );
    const byKw = Object.entries(k.fa.byKeyword).sort((a, b) => b[1] - a[1]);
    if (byKw.length) out.push(`False alarms by keyword: ${byKw.map(([w, n]) => `${w} ${n}`).join(', ')}\n`);
  }
  if (!v && !k) out.push(`No runs of ${system} under ${set.dir}/runs/${system}.\n`);
  return out.join('\n');
}

// The table row of the keyword-free audio without its near-miss clips.
function withoutNearMisses(fa) {
  const [events, hours] = falseAlarms(fa, notNearMiss);
  return ['**keyword-free without near misses**', fmt(hours, 2), String(events), rate(events, hours)];
}

// The manifest's near misses: sentence clips labelled with the word they say.
function nearMissClips(manifest) {
  if (!manifest || !fs.existsSync(manifest)) return new Set();
  return new Set(
    readTsv(manifest)
      .filter((r) => r[2] === 'sentence' && r[3] && r[3] !== '-')
      .map((r) => r[0]),
  );
}

// [false alarms, hours] of the keyword-free stretches whose category passes `pick`.
function falseAlarms(fa, pick) {
  return Object.entries(fa.byCategory)
    .filter(([c]) => pick(c))
    .reduce((a, [, v]) => [a[0] + v.events, a[1] + v.hours], [0, 0]);
}

// False alarms per hour over those stretches.
function perHour(fa, pick) {
  return rate(...falseAlarms(fa, pick));
}

function vadCells(r) {
  return [fmt(r.aucReal), fmt(r.aucSynthetic), fmt(r.auc), fmt(r.f1raw), fmt(r.f1seg)];
}

function compareReport(set) {
  const out = [header(set)];
  const speed = set.speed();
  const base = speed.earshot;
  const xrt = (s) => (s ? s.audio / s.cpu : NaN);
  const vadSystems = ['earshot', 'webrtc', 'silero'];
  const names = { earshot: 'earshot', webrtc: 'WebRTC VAD (libfvad)', silero: 'Silero VAD v5 (1 thread)', pocketsphinx: 'pocketsphinx -kws' };
  const snrs = set.meta.snrs;
  const vrows = [];
  for (const sys of vadSystems) {
    const v = set.vad(sys);
    if (!v) continue;
    const sp = speed[sys];
    vrows.push([
      names[sys],
      ...snrs.map((s) => fmt(v.perSnr[s].aucReal)),
      fmt(v.all.aucReal),
      fmt(v.all.aucSynthetic),
      fmt(v.all.auc),
      fmt(v.all.f1raw),
      sys === 'earshot' ? fmt(v.all.f1seg) : '–',
      sp ? fmt(xrt(sp), 0) : '–',
      sp && base ? `${fmt(xrt(sp) / xrt(base), 2)}x` : '–',
    ]);
  }
  out.push('### VAD\n');
  out.push(table(['system', ...snrs.map((s) => `AUC real speech ${snrName(s)}`), 'AUC real speech, all', 'AUC synthetic speech, all', 'AUC all', 'F1 frames', 'F1 segments', 'x real time (1 CPU)', 'speed vs earshot'], vrows));
  const sp0 = Object.values(speed)[0];
  if (sp0) out.push(`Speed: CPU time (user+sys) of one process over the same ${(sp0.audio / 60).toFixed(1)} min 16 kHz file (\`${set.meta.fa[0].file}\`), x real time = audio seconds / CPU seconds. earshot computes both VAD and KWS there. WebRTC VAD: score = share of its 4 aggressiveness modes that say speech (F1 frames: 2 or more modes); its speed is one mode (3).\n`);
  const krows = [];
  for (const sys of ['earshot', 'pocketsphinx']) {
    const k = set.kws(sys);
    if (!k) continue;
    const [h, n] = k.sum(([, , r]) => r === 'synthetic');
    const [rh, rn] = k.sum(([, , r]) => r === 'real');
    const sp = speed[sys === 'earshot' ? 'earshot' : sys];
    krows.push([
      names[sys],
      ...snrs.map((s) => pct(...k.sum(([sn, , r]) => sn === s && r === 'real'))),
      pct(rh, rn),
      rate(k.fa.total, k.fa.hours),
      perHour(k.fa, notNearMiss),
      k.fa.nearMisses ? pct(k.fa.nearAccepted, k.fa.nearMisses) : '–',
      perHour(k.fa, (c) => c.endsWith('speech')),
      perHour(k.fa, (c) => !c.endsWith('speech')),
      pct(h, n),
      sp ? fmt(xrt(sp), 0) : '–',
    ]);
  }
  out.push('### Keyword spotting\n');
  out.push(
    table(
      ['system', ...snrs.map((s) => `real speakers ${snrName(s)}`), 'real speakers, all', 'false alarms / h (keyword-free)', 'per h without near misses', 'near misses accepted', 'per h of its speech', 'per h of its music & noise', 'synthetic test voices, all SNRs', 'x real time'],
      krows,
    ),
  );
  return out.join('\n');
}

function main() {
  const [mode, ...rest] = process.argv.slice(2);
  let dir = null;
  let system = 'earshot';
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--set') dir = rest[++i];
    else if (rest[i] === '--system') system = rest[++i];
    else throw L.usageError(`unknown option ${rest[i]}`);
  }
  if (!dir || !['eval', 'compare'].includes(mode)) throw L.usageError('usage: node report.js eval|compare --set DIR [--system NAME]');
  const set = new EvalSet(dir);
  process.stdout.write(mode === 'eval' ? evalReport(set, system) : compareReport(set));
}

L.runAsScript(module, 'report', main);

module.exports = { rocAuc, f1, readFrames, readFrameColumns, fmt, table, EvalSet, EARLY_S, LATE_S };
