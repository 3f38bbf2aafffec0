// Security defaults (S1-S5), each asserted on the wire or at the API: TLS 1.3 only (see also H45/H46),
// certificate verification on unless disabled, key log only when asked, requireTls never runs a plaintext
// non-NULL call, key material wiped; and who gets in (S6-S7): a revoked certificate or a wrong PSK never
// reaches a handler.
import test from 'ava';

import type { RpcConnection } from '../../src/rpc/connection.js';
import type { TlsStream } from '../../src/tls/tls-stream.js';
import { expectKtls, kernelCanRekey, makeCerts } from '../native/helpers.js';
import { startTlsServer, tlsClient } from '../tls/helpers.js';
import { makeCrlPki } from '../helpers/crl.js';
import { until } from '../helpers/net.js';
import { createTlsClient, createTlsServer, tlsInfoOf } from '../../src/rpc-tls/index.js';
import { HostileProc, PROG, Proc, VERS, arena, authSysBody, callBody, callRecord, codeOf, raw, u32, xopaque } from './helpers.js';

test.serial('S1 certificate verification is on by default: a server cert from an unknown CA fails ERR_TLS_CERT_VERIFY; only rejectUnauthorized:false connects, and says so', async (t) => {
  const c = makeCerts();
  const { server, port } = await startTlsServer({ cert: c.otherCert, key: c.otherKey });
  const strict = tlsClient(port); // no rejectUnauthorized given
  t.is(codeOf(await t.throwsAsync(strict.connect())), 'ERR_TLS_CERT_VERIFY');
  strict.destroy();
  const lax = tlsClient(port, { rejectUnauthorized: false });
  const connection = await lax.connect();
  t.false((connection.security as { peerVerified: boolean }).peerVerified);
  lax.destroy();
  await server.close();
});

test.serial('S2 the negotiated protocol is TLS 1.3 (both ends), with one of the three kernel-capable suites', async (t) => {
  const a = await arena({ tls: {} });
  const connection = await a.bystander.connect();
  const info = connection.security as { version: string; cipher: string };
  t.is(info.version, 'TLSv1.3');
  t.regex(info.cipher, /^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/);
  await a.close();
});

test.serial('S3 key log only when asked: no keylog option and no SSLKEYLOGFILE -> no line; with the option -> the traffic secrets', async (t) => {
  const saved = process.env.SSLKEYLOGFILE;
  delete process.env.SSLKEYLOGFILE;
  try {
    const a = await arena({ tls: {} });
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    const quiet = tlsClient(a.port);
    await quiet.call(PROG, VERS, Proc.ECHO);
    quiet.destroy();
    const lines: string[] = [];
    const asked = tlsClient(a.port, { keylog: (l) => lines.push(l) });
    await asked.call(PROG, VERS, Proc.ECHO);
    asked.destroy();
    process.off('warning', onWarning);
    t.true(lines.some((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0 ')));
    t.deepEqual(warnings, []);
    await a.close();
  } finally {
    if (saved !== undefined) process.env.SSLKEYLOGFILE = saved;
  }
});

test.serial('S4 requireTls: no plaintext non-NULL call reaches a handler (AUTH_NONE, AUTH_SYS, fragmented, unknown program): AUTH_TOOWEAK each', async (t) => {
  const a = await arena({ tls: { requireTls: true } });
  const r = await raw(a.port);
  const body = callBody({ xid: 4, procedure: HostileProc.THROWS });
  r.write(
    callRecord({ xid: 1, procedure: HostileProc.THROWS }),
    callRecord({ xid: 2, procedure: HostileProc.THROWS, credFlavor: 1, credRaw: xopaque(authSysBody({ gids: [0] })) }),
    callRecord({ xid: 3, program: 0x3fffffff, procedure: 1 }),
    u32(10), body.subarray(0, 10), u32(0x80000000 | (body.length - 10)), body.subarray(10),
    callRecord({ xid: 5, procedure: 0 }),
  );
  const messages = await r.waitMessages(5);
  t.deepEqual(messages.slice(0, 4).map((m) => [m.xid, (m as { authStat?: number }).authStat]), [[1, 5], [2, 5], [3, 5], [4, 5]]);
  t.like(messages[4], { xid: 5, replyStat: 0, acceptStat: 0 }, 'NULL stays open');
  t.deepEqual(a.handlerErrors, [], 'the throwing handler never ran');
  r.socket.destroy();
  await a.bystanderServed(); // the same server over TLS
  await a.close();
});

test.serial('S5 key material wiped: after the handshake the addon holds no byte of the traffic secrets beyond what rekey needs (kernel >= 6.14, until close); in kernel mode OpenSSL\'s session is freed too', async (t) => {
  const { server, port } = await startTlsServer();
  const serverStreams: TlsStream[] = [];
  server.on('secureConnection', (connection: RpcConnection) => serverStreams.push(connection.transport as TlsStream));
  const client = tlsClient(port);
  try {
    t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('wipe')), Buffer.from('wipe'));
    const clientStream = client.connection!.transport as TlsStream;
    for (const [side, stream] of [['client', clientStream], ['server', serverStreams[0]!]] as const) {
      const c = stream.counters;
      t.is(c.secretBytesHeld, 0, `${side}: the captured CLIENT/SERVER_TRAFFIC_SECRET_0 copies are zeroed`);
      const kernel = stream.tlsInfo!.offload.tx && stream.tlsInfo!.offload.rx;
      t.is(kernel, expectKtls);
      // Userspace mode needs OpenSSL's keys for every record; kernel mode must not keep them.
      t.is(c.opensslSessionHeld, !kernel, `${side}: OpenSSL session ${kernel ? 'freed (kernel has the keys)' : 'kept (userspace records)'}`);
      t.is(c.rekeySecretsHeld, kernel && kernelCanRekey, `${side}: current secrets kept only to follow KeyUpdates`);
    }
    await client.close();
    t.false(clientStream.counters.rekeySecretsHeld, 'wiped on close');
  } finally {
    await client.close();
    await server.close();
  }
});

test.serial('S6 revocation: a client certificate the server\'s CRL revokes is refused in the handshake (ERR_TLS_CERT_VERIFY "certificate revoked"), no call runs; an unrevoked client of the same server is served', async (t) => {
  const pki = makeCrlPki();
  const server = createTlsServer({ tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca, crl: pki.crl, requireClientCert: true } });
  let calls = 0;
  server.addProgram({ program: PROG, version: VERS, procedures: { [Proc.ECHO]: (args: Buffer) => (calls++, args) } });
  const refused: Error[] = [];
  server.on('tlsClientError', (error: Error) => refused.push(error));
  const { port } = await server.listen({ host: '127.0.0.1' });
  const client = (id: { cert: string; key: string }) =>
    createTlsClient({ host: '127.0.0.1', port, probe: { program: PROG, version: VERS }, timeout: 5000, tls: { ca: pki.ca, cert: id.cert, key: id.key, servername: 'localhost' } });
  try {
    const revoked = client(pki.revokedClient);
    await t.throwsAsync(revoked.call(PROG, VERS, Proc.ECHO, Buffer.from('let me in')));
    revoked.destroy();
    await until(() => refused.length > 0);
    const error = refused[0] as Error & { code?: string; reason?: string; verifyCode?: number };
    t.is(error.code, 'ERR_TLS_CERT_VERIFY');
    t.is(error.reason, 'certificate revoked');
    t.is(error.verifyCode, 23);
    t.is(calls, 0, 'no handler ran for the revoked client');
    const good = client(pki.client);
    t.deepEqual(await good.call(PROG, VERS, Proc.ECHO, Buffer.from('served')), Buffer.from('served'));
    t.is(tlsInfoOf(good.connection!)?.authMode, 'mtls');
    good.destroy();
  } finally {
    await server.close();
  }
});

test.serial('S7 external PSK: a wrong key and an unknown identity are refused, no call runs; the right PSK is served (no certificates anywhere)', async (t) => {
  const key = Buffer.alloc(32, 7);
  const server = createTlsServer({ tls: { psk: { identity: 'nvme-host-1', key } } });
  let calls = 0;
  server.addProgram({ program: PROG, version: VERS, procedures: { [Proc.ECHO]: (args: Buffer) => (calls++, args) } });
  const { port } = await server.listen({ host: '127.0.0.1' });
  const client = (identity: string, k: Buffer) =>
    createTlsClient({ host: '127.0.0.1', port, probe: { program: PROG, version: VERS }, timeout: 5000, tls: { psk: { identity, key: k } } });
  try {
    for (const [identity, k] of [['nvme-host-1', Buffer.alloc(32, 8)], ['someone-else', key]] as const) {
      const bad = client(identity, k);
      await t.throwsAsync(bad.call(PROG, VERS, Proc.ECHO, Buffer.from('let me in')), undefined, identity);
      bad.destroy();
    }
    t.is(calls, 0);
    const good = client('nvme-host-1', key);
    t.deepEqual(await good.call(PROG, VERS, Proc.ECHO, Buffer.from('served')), Buffer.from('served'));
    const info = tlsInfoOf(good.connection!);
    t.true(info?.psk);
    t.is(info?.peerIdentity, null, 'a PSK session has no certificate identity');
    good.destroy();
  } finally {
    await server.close();
  }
});
