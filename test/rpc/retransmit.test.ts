import test from 'ava';
import { RpcClient } from '../../src/rpc/client.js';
import { startServer } from '../helpers/net.js';

const PROG = 0x20000002;
const ECHO_PROGRAM = { program: PROG, version: 1, procedures: { 1: (args: Buffer) => args } };

/** A server that swallows the first copy of every call (as NFS-Ganesha 15 does to a call right after STARTTLS). */
async function droppingServer(): Promise<{ port: number; copies: Map<number, number>; close: () => Promise<void> }> {
  const copies = new Map<number, number>();
  const { server, port } = await startServer([ECHO_PROGRAM], {
    interceptCall(call) {
      const seen = (copies.get(call.xid) ?? 0) + 1;
      copies.set(call.xid, seen);
      return seen === 1;
    },
  });
  return { port, copies, close: () => server.close() };
}

test('retransmit: a dropped call is resent with the same XID after the per-try timeout and answered', async (t) => {
  const { port, copies, close } = await droppingServer();
  const client = new RpcClient({ port, retransmit: { timeout: 100, retries: 2 } });
  try {
    const started = performance.now();
    const replies = await Promise.all([1, 2, 3].map((i) => client.call(PROG, 1, 1, Buffer.from([0, 0, 0, i]))));
    const elapsed = performance.now() - started;
    t.deepEqual(replies.map((r) => r[3]), [1, 2, 3]);
    t.deepEqual([...copies.values()], [2, 2, 2], 'each XID arrived twice: the first copy and one resend');
    t.is(client.connection!.stats.retransmits, 3);
    t.true(elapsed >= 90, `answered after one per-try timeout (${elapsed.toFixed(0)} ms)`);
  } finally {
    await client.close();
    await close();
  }
});

test('retransmit: after `retries` resends unanswered, the call fails with ERR_RPC_TIMEOUT', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM], { interceptCall: () => true });
  const client = new RpcClient({ port, timeout: 10_000, retransmit: { timeout: 50, retries: 2 } });
  try {
    const started = performance.now();
    const error = await t.throwsAsync(client.call(PROG, 1, 1, Buffer.alloc(4)), { code: 'ERR_RPC_TIMEOUT' });
    t.true(performance.now() - started < 2000, 'failed after (retries + 1) per-try timeouts, not the call timeout');
    t.regex(error!.message, /150/);
    t.is(client.connection!.stats.retransmits, 2);
  } finally {
    await client.close();
    await server.close();
  }
});

test('retransmit: off by default; a dropped call waits for its own timeout', async (t) => {
  const { port, copies, close } = await droppingServer();
  const client = new RpcClient({ port, timeout: 300 });
  try {
    await t.throwsAsync(client.call(PROG, 1, 1, Buffer.alloc(4)), { code: 'ERR_RPC_TIMEOUT' });
    t.deepEqual([...copies.values()], [1]);
    t.is(client.connection!.stats.retransmits, 0);
  } finally {
    await client.close();
    await close();
  }
});

test('retransmit: options are validated at construction', (t) => {
  for (const retransmit of [null, 5, {}, { timeout: 0, retries: 1 }, { timeout: 100, retries: 0 }, { timeout: 100 }, { timeout: 1.5, retries: 1 }]) {
    t.throws(() => new RpcClient({ port: 1, retransmit: retransmit as never }), { code: 'ERR_RPC_INVALID_OPTION' }, JSON.stringify(retransmit));
  }
  t.notThrows(() => new RpcClient({ port: 1, retransmit: { timeout: 1000, retries: 3 } }));
});
