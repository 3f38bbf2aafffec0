// Load and faults-during-load over RPC-with-TLS: one server process (load-server.ts), N TLS connections
// from this process with M calls in flight each, every reply checked against its own call's payload.
// Used by load.test.ts (short) and `npm run hardening` (long: node --import tsx test/hostile/load.ts ...).
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { RpcClient } from '../../src/rpc/client.js';
import { createTlsClient } from '../../src/rpc-tls/index.js';
import { makeCerts } from '../native/helpers.js';

const PROG = 0x20000099;
const SERVER = fileURLToPath(new URL('./load-server.ts', import.meta.url));

export interface Sample {
  rss: number;
  fds: number;
  connections: number;
}

export interface LoadOptions {
  connections: number;
  inFlight: number;
  seconds: number;
  /** Kill the server (SIGKILL) at this fraction of the run and restart it on the same port. */
  killAt?: number;
  kernelTls?: 'auto' | 'off' | 'require';
  log?: (line: string) => void;
}

export interface LoadResult {
  calls: number;
  ok: number;
  /** Replies whose bytes were not their call's payload (misrouted or corrupted). */
  wrong: number;
  /** Replies no call was waiting for (duplicates, unknown XIDs), summed over client connections. */
  unmatched: number;
  /** Calls started after the restarted server was listening that succeeded. */
  okAfterRestart: number;
  /** Calls that failed, by error code (only expected around a server kill). */
  failed: Record<string, number>;
  /** Calls that failed without a code (must be 0). */
  uncoded: number;
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** idleAfterMs: from the clients' close until the server held no connection (15 s at most). */
  server: { first: Sample; peak: Sample; warm: Sample; end: Sample; idle: Sample; idleAfterMs: number; samples: Sample[] };
  client: { fdsBefore: number; fdsAfter: number; resourcesBefore: number; resourcesAfter: number };
  reconnects: number;
  offload: boolean | null;
}

interface ServerHandle {
  child: ChildProcess;
  port: number;
  first: Sample;
  /** Null while the server is down (killed). */
  sample(kind?: 'sample' | 'gc'): Promise<Sample>;
}

async function startServer(certDir: string, port: number, kernelTls: string): Promise<ServerHandle> {
  const child = fork(SERVER, [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: { ...process.env, LOAD_CERT_DIR: certDir, LOAD_PORT: String(port), LOAD_KERNEL_TLS: kernelTls },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const first = await new Promise<{ port: number; sample: Sample }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { port: number; sample: Sample }));
    child.once('exit', (code) => reject(new Error(`load server exited ${code}`)));
  });
  return {
    child,
    port: first.port,
    first: first.sample,
    sample: (kind = 'sample') =>
      new Promise<Sample | null>((resolve) => {
        if (!child.connected) return resolve(null);
        child.once('message', (m) => resolve((m as { sample: Sample }).sample));
        child.send({ type: kind }, (error) => error && resolve(null));
      }) as Promise<Sample>,
  };
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;
const resourceCount = (): number => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const log = options.log ?? (() => undefined);
  const certs = makeCerts();
  const kernelTls = options.kernelTls ?? 'auto';
  let server = await startServer(certs.dir, 0, kernelTls);
  const port = server.port;
  const fdsBefore = fdCount();
  const resourcesBefore = resourceCount();

  const clients: RpcClient[] = [];
  let reconnects = -options.connections;
  for (let i = 0; i < options.connections; i++) {
    const client = createTlsClient({
      host: '127.0.0.1',
      port,
      timeout: 30_000,
      maxPendingCalls: options.inFlight,
      reconnect: { initialDelay: 50, maxDelay: 500, maxAttempts: 100 },
      probe: { program: PROG, version: 1 },
      tls: { ca: certs.ca, servername: 'localhost', kernelTls, handshakeTimeout: 30_000 },
    });
    client.on('connect', () => reconnects++);
    clients.push(client);
  }
  // Connect in batches so 1000 handshakes do not all time out behind each other.
  for (let i = 0; i < clients.length; i += 100) await Promise.all(clients.slice(i, i + 100).map((c) => c.connect()));
  const offload = clients[0]!.connection?.security ? Boolean((clients[0]!.connection.security as { offload: { tx: boolean } }).offload.tx) : null;
  log(`load: ${options.connections} TLS connections up (offload ${offload}); ${options.inFlight} calls in flight each for ${options.seconds} s`);

  let latencies = new Float64Array(1 << 20);
  let count = 0;
  let ok = 0;
  let okAfterRestart = 0;
  let restartedAt = Infinity;
  let wrong = 0;
  let uncoded = 0;
  const failed: Record<string, number> = {};
  const start = Date.now();
  const deadline = start + options.seconds * 1000;
  const salt = randomBytes(8);

  const worker = async (c: number, w: number): Promise<void> => {
    const client = clients[c]!;
    for (let seq = 0; Date.now() < deadline; seq++) {
      // Unique per call: connection, worker, sequence, and a random-length tail.
      const payload = Buffer.alloc(24 + ((seq * 7 + w) % 200));
      payload.writeUInt32BE(c, 0);
      payload.writeUInt32BE(w, 4);
      payload.writeUInt32BE(seq, 8);
      salt.copy(payload, 12);
      payload.fill(seq & 0xff, 24);
      const t0 = performance.now();
      try {
        const reply = await client.call(PROG, 1, 1, payload);
        if (reply.equals(payload)) {
          ok++;
          if (t0 > restartedAt) okAfterRestart++;
        } else wrong++;
        if (count === latencies.length) {
          const bigger = new Float64Array(latencies.length * 2);
          bigger.set(latencies);
          latencies = bigger;
        }
        latencies[count++] = performance.now() - t0;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === undefined) uncoded++;
        failed[code ?? String(error)] = (failed[code ?? String(error)] ?? 0) + 1;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };

  const samples: Sample[] = [];
  let warm: Sample | null = null;
  let killed = false;
  const sampler = setInterval(() => {
    void server.sample().then((s) => {
      if (s === null) return;
      samples.push(s);
      if (!warm && Date.now() - start > options.seconds * 250) warm = s;
    });
    if (options.killAt !== undefined && !killed && Date.now() - start > options.seconds * 1000 * options.killAt) {
      killed = true;
      log('load: killing the server (SIGKILL) and restarting it on the same port');
      server.child.kill('SIGKILL');
      setTimeout(() => {
        void startServer(certs.dir, port, kernelTls).then((s) => {
          server = s;
          restartedAt = performance.now();
          log('load: server restarted');
        });
      }, 300);
    }
  }, 500);

  const workers: Promise<void>[] = [];
  for (let c = 0; c < clients.length; c++) for (let w = 0; w < options.inFlight; w++) workers.push(worker(c, w));
  await Promise.all(workers);
  clearInterval(sampler);
  const elapsed = (Date.now() - start) / 1000;

  let unmatched = 0;
  for (const client of clients) unmatched += client.connection?.stats.unmatchedReplies ?? 0;
  const end = await server.sample();
  await Promise.all(clients.map((c) => c.close()));
  // Let the server see the closes (it may still be working off the last calls), then sample it idle.
  const closedAt = performance.now();
  let idle = await server.sample();
  while (idle.connections > 0 && performance.now() - closedAt < 15_000) {
    await new Promise((r) => setTimeout(r, 250));
    idle = await server.sample();
  }
  const idleAfterMs = Math.round(performance.now() - closedAt);
  idle = await server.sample('gc');
  server.child.kill();
  await new Promise((r) => setTimeout(r, 200));
  const fdsAfter = fdCount();
  const resourcesAfter = resourceCount();

  const sorted = latencies.slice(0, count).sort();
  const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a), server.first);
  return {
    calls: ok + wrong + Object.values(failed).reduce((a, b) => a + b, 0),
    ok,
    okAfterRestart,
    wrong,
    unmatched,
    failed,
    uncoded,
    callsPerSecond: Math.round(ok / elapsed),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    server: { first: server.first, peak, warm: warm ?? end, end, idle, idleAfterMs, samples },
    client: { fdsBefore, fdsAfter, resourcesBefore, resourcesAfter },
    reconnects,
    offload,
  };
}

export function describe(r: LoadResult): string {
  const mb = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;
  return [
    `calls ${r.calls}: ok ${r.ok} (after a restart ${r.okAfterRestart}), wrong ${r.wrong}, unmatched ${r.unmatched}, failed ${JSON.stringify(r.failed)} (uncoded ${r.uncoded})`,
    `throughput ${r.callsPerSecond} calls/s, latency p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`,
    `server RSS start ${mb(r.server.first.rss)}, at 25% ${mb(r.server.warm.rss)}, peak ${mb(r.server.peak.rss)}, end ${mb(r.server.end.rss)}, idle after close ${mb(r.server.idle.rss)}`,
    `server fds start ${r.server.first.fds}, under load ${r.server.end.fds}, idle after close ${r.server.idle.fds} (connections ${r.server.idle.connections}, ${r.server.idleAfterMs} ms after the clients closed)`,
    `client fds ${r.client.fdsBefore} -> ${r.client.fdsAfter}, active resources ${r.client.resourcesBefore} -> ${r.client.resourcesAfter}, reconnects ${r.reconnects}, offload ${r.offload}`,
  ].join('\n');
}

// CLI for `npm run hardening`: node --import tsx test/hostile/load.ts CONNECTIONS IN_FLIGHT SECONDS [killAt]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [connections, inFlight, seconds, killAt] = process.argv.slice(2).map(Number);
  const result = await runLoad({
    connections: connections ?? 1000,
    inFlight: inFlight ?? 64,
    seconds: seconds ?? 60,
    ...(killAt ? { killAt } : {}),
    log: (l) => console.log(l),
  });
  console.log(describe(result));
  console.log(`LOAD_JSON ${JSON.stringify({ ...result, server: { ...result.server, samples: result.server.samples.length } })}`);
  const bad = result.wrong > 0 || result.unmatched > 0 || result.uncoded > 0 || (killAt ? false : Object.keys(result.failed).length > 0);
  process.exit(bad ? 1 : 0);
}
