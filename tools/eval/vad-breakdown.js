'use strict';
// Where a VAD's frame ROC-AUC is lost: the same score as report.js, taken apart by
// where each frame stands relative to the truth's speech edges.
//
//   node tools/eval/vad-breakdown.js --set DIR [--system NAME]...   (default: earshot)
//
// For each system and SNR of the set's VAD streams:
//   all          frame ROC-AUC, as report.js computes it;
//   collar N     the same without the frames within N frames (10 ms each) of a truth edge,
//                the collar speech-activity scoring often leaves out;
//   after end    every speech frame against only the non-speech frames that lie the given
//                time after a speech end: how fast the score falls once speech stops;
//   after onset  only the speech frames the given time after an onset against every
//                non-speech frame: how fast the score rises.
// Why: the truth closes pauses of up to 100 ms inside a clip and lets speech last 50 ms past
// its last loud frame (the training labels' rule, lib.speechLabels), so just after speech
// stops the right answer depends on whether speech resumes, which a causal model cannot know
// yet.
const path = require('path');
const { rocAuc, readFrames, fmt, table, EvalSet } = require('./report.js');
const L = require('./lib.js');

const COLLARS = [2, 5, 10];
const AFTER_END = [[0, 20], [20, 50], [50, 100], [100, 200], [200, Infinity]];
const AFTER_ONSET = [[0, 5], [5, 20], [20, Infinity]];

// Frames from each frame to the nearest change of the truth (Infinity without one).
function edgeDistance(truth) {
  const n = truth.length;
  const d = new Float64Array(n).fill(Infinity);
  let last = -Infinity;
  for (let i = 0; i < n; i++) {
    if (i > 0 && truth[i] !== truth[i - 1]) last = i;
    d[i] = i - last;
  }
  let next = Infinity;
  for (let i = n - 1; i >= 0; i--) {
    d[i] = Math.min(d[i], next - i - 1);
    if (i > 0 && truth[i] !== truth[i - 1]) next = i;
  }
  return d;
}

// Frames since the current run of the truth began: for speech, since its onset; for
// non-speech, since the last speech ended (Infinity before any speech).
function runAge(truth) {
  const age = new Float64Array(truth.length);
  let seenSpeech = false;
  for (let i = 0; i < truth.length; i++) {
    if (i > 0 && truth[i] === truth[i - 1]) age[i] = age[i - 1] + 1;
    else age[i] = truth[i] || seenSpeech ? 0 : Infinity;
    if (truth[i]) seenSpeech = true;
  }
  return age;
}

// ROC-AUC over the frames `keep` accepts.
function aucWhere(scores, truth, keep) {
  const s = [];
  const l = [];
  for (let i = 0; i < Math.min(scores.length, truth.length); i++)
    if (keep(i)) s.push(scores[i]), l.push(truth[i]);
  return rocAuc(s, l);
}

function breakdown(scores, truth) {
  const edge = edgeDistance(truth);
  const age = runAge(truth);
  // The frames of one class whose run age falls in [a, b), against every frame of the other.
  const bin = (cls, [a, b]) => {
    const inBin = (i) => truth[i] === cls && age[i] >= a && age[i] < b;
    const frames = truth.reduce((k, _, i) => k + (inBin(i) ? 1 : 0), 0);
    return { auc: aucWhere(scores, truth, (i) => truth[i] !== cls || inBin(i)), frames };
  };
  return {
    all: rocAuc(scores, truth),
    collar: COLLARS.map((c) => aucWhere(scores, truth, (i) => edge[i] >= c)),
    afterEnd: AFTER_END.map((range) => bin(0, range)),
    afterOnset: AFTER_ONSET.map((range) => bin(1, range)),
  };
}

const ms = ([a, b]) => (b === Infinity ? `${a * 10}+ ms` : `${a * 10}–${b * 10} ms`);

function report(set, systems) {
  const head = ['system', 'SNR', 'all', ...COLLARS.map((c) => `collar ${c * 10} ms`), ...AFTER_END.map((b) => `after end ${ms(b)}`), ...AFTER_ONSET.map((b) => `after onset ${ms(b)}`)];
  const rows = [];
  let frameCounts = null;
  for (const system of systems) {
    for (const { snr, file } of set.meta.vad.files) {
      const csv = set.run(system, file, '.frames.csv');
      if (!csv) continue;
      const b = breakdown(readFrames(csv), set.vadTruth);
      frameCounts = frameCounts || [...b.afterEnd, ...b.afterOnset].map((x) => x.frames);
      rows.push([system, snr, fmt(b.all), ...b.collar.map((v) => fmt(v)), ...b.afterEnd.map((x) => fmt(x.auc)), ...b.afterOnset.map((x) => fmt(x.auc))]);
    }
  }
  if (!rows.length) throw new Error(`no VAD runs of ${systems.join(', ')} under ${path.join(set.dir, 'runs')}`);
  rows.push(['frames', '', '', ...COLLARS.map(() => ''), ...frameCounts.map(String)]);
  return table(head, rows);
}

function main() {
  const args = process.argv.slice(2);
  let dir = null;
  const systems = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--set') dir = args[++i];
    else if (args[i] === '--system') systems.push(args[++i]);
    else throw L.usageError(`unknown option ${args[i]}`);
  }
  if (!dir) throw L.usageError('usage: node vad-breakdown.js --set DIR [--system NAME]...');
  process.stdout.write(report(new EvalSet(dir), systems.length ? systems : ['earshot']));
}

L.runAsScript(module, 'vad-breakdown', main);

module.exports = { edgeDistance, runAge, breakdown };
