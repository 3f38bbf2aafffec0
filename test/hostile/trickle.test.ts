// Memory per byte of trickled input: a record announced as 1 MiB and received one byte per read must not
// cost hundreds of bytes of memory per byte held (each 1-byte read is its own allocation and Buffer).
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';

import { RecordDecoder } from '../../src/transport/record-marking.js';
import { RpcServer } from '../../src/rpc/server.js';
import { until } from '../helpers/net.js';

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

test('H68 1 MiB record trickled 1 byte per read into the decoder: memory held <= 2x its bytes + 64 KiB, then exactly the record', (t) => {
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

test('H68b a server fed 64 KiB of a record one byte per TCP segment holds about the bytes, not hundreds of bytes per byte', async (t) => {
  const server = new RpcServer();
  const { port } = await server.listen({ host: '127.0.0.1' });
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
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
  } finally {
    socket.destroy();
    await server.close();
  }
});
