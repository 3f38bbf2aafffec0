// Failure paths: every one must end in a coded error, on both sides where both can tell.

import { execFileSync } from 'node:child_process';

import test from 'ava';

import { InvalidOptionError } from '../../src/errors.js';
import {
  TlsStream,
  connectTlsStream,
  type TlsAlertError,
  type TlsCertVerifyError,
  type TlsHandshakeTimeoutError,
} from '../../src/tls/index.js';
import { clientOptions, expectKtls, makeCerts, okPair, serverOptions, tcpPair, tlsPair } from './helpers.js';

test.before(() => {
  makeCerts(); // openssl CLI runs synchronously: keep it out of the timed tests
});

test.serial('handshake timeout against a silent peer, without blocking the event loop', async (t) => {
  const [client, silentServer] = await tcpPair();
  let ticks = 0;
  const interval = setInterval(() => ticks++, 10);
  const started = Date.now();
  const error = await t.throwsAsync<TlsHandshakeTimeoutError>(
    connectTlsStream(client, clientOptions({ handshakeTimeout: 400 })),
  );
  clearInterval(interval);
  t.is(error?.code, 'ERR_TLS_HANDSHAKE_TIMEOUT');
  t.is(error?.timeoutMs, 400);
  t.true(Date.now() - started >= 390);
  t.true(ticks >= 15, `interval fired ${ticks} times during the stall`);
  silentServer.destroy();
});

test('untrusted CA: client ERR_TLS_CERT_VERIFY, server receives unknown_ca', async (t) => {
  const certs = makeCerts();
  const [client, server] = await tlsPair({}, { cert: certs.otherCert, key: certs.otherKey });
  t.is(client.status, 'rejected');
  const error = (client as PromiseRejectedResult).reason as TlsCertVerifyError;
  t.is(error.code, 'ERR_TLS_CERT_VERIFY');
  t.is(error.verifyCode, 20);
  t.is(error.reason, 'unable to get local issuer certificate');
  t.is(server.status, 'rejected');
  const alert = (server as PromiseRejectedResult).reason as TlsAlertError;
  t.is(alert.code, 'ERR_TLS_ALERT');
  t.is(alert.level, 2);
  t.is(alert.description, 48);
  t.is(alert.alertName, 'unknown_ca');
});

test('wrong DNS name: hostname mismatch', async (t) => {
  const [client] = await tlsPair({ servername: 'nfs.example.org' });
  const error = (client as PromiseRejectedResult).reason as TlsCertVerifyError;
  t.is(error.code, 'ERR_TLS_CERT_VERIFY');
  t.is(error.verifyCode, 62);
  t.is(error.reason, 'hostname mismatch');
});

test('H74: a server certificate without subjectAltName is refused, not matched by its CN', async (t) => {
  const certs = makeCerts();
  const [client] = await tlsPair({}, { cert: certs.noSanCert, key: certs.noSanKey });
  t.is(client.status, 'rejected');
  const error = (client as PromiseRejectedResult).reason as TlsCertVerifyError;
  t.is(error.code, 'ERR_TLS_CERT_VERIFY');
  t.is(error.verifyCode, 62);
  t.regex(error.message, /no subjectAltName/);
  t.regex(error.message, /RFC 9525/);
});

test('IP literal servername is matched against iPAddress SANs', async (t) => {
  const [good] = await okPair({ servername: '127.0.0.1' });
  t.true(good.tlsInfo!.peerVerified);
  good.destroy();
  const [bad] = await tlsPair({ servername: '127.0.0.2' });
  const error = (bad as PromiseRejectedResult).reason as TlsCertVerifyError;
  t.is(error.code, 'ERR_TLS_CERT_VERIFY');
  t.is(error.reason, 'IP address mismatch');
});

test('rejectUnauthorized false completes and reports the verify error', async (t) => {
  const certs = makeCerts();
  const [client, server] = await okPair(
    { rejectUnauthorized: false },
    { cert: certs.otherCert, key: certs.otherKey },
  );
  t.false(client.tlsInfo!.peerVerified);
  // With verification errors accepted OpenSSL goes on and reports the chain's last failure.
  t.is(client.tlsInfo!.verifyError, 'unable to verify the first certificate');
  client.destroy();
  server.destroy();
});

test('client certificate required but absent: refused on both sides', async (t) => {
  const [client, server] = await tlsPair({}, { requireClientCert: true });
  t.is(server.status, 'rejected');
  t.is(((server as PromiseRejectedResult).reason as Error & { code: string }).code, 'ERR_TLS_CERT_REQUIRED');
  // TLS 1.3: the client finished its handshake before the server judged its (empty) certificate,
  // so the refusal arrives as an alert on the data path.
  let alert: TlsAlertError;
  if (client.status === 'rejected') {
    alert = client.reason as TlsAlertError;
  } else {
    const failed = new Promise<TlsAlertError>((resolve) => client.value.once('error', resolve));
    client.value.resume();
    alert = await failed;
  }
  t.is(alert.code, 'ERR_TLS_ALERT');
  t.is(alert.description, 116);
  t.is(alert.alertName, 'certificate_required');
});

test('ALPN require on the server refuses a client without ALPN', async (t) => {
  const [client, server] = await tlsPair({ alpn: 'off' }, { alpn: 'require' });
  t.is(((server as PromiseRejectedResult).reason as Error & { code: string }).code, 'ERR_TLS_ALPN_REQUIRED');
  const alert = (client as PromiseRejectedResult).reason as TlsAlertError;
  t.is(alert.code, 'ERR_TLS_ALERT');
  t.is(alert.alertName, 'no_application_protocol');
});

test('ALPN require on the client refuses a server that selects none', async (t) => {
  const [client, server] = await tlsPair({ alpn: 'require' }, { alpn: 'off' });
  t.is(((client as PromiseRejectedResult).reason as Error & { code: string }).code, 'ERR_TLS_ALPN_REQUIRED');
  if (server.status === 'fulfilled') server.value.destroy();
});

test('ALPN offer (default) accepts a peer without ALPN', async (t) => {
  const [client, server] = await okPair({ alpn: 'off' });
  t.is(client.tlsInfo!.alpn, null);
  t.is(server.tlsInfo!.alpn, null);
  client.destroy();
  server.destroy();
});

test('end() sends close_notify after queued data; the peer sees end', async (t) => {
  const [client, server] = await okPair();
  const chunks: Buffer[] = [];
  server.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve) => server.once('end', resolve));
  const payload = Buffer.alloc(2 * 1024 * 1024, 0x5a);
  client.write(payload);
  client.end(Buffer.from('last'));
  client.resume();
  await ended;
  t.is(Buffer.concat(chunks).length, payload.length + 4);
  t.is(Buffer.concat(chunks).subarray(-4).toString(), 'last');
  t.true(server.counters.closeNotifyReceived);
  t.true(client.counters.closeNotifySent);
  await new Promise((resolve) => client.once('close', resolve));
  t.true(client.counters.closeNotifyReceived, 'server answered with its own close_notify');
});

test('keylog lines are delivered only when asked', async (t) => {
  const lines: string[] = [];
  const [client, server] = await okPair({ keylog: (line) => lines.push(line) });
  t.true(lines.some((line) => line.startsWith('CLIENT_TRAFFIC_SECRET_0 ')));
  t.true(lines.some((line) => line.startsWith('SERVER_HANDSHAKE_TRAFFIC_SECRET ')));
  client.destroy();
  server.destroy();
});

test('takeover refuses a socket with unread bytes', async (t) => {
  const [client, server] = await tcpPair();
  client.write('early bytes');
  await new Promise((resolve) => server.once('readable', resolve));
  const error = t.throws(() => new TlsStream(server, serverOptions()));
  t.is((error as Error & { code: string }).code, 'ERR_TLS_TAKEOVER');
  client.destroy();
  server.destroy();
});

test('a TlsStream without a TlsContext is refused and leaves the socket alone', async (t) => {
  const [client, server] = await tcpPair();
  const error = t.throws(() => new TlsStream(client, { role: 'client' } as never));
  t.true(error instanceof InvalidOptionError);
  t.regex(error!.message, /^options\.context must be a TlsContext/);
  t.false(client.destroyed, 'a rejected option leaves the socket alone');
  client.destroy();
  server.destroy();
});

test.serial('a handshake started after a long synchronous stretch still gets its whole time limit', async (t) => {
  const client = clientOptions();
  const server = serverOptions({ handshakeTimeout: 1000 });
  const [c, s] = await tcpPair();
  execFileSync('sleep', ['1.5']); // the loop's cached time is now 1.5 s behind
  const [a, b] = await Promise.all([connectTlsStream(c, client), connectTlsStream(s, server)]);
  t.truthy(a.tlsInfo && b.tlsInfo);
  a.destroy();
  b.destroy();
});

test('bad PEM throws when the context is built, before any socket is touched', (t) => {
  const error = t.throws(() => serverOptions({ key: 'not a key' }));
  t.true(error instanceof InvalidOptionError);
  t.is((error as InvalidOptionError).option, 'key');
});

test('a peer that sends garbage instead of a ServerHello', async (t) => {
  const [client, server] = await tcpPair();
  server.on('data', () => server.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
  const error = await t.throwsAsync<Error & { code: string }>(connectTlsStream(client, clientOptions()));
  t.regex(error!.code, /^ERR_TLS_(HANDSHAKE|ALERT)$/);
  server.destroy();
});


test('kernelTls require fails closed where the kernel has no TLS', async (t) => {
  if (expectKtls) {
    const [client, server] = await okPair({ kernelTls: 'require' }, { kernelTls: 'require' });
    t.true(client.tlsInfo!.offload.tx && server.tlsInfo!.offload.rx);
    client.destroy();
    server.destroy();
    return;
  }
  const [client] = await tlsPair({ kernelTls: 'require' });
  const error = (client as PromiseRejectedResult).reason as Error & { code: string; message: string };
  t.is(error.code, 'ERR_TLS_KTLS');
  t.regex(error.message, /ENOENT/);
});

test('kernelTls off keeps the session in userspace', async (t) => {
  const [client, server] = await okPair({ kernelTls: 'off' });
  t.deepEqual(client.tlsInfo!.offload, { tx: false, rx: false, reason: 'kernel TLS disabled by option', rekey: true });
  t.is(client.kernelState(), null);
  client.destroy();
  server.destroy();
});
