// Hostile datagrams (docs/hardening.md H90-H97): truncated headers, lying lengths, oversized datagrams,
// replies from the wrong source, messages of the wrong direction, and a flood from one address while
// another is served. Each entry asserts the server (or client) stays up and a bystander is served.
import dgram from 'node:dgram';

import test from 'ava';
import fc from 'fast-check';

import { AUTH_NONE } from '../../src/rpc/auth.js';
import { AcceptStat, AuthStat, ReplyStat } from '../../src/rpc/constants.js';
import { type RpcReply, decodeMessage, writeAcceptedHeader } from '../../src/rpc/message.js';
import { RpcServer, type ServerOptions } from '../../src/rpc/server.js';
import { UdpClient } from '../../src/rpc/udp-client.js';
import { opaque, uint } from '../../src/xdr/codec.js';
import { XdrWriter } from '../../src/xdr/writer.js';
import { until } from '../helpers/net.js';
import { callDatagram, rawUdp } from '../helpers/udp.js';

const PROG = 0x20000103;
const Proc = { ECHO: 1, LENGTH: 2, SLOW: 3 } as const;

async function arena(options: ServerOptions = {}) {
  let slowRunning = 0;
  let slowPeak = 0;
  const server = new RpcServer(options);
  server.addProgram({
    program: PROG,
    version: 1,
    procedures: {
      [Proc.ECHO]: (args: Buffer) => args,
      [Proc.LENGTH]: { args: opaque(), result: uint, handler: (data: Buffer) => data.length },
      [Proc.SLOW]: async (args: Buffer) => {
        slowPeak = Math.max(slowPeak, ++slowRunning);
        await new Promise((r) => setTimeout(r, 20));
        slowRunning--;
        return args;
      },
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', udp: true });
  const bystander = new UdpClient({ port, localAddress: '127.0.0.2', timeout: 5000, retransmitTimeout: 100 });
  const served = async (): Promise<boolean> => (await bystander.call(PROG, 1, Proc.ECHO, Buffer.from('0000002a', 'hex'))).equals(Buffer.from('0000002a', 'hex'));
  return {
    server,
    port,
    served,
    slowPeak: () => slowPeak,
    async close() {
      await bystander.close();
      await server.close();
    },
  };
}

const call = (xid: number, procedure: number, args: Buffer): Buffer => callDatagram(PROG, xid, procedure, args);

test('H90 truncated headers: every prefix of a call (0-39 bytes) is dropped unanswered and counted', async (t) => {
  const a = await arena();
  const raw = await rawUdp();
  const whole = call(7, Proc.ECHO, Buffer.from('00000004cafebabe', 'hex'));
  // 24 bytes is where the cred begins: every prefix shorter than the two opaque_auth headers is short.
  for (let n = 0; n < 40; n++) await raw.send(whole.subarray(0, n), a.port);
  await until(() => a.server.udpStats!.datagramsReceived === 40);
  t.is(a.server.udpStats!.malformedDatagrams, 40);
  t.is(a.server.udpStats!.callsReceived, 0);
  t.true(await a.served());
  t.is(raw.received.length, 0, 'no answer to a header that is not whole');
  await raw.close();
  await a.close();
});

test('H91 lying lengths: a cred length past the datagram is dropped; one over 400 is AUTH_BADCRED; an args length past the data is GARBAGE_ARGS', async (t) => {
  const a = await arena();
  const raw = await rawUdp();
  t.teardown(async () => {
    await raw.close();
    await a.close();
  });
  const header = (xid: number): Buffer => call(xid, Proc.LENGTH, Buffer.alloc(0)).subarray(0, 24);
  const u32 = (...w: number[]): Buffer => Buffer.from(w.flatMap((x) => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255]));
  // cred AUTH_NONE claiming 300 bytes (within the limit), 8 present: not a whole header, dropped.
  await raw.send(Buffer.concat([header(8), u32(0, 300, 0, 0)]), a.port);
  // cred claiming 0xfffffff0 bytes: over the 400-byte limit, answered as over TCP, nothing allocated.
  await raw.send(Buffer.concat([header(9), u32(1, 0xfffffff0, 0, 0)]), a.port);
  const badcred = decodeMessage(await raw.next()) as RpcReply;
  t.like(badcred, { xid: 9, replyStat: ReplyStat.MSG_DENIED, authStat: AuthStat.AUTH_BADCRED });
  // opaque<> argument claiming 1 MiB with 4 bytes present.
  await raw.send(call(10, Proc.LENGTH, u32(1 << 20, 0xdeadbeef)), a.port);
  const garbage = decodeMessage(await raw.next()) as RpcReply;
  t.like(garbage, { xid: 10, replyStat: ReplyStat.MSG_ACCEPTED, acceptStat: AcceptStat.GARBAGE_ARGS });
  await until(() => a.server.udpStats!.datagramsReceived === 3);
  t.is(a.server.udpStats!.malformedDatagrams, 1);
  t.is(raw.received.length, 2);
  t.true(await a.served());
});

test('H92 oversized datagrams: past maxDatagramSize they are dropped unread; one from the server fails its call at once', async (t) => {
  const a = await arena({ udp: { maxDatagramSize: 1024 } });
  const raw = await rawUdp();
  t.teardown(async () => {
    await raw.close();
    await a.close();
  });
  await raw.send(call(11, Proc.ECHO, Buffer.alloc(2000)), a.port);
  await until(() => a.server.udpStats!.oversizedDatagrams === 1);
  t.is(a.server.udpStats!.callsReceived, 0);
  t.is(raw.received.length, 0);
  // A client whose server answers with a datagram over the client's cap: from another port it is only
  // counted; from the server it fails the call it answers, without waiting for the timeout.
  const client = new UdpClient({ port: raw.port, maxDatagramSize: 1024, timeout: 10_000 });
  t.teardown(() => client.close());
  const pending = client.call(PROG, 1, Proc.ECHO, Buffer.alloc(4));
  const request = await raw.next();
  const w = new XdrWriter(2100);
  writeAcceptedHeader(w, request.readUInt32BE(0), AUTH_NONE, AcceptStat.SUCCESS);
  w.raw(Buffer.alloc(2000));
  const oversized = w.toBuffer();
  const clientPort = (raw.received[0] as { port: number }).port;
  const other = await rawUdp();
  t.teardown(() => other.close());
  await other.send(oversized, clientPort);
  await until(() => client.stats.oversizedDatagrams === 1);
  t.is(client.pendingCalls, 1, 'an oversized datagram from another source settles nothing');
  const started = Date.now();
  await raw.send(oversized, clientPort);
  await t.throwsAsync(pending, { code: 'ERR_RPC_DATAGRAM_TOO_LARGE', instanceOf: Error, message: /message of 2024 bytes exceeds maxDatagramSize 1024/ });
  t.true(Date.now() - started < 1000);
  t.is(client.stats.oversizedDatagrams, 2);
  t.is(client.stats.repliesReceived, 0);
  t.true(await a.served());
});

test('H93 replies from another port or address with the right XID are ignored; the real reply settles the call', async (t) => {
  const server = await rawUdp();
  const client = new UdpClient({ port: server.port, timeout: 3000, retransmitTimeout: 2000 });
  const pending = client.call(PROG, 1, Proc.ECHO, Buffer.from('00000001', 'hex'));
  const request = await server.next();
  const clientPort = (server.received[0] as { port: number }).port;
  const reply = (payload: string): Buffer => {
    const w = new XdrWriter(64);
    writeAcceptedHeader(w, request.readUInt32BE(0), AUTH_NONE, AcceptStat.SUCCESS);
    w.raw(Buffer.from(payload, 'hex'));
    return w.toBuffer();
  };
  // Same host, another port.
  const otherPort = await rawUdp();
  await otherPort.send(reply('66666666'), clientPort);
  // Another address (127.0.0.2), the server's port number.
  const otherAddress = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => otherAddress.bind(server.port, '127.0.0.2', resolve));
  await new Promise((resolve) => otherAddress.send(reply('77777777'), clientPort, '127.0.0.1', resolve));
  await until(() => client.stats.foreignDatagrams === 2);
  await server.send(reply('00000001'), clientPort);
  t.deepEqual(await pending, Buffer.from('00000001', 'hex'));
  t.is(client.stats.foreignDatagrams, 2);
  t.is(client.stats.repliesReceived, 1);
  await client.close();
  await otherPort.close();
  await new Promise<void>((resolve) => otherAddress.close(() => resolve()));
  await server.close();
});

test('H94 wrong direction: a REPLY sent to the server and a CALL sent to a client are counted and ignored', async (t) => {
  const a = await arena();
  const raw = await rawUdp();
  const w = new XdrWriter(64);
  writeAcceptedHeader(w, 12, AUTH_NONE, AcceptStat.SUCCESS);
  await raw.send(w.toBuffer(), a.port);
  await until(() => a.server.udpStats!.malformedDatagrams === 1);
  t.is(raw.received.length, 0);
  const client = new UdpClient({ port: raw.port, timeout: 200 });
  const pending = client.call(PROG, 1, Proc.ECHO);
  await raw.next();
  await raw.send(call(13, Proc.ECHO, Buffer.alloc(0)), (raw.received[0] as { port: number }).port);
  await t.throwsAsync(pending, { code: 'ERR_RPC_TIMEOUT' });
  t.is(client.stats.malformedDatagrams, 1);
  t.true(await a.served());
  await client.close();
  await raw.close();
  await a.close();
});

test('H95 a flood from one address while another is served: the flooder holds at most its per-address share', async (t) => {
  const a = await arena({ udp: { maxIncomingCallsPerAddress: 8, maxIncomingCalls: 64 } });
  const flooder = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => flooder.bind(0, '127.0.0.1', resolve));
  let flooding = true;
  let xid = 1;
  const flood = (async () => {
    while (flooding) {
      for (let i = 0; i < 200; i++) flooder.send(call(xid++, Proc.SLOW, Buffer.alloc(4)), a.port, '127.0.0.1');
      await new Promise((r) => setImmediate(r));
    }
  })();
  const started = Date.now();
  let ok = 0;
  for (let i = 0; i < 30; i++) if (await a.served()) ok++;
  const elapsed = Date.now() - started;
  flooding = false;
  await flood;
  t.is(ok, 30, 'every bystander call answered');
  t.true(elapsed < 10_000, `bystander served within ${elapsed} ms`);
  t.true(a.slowPeak() <= 8, `flooder had at most 8 calls running (peak ${a.slowPeak()})`);
  t.true(a.server.udpStats!.droppedPerAddress > 100, `${a.server.udpStats!.droppedPerAddress} flood calls dropped`);
  t.log(`${xid - 1} flood datagrams sent; ${a.server.udpStats!.droppedPerAddress} dropped per address; bystander 30 calls in ${elapsed} ms`);
  await new Promise<void>((resolve) => flooder.close(() => resolve()));
  await a.close();
});

test('H96 many sources: past maxSources the oldest idle one is forgotten; when all are busy new ones are dropped', async (t) => {
  const a = await arena({ udp: { maxSources: 4, duplicateCacheSize: 0 } });
  const sockets = await Promise.all(Array.from({ length: 6 }, () => rawUdp()));
  // Four sources each with a call running: a fifth cannot be remembered, its call is dropped.
  for (let i = 0; i < 4; i++) await (sockets[i] as Awaited<ReturnType<typeof rawUdp>>).send(call(20 + i, Proc.SLOW, Buffer.alloc(0)), a.port);
  await (sockets[4] as Awaited<ReturnType<typeof rawUdp>>).send(call(30, Proc.ECHO, Buffer.alloc(0)), a.port);
  await until(() => a.server.udpStats!.droppedBusy === 1);
  // Once they are idle, a new source replaces the oldest.
  await until(() => sockets.slice(0, 4).every((s) => s.received.length === 1));
  await (sockets[5] as Awaited<ReturnType<typeof rawUdp>>).send(call(31, Proc.ECHO, Buffer.alloc(0)), a.port);
  const reply = decodeMessage(await (sockets[5] as Awaited<ReturnType<typeof rawUdp>>).next()) as RpcReply;
  t.is(reply.xid, 31);
  t.is(a.server.udpStats!.droppedBusy, 1);
  await Promise.all(sockets.map((s) => s.close()));
  await a.close();
});

test('H97 2,000 random and mutated datagrams (fast-check): each answered as a call or dropped and counted; server up, others served', async (t) => {
  const a = await arena();
  const raw = await rawUdp();
  t.teardown(async () => {
    await raw.close();
    await a.close();
  });
  const valid = call(1, Proc.LENGTH, Buffer.from('00000003616263ff', 'hex'));
  const mutated = fc
    .tuple(fc.integer({ min: 0, max: valid.length }), fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.uint8Array({ maxLength: 16 }))
    .map(([cut, flips, tail]) => {
      const b = Buffer.concat([valid.subarray(0, cut), Buffer.from(tail)]);
      for (const [at, value] of flips) if (at < b.length) b[at] = value;
      return b;
    });
  const datagrams = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 120 }).map((u) => Buffer.from(u)), mutated), { numRuns: 2000, seed: 17 });
  for (let i = 0; i < datagrams.length; i++) {
    await raw.send(datagrams[i] as Buffer, a.port);
    // Paced, so the socket's receive buffer never overflows and every datagram is accounted for.
    if (i % 50 === 49) await until(() => a.server.udpStats!.datagramsReceived === i + 1);
  }
  await until(() => a.server.udpStats!.datagramsReceived === datagrams.length);
  const stats = a.server.udpStats!;
  t.is(stats.malformedDatagrams + stats.callsReceived, datagrams.length);
  await until(() => raw.received.length === stats.callsReceived - stats.duplicateDrops - stats.droppedPerAddress, 5000);
  for (const { data } of raw.received) t.is(decodeMessage(data).type, 1, 'every answer is a REPLY');
  t.true(await a.served());
  t.log(`${stats.callsReceived} answered as calls (${stats.duplicateHits} from the duplicate cache), ${stats.malformedDatagrams} dropped as malformed`);
});
