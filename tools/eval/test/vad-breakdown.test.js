'use strict';
// node --test tools/eval/test/   (where a VAD's AUC is lost: tools/eval/vad-breakdown.js)
const test = require('node:test');
const assert = require('node:assert');
const { edgeDistance, runAge, breakdown } = require('../vad-breakdown.js');

test('distance to the nearest truth edge and the age of each run', () => {
  const truth = [0, 0, 1, 1, 1, 0, 0, 0];
  assert.deepStrictEqual(Array.from(edgeDistance(truth)), [1, 0, 0, 1, 0, 0, 1, 2]);
  // non-speech before any speech has no "since speech ended"
  assert.deepStrictEqual(Array.from(runAge(truth)), [Infinity, Infinity, 0, 1, 2, 0, 1, 2]);
});

test('a score that lingers after speech ends loses only the after-end part', () => {
  // 30 frames silence, 40 speech, 60 silence; the score stays up 15 frames too long.
  const truth = [...Array(30).fill(0), ...Array(40).fill(1), ...Array(60).fill(0)];
  const scores = truth.map((t, i) => (i >= 70 && i < 85 ? 0.95 : t ? 0.9 : 0.1) + (i % 7) * 0.001);
  const b = breakdown(scores, truth);
  assert.ok(b.all < 0.95, `all ${b.all}`);
  assert.strictEqual(b.afterEnd[0].auc, 5 / 20, `first 200 ms after the end ${b.afterEnd[0].auc}`);
  assert.strictEqual(b.afterEnd[0].frames, 20);
  assert.strictEqual(b.afterEnd[1].auc, 1); // 200-500 ms after: scores are low again
  // the onset was on time: its frames rank like the steady speech's
  assert.strictEqual(b.afterOnset[0].auc, b.afterOnset[2].auc);
  assert.ok(b.collar[2] > b.all); // a 100 ms collar hides most of the late fall
});
