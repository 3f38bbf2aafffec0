// Connection setup latency for the TLS benches: RPC-with-TLS (TCP connect + AUTH_TLS probe + TLS 1.3
// handshake + the first NULL reply) against node:tls (connect + handshake + one small exchange), median of
// `count` fresh connections after 10 not counted, each side sharing one context across its connections.
import { once } from 'node:events';
import type net from 'node:net';
import tls from 'node:tls';

import { RpcClient } from '../dist/rpc/client.js';
import { createTlsServer, rpcTlsUpgrade, tlsInfoOf } from '../dist/rpc-tls/index.js';

const PROGRAM = 0x20000001;
const WARM_UP = 10;

export interface SetupOptions {
  certs: { ca: string; cert: string; key: string };
  count: number;
  /** The server has `ca` (it could verify client certificates; none is sent here). */
  serverCa?: boolean;
  kernelTls?: 'off' | 'auto';
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Median ms to the first NULL reply over RPC-with-TLS, and whether the records were kernel or userspace. */
export async function rpcTlsSetup(o: SetupOptions): Promise<{ ms: number; offload: string }> {
  const kernelTls = o.kernelTls ?? 'off';
  const server = createTlsServer({ tls: { cert: o.certs.cert, key: o.certs.key, kernelTls, ...(o.serverCa ? { ca: o.certs.ca } : {}) } });
  server.addProgram({ program: PROGRAM, version: 1, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1' });
  // One upgrade function: one client TlsContext shared by every connection, as node:tls shares its context.
  const upgrade = rpcTlsUpgrade({ ca: o.certs.ca, servername: 'localhost', kernelTls }, { program: PROGRAM, version: 1 });
  const times: number[] = [];
  let offload = '';
  try {
    for (let i = 0; i < o.count + WARM_UP; i++) {
      const started = performance.now();
      const client = new RpcClient({ host: '127.0.0.1', port, upgrade, reconnect: false });
      await client.call(PROGRAM, 1, 0);
      if (i >= WARM_UP) times.push(performance.now() - started);
      if (!offload) {
        const info = tlsInfoOf(client.connection!);
        offload = info?.offload.tx && info.offload.rx ? 'kernel' : 'userspace';
      }
      await client.close();
    }
  } finally {
    await server.close();
  }
  return { ms: median(times), offload };
}

/** Median ms from tls.connect() to the answer of one small exchange (44 bytes out, 28 back). */
export async function nodeTlsSetup(o: SetupOptions): Promise<number> {
  const server = tls.createServer({ cert: o.certs.cert, key: o.certs.key, minVersion: 'TLSv1.3', ...(o.serverCa ? { ca: o.certs.ca } : {}) }, (socket) => {
    socket.once('data', () => socket.write(Buffer.alloc(28, 1)));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const context = tls.createSecureContext({ ca: o.certs.ca, minVersion: 'TLSv1.3' });
  const times: number[] = [];
  try {
    for (let i = 0; i < o.count + WARM_UP; i++) {
      const started = performance.now();
      const socket = tls.connect({ host: '127.0.0.1', port, secureContext: context, servername: 'localhost' });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => socket.write(Buffer.alloc(44, 0x80)));
        socket.once('data', () => resolve());
        socket.once('error', reject);
      });
      if (i >= WARM_UP) times.push(performance.now() - started);
      socket.destroy();
    }
  } finally {
    server.close();
  }
  return median(times);
}
