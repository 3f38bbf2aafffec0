// A server process for the benches, one mode per run:
//   rpc                  rpctls answering NULL (program 0x20000001 v1)
//   echo <req> <rep>     raw TCP: answers each request of <req> bytes with <rep> bytes; every request that a
//                        data event completes is answered in one write (the Node limit for this load)
//   raw-rpc              plain node:net answering NULL (procedure 0) and ECHO (procedure 1: the arguments back)
//                        of any program: what Node code does at least for the C client rows (the Node limit
//                        there)
//   udp                  rpctls answering NULL of program BULK (0x20000777) over UDP and TCP (bench/udp.ts)
//   idle-rpc | idle-rpc-tls | idle-rpc-tls-ca | idle-net | idle-tls
//                        servers that hold idle connections, for RSS per connection (bench/run.ts). The
//                        parent sends {cert, key, ca} first for the TLS ones, and {rss: true} to get
//                        {rss} back after a full GC (run with --expose-gc).
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { RpcServer } from '../dist/rpc/server.js';
import { createTlsServer } from '../dist/rpc-tls/index.js';

// A profiled server (--cpu-prof) must exit normally to write its profile.
process.on('SIGINT', () => process.exit(0));

const [mode, requestSize, replySize] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const TEST_PROGRAM = 0x20000001;

function rssBytes(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1]) * 1024;
}

function answerRss(): void {
  process.on('message', (message: { rss?: boolean }) => {
    if (message.rss !== true) return;
    for (let i = 0; i < 3; i++) (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    process.send!({ rss: rssBytes(), heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
  });
}

interface Certs {
  cert: string;
  key: string;
  ca: string;
}

const certs = (): Promise<Certs> => new Promise((resolve) => process.once('message', (m: Certs) => resolve(m)));

if (mode === 'rpc') {
  const server = new RpcServer({ maxIncomingCalls: 1024 });
  server.addProgram({ program: TEST_PROGRAM, version: 1, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1' });
  process.send!({ port });
} else if (mode === 'udp') {
  const server = new RpcServer();
  server.addProgram({ program: 0x20000777, version: 1, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1', udp: true });
  process.send!({ port });
} else if (mode === 'idle-rpc' || mode === 'idle-rpc-tls' || mode === 'idle-rpc-tls-ca') {
  const c = mode === 'idle-rpc' ? null : await certs();
  const server =
    c === null
      ? new RpcServer({ maxConnections: 100_000 })
      : createTlsServer({ maxConnections: 100_000, tls: { cert: c.cert, key: c.key, ...(mode === 'idle-rpc-tls-ca' ? { ca: c.ca } : {}), kernelTls: 'off' } });
  server.addProgram({ program: TEST_PROGRAM, version: 1, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1' });
  answerRss();
  process.send!({ port, rss: rssBytes() });
} else if (mode === 'idle-net' || mode === 'idle-tls') {
  // What a Node server holding the same connections costs: each one read, its bytes answered.
  const onSocket = (socket: net.Socket): void => {
    socket.on('data', () => {});
    socket.on('error', () => {});
  };
  let server: net.Server;
  if (mode === 'idle-tls') {
    const c = await certs();
    server = tls.createServer({ cert: c.cert, key: c.key, minVersion: 'TLSv1.3' }, onSocket);
  } else server = net.createServer(onSocket);
  server.maxConnections = 100_000;
  server.listen(0, '127.0.0.1', () => {
    answerRss();
    process.send!({ port: (server.address() as net.AddressInfo).port, rss: rssBytes() });
  });
} else if (mode === 'raw-rpc') {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let chunks: Buffer[] = [];
    let have = 0;
    // Bytes of the fragment under way with its 4-byte mark; -1 until the mark is in.
    let need = -1;
    let last = false;
    // The record's fragments so far (libtirpc sends a large record in several).
    let fragments: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      for (;;) {
        if (need < 0) {
          if (have < 4) return;
          if ((chunks[0] as Buffer).length < 4) chunks = [Buffer.concat(chunks, have)];
          const mark = (chunks[0] as Buffer).readUInt32BE(0);
          last = mark >= 0x80000000;
          need = 4 + (mark & 0x7fffffff);
        }
        if (have < need) return;
        // Every chunk but the last held less than the fragment, so what follows it lies in the last chunk.
        const tail = chunks[chunks.length - 1] as Buffer;
        const rest = tail.subarray(tail.length - (have - need));
        const all = chunks.length === 1 ? tail : Buffer.concat(chunks, need);
        fragments.push(all.subarray(4, need));
        if (last) {
          answerRaw(socket, fragments.length === 1 ? (fragments[0] as Buffer) : Buffer.concat(fragments));
          fragments = [];
        }
        chunks = rest.length > 0 ? [rest] : [];
        have = rest.length;
        need = -1;
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as net.AddressInfo).port }));
} else {
  const reply = Buffer.alloc(replySize, 1);
  const replies = Buffer.alloc(replySize * 1024, 1);
  const server = net.createServer({ noDelay: true }, (socket) => {
    let pending = 0;
    socket.on('data', (chunk) => {
      pending += chunk.length;
      const n = Math.floor(pending / requestSize);
      pending -= n * requestSize;
      if (n === 1) socket.write(reply);
      else if (n > 1) socket.write(n <= 1024 ? replies.subarray(0, n * replySize) : Buffer.concat(new Array(n).fill(reply)));
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as net.AddressInfo).port }));
}

/** One reply (mark, xid, REPLY, MSG_ACCEPTED, AUTH_NONE verifier, SUCCESS, then ECHO's arguments as they came). */
function answerRaw(socket: net.Socket, call: Buffer): void {
  const credLength = call.readUInt32BE(28);
  let at = 32 + ((credLength + 3) & ~3);
  at += 8 + ((call.readUInt32BE(at + 4) + 3) & ~3);
  const results = call.readUInt32BE(20) === 1 ? call.subarray(at) : call.subarray(0, 0);
  const head = Buffer.allocUnsafe(28);
  head.writeUInt32BE((0x80000000 | (24 + results.length)) >>> 0, 0);
  head.writeUInt32BE(call.readUInt32BE(0), 4);
  head.writeUInt32BE(1, 8);
  head.fill(0, 12);
  if (results.length === 0) {
    socket.write(head);
  } else if (results.length <= 1024) {
    socket.write(Buffer.concat([head, results]));
  } else {
    socket.cork();
    socket.write(head);
    socket.write(results);
    socket.uncork();
  }
}
