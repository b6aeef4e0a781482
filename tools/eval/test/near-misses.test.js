'use strict';
// node --test tools/eval/test/   (report.js: near-miss clips of the keyword-free audio)
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { EvalSet } = require('../report.js');

// A set of one keyword-free hour: a near miss (0-3 s), a sentence (3-10 s), noise after.
function makeSet(events) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'near-misses-'));
  const manifest = path.join(dir, 'manifest.tsv');
  fs.writeFileSync(
    manifest,
    ['clips/a/near-1.wav\ttest\tsentence\tlift\t-\t-\tespeak:a', 'clips/a/sent-1.wav\ttest\tsentence\t-\t-\t-\tespeak:a', ''].join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'meta.json'),
    JSON.stringify({ size: 'test', seed: 1, manifest, snrs: ['clean'], vad: { files: [{ snr: 'clean', file: 'vad_clean.wav', seconds: 1 }], frames: 10, speech_frames: 0 }, kws: { files: [], keywords: 0, real_keywords: 0 }, fa: [{ file: 'fa_00.wav', seconds: 3600 }], noise: '-' }),
  );
  fs.writeFileSync(path.join(dir, 'vad.truth.tsv'), '');
  fs.writeFileSync(path.join(dir, 'kws.truth.tsv'), '# keyword\tstart_s\tend_s\tvoice\n');
  fs.writeFileSync(
    path.join(dir, 'fa_00.truth.tsv'),
    ['fa_00.wav\t0.00\t3.00\tsynthetic-speech\tclips/a/near-1.wav', 'fa_00.wav\t3.00\t10.00\tsynthetic-speech\tclips/a/sent-1.wav', 'fa_00.wav\t10.00\t3600.00\tmusic-noise\t-', ''].join('\n'),
  );
  fs.mkdirSync(path.join(dir, 'runs', 'earshot'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'runs', 'earshot', 'fa_00.jsonl'), events.map((t) => JSON.stringify({ type: 'keyword', keyword: 'left', time: t })).join('\n') + '\n');
  return dir;
}

test('a near-miss clip is its own category, judged once however often it fires', () => {
  const set = new EvalSet(makeSet([1.0, 2.5, 5.0]));
  const { fa } = set.kws('earshot');
  assert.strictEqual(fa.total, 3);
  assert.strictEqual(fa.byCategory['near-miss-speech'].events, 2);
  assert.strictEqual(fa.byCategory['synthetic-speech'].events, 1);
  assert.strictEqual(fa.nearMisses, 1);
  assert.strictEqual(fa.nearAccepted, 1);
});

test('the report gives the rate without near misses and the share of them accepted', () => {
  const dir = makeSet([2.5, 5.0]);
  const out = execFileSync('node', [path.join(__dirname, '..', 'report.js'), 'eval', '--set', dir]).toString();
  assert.match(out, /\| \*\*keyword-free total\*\* \| 1\.00 \| 2 \| 2\.0 \|/);
  assert.match(out, /\| \*\*keyword-free without near misses\*\* \| 1\.00 \| 1 \| 1\.0 \|/);
  assert.match(out, /Near misses: 1 of the 1 near-miss clips .* set off a keyword/);
});

test('without the manifest every synthetic clip is keyword-free speech', () => {
  const dir = makeSet([2.5]);
  fs.rmSync(path.join(dir, 'manifest.tsv'));
  const { fa } = new EvalSet(dir).kws('earshot');
  assert.strictEqual(fa.byCategory['synthetic-speech'].events, 1);
  assert.strictEqual(fa.nearMisses, 0);
});
