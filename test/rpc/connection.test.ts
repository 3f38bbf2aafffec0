import test from 'ava';
import net from 'node:net';
import { RpcClient } from '../../src/rpc/client.js';
import { RpcConnection } from '../../src/rpc/connection.js';
import { RpcServer } from '../../src/rpc/server.js';
import { procedure } from '../../src/rpc/program.js';
import { xdr } from '../../src/xdr/index.js';
import { startServer, rawConnect, until, hex } from '../helpers/net.js';

const PROG = 0x20000001;
const ECHO_PROGRAM = {
  program: PROG,
  version: 1,
  procedures: {
    1: (args: Buffer) => args,
    /** Echoes after a random delay, so replies come back out of order. */
    2: async (args: Buffer) => {
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      return args;
    },
    /** Never replies within any test's lifetime (until the connection closes). */
    3: () => new Promise<Buffer>(() => undefined),
  },
};

test('10,000 calls with 64 in flight on one connection: every reply matched to its call', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const client = new RpcClient({ port, maxPendingCalls: 64 });
  let maxInFlight = 0;
  let next = 0;
  let matched = 0;
  const worker = async (): Promise<void> => {
    while (next < 10_000) {
      const i = next++;
      const payload = Buffer.alloc(8 + (i % 50));
      payload.writeUInt32BE(i, 0);
      payload.writeUInt32BE(i ^ 0x5a5a5a5a, 4);
      const reply = await client.call(PROG, 1, 2, payload);
      maxInFlight = Math.max(maxInFlight, client.connection!.pendingCalls);
      if (reply.equals(payload)) matched++;
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  t.is(matched, 10_000);
  t.true(maxInFlight > 32, `calls were pipelined (saw ${maxInFlight} in flight)`);
  t.is(client.connection!.stats.unmatchedReplies, 0);
  await client.close();
  await server.close();
});

test('a call whose reply never comes fails at its deadline with ERR_RPC_TIMEOUT; others are unaffected', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const client = new RpcClient({ port });
  const started = Date.now();
  const err = await t.throwsAsync(client.call(PROG, 1, 3, undefined, { timeout: 150 }));
  const elapsed = Date.now() - started;
  t.like(err, { code: 'ERR_RPC_TIMEOUT', timeout: 150, program: PROG, procedure: 3 });
  t.true(elapsed >= 140 && elapsed < 1000, `failed at its deadline (${elapsed} ms)`);
  t.deepEqual(await client.call(PROG, 1, 1, hex('abcd0000')), hex('abcd0000'));
  await client.close().catch(() => undefined);
  server.close();
});

test('deadlines: default-timeout calls expire in order from one shared timer, own timeouts apart, answered calls untouched', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const client = new RpcClient({ port, timeout: 300 });
  await client.call(PROG, 1, 1);
  const t0 = Date.now();
  const at = (p: Promise<unknown>): Promise<number> => p.then(() => -1, () => Date.now() - t0);
  const first = at(client.call(PROG, 1, 3)); // default 300 ms, never answered
  const own = at(client.call(PROG, 1, 3, undefined, { timeout: 100 })); // its own timer
  t.deepEqual(await client.call(PROG, 1, 1, hex('00000001')), hex('00000001'), 'an answered call leaves the list');
  await new Promise((resolve) => setTimeout(resolve, 150));
  const later = at(client.call(PROG, 1, 3)); // made at ~150 ms: expires at ~450 ms, after the first
  const [a, b, c] = await Promise.all([first, own, later]);
  // Lower bounds are exact; upper bounds leave room for a loaded machine; the order must hold.
  t.true(b >= 95 && b < a, `own timeout 100 ms: failed at ${b} ms, before the first (${a} ms)`);
  t.true(a >= 295 && a < 1000, `default 300 ms: failed at ${a} ms`);
  t.true(c >= 440 && c > a && c < 1500, `made at 150 ms with 300 ms: failed at ${c} ms`);
  t.deepEqual(await client.call(PROG, 1, 1, hex('00000002')), hex('00000002'), 'the connection goes on');
  await client.close().catch(() => undefined);
  server.close();
});

test('deadlines read the clock once per tick, after its calls: a call made late in a long tick still gets its whole timeout', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const client = new RpcClient({ port, timeout: 200 });
  await client.call(PROG, 1, 1);
  const failedAfter = (p: Promise<unknown>, madeAt: number): Promise<number> => p.then(() => -1, () => performance.now() - madeAt);
  const firstAt = performance.now();
  const first = failedAfter(client.call(PROG, 1, 3), firstAt);
  // The same tick goes on for 120 ms before the second call: a clock read at the tick's first call would
  // give the second one 80 ms.
  while (performance.now() - firstAt < 120);
  const secondAt = performance.now();
  const second = failedAfter(client.call(PROG, 1, 3), secondAt);
  const [a, b] = await Promise.all([first, second]);
  t.true(a >= 200 && a < 1500, `first: failed ${a.toFixed(1)} ms after it was made`);
  t.true(b >= 200 && b < 1500, `second: failed ${b.toFixed(1)} ms after it was made`);
  await client.close().catch(() => undefined);
  server.close();
});

test('killing the server fails every pending call within 100 ms', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const client = new RpcClient({ port, timeout: 60_000 });
  await client.call(PROG, 1, 1);
  const pending = Array.from({ length: 50 }, () => client.call(PROG, 1, 3));
  await until(() => server.connections.size === 1 && [...server.connections][0]!.incomingCalls === 50);
  const killedAt = Date.now();
  for (const c of server.connections) c.transport?.destroy();
  const results = await Promise.allSettled(pending);
  const elapsed = Date.now() - killedAt;
  t.true(elapsed < 100, `all failed after ${elapsed} ms`);
  t.true(results.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'ERR_RPC_CONNECTION_CLOSED'));
  await t.throwsAsync(client.call(PROG, 1, 1), { code: 'ERR_RPC_CONNECTION_CLOSED' });
  server.close();
});

test('AbortSignal aborts one call with ERR_RPC_ABORTED; an already-aborted signal never sends', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const client = new RpcClient({ port });
  await client.connect();
  const controller = new AbortController();
  const call = client.call(PROG, 1, 3, undefined, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('user gave up')), 20);
  const err = await t.throwsAsync(call);
  t.like(err, { code: 'ERR_RPC_ABORTED' });
  t.is(((err as Error).cause as Error).message, 'user gave up');
  const sent = client.connection!.stats.callsSent;
  await t.throwsAsync(client.call(PROG, 1, 1, undefined, { signal: AbortSignal.abort() }), { code: 'ERR_RPC_ABORTED' });
  t.is(client.connection!.stats.callsSent, sent);
  t.is(client.connection!.pendingCalls, 0);
  client.destroy();
  server.close();
});

test('symmetric: the server calls a program the client registered, over the client’s own connection', async (t) => {
  const CALLBACK = procedure(0x40000000, 1, 1, xdr.string(64), xdr.string(64));
  const { server, port } = await startServer([
    {
      program: PROG,
      version: 1,
      procedures: {
        // While serving this call, call the client back on the same connection.
        5: {
          args: xdr.string(64),
          result: xdr.string(64),
          handler: async (name: string, ctx) => `server got: ${await ctx.connection.request(CALLBACK, name)}`,
        },
      },
    },
  ]);
  const client = new RpcClient({ port });
  client.addProgram({ program: 0x40000000, version: 1, procedures: { 1: { args: xdr.string(64), result: xdr.string(64), handler: (s: string) => `client says hi to ${s}` } } });
  const answer = await client.request(procedure(PROG, 1, 5, xdr.string(64), xdr.string(64)), 'nfs');
  t.is(answer, 'server got: client says hi to nfs');
  t.is(client.connection!.stats.callsReceived, 1);
  t.is(client.connection!.stats.repliesSent, 1);
  await client.close();
  await server.close();
});

test('a peer that never reads: the server stops reading its calls, so memory stays bounded', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const raw = await rawConnect(port);
  raw.socket.pause(); // never read replies
  const payload = Buffer.alloc(60_000, 1);
  const record = Buffer.concat([hex('8000ea8c'), hex('00000001 00000000 00000002 20000001 00000001 00000001 00000000 00000000 00000000 00000000 0000ea60'), payload]);
  t.is(record.length - 4, 0xea8c);
  // Offer ~120 MB of calls; the server must stop pulling them in once its replies back up.
  let written = 0;
  const start = process.memoryUsage();
  for (let i = 0; i < 2000 && raw.socket.write(record); i++) written++;
  for (let i = 0; i < 200; i++) raw.socket.write(record);
  await new Promise((r) => setTimeout(r, 500));
  const connection = [...server.connections][0]!;
  const received = connection.stats.callsReceived;
  const grown = process.memoryUsage().arrayBuffers - start.arrayBuffers;
  t.true(received < 2200, `server read ${received} of ${written + 200} calls before pausing`);
  t.true(grown < 100 * 1024 * 1024, `memory grew by ${(grown / 1048576).toFixed(1)} MiB`);
  // Other clients are unaffected.
  const other = new RpcClient({ port });
  t.deepEqual(await other.call(PROG, 1, 1, hex('01020304')), hex('01020304'));
  other.destroy();
  raw.socket.destroy();
  await server.close();
});

test('reconnect with backoff: after the server restarts on the same port, later calls succeed', async (t) => {
  const first = await startServer([ECHO_PROGRAM]);
  const port = first.port;
  const client = new RpcClient({ port, reconnect: { initialDelay: 20, maxDelay: 100, maxAttempts: 20 } });
  t.deepEqual(await client.call(PROG, 1, 1, hex('00000001')), hex('00000001'));
  const pending = client.call(PROG, 1, 3);
  await until(() => first.server.connections.size === 1 && [...first.server.connections][0]!.incomingCalls === 1);
  for (const c of first.server.connections) c.transport?.destroy();
  await first.server.close();
  await t.throwsAsync(pending, { code: 'ERR_RPC_CONNECTION_CLOSED' });
  // Restart a little later; the client's first reconnect attempts are refused and it backs off.
  const restarted = new RpcServer().addProgram(ECHO_PROGRAM);
  const listening = new Promise((r) => setTimeout(r, 150)).then(() => restarted.listen({ host: '127.0.0.1', port }));
  const connectErrors: unknown[] = [];
  client.on('connectError', (e) => connectErrors.push(e));
  t.deepEqual(await client.call(PROG, 1, 1, hex('00000002')), hex('00000002'));
  await listening;
  t.true(connectErrors.length >= 1, 'at least one attempt was refused before the restart');
  await client.close();
  await restarted.close();
});

test('graceful close waits for calls in flight; new calls are refused while closing', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const client = new RpcClient({ port });
  const inflight = client.call(PROG, 1, 2, hex('00000007'));
  const closing = client.connection ? client.connection.close() : (await client.connect(), client.connection!.close());
  await t.throwsAsync(client.connection!.call(PROG, 1, 1), { code: 'ERR_RPC_CONNECTION_CLOSED' });
  t.deepEqual(await inflight, hex('00000007'));
  await closing;
  t.true(client.connection === null || client.connection.closed);
  await server.close();
});

test('options are validated with precise messages', (t) => {
  t.like(t.throws(() => new RpcClient({ port: 70000 })), { code: 'ERR_RPC_INVALID_OPTION', message: 'port must be an integer from 1 to 65535; received 70000' });
  t.like(t.throws(() => new RpcConnection(null, { maxRecordSize: 10 })), { code: 'ERR_RPC_INVALID_OPTION', option: 'maxRecordSize' });
  t.like(t.throws(() => new RpcClient({ port: 1, reconnect: 'yes' as never })), { option: 'reconnect' });
  t.like(t.throws(() => new RpcConnection(null, { auth: { flavor: 1, body: Buffer.alloc(401) } })), { option: 'auth' });
});

test('connect failure is a coded ERR_RPC_CONNECT with the errno', async (t) => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const client = new RpcClient({ port });
  const err = await t.throwsAsync(client.call(PROG, 1, 0));
  t.like(err, { code: 'ERR_RPC_CONNECT', port });
  t.is(((err as Error).cause as { code: string }).code, 'ECONNREFUSED');
});

test('a server connection that never called its peer: its call table, made at the first call, refuses it while closing and once closed, with the close error as cause', async (t) => {
  const { server, port } = await startServer([ECHO_PROGRAM]);
  const accepted: RpcConnection[] = [];
  server.on('connection', (connection) => accepted.push(connection));
  const clients = [new RpcClient({ port, reconnect: false }), new RpcClient({ port, reconnect: false })];
  for (const client of clients) await client.call(PROG, 1, 1, hex('00000001'));
  const [graceful, broken] = accepted as [RpcConnection, RpcConnection];
  t.is(graceful.pendingCalls, 0);
  t.false(graceful.busy);
  const closing = graceful.close();
  await t.throwsAsync(graceful.call(0x40000000, 1, 1), { code: 'ERR_RPC_CONNECTION_CLOSED', message: /closing/ });
  await closing;
  await t.throwsAsync(graceful.call(0x40000000, 1, 1), { code: 'ERR_RPC_CONNECTION_CLOSED', message: /is closed/ });
  const cause = new Error('cut by the test');
  broken.destroy(cause);
  const error = await t.throwsAsync(broken.call(0x40000000, 1, 1), { code: 'ERR_RPC_CONNECTION_CLOSED' });
  t.is(error?.cause, cause);
  for (const client of clients) client.destroy();
  await server.close();
});

test('a server reports its connections’ close and handler errors without a listener on each connection', async (t) => {
  const { server, port } = await startServer([{ program: PROG, version: 1, procedures: { 9: () => { throw new Error('handler broke'); } } }]);
  const accepted: RpcConnection[] = [];
  server.on('connection', (connection) => accepted.push(connection));
  const handlerErrors: unknown[] = [];
  server.on('handlerError', (error) => handlerErrors.push(error));
  const connectionErrors: Error[] = [];
  server.on('connectionError', (error) => connectionErrors.push(error));
  const client = new RpcClient({ port, reconnect: false });
  await t.throwsAsync(client.call(PROG, 1, 9), { code: 'ERR_RPC_SYSTEM_ERR' });
  const [connection] = accepted as [RpcConnection];
  t.is(connection.listenerCount('close'), 0);
  t.is(connection.listenerCount('handlerError'), 0);
  t.like(handlerErrors, [{ message: 'handler broke' }]);
  const cause = new Error('cut by the test');
  connection.destroy(cause);
  t.deepEqual(connectionErrors, [cause]);
  t.is(server.connections.size, 0);
  client.destroy();
  await server.close();
});
