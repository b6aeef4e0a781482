'use strict';
// pocketsphinx keyword spotting (Debian's pocketsphinx_continuous -kws, en-us model) as
// earshot-style JSON-line keyword events, so the same scorer reads both.
// keywords.kws beside this file holds the 20 keywords and their thresholds, chosen on the
// validation voices by tools/eval/calibrate-pocketsphinx.js (the loosest threshold of a
// grid at which each keyword raised at most 0.5 false alarms per hour of keyword-free
// validation audio); never fitted to the test voices.
// Usage: node pocketsphinx.js IN.wav [OUT.jsonl|-] [--kws FILE]
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');

const args = process.argv.slice(2);
let kws = path.join(__dirname, 'keywords.kws');
const ki = args.indexOf('--kws');
if (ki >= 0) {
  kws = args[ki + 1];
  args.splice(ki, 2);
}
const [input, out = '-'] = args;
if (!input) {
  process.stderr.write('usage: node pocketsphinx.js IN.wav [OUT.jsonl|-] [--kws FILE]\n');
  process.exit(2);
}
const model = '/usr/share/pocketsphinx/model/en-us';
const ps = spawn('pocketsphinx_continuous', [
  '-infile', input, '-kws', kws, '-time', 'yes', '-logfn', '/dev/null',
  '-hmm', `${model}/en-us`, '-dict', `${model}/cmudict-en-us.dict`,
], { stdio: ['ignore', 'pipe', 'inherit'] });
ps.on('error', (e) => {
  process.stderr.write(`pocketsphinx: ${e.message} (scripts/peers.sh installs pocketsphinx)\n`);
  process.exit(1);
});
let text = '';
ps.stdout.on('data', (d) => (text += d));
ps.on('close', (code) => {
  if (code !== 0) {
    process.stderr.write(`pocketsphinx: pocketsphinx_continuous exited with ${code} on ${input}\n`);
    process.exit(1);
  }
  // With -time yes each utterance prints its hypothesis, then one line per detection:
  // "word start_s end_s confidence". A detection may be listed again with a later utterance.
  const seen = new Set();
  const events = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 4 || !/^[0-9.]+$/.test(f[1]) || !/^[0-9.]+$/.test(f[2])) continue;
    const key = f.slice(0, 3).join(' ');
    if (seen.has(key)) continue;
    seen.add(key);
    const [start, end, score] = [Number(f[1]), Number(f[2]), Number(f[3])];
    events.push({ type: 'keyword', source: path.basename(input), keyword: f[0], time: end, start, end, score });
  }
  events.sort((a, b) => a.time - b.time);
  const body = events.map((e) => JSON.stringify(e) + '\n').join('');
  if (out === '-') process.stdout.write(body);
  else fs.writeFileSync(out, body);
});
