// Memory per byte of trickled input: a record announced as 1 MiB and received one byte per read must not
// cost hundreds of bytes of memory per byte held (each 1-byte read is its own allocation and Buffer):
// server and client, plain and RPC-with-TLS (userspace on the host, kernel TLS in the UML stage).
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';

import type { Duplex } from 'node:stream';

import { RecordDecoder } from '../../src/transport/record-marking.js';
import { RpcClient } from '../../src/rpc/client.js';
import type { CallContext } from '../../src/rpc/program.js';
import { RpcServer } from '../../src/rpc/server.js';
import { until } from '../helpers/net.js';
import { PROG, VERS, expectKtls, startTlsServer, tlsClient } from '../tls/helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap plus ArrayBuffer memory after a full collection. */
function heldMemory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const MiB = 1 << 20;

test.serial('H68 1 MiB record trickled 1 byte per read into the decoder: memory held <= 2x its bytes + 64 KiB, then exactly the record', (t) => {
  const body = Buffer.alloc(MiB, 0);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE((0x80000000 | body.length) >>> 0);
  const bytes = Buffer.concat([mark, body]);
  let record: Buffer | null = null;
  const decoder = new RecordDecoder((r) => {
    record = Buffer.from(r);
  }, { maxRecordSize: 2 * MiB });
  const before = heldMemory();
  // Every read a separate allocation, as a socket delivers them; all but the last byte.
  for (let i = 0; i < bytes.length - 1; i++) decoder.push(Buffer.from(bytes.subarray(i, i + 1)));
  const held = heldMemory() - before;
  t.log(`held ${(held / MiB).toFixed(2)} MiB for ${(decoder.buffered / MiB).toFixed(2)} MiB of partial record`);
  t.true(held <= 2 * MiB + 64 * 1024, `held ${held} bytes`);
  t.is(record, null);
  decoder.push(bytes.subarray(bytes.length - 1));
  t.true(record !== null && (record as Buffer).equals(body));
});

test.serial('H68b a server fed 64 KiB of a record one byte per TCP segment holds about the bytes, not hundreds of bytes per byte', async (t) => {
  // No record deadline: 64 Ki one-byte segments can outlast the default 30 s on a slow machine (UML under
  // load), and this test is about memory (the deadline has its own tests).
  const server = new RpcServer({ recordTimeout: 0 });
  const { port } = await server.listen({ host: '127.0.0.1' });
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  let socketError: Error | null = null;
  socket.on('error', (error) => (socketError = error));
  await new Promise((resolve) => socket.once('connect', resolve));
  try {
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x80000000 | MiB) >>> 0);
    socket.write(mark);
    await until(() => server.connections.size === 1);
    const before = heldMemory();
    const total = 64 * 1024;
    const one = Buffer.alloc(1, 0x41);
    // One byte per write, yielding to the event loop after each so the server reads them one by one.
    for (let i = 0; i < total; i += 1) {
      socket.write(one);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const held = heldMemory() - before;
    t.log(`held ${(held / 1024).toFixed(0)} KiB for 64 KiB trickled`);
    t.true(held < 4 * total + 256 * 1024, `held ${held} bytes`);
    t.is(socketError, null, 'the server kept the connection');
  } finally {
    socket.destroy();
    await server.close();
  }
});

/** Sends `total` bytes on `stream` one per write, yielding to the event loop after each (one read each). */
async function trickle(stream: { write(b: Buffer): unknown }, total: number): Promise<void> {
  const one = Buffer.alloc(1, 0x41);
  for (let i = 0; i < total; i += 1) {
    stream.write(one);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}

const TRICKLED = 64 * 1024;
const bound = (held: number): boolean => held < 4 * TRICKLED + 256 * 1024;

test.serial('H68c a client fed 64 KiB of a reply record one byte per TCP segment holds about the bytes', async (t) => {
  // A raw server: reads the call, answers with a 1 MiB record mark and then one byte at a time.
  let serverSide: net.Socket | null = null;
  const listener = net.createServer((socket) => {
    serverSide = socket;
    socket.setNoDelay(true);
    // The client destroys its end when done: a reset must not crash the test file.
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const client = new RpcClient({ port: (listener.address() as net.AddressInfo).port, timeout: 60_000 });
  try {
    const pending = client.call(0x20000001, 1, 1, Buffer.alloc(0)).catch(() => undefined);
    await until(() => serverSide !== null);
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x80000000 | MiB) >>> 0);
    serverSide!.write(mark);
    const before = heldMemory();
    await trickle(serverSide!, TRICKLED);
    const held = heldMemory() - before;
    t.log(`client held ${(held / 1024).toFixed(0)} KiB for 64 KiB trickled`);
    t.true(bound(held), `held ${held} bytes`);
    client.destroy();
    await pending;
  } finally {
    client.destroy();
    listener.close();
  }
});

test.serial('H68d over RPC-with-TLS, both ways: 64 KiB of a record one byte per TLS record, at the server and at the client; each holds about the bytes (kernel TLS in UML)', async (t) => {
  const { server, port } = await startTlsServer({}, { recordTimeout: 0 });
  const replyStreams: Duplex[] = [];
  // A handler that starts a 1 MiB reply record and leaves its bytes to the test.
  server.addProgram({
    program: PROG + 2,
    version: VERS,
    procedures: {
      1: (_args: Buffer, ctx: CallContext) => {
        replyStreams.push(ctx.connection.transport!);
        return new Promise<Buffer>(() => undefined);
      },
    },
  });
  const client = tlsClient(port, {}, { timeout: 120_000 });
  try {
    const connection = await client.connect();
    const stream = connection.transport!;
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x80000000 | MiB) >>> 0);

    // Toward the server: the start of a 1 MiB CALL record, then one byte per TLS record.
    stream.write(mark);
    let before = heldMemory();
    await trickle(stream, TRICKLED);
    let held = heldMemory() - before;
    t.log(`server held ${(held / 1024).toFixed(0)} KiB for 64 KiB trickled in 1-byte TLS records (${expectKtls ? 'kernel' : 'userspace'} TLS)`);
    t.true(bound(held), `server held ${held} bytes`);

    // Toward the client, on a second connection: a reply record trickled by the server.
    const second = tlsClient(port, {}, { timeout: 120_000 });
    const pending = second.call(PROG + 2, VERS, 1, Buffer.alloc(0)).catch(() => undefined);
    await until(() => replyStreams.length === 1);
    replyStreams[0]!.write(mark);
    before = heldMemory();
    await trickle(replyStreams[0]!, TRICKLED);
    held = heldMemory() - before;
    t.log(`client held ${(held / 1024).toFixed(0)} KiB for 64 KiB trickled in 1-byte TLS records`);
    t.true(bound(held), `client held ${held} bytes`);
    second.destroy();
    await pending;
  } finally {
    client.destroy();
    await server.close();
  }
});
