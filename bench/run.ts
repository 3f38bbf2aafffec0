// `npm run bench`: each figure is measured against its baseline in the same run, and reported as a ratio.
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import jsxdrModule from '@stellar/js-xdr';
import { RpcClient } from '../src/rpc/client.js';
import { XdrReader, XdrWriter } from '../src/xdr/index.js';
import { writeCallHeader, decodeMessage } from '../src/rpc/message.js';
import { AUTH_NONE, authSys } from '../src/rpc/auth.js';

const jsxdr = jsxdrModule as any;
const DURATION_MS = Number(process.env.BENCH_MS ?? 3000);

function timeLoop(fn: () => void, ms = DURATION_MS): number {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 256; i++) fn();
    n += 256;
  }
  return (n / ms) * 1000;
}

// ---- 1. XDR: RPC call header + NFSv3 WRITE-like args with 4 KiB of data, encode + decode ----------

const cred = authSys({ uid: 1000, gid: 1000, gids: [4, 24, 27], machinename: 'client.example' });
const fh = Buffer.alloc(32, 7);
const data = Buffer.alloc(4096, 9);

function encodeOurs(): Buffer[] {
  const w = new XdrWriter(256);
  w.reserve4();
  writeCallHeader(w, 0x1234, 100003, 3, 7, cred, AUTH_NONE);
  w.opaque(fh, 64).uhyper(8192n).uint(4096).int(2).opaque(data);
  return w.finish();
}

// The receiver decodes the record as it arrived (contiguous); the sender hands its gather list to
// writev and never joins it, so joining is not part of what we time.
const received = Buffer.concat(encodeOurs());

function oursRoundTrip(): void {
  if (encodeOurs().length < 2) throw new Error('4 KiB payload should be gathered, not copied');
  const msg = decodeMessage(received.subarray(4));
  if (msg.type !== 0) throw new Error('bad');
  const r = new XdrReader(msg.args);
  r.opaque(64);
  r.uhyper();
  r.uint();
  r.int();
  if (r.opaque().length !== 4096) throw new Error('bad');
}

const T = jsxdr.config((x: any) => {
  x.struct('OpaqueAuth', [['flavor', x.uint()], ['body', x.varOpaque(400)]]);
  x.struct('CallWrite', [
    ['xid', x.uint()], ['mtype', x.uint()], ['rpcvers', x.uint()], ['prog', x.uint()], ['vers', x.uint()], ['proc', x.uint()],
    ['cred', x.lookup('OpaqueAuth')], ['verf', x.lookup('OpaqueAuth')],
    ['fh', x.varOpaque(64)], ['offset', x.uhyper()], ['count', x.uint()], ['stable', x.int()], ['data', x.varOpaque()],
  ]);
});

function jsxdrRoundTrip(): void {
  const v = new T.CallWrite({
    xid: 0x1234, mtype: 0, rpcvers: 2, prog: 100003, vers: 3, proc: 7,
    cred: new T.OpaqueAuth({ flavor: 1, body: cred.body }), verf: new T.OpaqueAuth({ flavor: 0, body: Buffer.alloc(0) }),
    fh, offset: jsxdr.UnsignedHyper.fromString('8192'), count: 4096, stable: 2, data,
  });
  const wire: Buffer = v.toXDR();
  const back = T.CallWrite.fromXDR(wire);
  if (back.data().length !== 4096) throw new Error('bad');
}

// ---- 2. NULL calls/s, 64 in flight, one connection, vs a raw TCP echo of the same byte counts ------

async function startServer(mode: string, req: number, rep: number): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(new URL('./server.ts', import.meta.url), [mode, String(req), String(rep)], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m: any) => resolve(m.port)));
  return { child, port };
}

const NULL_CALL_BYTES = 4 + 40;
const NULL_REPLY_BYTES = 4 + 24;
const INFLIGHT = 64;

async function rpcNullRate(): Promise<number> {
  const { child, port } = await startServer('rpc', 0, 0);
  const client = new RpcClient({ port, maxPendingCalls: INFLIGHT });
  await client.call(0x20000001, 1, 0);
  let done = 0;
  const end = performance.now() + DURATION_MS;
  const worker = async () => {
    while (performance.now() < end) {
      await client.call(0x20000001, 1, 0);
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  const rate = (done / (performance.now() - start)) * 1000;
  client.destroy();
  child.kill();
  return rate;
}

async function rawEchoRate(): Promise<number> {
  const { child, port } = await startServer('echo', NULL_CALL_BYTES, NULL_REPLY_BYTES);
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise((r) => socket.once('connect', r));
  const request = Buffer.alloc(NULL_CALL_BYTES, 2);
  let done = 0;
  let pendingBytes = 0;
  const end = performance.now() + DURATION_MS;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    // Keep INFLIGHT requests outstanding, one write per request, as the RPC client does.
    socket.on('data', (chunk) => {
      pendingBytes += chunk.length;
      const n = Math.floor(pendingBytes / NULL_REPLY_BYTES);
      pendingBytes -= n * NULL_REPLY_BYTES;
      done += n;
      if (performance.now() >= end) return resolve();
      for (let i = 0; i < n; i++) socket.write(request);
    });
    for (let i = 0; i < INFLIGHT; i++) socket.write(request);
  });
  const rate = (done / (performance.now() - start)) * 1000;
  socket.destroy();
  child.kill();
  return rate;
}

const rows: [string, string, string, string][] = [];
const ours = timeLoop(oursRoundTrip);
const theirs = timeLoop(jsxdrRoundTrip);
rows.push(['XDR call header + 4 KiB WRITE args, encode+decode', `${Math.round(ours)}/s`, `@stellar/js-xdr ${Math.round(theirs)}/s`, `${(ours / theirs).toFixed(2)}x (target >= 3x)`]);
const rpc = await rpcNullRate();
const echo = await rawEchoRate();
rows.push([`NULL calls, ${INFLIGHT} in flight, 1 connection`, `${Math.round(rpc)}/s`, `raw TCP echo ${Math.round(echo)}/s`, `${(rpc / echo).toFixed(2)}x (target >= 0.8x)`]);

const header = ['benchmark', 'rpctls', 'baseline (same run)', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
console.log(`\nnode ${process.version}, ${DURATION_MS} ms per figure, server in a child process.`);
