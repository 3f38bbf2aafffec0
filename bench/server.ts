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
/** A NULL reply with its record mark: xid, REPLY, MSG_ACCEPTED, AUTH_NONE verifier, SUCCESS. */
const NULL_REPLY_BYTES = 4 + 24;

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
  // What a Node server holding the same connections costs: each one read, and answered with as many
  // bytes as a NULL reply (a socket that has written holds a little more than one that never did).
  const reply = Buffer.alloc(NULL_REPLY_BYTES);
  const onSocket = (socket: net.Socket): void => {
    socket.on('data', () => socket.write(reply));
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
    // The record so far as views of the chunks it came in (copied once, when it spans chunks).
    let pieces: Buffer[] = [];
    // Bytes of the fragment under way still to come; -1 while reading a mark (libtirpc sends a large
    // record in several fragments).
    let fragmentLeft = -1;
    let mark = 0;
    let markBytes = 0;
    let last = false;
    socket.on('data', (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length) {
        if (fragmentLeft < 0) {
          mark = mark * 256 + (chunk[at++] as number);
          if (++markBytes < 4) continue;
          last = mark >= 0x80000000;
          fragmentLeft = mark % 0x80000000;
          mark = markBytes = 0;
        } else {
          const take = Math.min(fragmentLeft, chunk.length - at);
          pieces.push(chunk.subarray(at, at + take));
          at += take;
          fragmentLeft -= take;
        }
        if (fragmentLeft === 0) {
          fragmentLeft = -1;
          if (last) {
            answerRaw(socket, pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces));
            pieces = [];
          }
        }
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
