// Post-handshake records from the server, forged by a relay that knows the session keys
// (test/helpers/tls-forge.ts), while RPC calls are in flight: the client must turn a fatal alert into
// a coded error on every pending call, discard tickets and go on, and refuse a KeyUpdate under kernel
// TLS. Runs in userspace mode on the host and in kernel mode in the UML runner.
import test from 'ava';

import type { RpcClient } from '../../src/rpc/client.js';
import { TlsAlertError } from '../../src/tls/errors.js';
import { tlsInfoOf } from '../../src/rpc-tls/index.js';
import type { TlsStream } from '../../src/tls/tls-stream.js';
import { ContentType, ForgeRelay } from '../helpers/tls-forge.js';
import { KERNEL_OFFLOAD, PROG, Proc, VERS, expectKtls, kernelCanRekey, startTlsServer, tlsClient } from './helpers.js';

interface Session {
  relay: ForgeRelay;
  client: RpcClient;
  close(): Promise<void>;
}

async function session(): Promise<Session> {
  const { server, port } = await startTlsServer();
  const relay = await ForgeRelay.start(port);
  const client = tlsClient(relay.port, { keylog: relay.keylog }, { timeout: 20_000 });
  await client.connect();
  return {
    relay,
    client,
    async close() {
      client.destroy();
      await relay.close();
      await server.close();
    },
  };
}

/**
 * One answered call, then calls whose replies the relay holds back: resolves once they reached the
 * server, so what is injected toward the client comes while they are pending.
 */
async function callsWithHeldReplies(t: import('ava').ExecutionContext, s: Session, payloads: string[]): Promise<Promise<Buffer>[]> {
  t.deepEqual(await s.client.call(PROG, VERS, Proc.ECHO, Buffer.from('before')), Buffer.from('before'));
  s.relay.hold('toClient');
  const pending = payloads.map((p) => s.client.call(PROG, VERS, Proc.ECHO, Buffer.from(p)));
  await s.relay.whenApplicationRecords('toServer', 2); // 'before', then the others (they may share a record)
  return pending;
}

/** The error a failed call carries about the TLS layer: itself, or its cause. */
function tlsCause(error: unknown): (Error & { code?: string }) | undefined {
  const e = error as Error & { code?: string; cause?: Error & { code?: string } };
  return e?.code?.startsWith('ERR_TLS_') ? e : e?.cause;
}

test.serial('a fatal alert mid-stream fails every pending call with the alert, coded', async (t) => {
  const s = await session();
  try {
    // Replies to the pending calls stay in the relay; the client gets an internal_error alert instead.
    const pending = await callsWithHeldReplies(t, s, ['pending 1', 'pending 2', 'pending 3']);
    s.relay.inject('toClient', ContentType.alert, ForgeRelay.alert(2, 80));
    const results = await Promise.allSettled(pending);
    for (const result of results) {
      t.is(result.status, 'rejected');
      const error = (result as PromiseRejectedResult).reason as Error & { code: string };
      t.is(error.code, 'ERR_RPC_CONNECTION_CLOSED', error.message);
      const cause = tlsCause(error);
      t.true(cause instanceof TlsAlertError, String(cause));
      const alert = cause as TlsAlertError;
      t.is(alert.code, 'ERR_TLS_ALERT');
      t.is(alert.level, 2);
      t.is(alert.description, 80);
      t.is(alert.alertName, 'internal_error');
      t.true(alert.received);
    }
    t.log(`pending call error: ${(results[0] as PromiseRejectedResult).reason.message} <- ${tlsCause((results[0] as PromiseRejectedResult).reason)?.message}`);
    t.true(s.client.connection === null || s.client.connection.closed, 'connection closed');
  } finally {
    await s.close();
  }
});

test.serial('NewSessionTickets between replies are discarded and counted; calls go on', async (t) => {
  const s = await session();
  try {
    const stream = s.client.connection!.transport as TlsStream;
    const before = stream.counters.ticketsDiscarded;
    t.deepEqual(await s.client.call(PROG, VERS, Proc.ECHO, Buffer.from('one')), Buffer.from('one'));
    for (let i = 0; i < 5; i++) s.relay.inject('toClient', ContentType.handshake, ForgeRelay.newSessionTicket());
    // The relay re-encrypts the server's later records with the client's sequence numbers.
    for (let i = 0; i < 20; i++) {
      const payload = Buffer.from(`after tickets ${i}`);
      t.deepEqual(await s.client.call(PROG, VERS, Proc.ECHO, payload), payload);
    }
    t.is(stream.counters.ticketsDiscarded - before, 5);
    if (expectKtls) t.deepEqual(tlsInfoOf(s.client.connection!)!.offload, KERNEL_OFFLOAD);
  } finally {
    await s.close();
  }
});

test.serial('a KeyUpdate from the server mid-stream: ERR_TLS_KEY_UPDATE under kernel TLS before Linux 6.14, followed otherwise', async (t) => {
  const s = await session();
  try {
    const [pending] = await callsWithHeldReplies(t, s, ['pending']);
    s.relay.inject('toClient', ContentType.handshake, ForgeRelay.keyUpdate(false));
    if (expectKtls && !kernelCanRekey) {
      // Kernels before 6.14 cannot take new keys: the connection must fail, coded, not hang.
      const error = (await t.throwsAsync(pending)) as (Error & { code?: string }) | undefined;
      t.is(error?.code, 'ERR_RPC_CONNECTION_CLOSED');
      t.is(tlsCause(error)?.code, 'ERR_TLS_KEY_UPDATE');
    } else {
      // The client takes the peer's next key. The real server never updated, so its held reply (old key)
      // now fails authentication at the client: a coded fatal error, and the call fails.
      s.relay.release('toClient');
      const error = (await t.throwsAsync(pending)) as (Error & { code?: string }) | undefined;
      t.is(error?.code, 'ERR_RPC_CONNECTION_CLOSED');
      t.regex(tlsCause(error)?.code ?? '', /^ERR_TLS_/);
      t.log(`userspace after a KeyUpdate and an old-key record: ${tlsCause(error)?.code}: ${tlsCause(error)?.message}`);
    }
  } finally {
    await s.close();
  }
});

test.serial('a record that fails authentication mid-stream: coded fatal error on the pending call', async (t) => {
  const s = await session();
  try {
    const [pending] = await callsWithHeldReplies(t, s, ['pending']);
    s.relay.inject('toClient', ContentType.applicationData, Buffer.from('tampered'), { corruptTag: true });
    const error = (await t.throwsAsync(pending)) as (Error & { code?: string }) | undefined;
    t.is(error?.code, 'ERR_RPC_CONNECTION_CLOSED');
    const cause = tlsCause(error);
    if (expectKtls) {
      // The kernel refuses the record with EBADMSG and aborts the stream.
      t.is(cause?.code, 'ERR_TLS_BAD_RECORD');
      t.is((cause as Error & { errnoName?: string }).errnoName, 'EBADMSG');
    } else {
      t.is(cause?.code, 'ERR_TLS_PROTOCOL');
      // OpenSSL 3.0 names the failed tag; 3.2+ (official Node 22+ bundles 3.5) reports its record layer's failure.
      t.regex(cause?.message ?? '', /bad record mac|decryption failed|record layer failure/);
    }
    t.log(`${cause?.code}: ${cause?.message}`);
  } finally {
    await s.close();
  }
});

/** Waits until the client has sent an alert toward the server (decrypted by the relay), or gives up. */
async function alertSentToServer(relay: ForgeRelay, timeoutMs = 5000): Promise<Buffer | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alert = relay.seen('toServer').find((r) => r.keys === 'application' && r.innerType === ContentType.alert);
    if (alert?.content) return alert.content;
    if (Date.now() > deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// A bad control record is a protocol violation: the client answers with the matching fatal alert before
// it closes (kernel mode: native/src/records_kernel.cc; userspace: OpenSSL does the same).
const violations = [
  { name: 'an alert that is not 2 bytes', type: ContentType.alert, content: Buffer.from([2, 80, 0]), alert: 50, violation: 'alert_length' },
  { name: 'an unknown content type', type: 24, content: Buffer.from([1, 2, 3]), alert: 10, violation: 'record_type' },
  { name: 'a handshake message that is not a ticket or KeyUpdate', type: ContentType.handshake, content: ForgeRelay.handshake(13, Buffer.from([0, 0, 0])), alert: 10, violation: 'handshake_type' },
  // Fragmenting a handshake message is legal (both paths wait for the rest); a data record before the
  // rest is not (RFC 8446 5.1: no other record between the pieces).
  { name: 'a handshake message cut by its record, then a data record', type: ContentType.handshake, content: ForgeRelay.handshake(4, Buffer.alloc(40)).subarray(0, 20), alert: 10, violation: 'handshake_interleaved', thenData: true },
] as const;

for (const v of violations) {
  test.serial(`${v.name}: the client sends the matching fatal alert, then fails coded`, async (t) => {
    const s = await session();
    try {
      const [pending] = await callsWithHeldReplies(t, s, ['pending']);
      s.relay.inject('toClient', v.type, v.content);
      if ('thenData' in v) s.relay.release('toClient');
      const error = (await t.throwsAsync(pending)) as (Error & { code?: string }) | undefined;
      t.is(error?.code, 'ERR_RPC_CONNECTION_CLOSED');
      const cause = tlsCause(error) as (Error & { code?: string; violation?: string; sentAlert?: number }) | undefined;
      t.regex(cause?.code ?? '', /^ERR_TLS_(PROTOCOL|ALERT)$/);
      const alert = await alertSentToServer(s.relay);
      t.log(`${cause?.code}: ${cause?.message}; alert on the wire: ${alert?.toString('hex') ?? 'none'}`);
      if (expectKtls) {
        t.is(cause?.code, 'ERR_TLS_PROTOCOL');
        t.is(cause?.violation, v.violation);
        t.is(cause?.sentAlert, v.alert);
        t.deepEqual(alert, Buffer.from([2, v.alert]));
      } else {
        t.truthy(alert, 'OpenSSL sent an alert');
        t.is(alert![0], 2);
      }
    } finally {
      await s.close();
    }
  });
}
