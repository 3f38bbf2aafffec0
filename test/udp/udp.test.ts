import test from 'ava';
import { RpcClient } from '../../src/rpc/client.js';
import { AUTH_TLS, authSys } from '../../src/rpc/auth.js';
import { AcceptStat, AuthStat, ReplyStat } from '../../src/rpc/constants.js';
import { decodeMessage, type RpcReply } from '../../src/rpc/message.js';
import type { CallContext } from '../../src/rpc/program.js';
import { RpcServer, type ServerOptions } from '../../src/rpc/server.js';
import { UdpClient } from '../../src/rpc/udp-client.js';
import { until } from '../helpers/net.js';
import { callDatagram as datagramOf, rawUdp } from '../helpers/udp.js';

const PROG = 0x20000101;
const Proc = { NULL: 0, ECHO: 1, COUNT: 2, SLOW_COUNT: 3, BIG: 4, WHO: 5, NEVER: 6 } as const;

/** A server over TCP and UDP on one port; COUNT is not idempotent: it counts how often it ran. */
async function start(options: ServerOptions = {}) {
  const runs = new Map<string, number>();
  const count = (args: Buffer): Buffer => {
    const key = args.toString('hex');
    runs.set(key, (runs.get(key) ?? 0) + 1);
    return args;
  };
  const server = new RpcServer(options);
  server.addProgram({
    program: PROG,
    version: 1,
    procedures: {
      [Proc.ECHO]: (args: Buffer) => args,
      [Proc.COUNT]: count,
      [Proc.SLOW_COUNT]: async (args: Buffer) => {
        await new Promise((r) => setTimeout(r, 100));
        return count(args);
      },
      [Proc.BIG]: (args: Buffer) => Buffer.alloc(args.readUInt32BE(0), 7),
      [Proc.WHO]: (_args: Buffer, context: CallContext) => Buffer.from(JSON.stringify(context.authSys)),
      [Proc.NEVER]: () => new Promise<Buffer>(() => undefined),
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', udp: true });
  return { server, port, runs };
}

const callDatagram = (xid: number, procedure: number, args: Buffer): Buffer => datagramOf(PROG, xid, procedure, args);

test('the same programs over UDP and TCP on one port; byte-exact results both ways', async (t) => {
  const { server, port } = await start();
  t.is(server.udpAddress()?.port, port);
  const udp = new UdpClient({ port });
  const tcp = new RpcClient({ port });
  const payload = Buffer.from('0102030405060708090a', 'hex');
  t.deepEqual(await udp.call(PROG, 1, Proc.ECHO, payload), payload);
  t.deepEqual(await tcp.call(PROG, 1, Proc.ECHO, payload), payload);
  await udp.call(PROG, 1, Proc.NULL);
  t.is(udp.stats.callsSent, 2);
  t.is(udp.stats.repliesReceived, 2);
  t.is(udp.stats.retransmits, 0);
  t.is(server.udpStats?.callsReceived, 2);
  await udp.close();
  await tcp.close();
  await server.close();
});

test('a server listened without udp has no UDP socket', async (t) => {
  const server = new RpcServer();
  await server.listen({ host: '127.0.0.1' });
  t.is(server.udpAddress(), null);
  t.is(server.udpStats, null);
  await server.close();
});

test('100 calls with 32 in flight: every reply matched to its call', async (t) => {
  const { server, port } = await start();
  const udp = new UdpClient({ port, maxPendingCalls: 32 });
  let next = 0;
  let matched = 0;
  const worker = async (): Promise<void> => {
    while (next < 100) {
      const payload = Buffer.alloc(8);
      payload.writeUInt32BE(next++, 0);
      if ((await udp.call(PROG, 1, Proc.ECHO, payload)).equals(payload)) matched++;
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  t.is(matched, 100);
  t.is(udp.stats.unmatchedReplies, 0);
  await udp.close();
  await server.close();
});

test('no reply: the call is resent with the same XID, at doubling intervals, until it times out', async (t) => {
  const silent = await rawUdp();
  const udp = new UdpClient({ port: silent.port, retransmitTimeout: 50, maxRetransmitTimeout: 200, timeout: 1000 });
  const started = Date.now();
  const error = await t.throwsAsync(udp.call(PROG, 1, Proc.ECHO, Buffer.from('abcd', 'hex')));
  const elapsed = Date.now() - started;
  t.like(error, { code: 'ERR_RPC_TIMEOUT', program: PROG, procedure: Proc.ECHO });
  t.true(elapsed >= 990 && elapsed < 2000, `failed at its deadline (${elapsed} ms)`);
  // A copy resent just before the deadline may still be on its way to the silent peer (same process).
  for (let waited = 0; silent.received.length < udp.stats.retransmits + 1 && waited < 1000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // Sent at 0, then after 50, 100, 200, 200, 200 ms ...: 0, 50, 150, 350, 550, 750, 950.
  // Each interval runs from the resend before it, so a late timer (a loaded machine) means fewer copies.
  t.true(silent.received.length >= 5 && silent.received.length <= 8, `${silent.received.length} copies`);
  const xids = new Set(silent.received.map((r) => r.data.readUInt32BE(0)));
  t.is(xids.size, 1, 'every copy has the first XID');
  t.true(silent.received.every((r) => r.data.equals((silent.received[0] as { data: Buffer }).data)), 'every copy byte-identical');
  t.is(udp.stats.retransmits, silent.received.length - 1);
  await udp.close();
  await silent.close();
});

test('an AbortSignal fails the call with ERR_RPC_ABORTED and stops its retransmissions', async (t) => {
  const silent = await rawUdp();
  const udp = new UdpClient({ port: silent.port, retransmitTimeout: 20 });
  const controller = new AbortController();
  const call = udp.call(PROG, 1, Proc.ECHO, Buffer.alloc(4), { signal: controller.signal });
  // Abort once a resend went out (a timer race on a loaded machine otherwise).
  const started = Date.now();
  while (udp.stats.retransmits < 1 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 5));
  controller.abort(new Error('enough'));
  const error = await t.throwsAsync(call);
  t.like(error, { code: 'ERR_RPC_ABORTED' });
  const resends = udp.stats.retransmits;
  t.true(resends >= 1, `resent before the abort (${resends})`);
  await new Promise((r) => setTimeout(r, 150));
  t.is(udp.stats.retransmits, resends, 'nothing resent after the abort');
  t.is(silent.received.length, resends + 1);
  t.is(udp.pendingCalls, 0);
  await udp.close();
  await silent.close();
});

test('a call larger than maxDatagramSize fails with ERR_RPC_DATAGRAM_TOO_LARGE and is not sent', async (t) => {
  const silent = await rawUdp();
  const udp = new UdpClient({ port: silent.port, maxDatagramSize: 1000 });
  const error = await t.throwsAsync(udp.call(PROG, 1, Proc.ECHO, Buffer.alloc(1000)));
  t.like(error, { code: 'ERR_RPC_DATAGRAM_TOO_LARGE', max: 1000, size: 1040, procedure: Proc.ECHO });
  await new Promise((r) => setTimeout(r, 50));
  t.is(silent.received.length, 0);
  t.is(udp.pendingCalls, 0);
  await udp.close();
  await silent.close();
});

test('a reply larger than the server maxDatagramSize is answered SYSTEM_ERR and reported', async (t) => {
  const { server, port } = await start({ udp: { maxDatagramSize: 2000 } });
  const reported: unknown[] = [];
  server.on('replyTooLarge', (error) => reported.push(error));
  const udp = new UdpClient({ port, maxDatagramSize: 65507 });
  const big = Buffer.alloc(4);
  big.writeUInt32BE(3000);
  const error = await t.throwsAsync(udp.call(PROG, 1, Proc.BIG, big));
  t.like(error, { code: 'ERR_RPC_SYSTEM_ERR', acceptStat: AcceptStat.SYSTEM_ERR });
  t.like(reported[0], { code: 'ERR_RPC_DATAGRAM_TOO_LARGE', max: 2000, size: 3000 + 24 });
  t.is(server.udpStats?.repliesTooLarge, 1);
  big.writeUInt32BE(1000);
  t.is((await udp.call(PROG, 1, Proc.BIG, big)).length, 1000, 'a reply that fits still goes out');
  await udp.close();
  await server.close();
});

test('AUTH_SYS over UDP reaches the handler', async (t) => {
  const { server, port } = await start();
  const udp = new UdpClient({ port, auth: authSys({ uid: 1000, gid: 100, gids: [4, 24], machinename: 'udp-host' }) });
  const who = JSON.parse((await udp.call(PROG, 1, Proc.WHO)).toString());
  t.like(who, { uid: 1000, gid: 100, gids: [4, 24], machinename: 'udp-host' });
  await udp.close();
  await server.close();
});

test('duplicate request cache: a retransmitted call runs once and both copies get the same reply bytes', async (t) => {
  const { server, port, runs } = await start();
  const raw = await rawUdp();
  const call = callDatagram(0x1234, Proc.COUNT, Buffer.from('00000007', 'hex'));
  await raw.send(call, port);
  const first = await raw.next();
  await raw.send(call, port);
  const second = await raw.next();
  t.deepEqual(second, first);
  t.is(runs.get('00000007'), 1);
  t.is(server.udpStats?.duplicateHits, 1);
  // The same XID with other arguments is another call (the checksum is part of the key).
  await raw.send(callDatagram(0x1234, Proc.COUNT, Buffer.from('00000008', 'hex')), port);
  await raw.next();
  t.is(runs.get('00000008'), 1);
  await raw.close();
  await server.close();
});

test('duplicate request cache: a copy arriving while the first still runs is dropped, not run again', async (t) => {
  const { server, port, runs } = await start();
  const raw = await rawUdp();
  const call = callDatagram(0x99, Proc.SLOW_COUNT, Buffer.from('0000000a', 'hex'));
  await raw.send(call, port);
  await raw.send(call, port);
  await raw.send(call, port);
  await raw.next();
  await new Promise((r) => setTimeout(r, 100));
  t.is(raw.received.length, 1, 'one reply');
  t.is(runs.get('0000000a'), 1);
  t.is(server.udpStats?.duplicateDrops, 2);
  await raw.close();
  await server.close();
});

test('duplicate request cache: bounded; the oldest answered entries are evicted first', async (t) => {
  const { server, port, runs } = await start({ udp: { duplicateCacheSize: 4 } });
  const raw = await rawUdp();
  for (let i = 0; i < 6; i++) {
    await raw.send(callDatagram(100 + i, Proc.COUNT, Buffer.from([0, 0, 0, i])), port);
    await raw.next();
  }
  // XID 100 was evicted: its retransmission runs again; XID 105 is still cached.
  await raw.send(callDatagram(105, Proc.COUNT, Buffer.from([0, 0, 0, 5])), port);
  await raw.next();
  await raw.send(callDatagram(100, Proc.COUNT, Buffer.from([0, 0, 0, 0])), port);
  await raw.next();
  t.is(runs.get('00000005'), 1);
  t.is(runs.get('00000000'), 2);
  await raw.close();
  await server.close();
});

test('a TLS probe over UDP is not answered STARTTLS (no TLS on this transport)', async (t) => {
  const { server, port } = await start();
  const udp = new UdpClient({ port });
  const reply: RpcReply = await udp.callForReply(PROG, 1, 0, undefined, { auth: AUTH_TLS });
  t.is(reply.replyStat, ReplyStat.MSG_DENIED);
  t.is(reply.authStat, AuthStat.AUTH_REJECTEDCRED);
  t.is(reply.verf, undefined);
  await udp.close();
  await server.close();
});

test('per-address bound: calls past maxIncomingCallsPerAddress in flight are dropped, others served', async (t) => {
  const { server, port } = await start({ udp: { maxIncomingCallsPerAddress: 2 } });
  const raw = await rawUdp();
  for (let i = 0; i < 5; i++) await raw.send(callDatagram(500 + i, Proc.NEVER, Buffer.alloc(0)), port);
  await until(() => (server.udpStats?.droppedPerAddress ?? 0) === 3);
  t.is(server.udpStats?.droppedPerAddress, 3);
  await raw.close();
  await server.close();
});

test('per-address rate: past maxCallsPerSecondPerAddress calls are dropped', async (t) => {
  const { server, port } = await start({ udp: { maxCallsPerSecondPerAddress: 10 } });
  const raw = await rawUdp();
  for (let i = 0; i < 30; i++) await raw.send(callDatagram(700 + i, Proc.ECHO, Buffer.alloc(0)), port);
  await until(() => (server.udpStats?.callsReceived ?? 0) === 30);
  const dropped = server.udpStats?.droppedPerAddress ?? 0;
  // 10 tokens at the start, refilled at 10/s while the 30 are sent.
  t.true(dropped >= 15 && dropped <= 20, `${dropped} dropped`);
  await raw.close();
  await server.close();
});

test('options are validated at construction with precise messages', (t) => {
  t.throws(() => new UdpClient({ port: 0 }), { code: 'ERR_RPC_INVALID_OPTION', message: /port must be an integer from 1 to 65535/ });
  t.throws(() => new UdpClient({ port: 1, maxDatagramSize: 70000 }), { message: /maxDatagramSize must be an integer from 28 to 65507/ });
  t.throws(() => new UdpClient({ port: 1, retransmitTimeout: 500, maxRetransmitTimeout: 100 }), { message: /maxRetransmitTimeout must be an integer from 500/ });
  t.throws(() => new RpcServer({ udp: { duplicateCacheSize: -1 } }), { message: /udp.duplicateCacheSize must be an integer from 0/ });
  t.throws(() => new RpcServer({ udp: { maxIncomingCallsPerAddress: 0 } }), { message: /udp.maxIncomingCallsPerAddress must be an integer from 1/ });
});

test('close: calls in flight finish, new calls are refused', async (t) => {
  const { server, port } = await start();
  const udp = new UdpClient({ port });
  const inFlight = udp.call(PROG, 1, Proc.SLOW_COUNT, Buffer.from('000000ff', 'hex'));
  await new Promise((r) => setTimeout(r, 10));
  const closing = udp.close();
  await t.throwsAsync(udp.call(PROG, 1, Proc.ECHO), { code: 'ERR_RPC_CONNECTION_CLOSED' });
  t.deepEqual(await inFlight, Buffer.from('000000ff', 'hex'));
  await closing;
  await server.close();
});

test('the message of a decoded UDP reply is what decodeMessage reads (sanity of the raw helper)', async (t) => {
  const { server, port } = await start();
  const raw = await rawUdp();
  await raw.send(callDatagram(42, Proc.ECHO, Buffer.from('cafe0000', 'hex')), port);
  const reply = decodeMessage(await raw.next()) as RpcReply;
  t.like(reply, { xid: 42, replyStat: ReplyStat.MSG_ACCEPTED, acceptStat: AcceptStat.SUCCESS });
  t.deepEqual(reply.results, Buffer.from('cafe0000', 'hex'));
  await raw.close();
  await server.close();
});

test('IPv6: a server on ::1 answers a client that names it, and one that names it "localhost" when that resolves to ::1', async (t) => {
  const server = new RpcServer();
  server.addProgram({ program: PROG, version: 1, procedures: { [Proc.ECHO]: (args: Buffer) => args } });
  const { port } = await server.listen({ host: '::1', udp: true });
  t.teardown(() => server.close());
  t.is(server.udpAddress()?.family, 'IPv6');
  const udp = new UdpClient({ host: '::1', port });
  t.deepEqual(await udp.call(PROG, 1, Proc.ECHO, Buffer.from('0000beef', 'hex')), Buffer.from('0000beef', 'hex'));
  t.is(udp.stats.foreignDatagrams, 0);
  await udp.close();
  const unresolvable = new UdpClient({ host: 'no-such-host.invalid', port });
  await t.throwsAsync(unresolvable.call(PROG, 1, Proc.ECHO), { code: 'ERR_RPC_CONNECT' });
  await unresolvable.close();
});

test('a UDP handler that throws: SYSTEM_ERR to the caller, one handlerError on the server, no listener per source', async (t) => {
  const server = new RpcServer();
  server.addProgram({ program: PROG, version: 1, procedures: { 9: () => { throw new Error('udp handler broke'); } } });
  const { port } = await server.listen({ host: '127.0.0.1', udp: true });
  const errors: unknown[] = [];
  const contexts: CallContext[] = [];
  server.on('handlerError', (error, context) => {
    errors.push(error);
    contexts.push(context);
  });
  const udp = new UdpClient({ port });
  try {
    await t.throwsAsync(udp.call(PROG, 1, 9), { code: 'ERR_RPC_SYSTEM_ERR' });
    t.like(errors, [{ message: 'udp handler broke' }]);
    const source = contexts[0]!.connection;
    t.is(source.listenerCount('handlerError'), 0);
    t.is(source.remoteAddress, '127.0.0.1');
  } finally {
    await udp.close();
    await server.close();
  }
});
