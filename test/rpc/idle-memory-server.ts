// The server side of idle-memory.test.ts, alone in its process so that only its heap is measured:
// `net` (a node:net server that answers each read with as many bytes as a NULL reply: a socket that has
// written holds a little more than one that never did) or `rpc` (an RpcServer). Answers { measure: true } with
// its heap after a full GC.
import net from 'node:net';
import { RpcServer } from '../../src/rpc/server.js';

function heldMemory(): number {
  const gc = (globalThis as { gc?: () => void }).gc as () => void;
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

let port: number;
if (process.argv[2] === 'rpc') {
  const server = new RpcServer({ maxConnections: 10_000 });
  server.addProgram({ program: 0x20000001, version: 1, procedures: {} });
  ({ port } = await server.listen({ host: '127.0.0.1' }));
} else {
  const reply = Buffer.alloc(28);
  const server = net.createServer((socket) => {
    socket.on('data', () => socket.write(reply));
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = (server.address() as net.AddressInfo).port;
}
process.on('message', () => process.send!({ held: heldMemory() }));
process.send!({ port });
