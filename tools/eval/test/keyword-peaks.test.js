'use strict';
// node --test tools/eval/test/   (how much a keyword model finds before its thresholds)
const test = require('node:test');
const assert = require('node:assert');
const { smooth, windowPeaks, tally, PEAK_LEVELS } = require('../keyword-peaks.js');

test('the smoothing is the causal moving average the detector uses', () => {
  assert.deepStrictEqual(Array.from(smooth([0, 1, 1, 0, 0], 2)), [0, 0.5, 1, 0.5, 0]);
  // once the window is full, a one-frame spike of 1 is a fifth of itself after 50 ms of
  // smoothing; before, the mean is of the frames there are
  assert.strictEqual(Math.max(...smooth([0, 0, 0, 0, 0, 1, 0, 0], 5)), 0.2);
  assert.strictEqual(Math.max(...smooth([0, 1, 0], 5)), 0.5);
});

test('peaks are taken only in the window a detection would count in', () => {
  // 10 ms frames; the keyword said over [1.0, 1.2] s counts from 0.8 s to 2.2 s.
  const frames = 400;
  const own = new Float64Array(frames);
  const other = new Float64Array(frames);
  own[90] = 0.6; // 0.9 s: inside
  own[300] = 0.99; // 3.0 s: after the window, another utterance
  other[70] = 0.8; // 0.7 s: before the window
  other[200] = 0.4; // 2.0 s: inside
  const peaks = windowPeaks({ yes: own, no: other }, 1.0, 1.2);
  assert.deepStrictEqual(peaks, { yes: 0.6, no: 0.4 });
});

test('the tally counts the top-ranked and each peak level', () => {
  const r = tally([
    { own: 0.95, top: true },
    { own: 0.4, top: true },
    { own: 0.2, top: false },
  ]);
  assert.strictEqual(r.count, 3);
  assert.strictEqual(r.top, 2);
  assert.deepStrictEqual(
    r.levels,
    PEAK_LEVELS.map((level) => [0.95, 0.4, 0.2].filter((p) => p >= level).length),
  );
});
