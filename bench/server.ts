// A server process for bench/run.ts: `rpc` answers NULL with rpctls; `echo` is a raw TCP server that
// answers each request of a known size with a reply of a known size (the same bytes RPC would move).
// For bench/udp.ts, `udp` answers NULL of program BULK (0x20000777) over UDP and TCP.
import net from 'node:net';
import { RpcServer } from '../src/rpc/server.js';

const [mode, requestSize, replySize] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];

if (mode === 'rpc') {
  const server = new RpcServer({ maxIncomingCalls: 1024 });
  server.addProgram({ program: 0x20000001, version: 1, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1' });
  process.send!({ port });
} else if (mode === 'udp') {
  const server = new RpcServer();
  server.addProgram({ program: 0x20000777, version: 1, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1', udp: true });
  process.send!({ port });
} else {
  const reply = Buffer.alloc(replySize, 1);
  const server = net.createServer({ noDelay: true }, (socket) => {
    let pending = 0;
    socket.on('data', (chunk) => {
      pending += chunk.length;
      const n = Math.floor(pending / requestSize);
      pending -= n * requestSize;
      if (n === 1) socket.write(reply);
      else if (n > 1) socket.write(Buffer.concat(new Array(n).fill(reply)));
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as net.AddressInfo).port }));
}
