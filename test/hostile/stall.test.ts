// Large calls in both directions on one connection (an NFS client copying a file within one mount):
// write backpressure must never stop a client from reading its replies.
import test from 'ava';

import { RpcClient } from '../../src/rpc/client.js';
import { RpcServer } from '../../src/rpc/server.js';
import { XdrReader } from '../../src/xdr/reader.js';
import { XdrWriter } from '../../src/xdr/writer.js';
import { BULK, libtirpcMissing, startLibtirpcServer } from '../helpers/libtirpc.js';
import { toolsPresent } from '../helpers/tools.js';

const PROG = BULK.program;
const VERS = BULK.version;
const MiB = 1 << 20;
/** The libtirpc server's READ pattern (byte i = i & 0xff); the in-process server answers the same. */
const PATTERN = Buffer.from(Array.from({ length: MiB }, (_, i) => i & 0xff));

/** WRITE-like: 1 MiB in, its length out. READ-like: a length in, that many bytes out. */
function bulkServer(): RpcServer {
  const server = new RpcServer();
  server.addProgram({
    program: PROG,
    version: VERS,
    procedures: {
      [BULK.WRITE]: (args: Buffer) => {
        const w = new XdrWriter();
        w.uint(new XdrReader(args).opaque().length);
        return w.finish();
      },
      [BULK.READ]: (args: Buffer) => {
        const w = new XdrWriter();
        w.opaque(PATTERN.subarray(0, new XdrReader(args).uint()));
        return w.finish();
      },
    },
  });
  return server;
}

function opaqueArgs(data: Buffer): Buffer[] {
  const w = new XdrWriter();
  w.opaque(data);
  return w.finish();
}

function uintArgs(value: number): Buffer[] {
  const w = new XdrWriter();
  w.uint(value);
  return w.finish();
}

async function bulkRounds(port: number, rounds: number, each: number): Promise<{ writes: number; reads: number }> {
  const client = new RpcClient({ host: '127.0.0.1', port, timeout: 20_000 });
  let writes = 0;
  let reads = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const calls: Promise<void>[] = [];
      for (let i = 0; i < each; i++) {
        calls.push(client.call(PROG, VERS, BULK.WRITE, opaqueArgs(PATTERN)).then((r) => void (new XdrReader(r).uint() === MiB && writes++)));
        calls.push(client.call(PROG, VERS, BULK.READ, uintArgs(MiB)).then((r) => void (new XdrReader(r).opaque().equals(PATTERN) && reads++)));
      }
      await Promise.all(calls);
    }
  } finally {
    await client.close();
  }
  return { writes, reads };
}

test('H67 32 x 1 MiB WRITE-like + 32 x 1 MiB READ-like at once on one connection to an rpctls server, 20 rounds: all complete, none times out', async (t) => {
  const server = bulkServer();
  const { port } = await server.listen({ host: '127.0.0.1' });
  try {
    t.deepEqual(await bulkRounds(port, 20, 32), { writes: 640, reads: 640 });
  } finally {
    await server.close();
  }
});

test('H67b the same 32 + 32 x 1 MiB, 20 rounds, against the libtirpc C server: all complete, none times out', async (t) => {
  if (!toolsPresent(t, libtirpcMissing())) return;
  const server = await startLibtirpcServer();
  try {
    t.deepEqual(await bulkRounds(server.tcpPort, 20, 32), { writes: 640, reads: 640 });
  } finally {
    await server.close();
  }
});
