'use strict';
// Minimal reader for the evaluation set's files: RIFF/WAVE, 16-bit PCM, one channel,
// 16 kHz. Anything else is refused with a message that says how to convert it.
const fs = require('fs');

function readWav16k(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${path}: not a RIFF/WAVE file`);
  }
  let fmt = null;
  let pos = 12;
  while (pos + 8 <= buf.length) {
    const id = buf.toString('ascii', pos, pos + 4);
    let size = buf.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (id === 'fmt ') {
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        rate: buf.readUInt32LE(body + 4),
        bits: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new Error(`${path}: data chunk before fmt chunk`);
      if (fmt.format !== 1 || fmt.bits !== 16 || fmt.channels !== 1 || fmt.rate !== 16000) {
        throw new Error(`${path}: need 16-bit PCM mono 16 kHz (convert with: sox IN -r 16000 -c 1 -b 16 OUT.wav)`);
      }
      // sox writes 0xffffffff as the size of a stream it could not seek back into
      if (size === 0xffffffff || body + size > buf.length) size = buf.length - body;
      size -= size % 2;
      const copy = Buffer.from(buf.subarray(body, body + size)); // aligned copy
      return new Int16Array(copy.buffer, copy.byteOffset, size / 2);
    }
    pos = body + size + (size % 2);
  }
  throw new Error(`${path}: no data chunk`);
}

// Writes per-frame scores as earshot's `--format frames` CSV: one row per 10 ms frame.
function writeFramesCsv(out, columns, rows, hopS) {
  const lines = ['time_s,' + columns.join(',')];
  for (let t = 0; t < rows.length; t++) {
    lines.push((t * hopS).toFixed(2) + ',' + rows[t].map((v) => v.toFixed(4)).join(','));
  }
  const text = lines.join('\n') + '\n';
  if (out === '-') process.stdout.write(text);
  else fs.writeFileSync(out, text);
}

module.exports = { readWav16k, writeFramesCsv };
