'use strict';
// node --test tools/eval/test/   (the VAD truth follows the training labels' rule)
const test = require('node:test');
const assert = require('node:assert');
const { speechLabels, HOP } = require('../lib.js');

// The clip of tests/models/train/test_labels.c: words as tones over a -80 dBFS floor, a
// 100 ms pause, a 10 ms click, a 120 ms pause. Both tests expect the same frames.
function clip() {
  const x = new Float32Array(4000 * 16);
  let seed = 1;
  for (let i = 0; i < x.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    x[i] = 1e-4 * (seed / 2147483648 - 0.5) * Math.sqrt(12);
  }
  const tone = (fromMs, toMs, a) => {
    for (let i = fromMs * 16; i < toMs * 16; i++) x[i] += a * Math.sin(0.2 * i);
  };
  tone(500, 1000, 0.3);
  tone(1100, 1500, 0.3);
  tone(2200, 2210, 0.5);
  tone(2600, 2900, 0.3);
  tone(3020, 3300, 0.3);
  return x;
}

test('pauses up to 100 ms are speech, longer ones are not, clicks are dropped', () => {
  const lab = speechLabels(clip());
  assert.strictEqual(lab.length, (4000 * 16) / HOP);
  const at = (ms) => lab[ms / 10];
  for (const ms of [100, 400, 1700, 2200, 2500, 2980, 3500]) assert.strictEqual(at(ms), 0, `${ms} ms`);
  for (const ms of [500, 800, 1050, 1450, 1530, 2880, 2920, 3010]) assert.strictEqual(at(ms), 1, `${ms} ms`);
  assert.strictEqual(lab.reduce((a, b) => a + b, 0), 179);
});

test('digital silence and a clip shorter than a window hold no speech', () => {
  assert.strictEqual(speechLabels(new Float32Array(16000)).reduce((a, b) => a + b, 0), 0);
  assert.strictEqual(speechLabels(new Float32Array(399)).length, 2);
});
