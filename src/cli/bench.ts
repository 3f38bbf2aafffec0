/**
 * `rpctls bench`: SINK calls of --size bytes over loopback, plain and RPC-with-TLS side by side:
 * calls/s, MB/s (payload, client to server), CPU seconds per GB (process.cpuUsage, client and server
 * apart: the server runs in a child process) and the offload state.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { RpcClient } from '../rpc/client.js';
import { procedure } from '../rpc/program.js';
import * as xdr from '../xdr/codec.js';
import { createTlsClient, tlsInfoOf } from '../rpc-tls/index.js';
import { accessors, type FlagSpec, parseArgs, UsageError } from './args.js';
import { type BenchServerStart, startBenchServer } from './bench-server.js';
import { createDemoPki, type DemoPki } from './certs.js';
import { Exit, kernelRekeyCounters, printError, TEST_PROGRAM, TEST_VERSION, TestProc, usageExit } from './common.js';
import { kernelRekeyText, offloadText, round3, style, table } from './render.js';

export const BENCH_USAGE = `usage: rpctls bench [options]

Runs a server (in a child process) and a client on loopback and measures SINK calls (opaque<size>
in, byte count out), plain and over RPC-with-TLS with throwaway certificates.

  --mode plain|tls|all   which to run (default all: plain and tls side by side)
  --size <bytes>         payload per call (default 65536, at most 1048576)
  --inflight <n>         calls outstanding at once (default 16)
  --duration <s>         seconds per mode (default 3; decimals allowed)
  --json                 one JSON object

A progress line is shown while it runs when stderr is a terminal. Exit status: 0 done; 1 a mode
failed; 2 usage.
`;

const FLAGS: Record<string, FlagSpec> = {
  mode: { type: 'string', value: 'plain|tls|all' },
  size: { type: 'int', min: 0, max: 1 << 20, value: '<bytes>' },
  inflight: { type: 'int', min: 1, max: 1024, value: '<n>' },
  duration: { type: 'number', min: 0.1, max: 3600, value: '<s>' },
  json: { type: 'boolean' },
};

export interface BenchRow {
  mode: 'plain' | 'tls';
  calls: number;
  errors: number;
  seconds: number;
  callsPerSec: number;
  mbPerSec: number;
  /** CPU seconds per GB of payload; server null when it ran in this process (then client is both). */
  cpuSecPerGb: { client: number; server: number | null };
  offload: { tx: boolean; rx: boolean; reason: string | null; rekey?: boolean };
}

export interface BenchOptions {
  mode: 'plain' | 'tls';
  size: number;
  inflight: number;
  durationMs: number;
  /** 'child' (honest CPU split) or 'in-process' (quicker start; CPU is client+server together). */
  server: 'child' | 'in-process';
  pki?: DemoPki;
  onProgress?: (done: { calls: number; bytes: number; elapsedMs: number }) => void;
}

const SINK = procedure(TEST_PROGRAM, TEST_VERSION, TestProc.SINK, xdr.opaque(), xdr.uint);

interface ServerHandle {
  port: number;
  cpu(): Promise<number | null>;
  close(): Promise<void>;
}

function childServer(start: BenchServerStart): Promise<ServerHandle> {
  // Same extension as this file: .js from dist, .ts when run through tsx.
  const path = fileURLToPath(new URL(`./bench-server${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
  const child: ChildProcess = fork(path, [], { env: { ...process.env, RPCTLS_BENCH_CHILD: '1' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const next = <T>(key: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>): void => {
        if (key in m) {
          cleanup();
          resolve(m[key] as T);
        }
      };
      const onExit = (code: number | null): void => {
        cleanup();
        reject(new Error(`bench server exited (status ${code})`));
      };
      const cleanup = (): void => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  const port = next<number>('port');
  child.send(start);
  return port.then((p) => ({
    port: p,
    cpu: () => {
      const cpu = next<number>('cpu');
      child.send({ cmd: 'cpu' });
      return cpu;
    },
    close: async () => {
      const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
      child.send({ cmd: 'exit' });
      await exited;
    },
  }));
}

async function inProcessServer(start: BenchServerStart): Promise<ServerHandle> {
  const { server, port } = await startBenchServer(start);
  return { port, cpu: async () => null, close: () => server.close() };
}

/** One mode: server up, client connected, `durationMs` of SINK calls, figures out. */
export async function benchMode(o: BenchOptions): Promise<BenchRow> {
  const pki = o.mode === 'tls' ? (o.pki ?? createDemoPki()) : undefined;
  const start: BenchServerStart = pki ? { mode: 'tls', cert: pki.server.cert, key: pki.server.key } : { mode: 'plain' };
  const server = await (o.server === 'child' ? childServer(start) : inProcessServer(start));
  const client = pki
    ? createTlsClient({
        host: '127.0.0.1', port: server.port, timeout: 30_000,
        probe: { program: TEST_PROGRAM, version: TEST_VERSION },
        tls: { ca: pki.ca.cert, servername: 'localhost' },
      })
    : new RpcClient({ host: '127.0.0.1', port: server.port, timeout: 30_000 });
  try {
    const connection = await client.connect();
    const info = tlsInfoOf(connection);
    const payload = Buffer.alloc(o.size, 0x5a);
    // Warm up (JIT, buffers) before the clock starts.
    await Promise.all(Array.from({ length: o.inflight }, () => client.request(SINK, payload)));
    const serverCpu0 = await server.cpu();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let calls = 0;
    let errors = 0;
    let stop = false;
    const timer = setTimeout(() => (stop = true), o.durationMs);
    const progress = o.onProgress
      ? setInterval(() => o.onProgress?.({ calls, bytes: calls * o.size, elapsedMs: performance.now() - t0 }), 200)
      : null;
    const worker = async (): Promise<void> => {
      while (!stop) {
        try {
          const n = await client.request(SINK, payload);
          if (n !== o.size) throw new Error(`SINK counted ${n} bytes, sent ${o.size}`);
          calls++;
        } catch (error) {
          errors++;
          if (errors === 1) printError(error);
          if (errors > 100) stop = true;
        }
      }
    };
    await Promise.all(Array.from({ length: o.inflight }, worker));
    clearTimeout(timer);
    if (progress) clearInterval(progress);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const serverCpu1 = await server.cpu();
    const gb = (calls * o.size) / 1e9;
    const perGb = (us: number): number => (gb > 0 ? round3(us / 1e6 / gb) : 0);
    return {
      mode: o.mode,
      calls,
      errors,
      seconds: round3(seconds),
      callsPerSec: Math.round(calls / seconds),
      mbPerSec: round3((calls * o.size) / 1e6 / seconds),
      cpuSecPerGb: {
        client: perGb(cpu.user + cpu.system),
        server: serverCpu0 === null || serverCpu1 === null ? null : perGb(serverCpu1 - serverCpu0),
      },
      offload: info ? { ...info.offload } : { tx: false, rx: false, reason: 'plain RPC' },
    };
  } finally {
    await client.close().catch(() => client.destroy());
    await server.close();
  }
}

/** The side-by-side table. */
export function benchTable(rows: readonly BenchRow[]): string {
  const header = ['mode', 'calls/s', 'MB/s', 'CPU s/GB client', 'CPU s/GB server', 'offload'];
  const body = rows.map((r) => [
    r.mode,
    String(r.callsPerSec),
    r.mbPerSec.toFixed(1),
    r.cpuSecPerGb.client.toFixed(2),
    r.cpuSecPerGb.server === null ? '(in client)' : r.cpuSecPerGb.server.toFixed(2),
    r.mode === 'plain' ? '-' : offloadText(r.offload),
  ]);
  return table([header, ...body], [false, true, true, true, true, false]);
}

export async function runBench(argv: readonly string[]): Promise<number> {
  let o;
  try {
    const parsed = parseArgs('bench', argv, FLAGS, { max: 0 });
    if (parsed.help) {
      process.stdout.write(BENCH_USAGE);
      return Exit.OK;
    }
    const a = accessors(parsed);
    const mode = a.str('mode') ?? 'all';
    if (mode !== 'plain' && mode !== 'tls' && mode !== 'all') {
      throw new UsageError(`rpctls bench: --mode must be plain, tls or all; got ${JSON.stringify(mode)}`);
    }
    o = {
      modes: mode === 'all' ? (['plain', 'tls'] as const) : ([mode] as const),
      size: a.num('size', 65536),
      inflight: a.num('inflight', 16),
      durationMs: a.num('duration', 3) * 1000,
      json: a.bool('json'),
    };
  } catch (error) {
    return usageExit(error);
  }
  const tty = process.stderr.isTTY === true;
  const s = style(process.stdout);
  const pki = o.modes.includes('tls') ? createDemoPki() : undefined;
  const rows: BenchRow[] = [];
  let status: number = Exit.OK;
  for (const mode of o.modes) {
    try {
      const bench: BenchOptions = { mode, size: o.size, inflight: o.inflight, durationMs: o.durationMs, server: 'child' };
      if (pki) bench.pki = pki;
      if (tty) {
        bench.onProgress = (p) =>
          process.stderr.write(`\r\x1b[K  ${mode.padEnd(5)} ${(p.elapsedMs / 1000).toFixed(1)}s/${(o.durationMs / 1000).toFixed(1)}s  ${p.calls} calls  ${(p.bytes / 1e6 / (p.elapsedMs / 1000 || 1)).toFixed(1)} MB/s`);
      }
      const row = await benchMode(bench);
      if (tty) process.stderr.write('\r\x1b[K');
      rows.push(row);
      if (row.errors > 0) status = Exit.FAILURE;
    } catch (error) {
      if (tty) process.stderr.write('\r\x1b[K');
      process.stderr.write(`rpctls bench: mode ${mode} failed\n`);
      printError(error);
      status = Exit.FAILURE;
    }
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ size: o.size, inflight: o.inflight, durationS: o.durationMs / 1000, server: 'child process', results: rows }, null, 2)}\n`);
  } else {
    process.stdout.write(`${s.bold(`rpctls bench: SINK ${o.size} bytes, ${o.inflight} in flight, ${o.durationMs / 1000} s per mode, server in a child process`)}\n`);
    process.stdout.write(`${benchTable(rows)}\n`);
    // Kernel TLS >= 6.14: how many rekeys this host's sockets have done, for comparison across runs.
    const rekey = kernelRekeyText(kernelRekeyCounters());
    if (rekey && rows.some((r) => r.offload.tx)) process.stdout.write(`kernel TLS rekey counters (all sockets): ${rekey}\n`);
  }
  return status;
}
