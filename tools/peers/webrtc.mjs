// WebRTC VAD (libfvad compiled to WASM, npm @echogarden/fvad-wasm) on 10 ms frames.
// WebRTC VAD only says yes or no, so to rank frames (ROC) it runs each requested
// aggressiveness mode and the score of a frame is the share of modes that call it speech;
// with one mode the score is that mode's decision.
// Usage: node webrtc.mjs IN.wav [OUT.csv|-] [--modes 0,1,2,3]
import { createRequire } from 'module';
import createFvad from '@echogarden/fvad-wasm';

const require = createRequire(import.meta.url);
const { readWav16k, writeFramesCsv } = require('./wav.js');
const HOP = 160;

const args = process.argv.slice(2);
let modes = [0, 1, 2, 3];
const mi = args.indexOf('--modes');
if (mi >= 0) {
  modes = args[mi + 1].split(',').map(Number);
  args.splice(mi, 2);
}
const [input, out = '-'] = args;
if (!input || modes.some((m) => !(m >= 0 && m <= 3))) {
  process.stderr.write('usage: node webrtc.mjs IN.wav [OUT.csv|-] [--modes 0,1,2,3]\n');
  process.exit(2);
}

try {
  const pcm = readWav16k(input);
  const m = await createFvad();
  const frameBytes = HOP * 2;
  const ptr = m._malloc(frameBytes);
  const insts = modes.map((mode) => {
    const inst = m._fvad_new();
    if (!inst || m._fvad_set_mode(inst, mode) !== 0 || m._fvad_set_sample_rate(inst, 16000) !== 0) {
      throw new Error('libfvad refused its configuration');
    }
    return inst;
  });
  const nFrames = Math.floor(pcm.length / HOP);
  const rows = new Array(nFrames);
  for (let t = 0; t < nFrames; t++) {
    m.HEAP16.set(pcm.subarray(t * HOP, (t + 1) * HOP), ptr >> 1);
    let votes = 0;
    for (const inst of insts) {
      const r = m._fvad_process(inst, ptr, HOP);
      if (r < 0) throw new Error(`libfvad failed on frame ${t}`);
      votes += r;
    }
    rows[t] = [votes / insts.length];
  }
  insts.forEach((inst) => m._fvad_free(inst));
  m._free(ptr);
  writeFramesCsv(out, ['speech'], rows, HOP / 16000);
} catch (e) {
  process.stderr.write(`webrtc: ${e.message}\n`);
  process.exit(1);
}
