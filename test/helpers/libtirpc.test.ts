// The libtirpc BULK server harness against the project's own client: byte-exact answers over TCP up to
// 1 MiB, and a hand-built NULL call over UDP.
import dgram from 'node:dgram';

import test from 'ava';

import { RpcClient } from '../../src/rpc/client.js';
import { XdrReader } from '../../src/xdr/reader.js';
import { XdrWriter } from '../../src/xdr/writer.js';
import { BULK, type LibtirpcServer, libtirpcMissing, startLibtirpcServer } from './libtirpc.js';
import { toolsPresent } from './tools.js';

const MiB = 1024 * 1024;

let server: Promise<LibtirpcServer> | undefined;
function sharedServer(): Promise<LibtirpcServer> {
  server ??= startLibtirpcServer();
  return server;
}
test.after.always(async () => {
  if (server) await (await server).close();
});

function opaqueArgs(data: Uint8Array): Buffer {
  return new XdrWriter().opaque(data).toBuffer();
}

function decodeOpaque(result: Buffer): Buffer {
  const r = new XdrReader(result);
  const data = r.opaque();
  r.assertEnd();
  return data;
}

function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i + seed) & 0xff;
  return b;
}

test('TCP: NULL, ECHO, WRITE and READ answer byte-exact up to 1 MiB', async (t) => {
  if (!toolsPresent(t, libtirpcMissing())) return;
  const { tcpPort } = await sharedServer();
  const client = new RpcClient({ host: '127.0.0.1', port: tcpPort, timeout: 10_000 });
  t.teardown(() => client.close());

  t.is((await client.call(BULK.program, BULK.version, BULK.NULL)).length, 0);

  for (const size of [0, 5, MiB]) {
    const data = pattern(size, 7);
    const echoed = decodeOpaque(await client.call(BULK.program, BULK.version, BULK.ECHO, opaqueArgs(data)));
    t.true(echoed.equals(data), `ECHO of ${size} bytes`);
  }

  const written = new XdrReader(await client.call(BULK.program, BULK.version, BULK.WRITE, opaqueArgs(pattern(MiB))));
  t.is(written.uint(), MiB);
  written.assertEnd();

  for (const count of [0, 3, MiB]) {
    const read = decodeOpaque(await client.call(BULK.program, BULK.version, BULK.READ, new XdrWriter().uint(count).toBuffer()));
    t.true(read.equals(pattern(count)), `READ of ${count} bytes`);
  }

  // Pipelined calls on one connection: the single-threaded server answers in turn, each to its own xid.
  const sizes = [65_536, 1, 200_000, 4096];
  const answers = await Promise.all(sizes.map((n, i) => client.call(BULK.program, BULK.version, BULK.ECHO, opaqueArgs(pattern(n, i)))));
  answers.forEach((a, i) => t.true(decodeOpaque(a).equals(pattern(sizes[i] as number, i)), `pipelined ECHO ${i}`));
});

test('UDP: a hand-built NULL call is answered SUCCESS with the same xid', async (t) => {
  if (!toolsPresent(t, libtirpcMissing())) return;
  const { udpPort } = await sharedServer();
  const xid = 0x5a5a1234;
  // xid, CALL, rpcvers 2, prog, vers, proc NULL, cred AUTH_NONE (flavor 0, length 0), verf AUTH_NONE.
  const call = Buffer.alloc(40);
  [xid, 0, 2, BULK.program, BULK.version, BULK.NULL, 0, 0, 0, 0].forEach((word, i) => call.writeUInt32BE(word, i * 4));

  const socket = dgram.createSocket('udp4');
  t.teardown(() => socket.close());
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no UDP reply within 5 s')), 5000);
    socket.once('message', (msg) => {
      clearTimeout(timer);
      resolve(msg);
    });
    socket.once('error', reject);
    socket.send(call, udpPort, '127.0.0.1');
  });
  // xid, REPLY, MSG_ACCEPTED, verf AUTH_NONE (0, 0), accept_stat SUCCESS, no result bytes.
  t.is(reply.length, 24);
  t.deepEqual(
    Array.from({ length: 6 }, (_, i) => reply.readUInt32BE(i * 4)),
    [xid, 1, 0, 0, 0, 0],
  );
});

test('close() stops the server and resolves after it exits', async (t) => {
  if (!toolsPresent(t, libtirpcMissing())) return;
  const own = await startLibtirpcServer();
  t.true(own.tcpPort > 0 && own.udpPort > 0);
  await own.close();
  await own.close(); // idempotent
  const client = new RpcClient({ host: '127.0.0.1', port: own.tcpPort, timeout: 2000, connectTimeout: 2000 });
  t.teardown(() => client.close());
  await t.throwsAsync(client.call(BULK.program, BULK.version, BULK.NULL));
});
