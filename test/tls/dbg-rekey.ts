import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { drain, okPair, makeCerts, readTlsStat } from '../native/helpers.js';
makeCerts();
const [c, s] = await okPair({ rekey: { records: 1000 } }, { rekey: { records: 1000 } });
c.on('error', (e) => console.log('client error', e));
s.on('error', (e) => console.log('server error', e));
const size = 64 * 1024 * 1024;
const up = randomBytes(size), down = randomBytes(size);
const a = drain(s), b = drain(c);
let last = '';
const timer = setInterval(() => {
  const st = (x: any) => { const k = x.counters; return { r: k.bytesRead, w: k.bytesWritten, ks: k.keyUpdatesSent, kr: k.keyUpdatesReceived, tx: k.txRecords, rx: k.rxRecords, poll: k.pollEvents, wp: k.writePending, ku: k.keyUpdateState, seq: x.kernelState(), wl: x.writableLength, rl: x.readableLength, flowing: x.readableFlowing }; };
  const now = JSON.stringify({ c: st(c), s: st(s) });
  console.log(now);
  if (now === last) { console.log(JSON.stringify(readTlsStat())); process.exit(3); }
  last = now;
}, 1000);
async function pump(st: any, d: Buffer) { for (let o = 0; o < d.length; o += 65536) if (!st.write(d.subarray(o, o + 65536))) await once(st, 'drain'); st.end(); }
await Promise.all([pump(c, up), pump(s, down)]);
await Promise.all([a, b]);
clearInterval(timer);
console.log('done', JSON.stringify(readTlsStat()));
