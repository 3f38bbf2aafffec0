// Hostile catalogue, faults (H49-H58): handlers that throw or never answer, resets mid-call in plaintext
// and TLS, peers that never read, peers that dribble (slowloris), handshakes that stall en masse.
import net from 'node:net';

import test from 'ava';

import { RpcClient } from '../../src/rpc/client.js';
import { probeRecord, startTlsReplyBytes, tlsClient } from '../tls/helpers.js';
import { HostileProc, PROG, Proc, VERS, arena, callBody, callRecord, codeOf, raw, record, relay, u32, until } from './helpers.js';

test('H49 handler that throws: SYSTEM_ERR, one handlerError with the exception; the connection goes on', async (t) => {
  const a = await arena();
  const client = new RpcClient({ port: a.port });
  t.is(codeOf(await t.throwsAsync(client.call(PROG, VERS, HostileProc.THROWS))), 'ERR_RPC_SYSTEM_ERR');
  t.is((a.handlerErrors[0] as Error).message, 'handler bug');
  t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('on')), Buffer.from('on'));
  client.destroy();
  await a.bystanderServed();
  await a.close();
});

test('H50 handler that rejects with a non-Error, and one that returns a non-Buffer: SYSTEM_ERR each, both reported', async (t) => {
  const a = await arena();
  const client = new RpcClient({ port: a.port });
  t.is(codeOf(await t.throwsAsync(client.call(PROG, VERS, HostileProc.THROWS_STRING))), 'ERR_RPC_SYSTEM_ERR');
  t.is(codeOf(await t.throwsAsync(client.call(PROG, VERS, HostileProc.BAD_RESULT))), 'ERR_RPC_SYSTEM_ERR');
  t.is(a.handlerErrors.length, 2);
  t.is(a.handlerErrors[0], 'not an Error');
  client.destroy();
  await a.bystanderServed();
  await a.close();
});

test('H51 handler that never resolves: the call fails ERR_RPC_TIMEOUT at its deadline, other calls on that connection answered; server.close() still ends', async (t) => {
  const a = await arena({ server: { closeTimeout: 200 } });
  const client = new RpcClient({ port: a.port });
  const stuck = client.call(PROG, VERS, HostileProc.NEVER, undefined, { timeout: 200 });
  t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('x')), Buffer.from('x'));
  t.is(codeOf(await t.throwsAsync(stuck)), 'ERR_RPC_TIMEOUT');
  await a.bystanderServed();
  const started = Date.now();
  await a.close();
  t.true(Date.now() - started < 2000, 'close() waited closeTimeout, then destroyed the stuck connection');
  client.destroy();
});

test('H52 maxIncomingCalls never-resolving calls on one connection: it stops reading (bounded), other connections served', async (t) => {
  const a = await arena({ server: { maxIncomingCalls: 8, closeTimeout: 100 } });
  const r = await raw(a.port);
  for (let i = 0; i < 8; i++) r.write(callRecord({ xid: i, procedure: HostileProc.NEVER }));
  await until(() => [...a.server.connections].some((c) => c.incomingCalls === 8));
  r.write(callRecord({ xid: 99, procedure: Proc.ECHO, args: Buffer.from('late') }));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(r.messages().length, 0, 'the 9th call is not read while 8 are in the handler');
  await a.bystanderServed();
  r.socket.destroy();
  await a.close();
});

test('H52b maxIncomingCalls holds inside one chunk: 20 calls in one write run at most 4 at a time, all answered in order', async (t) => {
  const a = await arena({ server: { maxIncomingCalls: 4 } });
  const r = await raw(a.port);
  const calls = Array.from({ length: 20 }, (_, i) => callRecord({ xid: 1000 + i, procedure: HostileProc.SLOW_ECHO, args: Buffer.from(`call ${i}`) }));
  let most = 0;
  const sampler = setInterval(() => {
    for (const c of a.server.connections) most = Math.max(most, c.incomingCalls);
  }, 2);
  r.write(Buffer.concat(calls)); // one chunk: the cap must hold before the rest is even parsed
  try {
    const replies = await r.waitMessages(20, 10_000);
    t.deepEqual(replies.map((m) => m.xid), calls.map((_, i) => 1000 + i), 'every call answered, none lost or reordered');
    t.true(most <= 4, `at most ${most} calls in handlers at once`);
    t.true(most >= 1);
  } finally {
    clearInterval(sampler);
  }
  await a.bystanderServed();
  r.socket.destroy();
  await a.close();
});

test('H53 peer RST mid-call (plaintext): server drops the reply without error, client call fails ERR_RPC_CONNECTION_CLOSED; others served', async (t) => {
  const a = await arena();
  const front = await relay(a.port);
  const client = new RpcClient({ port: front.port });
  await client.call(PROG, VERS, Proc.ECHO);
  const call = client.call(PROG, VERS, HostileProc.SLOW_ECHO, Buffer.from('x'));
  await new Promise((resolve) => setTimeout(resolve, 10));
  front.reset();
  t.is(codeOf(await t.throwsAsync(call)), 'ERR_RPC_CONNECTION_CLOSED');
  await new Promise((resolve) => setTimeout(resolve, 100)); // the slow handler finishes into a dead connection
  t.deepEqual(a.handlerErrors, []);
  await until(() => a.server.connections.size === 1);
  await a.bystanderServed();
  client.destroy();
  front.close();
  await a.close();
});

test('H54 peer RST mid-call (TLS): the server connection closes with a coded error, the client call fails ERR_RPC_CONNECTION_CLOSED', async (t) => {
  const a = await arena({ tls: {} });
  const front = await relay(a.port);
  const client = tlsClient(front.port);
  await client.call(PROG, VERS, Proc.ECHO);
  const call = client.call(PROG, VERS, HostileProc.SLOW_ECHO, Buffer.from('x'));
  await new Promise((resolve) => setTimeout(resolve, 10));
  front.reset();
  const error = await t.throwsAsync(call);
  t.is(codeOf(error), 'ERR_RPC_CONNECTION_CLOSED');
  t.regex(codeOf((error as Error).cause) ?? 'none', /^ERR_TLS_|^none$/);
  await until(() => a.server.connections.size === 1);
  t.true(a.errors.every((e) => /^ERR_/.test(codeOf(e) ?? '')), `coded: ${a.codes().join(',')}`);
  await a.bystanderServed();
  client.destroy();
  front.close();
  await a.close();
});

test('H55 TLS peer that never reads its replies: the server stops reading that peer (memory bounded), others served', async (t) => {
  const a = await arena({ tls: {} });
  const greedy = tlsClient(a.port, {}, { timeout: 0 });
  const connection = await greedy.connect();
  connection.transport!.pause(); // never read replies
  const payload = Buffer.alloc(60_000, 7);
  const before = process.memoryUsage().arrayBuffers;
  const calls = Array.from({ length: 2000 }, () => connection.call(PROG, VERS, Proc.ECHO, payload).catch(() => undefined));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const server = [...a.server.connections].find((c) => c.stats.callsReceived > 10)!;
  const received = server.stats.callsReceived;
  t.true(received < 1500, `server read ${received} of 2000 calls (60 KB each), then stopped`);
  const grown = process.memoryUsage().arrayBuffers - before;
  t.true(grown < 300 * 1024 * 1024, `both ends together grew ${(grown / 1048576).toFixed(0)} MiB for 120 MB offered`);
  await a.bystanderServed();
  greedy.destroy();
  await Promise.all(calls);
  await a.close();
});

test('H56 slowloris (one byte every 20 ms): closed at recordTimeout with ERR_RPC_RECORD_TIMEOUT; past maxConnections the longest-idle is evicted; others served', async (t) => {
  const a = await arena({ server: { maxConnections: 4, recordTimeout: 600 } });
  const evicted: unknown[] = [];
  const errors: Error[] = [];
  a.server.on('connectionEvicted', (connection) => evicted.push(connection));
  a.server.on('connectionError', (error: Error) => errors.push(error));
  const body = callBody({ xid: 5, args: Buffer.alloc(64) });
  const wire = record(body);
  const slow = await Promise.all([raw(a.port), raw(a.port), raw(a.port)]);
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < wire.length - 1) sent++; // never the last byte: the record stays incomplete
    for (const s of slow) if (!s.isClosed()) s.socket.write(wire.subarray(sent - 1, sent));
  }, 20);
  try {
    await until(() => a.server.connections.size === 4);
    // The bystander is the freshest; a 5th connection evicts the connection idle the longest (a slow one).
    await a.bystanderServed();
    const extra = await raw(a.port);
    await until(() => evicted.length === 1);
    t.is(a.server.connections.size, 4, 'the 5th connection is accepted in place of the evicted one');
    await until(() => slow.filter((s) => s.isClosed()).length === 1);
    await a.bystanderServed();
    extra.socket.destroy();
    const started = Date.now();
    await Promise.all(slow.map((s) => s.closed));
    t.true(Date.now() - started < 2000, 'closed at the record deadline, not held');
    t.is(errors.filter((e) => (e as { code?: string }).code === 'ERR_RPC_RECORD_TIMEOUT').length, 2);
    t.regex(errors[0]?.message ?? '', /not completed within 600 ms/);
    await a.bystanderServed();
  } finally {
    clearInterval(timer);
    for (const s of slow) s.socket.destroy();
    await a.close();
  }
});

test('H56b a busy stream whose chunks end mid-record is not mistaken for slowloris; an idle connection closes at idleTimeout', async (t) => {
  const a = await arena({ server: { recordTimeout: 800, idleTimeout: 1200 } });
  const busy = await raw(a.port);
  const idle = await raw(a.port);
  // Records of 1,000 bytes written in 700-byte pieces every 40 ms for 1.7 s (over twice the record
  // deadline): every chunk but a few ends inside a record, yet each record completes well within 800 ms.
  const records = Array.from({ length: 30 }, (_, i) => callRecord({ xid: 500 + i, procedure: Proc.ECHO, args: Buffer.alloc(956, i) }));
  const stream = Buffer.concat(records);
  for (let at = 0; at < stream.length; at += 700) {
    busy.write(stream.subarray(at, at + 700));
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  const replies = await busy.waitMessages(30, 5000);
  t.is(replies.length, 30);
  t.false(busy.isClosed(), 'the busy connection is still open');
  await idle.closed;
  t.pass('the idle connection was closed by the server');
  busy.socket.destroy();
  await a.close();
});

test('H57 fifty handshakes that stall after STARTTLS: each closed at handshakeTimeout with ERR_TLS_HANDSHAKE_TIMEOUT; others served meanwhile', async (t) => {
  const a = await arena({ tls: { handshakeTimeout: 500 } });
  const stalled = await Promise.all(Array.from({ length: 50 }, () => raw(a.port)));
  stalled.forEach((s, i) => s.write(probeRecord(1000 + i)));
  await until(() => stalled.every((s, i) => s.received().equals(startTlsReplyBytes(1000 + i))));
  await a.bystanderServed();
  await Promise.all(stalled.map((s) => s.closed));
  await until(() => a.tlsErrors.length === 50);
  t.true(a.tlsErrors.every((e) => codeOf(e) === 'ERR_TLS_HANDSHAKE_TIMEOUT'));
  t.is(a.server.connections.size, 1, 'only the bystander is left');
  await a.bystanderServed();
  await a.close();
});

test('H58 server that resets mid-call: every pending call fails ERR_RPC_CONNECTION_CLOSED promptly; with reconnect the next call succeeds', async (t) => {
  const a = await arena();
  const front = await relay(a.port);
  const client = new RpcClient({ port: front.port, reconnect: { initialDelay: 10, maxAttempts: 5 } });
  await client.call(PROG, VERS, Proc.ECHO);
  const pending = Array.from({ length: 20 }, () => client.call(PROG, VERS, HostileProc.SLOW_ECHO, Buffer.from('p')));
  await new Promise((resolve) => setTimeout(resolve, 10));
  const at = Date.now();
  front.reset();
  const results = await Promise.allSettled(pending);
  t.true(Date.now() - at < 500);
  t.true(results.every((r) => r.status === 'rejected' && codeOf(r.reason) === 'ERR_RPC_CONNECTION_CLOSED'));
  t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('again')), Buffer.from('again'));
  t.is(front.pairs, 2, 'a new connection through the relay');
  client.destroy();
  front.close();
  await a.close();
  t.truthy(net);
});
