// The connection reads the common call (RPC version 2, empty AUTH_NONE credential and verifier) from the
// record without decoding a message. Whatever path a call takes, its handler must see the same context,
// and every other call must still get the full decode and its checks.
import test from 'ava';
import { type Duplex, duplexPair } from 'node:stream';
import { AUTH_NONE, authSys } from '../../src/rpc/auth.js';
import { RpcConnection } from '../../src/rpc/connection.js';
import { AcceptStat, AuthFlavor, MsgType, RejectStat, ReplyStat } from '../../src/rpc/constants.js';
import { type RpcCall, type RpcReply, decodeMessage, writeCallHeader } from '../../src/rpc/message.js';
import type { OpaqueAuth } from '../../src/rpc/auth.js';
import type { CallContext } from '../../src/rpc/program.js';
import { XdrWriter } from '../../src/xdr/index.js';

const PROG = 0x20000001;

/** One call record with its mark; `rpcvers` other than 2 is written over the header's. */
function callRecord(xid: number, procedure: number, args: Buffer, cred: OpaqueAuth = AUTH_NONE, verf: OpaqueAuth = AUTH_NONE, rpcvers = 2): Buffer {
  const w = new XdrWriter(128);
  w.reserve4();
  writeCallHeader(w, xid, PROG, 1, procedure, cred, verf);
  w.fixedOpaque(args, args.length);
  const record = Buffer.concat(w.finish());
  record.writeUInt32BE((0x80000000 | (record.length - 4)) >>> 0, 0);
  record.writeUInt32BE(rpcvers, 12);
  return record;
}

interface Seen {
  context: CallContext;
  args: Buffer;
}

/** A server connection over one end of a pair; the test writes raw records into the other end. */
function serve(interceptCall?: (call: RpcCall) => boolean): { server: RpcConnection; raw: Duplex; seen: Seen[]; replies: () => Promise<RpcReply[]> } {
  const [raw, end] = duplexPair();
  const seen: Seen[] = [];
  const server = new RpcConnection(end, interceptCall === undefined ? {} : { interceptCall: (call) => interceptCall(call) });
  server.addProgram({
    program: PROG,
    version: 1,
    procedures: {
      1: (args: Buffer, context: CallContext) => {
        seen.push({ context, args });
        return args;
      },
    },
  });
  let pending = Buffer.alloc(0);
  const got: RpcReply[] = [];
  raw.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0) & 0x7fffffff;
      if (pending.length < 4 + length) break;
      got.push(decodeMessage(pending.subarray(4, 4 + length)) as RpcReply);
      pending = pending.subarray(4 + length);
    }
  });
  const replies = async (): Promise<RpcReply[]> => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    return got;
  };
  return { server, raw, seen, replies };
}

test('plain calls several to a chunk: each handler gets its own header fields, the shared AUTH_NONE, and its arguments as a view of the chunk', async (t) => {
  const { server, raw, seen, replies } = serve();
  const records = [callRecord(11, 1, Buffer.from('first...')), callRecord(12, 1, Buffer.alloc(0)), callRecord(0xfffffffe, 1, Buffer.from('third!!!'))];
  const chunk = Buffer.concat(records);
  raw.write(chunk);
  const got = await replies();
  t.deepEqual(seen.map((s) => [s.context.xid, s.context.program, s.context.version, s.context.procedure]), [[11, PROG, 1, 1], [12, PROG, 1, 1], [0xfffffffe, PROG, 1, 1]]);
  t.deepEqual(seen.map((s) => s.args.toString()), ['first...', '', 'third!!!']);
  for (const s of seen) {
    t.is(s.context.cred, AUTH_NONE);
    t.is(s.context.verf, AUTH_NONE);
    t.is(s.context.authSys, null);
    t.is(s.context.connection, server);
  }
  t.is(seen[0]?.args.buffer, chunk.buffer, 'the arguments are a view, not a copy');
  t.deepEqual(got.map((r) => [r.xid, r.acceptStat, r.results?.toString()]), [[11, AcceptStat.SUCCESS, 'first...'], [12, AcceptStat.SUCCESS, ''], [0xfffffffe, AcceptStat.SUCCESS, 'third!!!']]);
  t.is(server.stats.callsReceived, 3);
  t.is(server.stats.repliesSent, 3);
  server.destroy();
});

test('calls the fast path must not take still get the full decode: a verifier with a body, AUTH_SYS, another RPC version, an unknown flavor', async (t) => {
  const { server, raw, seen, replies } = serve();
  const verf = { flavor: AuthFlavor.AUTH_NONE, body: Buffer.from('abcd') };
  const sys = authSys({ uid: 1000, gid: 100, machinename: 'host' });
  raw.write(Buffer.concat([
    callRecord(1, 1, Buffer.from('aaaa'), AUTH_NONE, verf),
    callRecord(2, 1, Buffer.from('bbbb'), sys),
    callRecord(3, 1, Buffer.from('cccc'), AUTH_NONE, AUTH_NONE, 3),
    callRecord(4, 1, Buffer.from('dddd'), { flavor: 99, body: Buffer.alloc(0) }),
  ]));
  const got = await replies();
  t.deepEqual(seen.map((s) => s.context.xid), [1, 2]);
  t.deepEqual([...(seen[0]?.context.verf.body ?? [])], [...verf.body]);
  t.is(seen[1]?.context.authSys?.uid, 1000);
  const byXid = new Map(got.map((r) => [r.xid, r]));
  t.is(byXid.get(1)?.acceptStat, AcceptStat.SUCCESS);
  t.is(byXid.get(2)?.acceptStat, AcceptStat.SUCCESS);
  t.is(byXid.get(3)?.replyStat, ReplyStat.MSG_DENIED);
  t.is(byXid.get(3)?.rejectStat, RejectStat.RPC_MISMATCH);
  t.is(byXid.get(4)?.rejectStat, RejectStat.AUTH_ERROR);
  t.is(server.stats.callsReceived, 4);
  server.destroy();
});

test('with an interceptCall every call reaches it as a decoded message, plain ones included', async (t) => {
  const intercepted: RpcCall[] = [];
  const { server, raw, seen, replies } = serve((call) => {
    intercepted.push(call);
    return call.xid === 21; // handled: it gets no reply from the dispatcher
  });
  raw.write(Buffer.concat([callRecord(21, 1, Buffer.from('held')), callRecord(22, 1, Buffer.from('goes'))]));
  const got = await replies();
  t.deepEqual(intercepted.map((c) => [c.type, c.xid, c.args.toString()]), [[MsgType.CALL, 21, 'held'], [MsgType.CALL, 22, 'goes']]);
  t.deepEqual(seen.map((s) => s.context.xid), [22]);
  t.deepEqual(got.map((r) => r.xid), [22]);
  server.destroy();
});
