// Connection churn: many short TLS connections (probe, handshake, NULL, close) and failed handshakes
// against one server; counts the RpcConnection and TlsStream objects still alive after GC (both ends)
// and the process RSS. Used by churn.test.ts (short) and `npm run hardening` (10,000 connections):
//   node --import tsx test/hostile/churn.ts <connections> [kernelTls: auto|off|require]
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import type { RpcConnection } from '../../src/rpc/connection.js';
import { createTlsClient, createTlsServer } from '../../src/rpc-tls/index.js';
import { makeCerts } from '../native/helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export interface ChurnResult {
  connections: number;
  failedHandshakes: number;
  succeeded: number;
  /** Objects still alive after the churn and a full GC. */
  liveConnections: number;
  liveStreams: number;
  /** RSS (MiB) after GC: at the end of the first 1,000 (or all, when fewer) and at the end. */
  rssAtFirstThousand: number;
  rssAtEnd: number;
  /** JS heap in use (MiB) after GC, at the same two points: tells JS growth from native growth. */
  heapAtFirstThousand: number;
  heapAtEnd: number;
  /** RSS (MiB, no forced GC) after each 1,000 connections: where it levels off. */
  rssByThousand: number[];
  offload: boolean;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  gc();
}

const mib = (): number => process.memoryUsage().rss / (1 << 20);
const heapMib = (): number => process.memoryUsage().heapUsed / (1 << 20);

/** `connections` clients, 16 at a time; every 10th presents the wrong CA and fails its handshake. */
export async function runChurn(connections: number, kernelTls: 'auto' | 'off' | 'require' = 'auto'): Promise<ChurnResult> {
  const certs = makeCerts();
  const PROG = 0x20000123;
  const live = { connections: 0, streams: 0 };
  const registry = new FinalizationRegistry<'connections' | 'streams'>((kind) => void live[kind]--);
  const track = (connection: RpcConnection | null | undefined): void => {
    if (!connection) return;
    live.connections++;
    registry.register(connection, 'connections');
    connection.once('secure', () => {
      if (connection.transport) {
        live.streams++;
        registry.register(connection.transport, 'streams');
      }
    });
  };
  const server = createTlsServer({ tls: { cert: certs.serverCert, key: certs.serverKey, kernelTls } });
  server.addProgram({ program: PROG, version: 1, procedures: {} });
  server.on('connection', track);
  server.on('connectionError', () => undefined);
  const { port } = await server.listen({ host: '127.0.0.1' });
  const good = { ca: certs.ca, servername: 'localhost', kernelTls };
  const bad = { ca: certs.otherCa, servername: 'localhost', kernelTls };
  let failedHandshakes = 0;
  let succeeded = 0;
  let offload = false;
  let rssAtFirstThousand = 0;
  let heapAtFirstThousand = 0;
  const rssByThousand: number[] = [];
  const one = async (i: number): Promise<void> => {
    const failing = i % 10 === 9;
    const client = createTlsClient({ host: '127.0.0.1', port, probe: { program: PROG, version: 1 }, tls: failing ? bad : good, timeout: 10_000 });
    client.on('connect', (connection: RpcConnection) => {
      track(connection);
      if (connection.transport) {
        live.streams++;
        registry.register(connection.transport, 'streams');
      }
      offload ||= Boolean((connection.security as { offload?: { tx: boolean } } | null)?.offload?.tx);
    });
    try {
      await client.call(PROG, 1, 0);
      succeeded++;
    } catch {
      failedHandshakes++;
    } finally {
      await client.close();
    }
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < connections) {
      const i = next++;
      await one(i);
      if ((i + 1) % 1000 === 0) rssByThousand.push(Math.round(mib()));
      if (i === Math.min(connections, 1000) - 1) {
        await settle();
        rssAtFirstThousand = mib();
        heapAtFirstThousand = heapMib();
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await server.close();
  await settle();
  return {
    connections,
    failedHandshakes,
    succeeded,
    liveConnections: live.connections,
    liveStreams: live.streams,
    rssAtFirstThousand: rssAtFirstThousand || mib(),
    rssAtEnd: mib(),
    heapAtFirstThousand: heapAtFirstThousand || heapMib(),
    heapAtEnd: heapMib(),
    rssByThousand,
    offload,
  };
}

export function describeChurn(r: ChurnResult): string {
  return (
    `churn ${r.connections} TLS connections (${r.failedHandshakes} failed handshakes, ${r.succeeded} ok, offload ${r.offload}): ` +
    `alive after GC ${r.liveConnections} RpcConnection, ${r.liveStreams} TlsStream; ` +
    `RSS ${r.rssAtFirstThousand.toFixed(1)} MiB after the first 1,000, ${r.rssAtEnd.toFixed(1)} MiB at the end ` +
    `(JS heap ${r.heapAtFirstThousand.toFixed(1)} -> ${r.heapAtEnd.toFixed(1)} MiB)` +
    (r.rssByThousand.length > 1 ? `; RSS by thousand: ${r.rssByThousand.join(' ')} MiB` : '')
  );
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() as string)) {
  const n = Number(process.argv[2] ?? 10_000);
  const mode = (process.argv[3] ?? 'auto') as 'auto' | 'off' | 'require';
  const r = await runChurn(n, mode);
  console.log(describeChurn(r));
  const growth = (r.rssAtEnd - r.rssAtFirstThousand) / r.rssAtFirstThousand;
  const ok = r.liveConnections <= 20 && r.liveStreams <= 20 && (n <= 1000 || growth < 0.1);
  console.log(`${ok ? 'PASS' : 'FAIL'} live objects <= 20 and RSS growth ${(growth * 100).toFixed(1)}% (limit 10% past 1,000)`);
  process.exit(ok ? 0 : 1);
}
