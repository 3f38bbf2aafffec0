// Hostile catalogue, KeyUpdate (H80-H84): TLS 1.3 KeyUpdates forged with the session's real keys by
// test/helpers/tls-forge.ts, in the shapes RFC 8446 allows but peers rarely send (split over records,
// coalesced after a ticket) and those it forbids (a flood, a message after the KeyUpdate in its record,
// a bad request value). Userspace on the host; kernel TLS in UML: Linux 7.2 follows KeyUpdates, Linux 6.1
// cannot and closes with ERR_TLS_KEY_UPDATE naming the kernel that can.
import test from 'ava';

import { ContentType, ForgeRelay } from '../helpers/tls-forge.js';
import { expectKtls, kernelCanRekey } from '../tls/helpers.js';
import { type Forged, PROG, Proc, VERS, forgedSession, until } from './helpers.js';

const canRekey = !expectKtls || kernelCanRekey;

const forged = (): Promise<Forged> => forgedSession();
const echo = (f: Forged, text: string): Promise<Buffer> => f.client.call(PROG, VERS, Proc.ECHO, Buffer.from(text));
const keyUpdate = (requested: boolean): Buffer => ForgeRelay.keyUpdate(requested);

/** The server closed the forged connection: its coded error. */
async function serverVerdict(f: Forged): Promise<Error & { code?: string }> {
  await until(() => f.a.errors.length + f.a.tlsErrors.length >= 1, 5000);
  await f.a.bystanderServed();
  return (f.a.tlsErrors[0] ?? f.a.errors[0]) as Error & { code?: string };
}

function tlsCause(error: unknown): (Error & { code?: string; violation?: string; sentAlert?: number }) | undefined {
  const e = error as Error & { code?: string; cause?: Error & { code?: string } };
  return e?.code?.startsWith('ERR_TLS_') ? e : e?.cause;
}

test.serial('H80 40 KeyUpdates in a row from the client, no data between: ERR_TLS_KEY_UPDATE_FLOOD after 32; bystander served', async (t) => {
  const f = await forged();
  for (let i = 0; i < 40; i++) f.relay.inject('toServer', ContentType.handshake, keyUpdate(false), { rotate: true });
  const error = await serverVerdict(f);
  if (canRekey) {
    t.is(error.code, 'ERR_TLS_KEY_UPDATE_FLOOD', error.message);
    const count = (error as Error & { count?: number }).count as number;
    // Kernel TLS stops at the 33rd. Userspace OpenSSL reads ahead and follows every KeyUpdate one read
    // brought in (at most 64 KiB of them) before the guard can look: all 40 here, never unbounded.
    if (expectKtls) t.is(count, 33);
    else t.true(count >= 33 && count <= 40, `count ${count}`);
  } else {
    t.is(error.code, 'ERR_TLS_KEY_UPDATE');
  }
  t.log(`${error.code}: ${error.message}`);
  await f.close();
});

test.serial('H80b 1000 KeyUpdates, each after one byte of data: followed (not a flood), the connection keeps working', async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey (H80 covers the close)');
  const f = await forged();
  // Calls go on between the forged updates: each call's record is data, so no "in a row" count builds up.
  for (let i = 0; i < 40; i++) {
    f.relay.inject('toServer', ContentType.handshake, keyUpdate(false), { rotate: true });
    t.deepEqual(await echo(f, `after update ${i}`), Buffer.from(`after update ${i}`));
  }
  t.deepEqual(f.a.codes(), []);
  await f.close();
});

test.serial('H81 a KeyUpdate split over two records ([24,0,0] then [1,0]): followed, the next call answered', async (t) => {
  const f = await forged();
  f.relay.inject('toServer', ContentType.handshake, Buffer.from([24, 0, 0]));
  f.relay.inject('toServer', ContentType.handshake, Buffer.from([1, 0]), { rotate: true });
  if (canRekey) {
    t.deepEqual(await echo(f, 'after a split KeyUpdate'), Buffer.from('after a split KeyUpdate'));
    t.deepEqual(f.a.codes(), []);
  } else {
    t.is((await serverVerdict(f)).code, 'ERR_TLS_KEY_UPDATE');
  }
  await f.close();
});

test.serial('H82 a NewSessionTicket and a KeyUpdate in one record (to the client): ticket discarded, update followed, replies read', async (t) => {
  const f = await forged();
  const tickets = f.stream.counters.ticketsDiscarded;
  f.relay.inject('toClient', ContentType.handshake, Buffer.concat([ForgeRelay.newSessionTicket(), keyUpdate(false)]), { rotate: true });
  if (canRekey) {
    t.deepEqual(await echo(f, 'after ticket+update'), Buffer.from('after ticket+update'));
    t.is(f.stream.counters.keyUpdatesReceived, 1);
    t.is(f.stream.counters.ticketsDiscarded, tickets + 1);
  } else {
    const error = await t.throwsAsync(echo(f, 'x'));
    t.is(tlsCause(error)?.code, 'ERR_TLS_KEY_UPDATE');
  }
  await f.close();
});

test.serial('H83 a KeyUpdate followed by another message in the same record (RFC 8446 5.1 forbids it): coded refusal', async (t) => {
  const f = await forged();
  f.relay.inject('toClient', ContentType.handshake, Buffer.concat([keyUpdate(false), ForgeRelay.newSessionTicket()]), { rotate: true });
  const error = await t.throwsAsync(echo(f, 'x'));
  const cause = tlsCause(error);
  t.regex(cause?.code ?? '', /^ERR_TLS_/);
  if (expectKtls) {
    t.is(cause?.code, 'ERR_TLS_PROTOCOL');
    t.is(cause?.violation, 'key_update_not_last');
    t.is(cause?.sentAlert, 10, 'unexpected_message sent');
  }
  t.log(`${cause?.code}: ${cause?.message}`);
  await f.close();
});

test.serial('H84 a KeyUpdate with request_update 2: refused with illegal_parameter (kernel) or OpenSSL\'s coded error; bystander served', async (t) => {
  const f = await forged();
  f.relay.inject('toServer', ContentType.handshake, ForgeRelay.handshake(24, Buffer.from([2])), { rotate: true });
  const error = await serverVerdict(f);
  t.regex(error.code ?? '', /^ERR_TLS_/);
  if (expectKtls) {
    t.is(error.code, 'ERR_TLS_PROTOCOL');
    t.like(error, { violation: 'key_update_value', sentAlert: 47 });
  }
  t.log(`${error.code}: ${error.message}`);
  await f.close();
});
