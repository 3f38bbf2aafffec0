// Hostile catalogue, RPC message headers and auth (H10-H26): malformed CALLs sent to a server, and
// malformed or unexpected REPLYs sent to a client by a lying server.
import type net from 'node:net';

import test from 'ava';

import { RpcClient } from '../../src/rpc/client.js';
import { PROG, Proc, VERS, arena, authSysBody, callRecord, codeOf, raw, record, recordServer, u32, until, xopaque } from './helpers.js';

// ---- server side -------------------------------------------------------------------------------

/** Sends one bad call; expects one reply matching `expected` and the connection to stay open and usable. */
async function answeredAndOpen(t: import('ava').ExecutionContext, bad: Buffer, expected: Record<string, unknown>): Promise<void> {
  const a = await arena();
  const r = await raw(a.port);
  r.write(bad);
  const [reply] = await r.waitMessages(1);
  t.like(reply, expected);
  // The same connection still works: a good call after it is answered.
  r.write(callRecord({ xid: 0x600d, args: Buffer.from('ok') }));
  const messages = await r.waitMessages(2);
  t.like(messages[1], { xid: 0x600d, replyStat: 0, acceptStat: 0 });
  t.false(r.isClosed());
  t.deepEqual(a.codes(), []);
  r.socket.destroy();
  await a.bystanderServed();
  await a.close();
}

/** Sends one bad record; expects no reply and the connection closed with `code`. */
async function closedWith(t: import('ava').ExecutionContext, bad: Buffer, code: string): Promise<void> {
  const a = await arena();
  const r = await raw(a.port);
  r.write(bad);
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), [code]);
  t.is(r.messages().length, 0, 'no reply');
  await a.bystanderServed();
  await a.close();
}

const DENIED = { replyStat: 1, rejectStat: 1 };

test('H10 rpcvers 3: MSG_DENIED RPC_MISMATCH 2..2; the connection stays open', (t) =>
  answeredAndOpen(t, callRecord({ xid: 10, rpcvers: 3 }), { xid: 10, replyStat: 1, rejectStat: 0, low: 2, high: 2 }));

test('H11 msg_type 2 (neither CALL nor REPLY): closed with ERR_RPC_MALFORMED_MESSAGE, no reply', (t) =>
  closedWith(t, callRecord({ xid: 11, msgType: 2 }), 'ERR_RPC_MALFORMED_MESSAGE'));

test('H12 a record shorter than a CALL header (xid, CALL, rpcvers only): closed with ERR_RPC_MALFORMED_MESSAGE', (t) =>
  closedWith(t, record(u32(12, 0, 2)), 'ERR_RPC_MALFORMED_MESSAGE'));

test('H13 credential body of 401 bytes (> 400): AUTH_ERROR AUTH_BADCRED; the connection stays open', (t) =>
  answeredAndOpen(t, callRecord({ xid: 13, credFlavor: 1, credRaw: xopaque(Buffer.alloc(401)) }), { xid: 13, ...DENIED, authStat: 1 }));

test('H14 verifier body of 401 bytes (> 400): AUTH_ERROR AUTH_BADCRED; the connection stays open', (t) =>
  answeredAndOpen(t, callRecord({ xid: 14, verfFlavor: 0, verfRaw: xopaque(Buffer.alloc(401)) }), { xid: 14, ...DENIED, authStat: 1 }));

test('H15 credential length 0xffffffff (beyond the record): AUTH_BADCRED without allocating; connection open', (t) =>
  answeredAndOpen(t, callRecord({ xid: 15, credRaw: u32(0xffffffff) }), { xid: 15, ...DENIED, authStat: 1 }));

test('H16 credential length 300 (<= 400) but the record ends first: closed with ERR_RPC_MALFORMED_MESSAGE', (t) =>
  closedWith(t, callRecord({ xid: 16, credRaw: Buffer.concat([u32(300), Buffer.alloc(20)]), verfRaw: Buffer.alloc(0) }), 'ERR_RPC_MALFORMED_MESSAGE'));

test('H17 AUTH_SYS with 17 gids: AUTH_BADCRED; the connection stays open', (t) =>
  answeredAndOpen(t, callRecord({ xid: 17, credFlavor: 1, credRaw: xopaque(authSysBody({ gids: new Array(17).fill(5) })) }), { xid: 17, ...DENIED, authStat: 1 }));

test('H18 AUTH_SYS with a 256-byte machinename: AUTH_BADCRED; the connection stays open', (t) =>
  answeredAndOpen(t, callRecord({ xid: 18, credFlavor: 1, credRaw: xopaque(authSysBody({ machinename: Buffer.alloc(256, 0x61) })) }), { xid: 18, ...DENIED, authStat: 1 }));

test('H19 AUTH_SYS whose gid count lies (16 declared, 2 present) or with trailing bytes: AUTH_BADCRED both', async (t) => {
  await answeredAndOpen(t, callRecord({ xid: 19, credFlavor: 1, credRaw: xopaque(authSysBody({ gids: [1, 2], gidCount: 16 })) }), { xid: 19, ...DENIED, authStat: 1 });
  await answeredAndOpen(t, callRecord({ xid: 20, credFlavor: 1, credRaw: xopaque(authSysBody({ trailing: u32(7) })) }), { xid: 20, ...DENIED, authStat: 1 });
});

test('H20 unknown auth flavor 9 (no authenticate hook): AUTH_REJECTEDCRED; the connection stays open', (t) =>
  answeredAndOpen(t, callRecord({ xid: 21, credFlavor: 9, credRaw: xopaque(Buffer.from('abcd')) }), { xid: 21, ...DENIED, authStat: 2 }));

test('H21 duplicate XIDs in flight from one client: the server answers both (no dedup), each with that XID', async (t) => {
  const a = await arena();
  const r = await raw(a.port);
  r.write(callRecord({ xid: 0xd0, procedure: 14, args: Buffer.from('one!') }), callRecord({ xid: 0xd0, procedure: 14, args: Buffer.from('two!') }));
  const messages = await r.waitMessages(2);
  t.deepEqual(messages.map((m) => m.xid), [0xd0, 0xd0]);
  t.deepEqual(messages.map((m) => (m as { results: Buffer }).results.toString()).sort(), ['one!', 'two!']);
  r.socket.destroy();
  await a.bystanderServed();
  await a.close();
});

test('H22 an unsolicited REPLY sent to the server: ignored (counted as unmatched), the connection stays open', async (t) => {
  const a = await arena();
  const r = await raw(a.port);
  r.write(record(u32(0xbad, 1, 0, 0, 0, 0)));
  r.write(callRecord({ xid: 0x600d, args: Buffer.from('ok') }));
  const [reply] = await r.waitMessages(1);
  t.like(reply, { xid: 0x600d, acceptStat: 0 });
  const connection = [...a.server.connections].find((c) => c.stats.unmatchedReplies > 0);
  t.is(connection?.stats.unmatchedReplies, 1);
  r.socket.destroy();
  await a.bystanderServed();
  await a.close();
});

// ---- client side: a lying server ----------------------------------------------------------------

/** A server that hands every received CALL (xid, body) to `answer`, which writes what it likes. */
function liar(answer: (xid: number, socket: net.Socket, body: Buffer) => void): Promise<{ port: number; close(): void }> {
  return recordServer((body, socket) => answer(body.readUInt32BE(0), socket, body));
}

const success = (xid: number, results: Buffer = Buffer.alloc(0)): Buffer => record(Buffer.concat([u32(xid, 1, 0, 0, 0, 0), results]));

test('H23 a reply for an unknown XID: counted and emitted as unmatchedReply, the real reply still settles the call', async (t) => {
  const l = await liar((xid, socket) => socket.write(Buffer.concat([success((xid ^ 0xffff) >>> 0), success(xid, u32(0x0c))])));
  const client = new RpcClient({ port: l.port, timeout: 2000 });
  const unmatched: number[] = [];
  client.on('connect', (c) => c.on('unmatchedReply', (xid: number) => unmatched.push(xid)));
  t.deepEqual(await client.call(PROG, VERS, Proc.ECHO), u32(0x0c));
  t.is(client.connection?.stats.unmatchedReplies, 1);
  t.is(unmatched.length, 1);
  t.deepEqual(await client.call(PROG, VERS, Proc.ECHO), u32(0x0c), 'the connection goes on');
  client.destroy();
  l.close();
});

test('H24 the same reply twice (duplicate XID from the server): the first settles the call, the second is unmatched', async (t) => {
  const l = await liar((xid, socket) => socket.write(Buffer.concat([success(xid, u32(1)), success(xid, u32(2))])));
  const client = new RpcClient({ port: l.port, timeout: 2000 });
  t.deepEqual(await client.call(PROG, VERS, Proc.ECHO), u32(1));
  await until(() => client.connection?.stats.unmatchedReplies === 1);
  t.deepEqual(await client.call(PROG, VERS, Proc.ECHO), u32(1));
  client.destroy();
  l.close();
});

test('H25 a reply with reply_stat 7: client connection closed, the pending call fails ERR_RPC_CONNECTION_CLOSED caused by ERR_RPC_MALFORMED_MESSAGE', async (t) => {
  const l = await liar((xid, socket) => socket.write(record(u32(xid, 1, 7))));
  const client = new RpcClient({ port: l.port, timeout: 2000 });
  const error = await t.throwsAsync(client.call(PROG, VERS, Proc.ECHO));
  t.is(codeOf(error), 'ERR_RPC_CONNECTION_CLOSED');
  t.is(codeOf((error as Error).cause), 'ERR_RPC_MALFORMED_MESSAGE');
  t.is(client.connection, null);
  client.destroy();
  l.close();
});

test('H26 a reply with an undefined accept_stat 9: ERR_RPC_UNKNOWN_ACCEPT_STAT (acceptStat 9); the connection goes on', async (t) => {
  let n = 0;
  const l = await liar((xid, socket) => socket.write(n++ === 0 ? record(u32(xid, 1, 0, 0, 0, 9)) : success(xid)));
  const client = new RpcClient({ port: l.port, timeout: 2000 });
  const error = await t.throwsAsync(client.call(PROG, VERS, Proc.ECHO));
  t.like(error, { code: 'ERR_RPC_UNKNOWN_ACCEPT_STAT', acceptStat: 9 });
  t.deepEqual(await client.call(PROG, VERS, Proc.ECHO), Buffer.alloc(0));
  client.destroy();
  l.close();
});
