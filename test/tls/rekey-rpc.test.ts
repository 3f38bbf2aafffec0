// Key rotation under RPC load: calls in flight (both directions of the connection) across every
// KeyUpdate, connection.updateKeys() from either end, the key-usage limit policy counting what a 1 GiB
// transfer needs, and `action: 'reconnect'` replacing the connection with no call lost. Userspace on the
// host, kernel TLS in UML (Linux 7.2 rekeys; on 6.1 the limit policy can only reconnect).
import { randomBytes } from 'node:crypto';

import test from 'ava';

import type { RpcConnection } from '../../src/rpc/connection.js';
import { RpcClient } from '../../src/rpc/client.js';
import type { TlsStream } from '../../src/tls/tls-stream.js';
import { startServer } from '../helpers/net.js';
import { PROG, Proc, VERS, expectKtls, kernelCanRekey, readTlsStat, scale, startTlsServer, tlsClient } from './helpers.js';

const canRekey = !expectKtls || kernelCanRekey;
const KiB = 1024;
const MiB = 1024 * KiB;

function streamOf(connection: RpcConnection | null | undefined): TlsStream {
  return connection!.transport as TlsStream;
}

test.serial('calls in flight across every rotation, KeyUpdates from both ends (limits and updateKeys()): every reply intact', async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey');
  const before = readTlsStat();
  const { server, port } = await startTlsServer({ rekey: { records: 200 } });
  const serverConnections: RpcConnection[] = [];
  server.on('secureConnection', (connection: RpcConnection) => serverConnections.push(connection));
  const client = tlsClient(port, { rekey: { records: 200 } }, { timeout: 30_000 });
  try {
    await client.connect();
    const rounds = scale(12, 6);
    let checked = 0;
    for (let round = 0; round < rounds; round++) {
      const payloads = Array.from({ length: 32 }, () => randomBytes(64 * KiB));
      const calls = payloads.map((p) => client.call(PROG, VERS, Proc.ECHO, p));
      // The server also calls the client back on the same connection while keys move.
      const back = client.call(PROG, VERS, Proc.CALL_BACK, Buffer.from(`round ${round}`));
      if (round % 3 === 1) void client.connection!.updateKeys({ requestPeerUpdate: true });
      if (round % 3 === 2) void serverConnections[0]!.updateKeys();
      const replies = await Promise.all(calls);
      replies.forEach((reply, i) => t.true(reply.equals(payloads[i]!), `round ${round} call ${i}`));
      t.is((await back).toString(), `cb-tls:round ${round}`);
      checked += replies.length;
    }
    const c = streamOf(client.connection).counters;
    const s = streamOf(serverConnections[0]).counters;
    t.log(`${checked} calls; client sent ${c.keyUpdatesSent} / followed ${c.keyUpdatesReceived}, server sent ${s.keyUpdatesSent} / followed ${s.keyUpdatesReceived}`);
    // Each round moves 2 MiB each way: 128 full records, so a limit of 200 rotates every ~1.6 rounds.
    const byLimit = Math.floor((rounds * 128) / 200);
    t.true(c.keyUpdatesSent >= byLimit, 'the client rotated under load');
    t.true(s.keyUpdatesSent >= byLimit, 'the server rotated under load');
    t.is(c.keyUpdatesReceived, s.keyUpdatesSent);
    t.is(s.keyUpdatesReceived, c.keyUpdatesSent);
    t.deepEqual(
      { sent: client.connection!.security!.keyUpdates.sent, received: client.connection!.security!.keyUpdates.received },
      { sent: c.keyUpdatesSent, received: c.keyUpdatesReceived },
      'connection.security shows the live counts',
    );
    if (expectKtls) {
      const after = readTlsStat()!;
      t.is(after.TlsDecryptError! - (before?.TlsDecryptError ?? 0), 0);
      t.is(after.TlsTxRekeyOk! - (before?.TlsTxRekeyOk ?? 0), c.keyUpdatesSent + s.keyUpdatesSent);
      t.is(after.TlsRxRekeyOk! - (before?.TlsRxRekeyOk ?? 0), c.keyUpdatesSent + s.keyUpdatesSent);
    }
  } finally {
    await client.close();
    await server.close();
  }
});

// 1 GiB with a limit of 5000 on the host; UML's generic C crypto makes that minutes, so there 64 MiB
// with a limit of 1000 (the same counting, about 4 rotations).
const LIMIT = scale(5000, 1000);

test.serial(`rekey { records: ${LIMIT} }: a bulk upload rotates the client key once per ${LIMIT} records, the server none`, async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey');
  const total = scale(1024, 64) * MiB;
  const { server, port } = await startTlsServer({ rekey: { records: LIMIT } });
  server.addProgram({ program: PROG + 7, version: VERS, procedures: { 1: () => Buffer.alloc(0) } });
  const client = tlsClient(port, { rekey: { records: LIMIT } }, { timeout: 60_000 });
  try {
    await client.connect();
    const chunk = Buffer.alloc(MiB, 0x42);
    for (let sent = 0; sent < total; sent += 8 * MiB) {
      await Promise.all(Array.from({ length: 8 }, () => client.call(PROG + 7, VERS, 1, chunk)));
    }
    const c = streamOf(client.connection).counters;
    // Each 1 MiB call is 64 full records plus its header's: about 65 records per MiB.
    const expected = Math.floor(((total / MiB) * 65) / LIMIT);
    t.log(`${total / MiB} MiB: ${c.keyUpdatesSent} client KeyUpdates (expected about ${expected}), ${c.keyUpdatesReceived} from the server`);
    t.true(Math.abs(c.keyUpdatesSent - expected) <= 1, `${c.keyUpdatesSent} rotations for about ${expected}`);
    t.is(c.keyUpdatesReceived, 0, 'the server, sending small replies, never reached its limit nor asked');
  } finally {
    await client.close();
    await server.close();
  }
});

test.serial("rekey { records: 300, action: 'reconnect' }: the client moves to fresh connections at the limit and no call fails", async (t) => {
  const { server, port } = await startTlsServer({ rekey: { records: 300, action: 'reconnect' } });
  const client = tlsClient(port, { rekey: { records: 300, action: 'reconnect' } }, { timeout: 30_000 });
  let connects = 0;
  client.on('connect', () => connects++);
  try {
    const payload = randomBytes(32 * KiB);
    let ok = 0;
    for (let round = 0; round < scale(40, 20); round++) {
      const replies = await Promise.all(Array.from({ length: 16 }, () => client.call(PROG, VERS, Proc.ECHO, payload)));
      ok += replies.filter((r) => r.equals(payload)).length;
    }
    t.is(ok, scale(40, 20) * 16, 'every call answered, byte-exact');
    // 16 x 32 KiB calls are ~48 records each way per round: a fresh connection every few rounds.
    t.true(connects >= 3, `${connects} connections`);
    t.is(streamOf(client.connection).counters.keyUpdatesSent, 0, 'no KeyUpdate ever sent');
  } finally {
    await client.close();
    await server.close();
  }
});

test.serial('updateKeys() on a plaintext connection: ERR_RPC_NOT_SECURE', async (t) => {
  const { server, port } = await startServer([]);
  const client = new RpcClient({ port });
  try {
    const connection = await client.connect();
    await t.throwsAsync(connection.updateKeys(), { code: 'ERR_RPC_NOT_SECURE' });
  } finally {
    await client.close();
    await server.close();
  }
});
