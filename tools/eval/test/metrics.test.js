'use strict';
// node --test tools/eval/test/   (the scorer's arithmetic and the builder's labels)
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const L = require('../lib.js');
const { rocAuc, f1 } = require('../report.js');
const { readWav16k } = require('../../peers/wav.js');

test('ROC-AUC: perfect, inverted, ties and a hand-counted case', () => {
  assert.strictEqual(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  assert.strictEqual(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
  assert.strictEqual(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
  // positives 0.4, 0.8; negatives 0.1, 0.6: pairs won 1 + 2 = 3 of 4
  assert.strictEqual(rocAuc([0.4, 0.8, 0.1, 0.6], [1, 1, 0, 0]), 0.75);
  assert.ok(Number.isNaN(rocAuc([0.1, 0.2], [1, 1])));
});

test('F1 of frame decisions', () => {
  assert.strictEqual(f1([1, 1, 0, 0], [1, 1, 0, 0]), 1);
  assert.strictEqual(f1([0, 0, 0, 0], [1, 1, 0, 0]), 0);
  // tp 1, fp 1, fn 1 -> 2 / 4
  assert.strictEqual(f1([1, 1, 0, 0], [1, 0, 1, 0]), 0.5);
});

test('segments and frame labels convert both ways', () => {
  const lab = L.segmentsToLabels([[0.1, 0.25], [0.5, 0.6]], 80);
  assert.deepStrictEqual(L.labelsToSegments(lab), [[0.1, 0.25], [0.5, 0.6]]);
  assert.strictEqual(lab.reduce((a, b) => a + b, 0), 25);
});

test('speech labels of a clean clip: tone found, silence not, short gap closed', () => {
  const x = new Float32Array(L.RATE); // 1 s: 0.2-0.4 tone, 0.4-0.45 gap, 0.45-0.6 tone
  for (let i = 0; i < x.length; i++) {
    const t = i / L.RATE;
    if ((t >= 0.2 && t < 0.4) || (t >= 0.45 && t < 0.6)) x[i] = 0.3 * Math.sin(2 * Math.PI * 440 * t);
  }
  assert.deepStrictEqual(L.labelsToSegments(L.speechFrames(x)), [[0.2, 0.6]]);
});

test('seeded generator repeats itself', () => {
  const a = L.rng(7);
  const b = L.rng(7);
  for (let i = 0; i < 100; i++) assert.strictEqual(a(), b());
  assert.notStrictEqual(L.rng(8)(), L.rng(7)());
});

test('written WAV reads back within dither', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'eval-')), 'x.wav');
  const x = Float32Array.from({ length: 1000 }, (_, i) => 0.5 * Math.sin(i / 10));
  L.writeWav(file, x, L.rng(1));
  const y = readWav16k(file);
  assert.strictEqual(y.length, x.length);
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(y[i] / 32767 - x[i]) < 3 / 32767);
});

test('the smoke set is the same for the same seed, different for another', () => {
  const { spawnSync } = require('child_process');
  const crypto = require('crypto');
  const build = path.join(__dirname, '..', 'build.js');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-set-'));
  const digest = (dir) =>
    crypto
      .createHash('sha1')
      .update(['vad_10.wav', 'kws_10.wav', 'fa_00.wav', 'kws.truth.tsv'].map((f) => fs.readFileSync(path.join(dir, f))).join(''))
      .digest('hex');
  const make = (name, seed) => {
    const r = spawnSync('node', [build, '--smoke', '--out', path.join(tmp, name), '--seed', String(seed)], { encoding: 'utf8' });
    assert.strictEqual(r.status, 0, r.stderr);
    return digest(path.join(tmp, name));
  };
  const a = make('a', 3);
  assert.strictEqual(make('b', 3), a);
  assert.notStrictEqual(make('c', 4), a);
  fs.rmSync(tmp, { recursive: true, force: true });
});
