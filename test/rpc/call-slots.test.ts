import test from 'ava';
import { RpcClient } from '../../src/rpc/client.js';
import { startServer } from '../helpers/net.js';

const PROG = 0x20000003;

test('call slots: thousands of calls, long-running ones held across growth and an XID wrap, each settle with their own reply', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const xids: number[] = [];
  const { server, port } = await startServer(
    [{ program: PROG, version: 1, procedures: { 1: (args: Buffer) => args, 2: async (args: Buffer) => (await gate, args) } }],
    {
      maxIncomingCalls: 8192,
      interceptCall(call) {
        xids.push(call.xid);
        return false;
      },
    },
  );
  const client = new RpcClient({ port, maxPendingCalls: 8192 });
  try {
    await client.call(PROG, 1, 0);
    // Start just below the wrap, so XIDs pass 0xffffffff -> 0 while calls hold slots.
    (client.connection as unknown as { calls: { nextXid: number } }).calls.nextXid = 0xffffff00;
    const arg = (i: number): Buffer => Buffer.from([i >>> 24, i >>> 16, i >>> 8, i]);
    const held = Array.from({ length: 300 }, (_, i) => client.call(PROG, 1, 2, arg(i)));
    for (let round = 0; round < 6; round++) {
      // Each round wraps the slot array past the held calls' slots: their XIDs must be skipped.
      const quick = Array.from({ length: 500 }, (_, i) => client.call(PROG, 1, 1, arg(100_000 + round * 500 + i)));
      const results = await Promise.all(quick);
      results.forEach((r, i) => t.is(r.readUInt32BE(0), 100_000 + round * 500 + i));
    }
    t.is(client.connection!.pendingCalls, 300, 'the held calls still wait');
    release();
    (await Promise.all(held)).forEach((r, i) => t.is(r.readUInt32BE(0), i));
    t.is(client.connection!.pendingCalls, 0);
    t.is(new Set(xids).size, xids.length, 'no XID was used twice');
    t.true(xids.some((x) => x >= 0xffffff00) && xids.some((x) => x < 0x1000), 'the XIDs wrapped');
  } finally {
    await client.close();
    await server.close();
  }
});
