'use strict';
// Sets pocketsphinx's per-keyword thresholds (tools/peers/keywords.kws) on the VALIDATION
// voices, never the test ones: builds a validation set (build.js --split valid), runs
// pocketsphinx over it once per threshold of a grid (every keyword at the same threshold
// in a pass; keyphrases are searched independently), and gives each keyword the loosest
// threshold at which it raised at most --max-fa false alarms per hour on the keyword-free
// validation audio. Prints each keyword's choice with its validation recall (clean), and
// the recall / false-alarm trade-off of one threshold for all keywords.
//
// Usage: node calibrate-pocketsphinx.js [--manifest data/manifest.tsv] [--hours 1]
//                                       [--max-fa 0.5] [--out data/eval/valid]
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const L = require('./lib.js');
const { EvalSet } = require('./report.js');

const GRID = [-10, -5, 0, 2, 4, 6, 8, 10, 12, 15, 20]; // exponents of 10, loosest first
const root = path.join(__dirname, '..', '..');
const o = { manifest: path.join(root, 'data/manifest.tsv'), hours: 1, maxFa: 0.5, out: path.join(root, 'data/eval/valid') };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i];
  const v = argv[++i];
  if (k === '--manifest') o.manifest = v;
  else if (k === '--hours') o.hours = Number(v);
  else if (k === '--max-fa') o.maxFa = Number(v);
  else if (k === '--out') o.out = v;
  else {
    process.stderr.write(`calibrate: unknown option ${k}\n`);
    process.exit(2);
  }
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
}

function main() {
  run('node', [path.join(__dirname, 'build.js'), '--manifest', o.manifest, '--out', o.out, '--split', 'valid', '--size', 'quick', '--hours', String(o.hours)]);
  const set = new EvalSet(o.out);
  const files = [set.meta.kws.files.find((f) => f.snr === 'clean').file, ...set.meta.fa.map((f) => f.file)];
  const perExp = {};
  for (const e of GRID) {
    const sys = `ps_1e${e}`;
    const dir = path.join(o.out, 'runs', sys);
    fs.rmSync(dir, { recursive: true, force: true }); // runs of an older set would not match
    fs.mkdirSync(dir, { recursive: true });
    const kws = path.join(dir, 'keywords.kws');
    fs.writeFileSync(kws, L.KEYWORDS.map((w) => `${w} /1e${e}/\n`).join(''));
    process.stderr.write(`calibrate: threshold 1e${e}\n`);
    for (const f of files) {
      const out = path.join(dir, f.replace('.wav', '.jsonl'));
      run('nice', ['-n', '10', 'node', path.join(root, 'tools/peers/pocketsphinx.js'), path.join(o.out, f), out, '--kws', kws]);
    }
    perExp[e] = set.kws(sys);
  }
  const lines = [];
  const rows = [];
  for (const w of L.KEYWORDS) {
    // loosest exponent whose false-alarm rate is within the target
    const e = GRID.find((x) => (perExp[x].fa.byKeyword[w] || 0) / perExp[x].fa.hours <= o.maxFa) ?? GRID[GRID.length - 1];
    const [h, n] = perExp[e].sum(([snr, kw, r]) => snr === 'clean' && kw === w && r === 'synthetic');
    lines.push(`${w} /1e${e}/\n`);
    rows.push(`${w}\t1e${e}\trecall ${h}/${n}\tfalse alarms ${perExp[e].fa.byKeyword[w] || 0} in ${perExp[e].fa.hours.toFixed(2)} h`);
  }
  // (the keyphrase file has no comment syntax: the method is told in pocketsphinx.js)
  fs.writeFileSync(path.join(root, 'tools/peers/keywords.kws'), lines.join(''));
  process.stdout.write(rows.join('\n') + '\n\n');
  // the whole trade-off, one threshold for every keyword
  const curve = GRID.map((e) => {
    const [h, n] = perExp[e].sum(([snr, , r]) => snr === 'clean' && r === 'synthetic');
    return `| 1e${e} | ${h}/${n} | ${(perExp[e].fa.total / perExp[e].fa.hours).toFixed(0)} |`;
  });
  process.stdout.write(['| threshold, all keywords | recall (validation voices, clean) | false alarms / h |', '|---|---:|---:|', ...curve].join('\n') + '\n');
}

try {
  main();
} catch (e) {
  process.stderr.write(`calibrate: ${e.message}\n`);
  process.exit(1);
}
