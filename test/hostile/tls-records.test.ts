// Hostile catalogue, forged TLS 1.3 records in the middle of an RPC record (H59-H66), injected with the
// session's real keys by test/helpers/tls-forge.ts (ForgeRelay): alerts of every level, NewSessionTicket
// floods both ways, KeyUpdate. The server-side entries check the offending connection's coded fate and that
// a bystander on the same server is still served. Userspace mode on the host, kernel mode in UML.
import test from 'ava';

import type { RpcClient } from '../../src/rpc/client.js';
import type { CallContext } from '../../src/rpc/program.js';
import type { TlsStream } from '../../src/tls/tls-stream.js';
import { RecordDecoder } from '../../src/transport/record-marking.js';
import { ContentType, ForgeRelay } from '../helpers/tls-forge.js';
import { expectKtls, kernelCanRekey, tlsClient } from '../tls/helpers.js';
import { type Forged, PROG, Proc, VERS, callBody, codeOf, forgedSession, record, u32, until } from './helpers.js';

const HALF_REPLY = 20;
let releaseSecondHalf: (() => void) | null = null;

function forged(): Promise<Forged> {
  // Writes its reply record in two halves, the second only when the test says so.
  return forgedSession((a) =>
    a.server.addProgram({
      program: PROG + 1,
      version: VERS,
      procedures: {
        [HALF_REPLY]: (args: Buffer, ctx: CallContext) => {
          const body = Buffer.concat([u32(ctx.xid, 1, 0, 0, 0, 0), args]);
          const wire = record(body);
          const transport = ctx.connection.transport!;
          transport.write(wire.subarray(0, 40));
          releaseSecondHalf = () => transport.write(wire.subarray(40));
          return new Promise<Buffer>(() => undefined); // the reply was written by hand
        },
      },
    }),
  );
}

/** Writes the first half of an RPC call record on the client's TLS stream, then a forged record to the server. */
async function midCall(f: Forged, type: number, content: Buffer, times = 1): Promise<void> {
  const body = callBody({ xid: 0x5151, args: Buffer.alloc(64, 0x33) });
  const wire = record(body);
  const before = f.relay.applicationRecords('toServer');
  f.stream.write(wire.subarray(0, 30));
  await f.relay.whenApplicationRecords('toServer', before + 1);
  for (let i = 0; i < times; i++) f.relay.inject('toServer', type, content);
  f.stream.write(wire.subarray(30));
}

/** The server closed the forged connection: returns the error it gave (connectionError / TLS). */
async function serverVerdict(f: Forged): Promise<string> {
  await until(() => f.a.errors.length + f.a.tlsErrors.length >= 1, 5000);
  await until(() => f.a.server.connections.size === 1, 5000); // only the bystander left
  await f.a.bystanderServed();
  return f.a.codes()[0]!;
}

test.serial('H59 close_notify [1,0] in the middle of a call record: the server ends the stream, ERR_RPC_TRUNCATED_RECORD; bystander served', async (t) => {
  const f = await forged();
  await midCall(f, ContentType.alert, ForgeRelay.alert(1, 0));
  t.is(await serverVerdict(f), 'ERR_RPC_TRUNCATED_RECORD');
  await f.close();
});

test.serial('H60 warning alert user_canceled [1,90] mid-record: userspace ignores it (RFC 8446 6.1) and answers the call; kernel mode: ERR_TLS_ALERT level 1', async (t) => {
  const f = await forged();
  const connection = f.client.connection!;
  const unmatched = connection.stats.unmatchedReplies;
  await midCall(f, ContentType.alert, ForgeRelay.alert(1, 90));
  if (expectKtls) {
    t.is(await serverVerdict(f), 'ERR_TLS_ALERT');
    t.like(f.a.errors[0] ?? f.a.tlsErrors[0], { level: 1, description: 90 });
  } else {
    // The hand-written call (xid 0x5151) is answered: the client counts a reply it did not send.
    await until(() => connection.stats.unmatchedReplies === unmatched + 1, 5000);
    t.deepEqual(f.a.codes(), []);
    t.deepEqual(await f.client.call(PROG, VERS, Proc.ECHO, Buffer.from('on')), Buffer.from('on'));
    await f.a.bystanderServed();
  }
  await f.close();
});

test.serial('H61 warning-level bad_certificate [1,42] mid-record (fatal in TLS 1.3 whatever the level): ERR_TLS_ALERT, closed', async (t) => {
  const f = await forged();
  await midCall(f, ContentType.alert, ForgeRelay.alert(1, 42));
  t.is(await serverVerdict(f), 'ERR_TLS_ALERT');
  t.like(f.a.errors[0] ?? f.a.tlsErrors[0], { description: 42 });
  await f.close();
});

test.serial('H62 fatal internal_error [2,80] mid-record: ERR_TLS_ALERT level 2, closed; bystander served', async (t) => {
  const f = await forged();
  await midCall(f, ContentType.alert, ForgeRelay.alert(2, 80));
  t.is(await serverVerdict(f), 'ERR_TLS_ALERT');
  t.like(f.a.errors[0] ?? f.a.tlsErrors[0], { level: 2, description: 80 });
  await f.close();
});

test.serial('H63 malformed alerts mid-record (level 3; a 3-byte alert): a coded ERR_TLS_* error, closed', async (t) => {
  for (const content of [Buffer.from([3, 80]), Buffer.from([2, 80, 0])]) {
    const f = await forged();
    await midCall(f, ContentType.alert, content);
    t.regex(await serverVerdict(f), /^ERR_TLS_/, content.toString('hex'));
    await f.close();
  }
});

test.serial('H64 1000 NewSessionTickets from the client mid-record (only servers may send them): coded refusal or discarded, never a crash; bystander served', async (t) => {
  const f = await forged();
  await midCall(f, ContentType.handshake, ForgeRelay.newSessionTicket(), 1000);
  // OpenSSL (userspace) refuses a ticket sent to a server; under kernel TLS the addon discards tickets.
  const outcome = await Promise.race([
    serverVerdict(f),
    new Promise<string>((resolve) => setTimeout(() => resolve('open'), 1500)),
  ]);
  if (outcome === 'open') {
    t.true(expectKtls, 'only kernel mode may keep going');
  } else {
    t.regex(outcome, /^ERR_TLS_/);
  }
  await f.a.bystanderServed();
  t.log(`server after 1000 client tickets: ${outcome}`);
  await f.close();
});

test.serial('H65 1000 NewSessionTickets from the server in the middle of a reply record: all discarded and counted, the reply intact', async (t) => {
  const f = await forged();
  const before = f.stream.counters.ticketsDiscarded;
  const payload = Buffer.alloc(200, 0x44);
  const rss = process.memoryUsage().rss;
  const pending = f.client.call(PROG + 1, VERS, HALF_REPLY, payload);
  const records = f.relay.applicationRecords('toClient');
  await until(() => releaseSecondHalf !== null);
  await f.relay.whenApplicationRecords('toClient', records + 1);
  for (let i = 0; i < 1000; i++) f.relay.inject('toClient', ContentType.handshake, ForgeRelay.newSessionTicket());
  releaseSecondHalf!();
  releaseSecondHalf = null;
  t.deepEqual(await pending, payload);
  t.is(f.stream.counters.ticketsDiscarded - before, 1000);
  t.true(process.memoryUsage().rss - rss < 64 * 1024 * 1024, 'bounded');
  t.deepEqual(await f.client.call(PROG, VERS, Proc.ECHO, Buffer.from('after')), Buffer.from('after'));
  await f.close();
});

test.serial('H66 KeyUpdate from the client mid-record, later records still under the old key: the server fails the connection with a coded ERR_TLS_* error (kernel < 6.14: ERR_TLS_KEY_UPDATE); bystander served', async (t) => {
  const f = await forged();
  await midCall(f, ContentType.handshake, ForgeRelay.keyUpdate(false));
  const code = await serverVerdict(f);
  if (expectKtls && !kernelCanRekey) t.is(code, 'ERR_TLS_KEY_UPDATE');
  else t.regex(code, /^ERR_TLS_/); // the update is followed; the relay's next old-key record then fails (H81 has the honest case)
  t.log(`server after a KeyUpdate mid-record: ${code}`);
  t.is(codeOf(undefined), undefined);
  await f.close();
});

/** Plaintext of the application data records the relay forwarded in `direction`. */
function applicationBytes(f: Forged, direction: 'toServer' | 'toClient'): Buffer {
  return Buffer.concat(
    f.relay.seen(direction).filter((r) => r.keys === 'application' && r.innerType === ContentType.applicationData).map((r) => r.content!),
  );
}

/** xids of the RPC replies (msg_type 1) among the plaintext the relay forwarded to the client. */
function repliedXids(f: Forged, xids: number[]): Set<number> {
  const replied = new Set<number>();
  new RecordDecoder((r) => {
    if (r.length >= 8 && r.readUInt32BE(4) === 1 && xids.includes(r.readUInt32BE(0))) replied.add(r.readUInt32BE(0));
  }).push(applicationBytes(f, 'toClient'));
  return replied;
}

for (const calls of [1, 20]) {
  test.serial(`H77 ${calls} call(s) then a TCP FIN without close_notify: every call answered, the server reports ERR_TLS_TRUNCATED (never "unknown error"); bystander served`, async (t) => {
    const f = await forged();
    try {
      const xids = Array.from({ length: calls }, (_, i) => 0x7700 + i);
      const wire = Buffer.concat(xids.map((xid) => record(callBody({ xid, args: Buffer.alloc(16, 0x61) }))));
      const sent = applicationBytes(f, 'toServer').length;
      f.stream.write(wire);
      await until(() => applicationBytes(f, 'toServer').length >= sent + wire.length, 5000);
      f.relay.finish('toServer');
      await until(() => f.a.errors.length + f.a.tlsErrors.length >= 1 || f.a.server.connections.size === 1, 5000);
      await until(() => f.a.server.connections.size === 1, 5000); // only the bystander left
      const verdict = [...f.a.errors, ...f.a.tlsErrors][0];
      t.log(`${calls} call(s): ${codeOf(verdict) ?? 'no error'}: ${verdict?.message ?? 'closed cleanly'}`);
      t.is(codeOf(verdict), 'ERR_TLS_TRUNCATED');
      t.notRegex(verdict?.message ?? '', /unknown error/);
      await until(() => repliedXids(f, xids).size === calls, 2000).catch(() => undefined);
      t.is(repliedXids(f, xids).size, calls, 'a reply to every complete call');
      await f.a.bystanderServed();
    } finally {
      await f.close();
    }
  });
}
