// The libtirpc C TCP bench client (libtirpc/tcp_client.c) through bench/libtirpc.ts, against both servers
// it is meant for: the libtirpc BULK server and `rpctls serve` (each its own process). Short runs: this
// checks that calls go through and failures are reported, not how fast.
import test from 'ava';

import { type BenchServer, cClientRun, startLibtirpcTcpServer, startRpctlsServe } from '../../bench/libtirpc.js';
import { BULK, libtirpcMissing } from './libtirpc.js';
import { toolsPresent } from './tools.js';

const MiB = 1024 * 1024;
const TEST_PROGRAM = { program: 0x20000001, version: 1 } as const;

interface Target {
  name: string;
  start: () => Promise<BenchServer>;
  program: number;
  version: number;
}

const targets: Target[] = [
  { name: 'libtirpc server', start: startLibtirpcTcpServer, program: BULK.program, version: BULK.version },
  { name: 'rpctls serve', start: () => startRpctlsServe(), ...TEST_PROGRAM },
];

const servers = new Map<string, Promise<BenchServer>>();
function server(target: Target): Promise<BenchServer> {
  let s = servers.get(target.name);
  if (s === undefined) {
    s = target.start();
    servers.set(target.name, s);
  }
  return s;
}
test.after.always(async () => {
  await Promise.all([...servers.values()].map(async (s) => (await s.catch(() => null))?.close()));
});

for (const target of targets) {
  test.serial(`${target.name}: NULL, 4 threads for 300 ms`, async (t) => {
    if (!toolsPresent(t, libtirpcMissing())) return;
    const s = await server(target);
    const r = await cClientRun({ port: s.port, program: target.program, version: target.version, mode: 'null', threads: 4, ms: 300, serverPid: s.pid });
    t.true(r.calls > 0);
    t.is(r.bytes, 0);
    t.true(r.seconds >= 0.3);
    t.true(r.callsPerSecond > 0);
    t.true(r.serverCpuMicrosPerCall !== undefined && r.serverCpuMicrosPerCall >= 0);
  });

  test.serial(`${target.name}: ECHO of 1 MiB, 2 threads for 300 ms`, async (t) => {
    if (!toolsPresent(t, libtirpcMissing())) return;
    const s = await server(target);
    const r = await cClientRun({ port: s.port, program: target.program, version: target.version, mode: 'echo', threads: 2, ms: 300, bytes: MiB });
    t.true(r.calls > 0);
    t.is(r.bytes, r.calls * MiB);
    t.true(r.mibPerSecond > 0);
    t.is(r.serverCpuMicrosPerCall, undefined);
  });

  test.serial(`${target.name}: a program it does not serve fails with PROG_UNAVAIL`, async (t) => {
    if (!toolsPresent(t, libtirpcMissing())) return;
    const s = await server(target);
    const error = await t.throwsAsync(cClientRun({ port: s.port, program: 0x20000999, version: 1, mode: 'null', threads: 1, ms: 300 }));
    const e = error as Error & { exitCode?: number; stderr?: string };
    t.is(e.exitCode, 1);
    t.regex(e.stderr ?? '', /^null: RPC: Program unavailable$/m);
    t.regex(e.message, /Program unavailable/);
  });
}
