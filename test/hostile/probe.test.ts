// Hostile catalogue, the RFC 9289 probe and the handshake (H36-H48): probe misuse, bytes that are not TLS
// after STARTTLS, truncated or stalled handshakes, TLS 1.2-only peers, ALPN mismatch in strict mode.
import net from 'node:net';
import tls from 'node:tls';

import test from 'ava';

import { AUTH_TLS } from '../../src/rpc/auth.js';
import { makeCerts } from '../native/helpers.js';
import { authErrorBytes, probeRecord, startTlsReplyBytes, tlsClient } from '../tls/helpers.js';
import { PROG, Proc, VERS, arena, codeOf, raw, recordServer, until } from './helpers.js';

/** Writes `request`; expects exactly `expected` back on the still-open plaintext connection. */
async function exchange(r: Awaited<ReturnType<typeof raw>>, request: Buffer, expected: Buffer): Promise<void> {
  const before = r.received().length;
  r.write(request);
  await until(() => r.received().length >= before + expected.length);
  if (!r.received().subarray(before).equals(expected)) throw new Error(`unexpected answer ${r.received().subarray(before).toString('hex')}`);
}

test('H36 AUTH_TLS probe with a credential body: AUTH_BADCRED; the connection stays plaintext and a proper probe then gets STARTTLS', async (t) => {
  const a = await arena({ tls: {} });
  const r = await raw(a.port);
  await exchange(r, probeRecord(36, { credBody: Buffer.from('body') }), authErrorBytes(36, 1));
  await exchange(r, probeRecord(37), startTlsReplyBytes(37));
  t.pass();
  r.socket.destroy();
  await a.bystanderServed();
  await a.close();
});

test('H37 AUTH_TLS on a non-NULL procedure: AUTH_BADCRED, the handler does not run; connection open', async (t) => {
  const a = await arena({ tls: {} });
  const r = await raw(a.port);
  await exchange(r, probeRecord(38, { procedure: 10 /* THROWS: would emit handlerError if run */ }), authErrorBytes(38, 1));
  t.deepEqual(a.handlerErrors, []);
  t.false(r.isClosed());
  r.socket.destroy();
  await a.bystanderServed();
  await a.close();
});

test('H38 AUTH_TLS probe with a non-AUTH_NONE verifier: AUTH_BADVERF; connection open', async (t) => {
  const a = await arena({ tls: {} });
  const r = await raw(a.port);
  await exchange(r, probeRecord(39, { verfFlavor: 1 }), authErrorBytes(39, 3));
  t.false(r.isClosed());
  r.socket.destroy();
  await a.bystanderServed();
  await a.close();
});

test('H39 two probes in one segment (bytes after the probe): dropped with ERR_RPC_UNEXPECTED_BYTES, no STARTTLS sent', async (t) => {
  const a = await arena({ tls: {} });
  const r = await raw(a.port);
  r.write(probeRecord(40), probeRecord(41));
  await r.closed;
  t.is(r.received().length, 0);
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_UNEXPECTED_BYTES']);
  await a.bystanderServed();
  await a.close();
});

test('H40 a second probe after STARTTLS instead of a ClientHello: dropped with an ERR_TLS_* error, no reply', async (t) => {
  const a = await arena({ tls: {} });
  const r = await raw(a.port);
  await exchange(r, probeRecord(42), startTlsReplyBytes(42));
  r.write(probeRecord(43));
  await r.closed;
  t.is(r.received().length, 36, 'nothing after STARTTLS');
  await until(() => a.tlsErrors.length === 1);
  t.regex(codeOf(a.tlsErrors[0]) ?? '', /^ERR_TLS_/);
  await a.bystanderServed();
  await a.close();
});

test('H41 AUTH_TLS probe inside an established TLS session: AUTH_BADCRED, the session goes on', async (t) => {
  const a = await arena({ tls: {} });
  const connection = await a.bystander.connect();
  const reply = await connection.callForReply(PROG, VERS, 0, Buffer.alloc(0), { auth: AUTH_TLS });
  t.like(reply, { replyStat: 1, rejectStat: 1, authStat: 1 });
  await a.bystanderServed();
  t.is(a.bystander.connection, connection);
  await a.close();
});

test('H42 a TLS application-data record instead of a ClientHello after STARTTLS: dropped with ERR_TLS_*', async (t) => {
  const a = await arena({ tls: {} });
  const r = await raw(a.port);
  await exchange(r, probeRecord(44), startTlsReplyBytes(44));
  r.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), Buffer.alloc(32, 0xaa)]));
  await r.closed;
  await until(() => a.tlsErrors.length === 1);
  t.regex(codeOf(a.tlsErrors[0]) ?? '', /^ERR_TLS_/);
  await a.bystanderServed();
  await a.close();
});

/** A real ClientHello from our client, captured by a fake server that answers STARTTLS. */
async function captureClientHello(): Promise<Buffer> {
  let resolveHello!: (b: Buffer) => void;
  const hello = new Promise<Buffer>((resolve) => (resolveHello = resolve));
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      if (!answered && all.length >= 44) {
        answered = true;
        chunks.length = 0;
        socket.write(startTlsReplyBytes(all.readUInt32BE(4)));
        return;
      }
      if (answered && all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
        resolveHello(all);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tlsClient((server.address() as net.AddressInfo).port, { handshakeTimeout: 2000 });
  client.connect().catch(() => undefined);
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}

test('H43 truncated ClientHello: with FIN -> ERR_TLS_HANDSHAKE; left hanging -> ERR_TLS_HANDSHAKE_TIMEOUT; both closed', async (t) => {
  const hello = await captureClientHello();
  t.is(hello[0], 0x16, 'a handshake record');
  const a = await arena({ tls: { handshakeTimeout: 400 } });
  const cut = await raw(a.port);
  await exchange(cut, probeRecord(45), startTlsReplyBytes(45));
  cut.socket.end(hello.subarray(0, 60));
  const hang = await raw(a.port);
  await exchange(hang, probeRecord(46), startTlsReplyBytes(46));
  hang.write(hello.subarray(0, 60));
  await Promise.all([cut.closed, hang.closed]);
  await until(() => a.tlsErrors.length === 2);
  t.deepEqual(a.tlsErrors.map(codeOf).sort(), ['ERR_TLS_HANDSHAKE', 'ERR_TLS_HANDSHAKE_TIMEOUT']);
  await a.bystanderServed();
  await a.close();
});

/** A fake RPC server: answers the probe with STARTTLS, then hands the socket to `then`. */
function startTlsThen(then: (socket: net.Socket) => void): Promise<{ port: number; close(): void }> {
  return recordServer((probe, socket) => {
    socket.pause();
    socket.removeAllListeners('data');
    socket.write(startTlsReplyBytes(probe.readUInt32BE(0)));
    then(socket);
  });
}

test('H44 server that answers STARTTLS and then never speaks: client fails ERR_TLS_HANDSHAKE_TIMEOUT at handshakeTimeout', async (t) => {
  const fake = await startTlsThen((socket) => socket.resume()); // read and discard the ClientHello
  const client = tlsClient(fake.port, { handshakeTimeout: 300 });
  const started = Date.now();
  const error = await t.throwsAsync(client.connect());
  t.is(codeOf(error), 'ERR_TLS_HANDSHAKE_TIMEOUT');
  t.true(Date.now() - started < 3000);
  client.destroy();
  fake.close();
});

test('H45 TLS 1.2-only client after a valid probe: the server refuses the handshake (ERR_TLS_HANDSHAKE), others served', async (t) => {
  const a = await arena({ tls: {} });
  const socket = net.connect({ host: '127.0.0.1', port: a.port });
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const reply = new Promise<Buffer>((resolve) => socket.once('data', resolve));
  socket.write(probeRecord(47));
  t.deepEqual(await reply, startTlsReplyBytes(47));
  const old = tls.connect({ socket, maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2', rejectUnauthorized: false, servername: 'localhost' });
  const clientError = await new Promise<Error>((resolve) => old.once('error', resolve));
  t.regex(clientError.message, /protocol version|alert|ECONNRESET|socket hang up/i);
  await until(() => a.tlsErrors.length === 1);
  t.is(codeOf(a.tlsErrors[0]), 'ERR_TLS_HANDSHAKE');
  t.regex((a.tlsErrors[0] as { reason?: string }).reason ?? '', /protocol|version/i);
  await a.bystanderServed();
  await a.close();
});

test('H46 TLS 1.2-only server after STARTTLS: our client fails with a coded TLS error, no plaintext fallback', async (t) => {
  const c = makeCerts();
  const fake = await startTlsThen((socket) => {
    const server = new tls.TLSSocket(socket, { isServer: true, cert: c.serverCert, key: c.serverKey, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    server.on('error', () => undefined);
    socket.resume();
  });
  const client = tlsClient(fake.port, { handshakeTimeout: 2000 });
  const error = await t.throwsAsync(client.connect());
  t.regex(codeOf(error) ?? '', /^ERR_TLS_(HANDSHAKE|ALERT)$/);
  t.is(client.connection, null);
  client.destroy();
  fake.close();
});

test('H47 ALPN strict on the client against a server that selects none: ERR_TLS_ALPN_REQUIRED; server unaffected', async (t) => {
  const a = await arena({ tls: { alpn: 'off' } });
  const strict = tlsClient(a.port, { alpn: 'require' });
  t.is(codeOf(await t.throwsAsync(strict.connect())), 'ERR_TLS_ALPN_REQUIRED');
  strict.destroy();
  await a.bystanderServed();
  await a.close();
});

test('H48 ALPN strict on the server against a client that offers none: handshake refused with a coded error; others served', async (t) => {
  const a = await arena({ tls: { alpn: 'require' } });
  const lax = tlsClient(a.port, { alpn: 'off' });
  t.regex(codeOf(await t.throwsAsync(lax.connect())) ?? '', /^ERR_TLS_/);
  await until(() => a.tlsErrors.length === 1);
  t.regex(codeOf(a.tlsErrors[0]) ?? '', /^ERR_TLS_(ALPN_REQUIRED|HANDSHAKE)$/);
  lax.destroy();
  await a.bystanderServed();
  await a.close();
  t.is(Proc.ECHO, 1);
});
