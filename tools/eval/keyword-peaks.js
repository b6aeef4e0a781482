'use strict';
// How much a keyword model finds before its thresholds: for every keyword the set says,
// the peak of that keyword's posterior (smoothed as the detector smooths it) in the window
// report.js counts a detection in, and whether it is the highest-peaking keyword there.
//
//   node tools/eval/keyword-peaks.js --set DIR [--system NAME] [--smooth-ms MS]
//
// Reads runs/SYSTEM/kws_SNR.frames.csv (default system earshot), made per SNR by
//   earshot file --format frames -o DIR/runs/earshot/kws_SNR.frames.csv DIR/kws_SNR.wav
// and prints, per SNR and for real recorded speech apart: the share of keywords whose own
// posterior is the top one in the window, and the share whose peak reaches each of
// PEAK_LEVELS. Why: a model that ranks the right keyword first and rises high on it, yet
// misses it at its calibrated thresholds, is held back by the false alarms those
// thresholds keep out, not by not hearing the word.
const path = require('path');
const { readFrameColumns, fmt, table, EvalSet, EARLY_S, LATE_S } = require('./report.js');
const L = require('./lib.js');

const PEAK_LEVELS = [0.1, 0.3, 0.5, 0.7, 0.9];

// The detector's causal moving average over `width` frames (its first frames average
// what there is so far).
function smooth(scores, width) {
  const out = new Float64Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    sum += scores[i];
    if (i >= width) sum -= scores[i - width];
    out[i] = sum / Math.min(i + 1, width);
  }
  return out;
}

// For one keyword said over [start, end] s: the peak of each posterior in its window.
// `posteriors` maps a keyword to its smoothed per-frame scores.
function windowPeaks(posteriors, start, end) {
  const frameS = L.HOP / L.RATE;
  const first = Math.max(0, Math.ceil((start - EARLY_S) / frameS));
  const peaks = {};
  for (const [kw, scores] of Object.entries(posteriors)) {
    const last = Math.min(scores.length - 1, Math.floor((end + LATE_S) / frameS));
    let peak = 0;
    for (let i = first; i <= last; i++) peak = Math.max(peak, scores[i]);
    peaks[kw] = peak;
  }
  return peaks;
}

// Per group of keywords: how many, how many ranked first, how many at each peak level.
function tally(found) {
  const row = { count: found.length, top: 0, levels: PEAK_LEVELS.map(() => 0) };
  for (const { own, top } of found) {
    if (top) row.top++;
    PEAK_LEVELS.forEach((level, i) => (row.levels[i] += own >= level ? 1 : 0));
  }
  return row;
}

function report(set, system, smoothMs) {
  const width = Math.max(1, Math.round(smoothMs / ((1000 * L.HOP) / L.RATE)));
  const rows = [];
  for (const { snr, file } of set.meta.kws.files) {
    const csv = set.run(system, file, '.frames.csv');
    if (!csv) continue;
    const raw = readFrameColumns(csv, [...new Set(set.kwTruth.map((t) => t.kw))]);
    const posteriors = Object.fromEntries(Object.entries(raw).map(([kw, scores]) => [kw, smooth(scores, width)]));
    const groups = { synthetic: [], real: [] };
    for (const t of set.kwTruth) {
      const peaks = windowPeaks(posteriors, t.start, t.end);
      const own = peaks[t.kw];
      groups[t.real ? 'real' : 'synthetic'].push({ own, top: own > 0 && Object.values(peaks).every((p) => p <= own) });
    }
    for (const [kind, found] of Object.entries(groups)) {
      if (!found.length) continue;
      const r = tally(found);
      const share = (n) => `${fmt((100 * n) / r.count, 1)}%`;
      rows.push([snr === 'clean' ? 'clean' : `${snr} dB`, kind, String(r.count), share(r.top), ...r.levels.map(share)]);
    }
  }
  if (!rows.length) throw new Error(`no kws_*.frames.csv of ${system} under ${path.join(set.dir, 'runs', system)}`);
  const head = ['SNR', 'speech', 'keywords', 'own keyword on top', ...PEAK_LEVELS.map((l) => `peak ≥ ${l}`)];
  return table(head, rows);
}

function main() {
  const args = process.argv.slice(2);
  let dir = null;
  let system = 'earshot';
  let smoothMs = 50;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--set') dir = args[++i];
    else if (args[i] === '--system') system = args[++i];
    else if (args[i] === '--smooth-ms') smoothMs = Number(args[++i]);
    else throw L.usageError(`unknown option ${args[i]}`);
  }
  if (!dir || !(smoothMs > 0)) {
    throw L.usageError('usage: node keyword-peaks.js --set DIR [--system NAME] [--smooth-ms MS]');
  }
  process.stdout.write(report(new EvalSet(dir), system, smoothMs));
}

L.runAsScript(module, 'keyword-peaks', main);

module.exports = { smooth, windowPeaks, tally, PEAK_LEVELS };
