// One SecureContext (SSL_CTX) per configuration: every connection made from a TlsContext runs on the
// same native context, while certificate and name checks still happen per connection.
import test from 'ava';

import { TlsContext, connectTlsStream, type TlsCertVerifyError, type TlsStream } from '../../src/tls/index.js';
import { makeCerts, tcpPair } from './helpers.js';

const N = 8;

async function pair(
  clientContext: TlsContext,
  serverContext: TlsContext,
  servername = 'localhost',
): Promise<[PromiseSettledResult<TlsStream>, PromiseSettledResult<TlsStream>]> {
  const [c, s] = await tcpPair();
  return Promise.allSettled([
    connectTlsStream(c, { context: clientContext, servername }),
    connectTlsStream(s, { context: serverContext }),
  ]);
}

test('N connections of one context share its SSL_CTX; closing them releases it', async (t) => {
  const certs = makeCerts();
  const serverContext = new TlsContext({ role: 'server', cert: certs.serverCert, key: certs.serverKey, ca: certs.ca });
  const clientContext = new TlsContext({ role: 'client', ca: certs.ca });
  const results = await Promise.all(Array.from({ length: N }, () => pair(clientContext, serverContext)));
  const streams = results.flat().map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
  const [clients, servers] = [streams.filter((_, i) => i % 2 === 0), streams.filter((_, i) => i % 2 === 1)];
  t.deepEqual(new Set(clients.map((s) => s.counters.contextId)), new Set([clientContext.stats().id]));
  t.deepEqual(new Set(servers.map((s) => s.counters.contextId)), new Set([serverContext.stats().id]));
  t.like(serverContext.stats(), { liveSockets: N, socketsCreated: N });
  t.like(clientContext.stats(), { liveSockets: N, socketsCreated: N });
  for (const s of streams) t.true(s.tlsInfo!.peerVerified || s.tlsInfo!.peerCertificate === null);
  for (const s of streams) s.destroy();
  t.like(serverContext.stats(), { liveSockets: 0, socketsCreated: N });
  t.like(clientContext.stats(), { liveSockets: 0, socketsCreated: N });
});

test('a shared client context still verifies each connection: its own servername, its own peer', async (t) => {
  const certs = makeCerts();
  const goodServer = new TlsContext({ role: 'server', cert: certs.serverCert, key: certs.serverKey });
  const untrustedServer = new TlsContext({ role: 'server', cert: certs.otherCert, key: certs.otherKey });
  const clientContext = new TlsContext({ role: 'client', ca: certs.ca });
  const [ok, wrongName, untrusted] = await Promise.all([
    pair(clientContext, goodServer, 'localhost'),
    pair(clientContext, goodServer, 'not-localhost.example'),
    pair(clientContext, untrustedServer, 'localhost'),
  ]);
  t.is(ok[0].status, 'fulfilled');
  const nameError = (wrongName[0] as PromiseRejectedResult).reason as TlsCertVerifyError;
  t.is(nameError.code, 'ERR_TLS_CERT_VERIFY');
  t.regex(nameError.reason, /hostname mismatch/);
  const caError = (untrusted[0] as PromiseRejectedResult).reason as TlsCertVerifyError;
  t.is(caError.code, 'ERR_TLS_CERT_VERIFY');
  t.regex(caError.reason, /self-signed|unable to get local issuer/);
  // And the connection after the failures is as good as the first.
  const again = await pair(clientContext, goodServer);
  t.is(again[0].status, 'fulfilled');
  for (const r of [...ok, ...wrongName, ...untrusted, ...again]) if (r.status === 'fulfilled') r.value.destroy();
  t.is(clientContext.stats().socketsCreated, 4);
  t.is(clientContext.stats().liveSockets, 0);
});
