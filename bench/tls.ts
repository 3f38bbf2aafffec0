// `node --import tsx bench/tls.ts [--kernel-vs-user]`: RPC-with-TLS throughput, each figure against a
// baseline measured in the same run and printed as a ratio.
//
// Default mode: 1 MiB RPC calls (small replies, 8 in flight) through createTlsClient/createTlsServer
// with userspace records (kernelTls 'off'), against a raw node:tls connection moving the same bytes
// (1 MiB + 44 B request, 28 B reply, same in-flight count) with the same cipher suite. Target >= 0.9x.
//
// --kernel-vs-user (for the UML runner: `test/uml/run.sh node --import tsx bench/tls.ts --kernel-vs-user`):
// the same RPC load with kernelTls 'require' against kernelTls 'off', in the same boot. UML's kernel
// crypto is generic C (no AES-NI, no SIMD), so there these figures say nothing about kernel TLS on a real
// x86 kernel with aesni_intel / chacha20-x86_64.
//
// Each suite also gets the cost of one key rotation (a KeyUpdate each way, see rotationCost) and, with
// kernel TLS that can rekey (Linux >= 6.14, `npm run bench:tls:uml` boots 7.2), the RPC load again with
// a KeyUpdate every 1000 records.
//
// Both modes first print the connection setup latency: TCP connect + AUTH_TLS probe + TLS handshake +
// the first NULL call, median of BENCH_HANDSHAKES (200) fresh connections whose client and server share
// one TlsContext each, against node:tls (connect + handshake + one small exchange, one shared
// SecureContext per side) in the same run.
//
// Client and server run in this one process (one event loop thread) in every configuration, so the
// baseline and the measured path share the same constraints. BENCH_MS sets the time per figure (3000).
import { readFileSync } from 'node:fs';
import type net from 'node:net';

import { once } from 'node:events';
import netModule from 'node:net';
import { performance } from 'node:perf_hooks';

import { type RekeyLimits, TLS_CIPHERSUITES, TlsContext, type TlsCipherSuite, type TlsInfo, type TlsStream, connectTlsStream } from '../dist/tls/index.js';
import { createTlsClient, createTlsServer, tlsInfoOf } from '../dist/rpc-tls/index.js';
import { makeCerts } from './certs.js';
import { startNodeTlsPeer } from './node-tls-peer.js';
import { nodeTlsSetup, rpcTlsSetup } from './setup-latency.js';

const DURATION_MS = Number(process.env.BENCH_MS ?? 3000);
const WARMUP_MS = Math.min(1000, DURATION_MS / 3);
const REQUEST = 1024 * 1024;
const INFLIGHT = 8;
const PROG = 0x20000aaa;
const kernelVsUser = process.argv.includes('--kernel-vs-user');
const HANDSHAKES = Number(process.env.BENCH_HANDSHAKES ?? 200);

const certs = makeCerts();

/** Linux >= 6.14: kernel TLS takes new keys (its tls_stat has the rekey counters). */
function kernelCanRekey(): boolean {
  try {
    return readFileSync('/proc/net/tls_stat', 'utf8').includes('TlsRxRekeyOk');
  } catch {
    return false;
  }
}

interface Result {
  mibPerSecond: number;
  calls: number;
  note: string;
}

/** Keeps INFLIGHT requests going for WARMUP_MS + DURATION_MS; counts request bytes completed after warm-up. */
async function drive(call: () => Promise<unknown>): Promise<{ mibPerSecond: number; calls: number }> {
  let measuring = false;
  let calls = 0;
  let stop = false;
  let started = 0;
  const worker = async (): Promise<void> => {
    while (!stop) {
      await call();
      if (measuring) calls++;
    }
  };
  const workers = Array.from({ length: INFLIGHT }, worker);
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  measuring = true;
  started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, DURATION_MS));
  const seconds = (performance.now() - started) / 1000;
  const counted = calls;
  stop = true;
  await Promise.all(workers);
  return { mibPerSecond: (counted * REQUEST) / 1048576 / seconds, calls: counted };
}

// ---- RPC over createTlsClient/createTlsServer --------------------------------------------------------

async function rpcTls(suite: TlsCipherSuite, kernelTls: 'off' | 'require', rekey: RekeyLimits | false = false): Promise<Result> {
  const ciphersuites = [suite];
  const server = createTlsServer({ tls: { cert: certs.cert, key: certs.key, ciphersuites, kernelTls, rekey } });
  const empty = Buffer.alloc(0);
  server.addProgram({ program: PROG, version: 1, procedures: { 1: () => empty } });
  const { port } = await server.listen({ host: '127.0.0.1' });
  const client = createTlsClient({
    host: '127.0.0.1',
    port,
    probe: { program: PROG, version: 1 },
    timeout: 120_000,
    tls: { ca: certs.ca, servername: 'localhost', ciphersuites, kernelTls, rekey },
  });
  try {
    await client.connect();
    const info = tlsInfoOf(client.connection!) as TlsInfo;
    const payload = Buffer.alloc(REQUEST, 0x5a);
    const r = await drive(() => client.call(PROG, 1, 1, payload));
    const offload = info.offload.tx && info.offload.rx ? 'kernel' : 'userspace';
    const stream = client.connection!.transport as TlsStream;
    const rotations = rekey ? `, ${stream.counters.keyUpdatesSent} KeyUpdates sent` : '';
    return { ...r, note: `${info.cipher}, ${offload}${rotations}` };
  } finally {
    await client.close();
    await server.close();
  }
}

// ---- the same bytes over a raw node:tls stream --------------------------------------------------------

const RAW_REPLY = 28; // record mark + accepted reply header with empty results

async function rawNodeTls(suite: TlsCipherSuite): Promise<Result> {
  // Same shape as the RPC sender: a small header and the 1 MiB body, gathered into one write.
  const peer = await startNodeTlsPeer({ certs, suite, headerBytes: 44, bodyBytes: REQUEST, replyBytes: RAW_REPLY });
  try {
    const r = await drive(() => peer.exchange());
    return { ...r, note: `${peer.cipher}, node:tls` };
  } finally {
    await peer.close();
  }
}

// ---- connection setup latency ------------------------------------------------------------------------

async function setupLatency(): Promise<void> {
  const node = await nodeTlsSetup({ certs, count: HANDSHAKES });
  const setup = await rpcTlsSetup({ certs, count: HANDSHAKES, kernelTls: kernelVsUser ? 'auto' : 'off' });
  const rpc = { ms: setup.ms, note: setup.offload };
  console.log(`connection setup, median of ${HANDSHAKES} (client and server share one TlsContext each):`);
  console.log(`  ${'node:tls: connect + handshake + one exchange'.padEnd(64)} ${node.toFixed(2).padStart(7)} ms`);
  console.log(`  ${`RPC-with-TLS (${rpc.note}): connect + probe + handshake + first NULL`.padEnd(64)} ${rpc.ms.toFixed(2).padStart(7)} ms`);
  console.log(`  RPC-with-TLS / node:tls: ${(rpc.ms / node).toFixed(2)}x`);
}

// ---- main ---------------------------------------------------------------------------------------

// ---- the cost of one key rotation ------------------------------------------------------------------

/**
 * Microseconds one KeyUpdate adds: a 1-byte ping-pong over a TlsStream pair, ROTATIONS round trips with
 * the client's updateKeys({ requestPeerUpdate: true }) before each ping (both ends rotate both keys: a
 * KeyUpdate sent and followed on each side) against the same loop without it, in the same run.
 */
const ROTATIONS = Number(process.env.BENCH_ROTATIONS ?? 2000);

async function rotationCost(suite: TlsCipherSuite, kernelTls: 'off' | 'require'): Promise<{ us: number; note: string }> {
  const listener = netModule.createServer().listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const raw = netModule.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  await once(raw, 'connect');
  const [serverSocket] = await accepted;
  // As RPC connections are: a KeyUpdate and the data after it are two small writes, which Nagle would
  // hold for the peer's delayed ACK.
  raw.setNoDelay(true);
  serverSocket.setNoDelay(true);
  const ciphersuites = [suite];
  const [c, s] = await Promise.all([
    connectTlsStream(raw, { context: new TlsContext({ role: 'client', ca: certs.ca, ciphersuites, kernelTls, rekey: false }), servername: 'localhost' }),
    connectTlsStream(serverSocket, { context: new TlsContext({ role: 'server', cert: certs.cert, key: certs.key, ciphersuites, kernelTls, rekey: false }) }),
  ]);
  s.on('data', (chunk: Buffer) => s.write(chunk)); // echo
  const one = Buffer.from([1]);
  const loop = async (rotate: boolean): Promise<number> => {
    const start = performance.now();
    for (let i = 0; i < ROTATIONS; i++) {
      if (rotate) await c.updateKeys({ requestPeerUpdate: true });
      const back = once(c, 'data');
      c.write(one);
      await back;
    }
    return performance.now() - start;
  };
  await loop(false);
  const plain = await loop(false);
  const rotating = await loop(true);
  const note = `${c.counters.keyUpdatesSent} sent / ${c.counters.keyUpdatesReceived} followed by the client, ${c.tlsInfo!.offload.tx ? 'kernel' : 'userspace'}`;
  c.destroy();
  s.destroy();
  listener.close();
  return { us: ((rotating - plain) * 1000) / ROTATIONS, note };
}

function line(label: string, r: Result): string {
  return `  ${label.padEnd(28)} ${r.mibPerSecond.toFixed(1).padStart(8)} MiB/s  (${r.calls} calls; ${r.note})`;
}

console.log(
  `bench/tls.ts ${kernelVsUser ? '--kernel-vs-user' : '(userspace RPC-with-TLS vs raw node:tls)'}: ` +
    `1 MiB requests, ${INFLIGHT} in flight, ${DURATION_MS} ms per figure after ${WARMUP_MS} ms warm-up, node ${process.version}`,
);
await setupLatency();
const ratios: string[] = [];
for (const suite of TLS_CIPHERSUITES) {
  console.log(suite);
  if (kernelVsUser) {
    const user = await rpcTls(suite, 'off');
    console.log(line('RPC, userspace records', user));
    const kernel = await rpcTls(suite, 'require');
    console.log(line('RPC, kernel TLS', kernel));
    const ratio = kernel.mibPerSecond / user.mibPerSecond;
    console.log(`  kernel / userspace: ${ratio.toFixed(2)}x`);
    ratios.push(`${suite} ${ratio.toFixed(2)}x`);
    if (kernel.note.includes('kernel') && kernelCanRekey()) {
      const rekeying = await rpcTls(suite, 'require', { records: 1000 });
      console.log(line('RPC, kernel TLS, rekey/1000', rekeying));
      console.log(`  with a KeyUpdate every 1000 records / without: ${(rekeying.mibPerSecond / kernel.mibPerSecond).toFixed(2)}x`);
    }
    for (const mode of ['off', 'require'] as const) {
      if (mode === 'require' && !kernelCanRekey()) {
        console.log('  rotation cost, kernel TLS: this kernel cannot rekey (Linux >= 6.14 can)');
        continue;
      }
      const cost = await rotationCost(suite, mode);
      console.log(`  rotation cost, ${mode === 'off' ? 'userspace' : 'kernel TLS'}: ${cost.us.toFixed(1)} us per KeyUpdate both ways (${cost.note})`);
    }
  } else {
    const raw = await rawNodeTls(suite);
    console.log(line('raw node:tls, same bytes', raw));
    const rpc = await rpcTls(suite, 'off');
    console.log(line('RPC-with-TLS, userspace', rpc));
    const ratio = rpc.mibPerSecond / raw.mibPerSecond;
    console.log(`  RPC-with-TLS / node:tls: ${ratio.toFixed(2)}x (target >= 0.90x)`);
    ratios.push(`${suite} ${ratio.toFixed(2)}x`);
    const cost = await rotationCost(suite, 'off');
    console.log(`  rotation cost, userspace: ${cost.us.toFixed(1)} us per KeyUpdate both ways (${cost.note})`);
  }
}
console.log(`summary (${kernelVsUser ? 'kernel / userspace' : 'RPC-with-TLS / raw node:tls'}): ${ratios.join(', ')}`);
if (kernelVsUser) console.log('note: in UML the kernel crypto is generic C; these are not figures for a real x86 kernel.');
