// The server side of the load runs (test/hostile/load.ts), in its own process so that its RSS and fd
// count are its own. Started with fork(); talks over IPC: sends { port } once listening and
// { sample: { rss, fds, connections } } on request.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { createTlsServer } from '../../src/rpc-tls/index.js';

const dir = process.env.LOAD_CERT_DIR as string;
const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
const server = createTlsServer({
  maxConnections: 100_000,
  tls: { cert: read('server.pem'), key: read('server.key'), ca: read('ca.pem'), kernelTls: (process.env.LOAD_KERNEL_TLS as 'auto') ?? 'auto' },
});
server.addProgram({ program: 0x20000099, version: 1, procedures: { 1: (args: Buffer) => args } });
server.on('error', () => undefined);
const { port } = await server.listen({ host: '127.0.0.1', port: Number(process.env.LOAD_PORT ?? 0) });

const sample = (): { rss: number; fds: number; connections: number } => ({
  rss: process.memoryUsage().rss,
  fds: readdirSync('/proc/self/fd').length,
  connections: server.connections.size,
});
process.on('message', (m: { type: string }) => {
  if (m.type === 'sample') process.send!({ sample: sample() });
  if (m.type === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send!({ sample: sample() });
  }
});
process.send!({ port, sample: sample() });
