// TLS 1.3 KeyUpdate (RFC 8446 4.6.3) on a live session: data both ways while keys rotate, from either
// side, asked for or not, by the API and by the key-usage limits; mixed kernel/userspace peers and
// OpenSSL's s_client/s_server `k`/`K` commands. Userspace on the host; kernel TLS inside UML, where Linux
// 7.2 follows KeyUpdates and Linux 6.1 gives the coded close that names the kernel needed.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { connectTlsStream, type TlsStream } from '../../src/tls/index.js';
import { TlsKeyUpdateError } from '../../src/tls/errors.js';
import {
  type PeerOptions,
  type TlsStat,
  clientOptions,
  drain,
  expectKtls,
  kernelCanRekey,
  makeCerts,
  okPair,
  openSslAcceptPort,
  readTlsStat,
  readUntil,
  serverOptions,
  sha256,
} from '../native/helpers.js';

test.before(() => {
  makeCerts();
});

const MiB = 1024 * 1024;
/** Kernel-TLS rekey counters moved since `before` (all zero outside a rekey-capable kernel). */
function rekeyDelta(before: TlsStat | null): Record<string, number> {
  const after = readTlsStat();
  const delta: Record<string, number> = {};
  for (const key of ['TlsTxRekeyOk', 'TlsRxRekeyOk', 'TlsRxRekeyReceived', 'TlsTxRekeyError', 'TlsRxRekeyError', 'TlsDecryptError']) {
    delta[key] = (after?.[key] ?? 0) - (before?.[key] ?? 0);
  }
  return delta;
}

/** Writes `data` in 64 KiB pieces, honouring backpressure, calling `between(offset)` every piece. */
async function pump(stream: TlsStream, data: Buffer, between: (offset: number) => void = () => {}, end = true): Promise<void> {
  const piece = 64 * 1024;
  for (let offset = 0; offset < data.length; offset += piece) {
    between(offset);
    if (!stream.write(data.subarray(offset, offset + piece))) await once(stream, 'drain');
  }
  if (end) stream.end();
}

/** Whether this environment can rotate keys (userspace always; kernel TLS only on Linux >= 6.14). */
const canRekey = !expectKtls || kernelCanRekey;

/** `size` bytes each way (or [up, down]) at once; `drive` runs between the client's 64 KiB writes. */
/** `clientEndsLast`: the client ends only when the server's close_notify arrives (its stream answers it). */
async function transfer(t: ExecutionContext, size: number | [number, number], client: PeerOptions, server: PeerOptions, drive?: (c: TlsStream, s: TlsStream, offset: number) => void, clientEndsLast = false) {
  const before = readTlsStat();
  // Half-open: the side that finishes first must not end the other's sending (UML runs them unevenly).
  const [c, s] = await okPair({ allowHalfOpen: !clientEndsLast, ...client }, { allowHalfOpen: true, ...server });
  const [upSize, downSize] = typeof size === 'number' ? [size, size] : size;
  const up = randomBytes(upSize);
  const down = randomBytes(downSize);
  const received = Promise.all([drain(s), drain(c)]);
  await Promise.all([pump(c, up, (offset) => drive?.(c, s, offset), !clientEndsLast), pump(s, down)]);
  const [atServer, atClient] = await received;
  t.is(atServer.hash, sha256(up), 'client -> server intact');
  t.is(atClient.hash, sha256(down), 'server -> client intact');
  return { c, s, delta: rekeyDelta(before) };
}

test.serial('capability: offload.rekey says whether this session can rotate keys', async (t) => {
  const [c, s] = await okPair();
  t.is(c.tlsInfo!.offload.rekey, canRekey);
  t.is(s.tlsInfo!.offload.rekey, canRekey);
  if (!canRekey) {
    const error = await t.throwsAsync(c.updateKeys(), { instanceOf: TlsKeyUpdateError });
    t.regex(error!.message, /Linux >= 6\.14/);
  }
  c.destroy();
  s.destroy();
});

const SIZE = 64 * MiB;

test.serial(`limits on both sides, { records: 1000 }: ${SIZE / MiB} MiB each way, each side rotates its own key`, async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey: covered by the coded-close test');
  const { c, s, delta } = await transfer(t, SIZE, { rekey: { records: 1000 } }, { rekey: { records: 1000 } });
  // 64 MiB is at least 4096 full records: at least 4 rotations each way (kernel TX counts are upper bounds).
  for (const [side, counters] of [['client', c.counters], ['server', s.counters]] as const) {
    t.true(counters.keyUpdatesSent >= 4 && counters.keyUpdatesSent <= 5 * 2, `${side} sent ${counters.keyUpdatesSent}`);
  }
  t.is(c.counters.keyUpdatesReceived, s.counters.keyUpdatesSent, 'every KeyUpdate of the server followed by the client');
  t.is(s.counters.keyUpdatesReceived, c.counters.keyUpdatesSent, 'and the other way');
  if (expectKtls) {
    const sent = c.counters.keyUpdatesSent + s.counters.keyUpdatesSent;
    t.is(delta.TlsTxRekeyOk, sent);
    t.is(delta.TlsRxRekeyOk, sent);
    t.is(delta.TlsRxRekeyReceived, sent);
    t.is(delta.TlsDecryptError, 0);
    t.is(delta.TlsTxRekeyError + delta.TlsRxRekeyError, 0);
  }
  t.log(`client sent ${c.counters.keyUpdatesSent}, server sent ${s.counters.keyUpdatesSent}; kernel ${JSON.stringify(delta)}`);
});

test.serial(`limits on the client only: its RX limit asks the server (update_requested), which answers`, async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey');
  // The client's own upload is short: once it has sent close_notify it may send no KeyUpdate.
  // The client asks at 1.5x its limit (375 records here), so a peer with its own policy rotates first; the
  // answer comes after what is in flight (hundreds of records), so a request every ~1000 records at most.
  const { c, s, delta } = await transfer(t, [MiB, SIZE / (expectKtls ? 2 : 1)], { rekey: { records: 250 } }, { rekey: false }, undefined, true);
  t.true(s.counters.keyUpdatesSent >= 2, `the server answered ${s.counters.keyUpdatesSent} requests`);
  t.is(c.counters.keyUpdatesReceived, s.counters.keyUpdatesSent);
  t.is(s.counters.keyUpdatesReceived, c.counters.keyUpdatesSent);
  if (expectKtls) t.is(delta.TlsDecryptError, 0);
});

test.serial('updateKeys() from either side mid-transfer, with and without requestPeerUpdate', async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey');
  const calls: Array<Promise<void>> = [];
  const { c, s, delta } = await transfer(t, (expectKtls ? 8 : 16) * MiB, {}, {}, (client, server, offset) => {
    const every = (expectKtls ? 1 : 2) * MiB;
    if (offset % every !== 0 || offset === 0) return;
    const n = offset / every;
    const side = n % 2 === 0 || server.writableEnded ? client : server; // the server may be done sending
    calls.push(side.updateKeys({ requestPeerUpdate: n % 3 === 0 }));
  });
  await Promise.all(calls);
  // Calls made while one is still waiting for a write to finish share its KeyUpdate (UML's slow writes
  // coalesce several), so at least one per side that was asked, at most one per call (plus answers).
  t.true(c.counters.keyUpdatesSent >= 1);
  t.true(c.counters.keyUpdatesSent + s.counters.keyUpdatesSent <= 2 * calls.length);
  t.is(c.counters.keyUpdatesReceived, s.counters.keyUpdatesSent);
  t.is(s.counters.keyUpdatesReceived, c.counters.keyUpdatesSent);
  if (expectKtls) t.is(delta.TlsTxRekeyOk, c.counters.keyUpdatesSent + s.counters.keyUpdatesSent);
});

test.serial('a KeyUpdate asking for ours, read after our close_notify, is not answered: the read side goes on', async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey');
  const [c, s] = await okPair({ allowHalfOpen: true }, { allowHalfOpen: true });
  // The server does not read yet (no consumer: its record layer reads nothing), so the request waits.
  await c.updateKeys({ requestPeerUpdate: true });
  const upload = randomBytes(256 * 1024);
  c.end(upload);
  const atClient = drain(c);
  s.end();
  await atClient; // the server's close_notify arrived: it is shut for writing
  const atServer = await drain(s);
  t.is(atServer.hash, sha256(upload), 'the upload after the request arrived whole');
  t.is(s.counters.keyUpdatesReceived, 1);
  t.is(s.counters.keyUpdatesSent, 0, 'nothing follows close_notify');
  t.is(c.counters.keyUpdatesReceived, 0);
});

test.serial('mixed modes: kernel TLS on one end, userspace OpenSSL on the other, keys rotating both ways', async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey');
  const { c, s } = await transfer(t, 8 * MiB, { kernelTls: 'off', rekey: { records: 100 } }, { rekey: { records: 100 } });
  t.false(c.tlsInfo!.offload.tx);
  t.is(s.tlsInfo!.offload.tx, expectKtls);
  t.true(c.counters.keyUpdatesSent >= 5);
  t.true(s.counters.keyUpdatesSent >= 5);
  t.is(c.counters.keyUpdatesReceived, s.counters.keyUpdatesSent);
});


const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

for (const command of ['k', 'K'] as const) {
  test.serial(`openssl s_client sends a KeyUpdate ('${command}'${command === 'K' ? ', update_requested' : ''}): followed; the reply after it reaches s_client`, async (t) => {
    const certs = makeCerts();
    const listener = net.createServer().listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
    const client = spawn('openssl', ['s_client', '-tls1_3', '-connect', `127.0.0.1:${(listener.address() as net.AddressInfo).port}`, '-CAfile', join(certs.dir, 'ca.pem'), '-servername', 'localhost']);
    t.teardown(() => {
      client.kill();
      listener.close();
    });
    client.stderr.resume();
    const [raw] = await accepted;
    const server = await connectTlsStream(raw, serverOptions());
    const first = readUntil(server, 'before\n');
    client.stdin.write('before\n');
    await first;
    if (!canRekey) {
      const failed = once(server, 'error') as Promise<[TlsKeyUpdateError]>;
      client.stdin.write(`${command}\n`);
      const [error] = await failed;
      t.is(error.code, 'ERR_TLS_KEY_UPDATE');
      t.regex(error.message, /cannot follow \(Linux >= 6\.14 can\)/);
      return;
    }
    const after = readUntil(server, 'after\n');
    client.stdin.write(`${command}\n`);
    // s_client takes a command only at the start of one stdin read: keep the next line apart.
    await pause(300);
    client.stdin.write('after\n');
    await after;
    t.is(server.counters.keyUpdatesReceived, 1);
    // Our reply goes out under our (possibly new) key: s_client must read it.
    const echoed = readUntil(client.stdout, 'reply-after-keyupdate');
    server.write('reply-after-keyupdate\n');
    t.regex(await echoed, /reply-after-keyupdate/);
    t.is(server.counters.keyUpdatesSent, command === 'K' ? 1 : 0, 'answered (before the reply) only when asked');
    server.destroy();
  });
}

test.serial('openssl s_server follows our KeyUpdate (and answers update_requested with its own)', async (t) => {
  if (!canRekey) return t.pass('this kernel cannot rekey');
  const certs = makeCerts();
  const server = spawn('openssl', ['s_server', '-tls1_3', '-accept', '127.0.0.1:0', '-cert', join(certs.dir, 'server.pem'), '-key', join(certs.dir, 'server.key'), '-naccept', '1']);
  t.teardown(() => server.kill());
  server.stderr.resume();
  const port = await openSslAcceptPort(server.stdout);
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const stream = await connectTlsStream(socket, clientOptions());
  const hello = readUntil(server.stdout, 'one\n');
  stream.write('one\n');
  await hello;
  await stream.updateKeys();
  const two = readUntil(server.stdout, 'two\n');
  stream.write('two\n');
  await two;
  await stream.updateKeys({ requestPeerUpdate: true });
  const three = readUntil(server.stdout, 'three\n');
  stream.write('three\n');
  await three;
  // s_server echoes nothing by itself: a line typed on its stdin comes back to us under its new key.
  const back = readUntil(stream, 'from-s_server');
  server.stdin.write('from-s_server\n');
  await back;
  t.is(stream.counters.keyUpdatesSent, 2);
  t.is(stream.counters.keyUpdatesReceived, 1, 's_server answered update_requested');
  stream.destroy();
});
