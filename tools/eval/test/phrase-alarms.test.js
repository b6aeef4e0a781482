'use strict';
// node --test tools/eval/test/   (phrase-alarms.js: a custom phrase's events on keyword-free hours)
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const SCRIPT = path.join(__dirname, '..', 'phrase-alarms.js');

function run(dir, events, phrase) {
  return execFileSync('node', [SCRIPT, '--set', dir, '--text', path.join(dir, 'jobs.tsv'), '--phrase', phrase], {
    input: events.map((e) => JSON.stringify({ type: 'keyword', source: `/x/${e[0]}`, keyword: phrase, time: e[1] })).join('\n') + '\n',
  })
    .toString()
    .trim();
}

test('events in a sentence that says the phrase are detections, the rest false alarms', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phrase-alarms-'));
  fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ fa: [{ file: 'fa_00.wav', seconds: 7200 }] }));
  fs.writeFileSync(
    path.join(dir, 'fa_00.truth.tsv'),
    [
      ['fa_00.wav', '0.00', '3.00', 'synthetic-speech', 'clips/espeak/en/s1.wav'], // says it
      ['fa_00.wav', '3.00', '9.00', 'music-noise', '-'],
      ['fa_00.wav', '9.00', '12.00', 'synthetic-speech', 'clips/espeak/en/s2.wav'], // does not
      ['fa_00.wav', '12.00', '15.00', 'synthetic-speech', 'clips/espeak/en/s3.wav'], // says it, missed
    ]
      .map((r) => r.join('\t') + '\n')
      .join(''),
  );
  fs.writeFileSync(
    path.join(dir, 'jobs.tsv'),
    [
      ['espeak/en/s1', 'espeak', 'en', '150', '50', 'The Computer is wrong.', '-', 'test', 'sentence', '-', 'espeak:en'],
      ['espeak/en/s2', 'espeak', 'en', '150', '50', 'My computers are new.', '-', 'test', 'sentence', '-', 'espeak:en'],
      ['espeak/en/s3', 'espeak', 'en', '150', '50', 'A computer, again.', '-', 'test', 'sentence', '-', 'espeak:en'],
    ]
      .map((r) => r.join('\t') + '\n')
      .join(''),
  );
  // 3.3 s: half a second after the first sentence still counts as it; 5 s (in the music)
  // and 10 s are alarms.
  assert.strictEqual(
    run(dir, [['fa_00.wav', 2.0], ['fa_00.wav', 3.3], ['fa_00.wav', 5.0], ['fa_00.wav', 10.0]], 'computer'),
    '2 in 2.0 h (1.00 / h), 1 of them in 0.0 h of music and noise; 1 of 2 sentences that say it found',
  );
  assert.strictEqual(run(dir, [], 'computer'), '0 in 2.0 h (0.00 / h), 0 of them in 0.0 h of music and noise; 0 of 2 sentences that say it found');
  // 9.2 s: the music's last half second still counts as it.
  assert.strictEqual(run(dir, [['fa_00.wav', 9.2]], 'hey nova'), '1 in 2.0 h (0.50 / h), 1 of them in 0.0 h of music and noise; none of its sentences says it');
  fs.rmSync(dir, { recursive: true });
});

test('a set whose truth names no clips is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phrase-alarms-'));
  fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ fa: [{ file: 'fa_00.wav', seconds: 3600 }] }));
  fs.writeFileSync(path.join(dir, 'fa_00.truth.tsv'), 'fa_00.wav\t0.00\t3.00\tsynthetic-speech\n');
  fs.writeFileSync(path.join(dir, 'jobs.tsv'), '');
  assert.throws(() => run(dir, [], 'computer'), /names no clips/);
  fs.rmSync(dir, { recursive: true });
});
