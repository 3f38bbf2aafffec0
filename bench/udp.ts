// `npm run bench:udp`: NULL calls/s over UDP, rpctls against the libtirpc UDP server (test/helpers/
// libtirpc), measured in the same run and reported as ratios. Three views: our client against each server
// one call at a time and 32 in flight, and libtirpc's own C client (rpcgen stubs, one call at a time)
// against each server. Each server runs in its own process.
import { execFile, fork } from 'node:child_process';
import { promisify } from 'node:util';

import { UdpClient } from '../dist/rpc/udp-client.js';
import { BULK, libtirpcUdpClientBinary, startLibtirpcServer } from '../test/helpers/libtirpc.js';

const run = promisify(execFile);
const DURATION_MS = Number(process.env.BENCH_MS ?? 3000);
const C_CALLS = Number(process.env.BENCH_C_CALLS ?? 50_000);

async function ourClientRate(port: number, inflight: number): Promise<number> {
  const client = new UdpClient({ port, maxPendingCalls: inflight });
  await client.call(BULK.program, BULK.version, BULK.NULL);
  let calls = 0;
  const end = performance.now() + DURATION_MS;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await client.call(BULK.program, BULK.version, BULK.NULL);
      calls++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const rate = calls / ((performance.now() - start) / 1000);
  if (client.stats.retransmits > 0) console.log(`  (note: ${client.stats.retransmits} retransmissions)`);
  await client.close();
  return rate;
}

async function cClientRate(port: number): Promise<number> {
  const { stdout } = await run(libtirpcUdpClientBinary(), [String(port), 'bench', String(C_CALLS)]);
  const m = /calls=(\d+) seconds=([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`unexpected output from the C client: ${stdout}`);
  return Number(m[1]) / Number(m[2]);
}

const libtirpc = await startLibtirpcServer();
const ours = fork(new URL('./server.ts', import.meta.url), ['udp'], { execArgv: ['--import', 'tsx'] });
const ourPort = await new Promise<number>((resolve) => ours.once('message', (m: { port: number }) => resolve(m.port)));

const rows: [string, number, number][] = [];
for (const [label, measure] of [
  ['rpctls client, 1 in flight', (port: number) => ourClientRate(port, 1)],
  ['rpctls client, 32 in flight', (port: number) => ourClientRate(port, 32)],
  ['libtirpc C client, 1 in flight', cClientRate],
] as const) {
  const base = await measure(libtirpc.udpPort);
  const mine = await measure(ourPort);
  rows.push([label, mine, base]);
}
console.log(`NULL calls/s over UDP (loopback, ${DURATION_MS} ms per figure; C client ${C_CALLS} calls)`);
console.log('                                  rpctls server   libtirpc server   ratio');
for (const [label, mine, base] of rows) {
  console.log(`  ${label.padEnd(32)}${String(Math.round(mine)).padStart(13)}${String(Math.round(base)).padStart(18)}   ${(mine / base).toFixed(2)}`);
}
ours.kill();
await libtirpc.close();
