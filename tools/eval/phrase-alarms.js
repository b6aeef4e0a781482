'use strict';
// A custom keyword model's events on an evaluation set's keyword-free hours (fa_*.wav of
// tools/eval/build.js), told apart by what the audio says. That audio is free of the 20
// built-in keywords, not of every phrase: a few of its sentences may say a custom one ("The
// computer is wrong."). An event inside such a sentence, or up to half a second after it,
// is a detection of it; every other event is a false alarm.
//
//   earshot file --kws-model MODEL DIR/fa_*.wav |
//     node phrase-alarms.js --set DIR --text data/text/jobs.tsv --phrase "PHRASE"
//
// --text is scripts/data.sh's list of synthesised clips (name, then the text in column 6).
// Clips without a text there (real recordings) count as not saying the phrase. Prints one
// line: "F in H h (R / h), A of them in B h of music and noise; N of M sentences that say it
// found" (or "none of its sentences says it").
const fs = require('fs');
const path = require('path');

const AFTER_S = 0.5;

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!['set', 'text', 'phrase'].includes(key) || i + 1 >= argv.length) throw new Error(`phrase-alarms: bad argument ${argv[i]}`);
    o[key] = argv[i + 1];
  }
  for (const k of ['set', 'text', 'phrase']) if (!o[k]) throw new Error(`phrase-alarms: --${k} is required`);
  return o;
}

const words = (s) => ` ${s.toLowerCase().replace(/[^a-z']+/g, ' ').trim()} `;

// Clip (as the manifest names it) -> 1 when its text says the phrase.
function clipsSaying(textFile, phrase) {
  const wanted = words(phrase);
  const saying = new Set();
  for (const line of fs.readFileSync(textFile, 'utf8').split('\n')) {
    const f = line.split('\t');
    if (f.length > 5 && words(f[5]).includes(wanted)) saying.add(`clips/${f[0]}.wav`);
  }
  return saying;
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const meta = JSON.parse(fs.readFileSync(path.join(o.set, 'meta.json'), 'utf8'));
  const saying = clipsSaying(o.text, o.phrase);
  // Per file: the stretches whose clip says the phrase, [start, end + AFTER_S]; and the
  // music-and-noise stretches, [start, end].
  const phraseStretches = new Map();
  const noiseStretches = new Map();
  let seconds = 0;
  let noiseSeconds = 0;
  for (const { file, seconds: s } of meta.fa) {
    seconds += s;
    const rows = fs
      .readFileSync(path.join(o.set, file.replace('.wav', '.truth.tsv')), 'utf8')
      .split('\n')
      .map((l) => l.split('\t'))
      .filter((r) => r.length >= 4);
    if (rows.length && rows[0].length < 5)
      throw new Error(`${file}: its truth names no clips (a set built before they were recorded: run scripts/eval.sh again)`);
    phraseStretches.set(
      file,
      rows.filter((r) => saying.has(r[4])).map((r) => ({ start: Number(r[1]), end: Number(r[2]) + AFTER_S, found: false })),
    );
    const noise = rows.filter((r) => r[3] === 'music-noise').map((r) => ({ start: Number(r[1]), end: Number(r[2]) }));
    noiseStretches.set(file, noise);
    noiseSeconds += noise.reduce((sum, r) => sum + r.end - r.start, 0);
  }
  let alarms = 0;
  let noiseAlarms = 0;
  for (const line of fs.readFileSync(0, 'utf8').split('\n')) {
    if (!line.includes('"type":"keyword"')) continue;
    const e = JSON.parse(line);
    const stretches = phraseStretches.get(path.basename(e.source)) || [];
    const inside = stretches.filter((s) => s.start <= e.time && e.time <= s.end);
    if (inside.length) inside.forEach((s) => (s.found = true));
    else {
      alarms++;
      // The detector fires just after what it heard: an event up to AFTER_S past a stretch is of it.
      if ((noiseStretches.get(path.basename(e.source)) || []).some((s) => s.start <= e.time && e.time <= s.end + AFTER_S)) noiseAlarms++;
    }
  }
  const all = [...phraseStretches.values()].flat();
  const hours = seconds / 3600;
  const said = all.length ? `${all.filter((s) => s.found).length} of ${all.length} sentences that say it found` : 'none of its sentences says it';
  const noise = `${noiseAlarms} of them in ${(noiseSeconds / 3600).toFixed(1)} h of music and noise`;
  console.log(`${alarms} in ${hours.toFixed(1)} h (${(alarms / hours).toFixed(2)} / h), ${noise}; ${said}`);
}

try {
  main();
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
