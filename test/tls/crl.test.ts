// Certificate revocation (the `crl` option, and setCrl): real certificates revoked with `openssl ca`,
// real handshakes over loopback sockets (userspace records: revocation is decided in the handshake,
// before kernel TLS could take over). Each side refuses a peer its CRL revokes with
// ERR_TLS_CERT_VERIFY "certificate revoked"; replacing the CRL changes what new handshakes accept.
import test from 'ava';

import { InvalidOptionError } from '../../src/errors.js';
import { TlsContext, type TlsCertVerifyError, type TlsContextOptions, connectTlsStream, type TlsStream } from '../../src/tls/index.js';
import { createTlsClient } from '../../src/rpc-tls/index.js';
import { tcpPair } from '../native/helpers.js';
import { makeCrlPki } from '../helpers/crl.js';

const pki = makeCrlPki();

type Side = Omit<TlsContextOptions, 'role'>;

/** One handshake between fresh sides (or given contexts); settles with each side's stream or error. */
async function handshake(
  client: Side | TlsContext,
  server: Side | TlsContext,
): Promise<{ client: TlsStream | Error; server: TlsStream | Error }> {
  const [c, s] = await tcpPair();
  const ctx = (role: 'client' | 'server', o: Side | TlsContext): TlsContext =>
    o instanceof TlsContext ? o : new TlsContext({ role, kernelTls: 'off', ...o });
  const settle = (p: Promise<TlsStream>): Promise<TlsStream | Error> => p.catch((e: unknown) => e as Error);
  const [client_, server_] = await Promise.all([
    settle(connectTlsStream(c, { context: ctx('client', client), servername: 'localhost' })),
    settle(connectTlsStream(s, { context: ctx('server', server) })),
  ]);
  for (const end of [client_, server_]) if (!(end instanceof Error)) end.destroy();
  c.destroy();
  s.destroy();
  return { client: client_, server: server_ };
}

function assertRevoked(t: import('ava').ExecutionContext, end: TlsStream | Error, who: string): void {
  t.true(end instanceof Error, `${who}: refused`);
  const error = end as TlsCertVerifyError;
  t.is(error.code, 'ERR_TLS_CERT_VERIFY', `${who}: ${String(error)}`);
  t.is(error.verifyCode, 23, 'X509_V_ERR_CERT_REVOKED');
  t.is(error.reason, 'certificate revoked');
  t.is(error.message, 'peer certificate verification failed: certificate revoked');
}

const serverSide = (id: { cert: string; key: string }, extra: Side = {}): Side => ({ cert: id.cert, key: id.key, ca: pki.ca, requireClientCert: true, ...extra });
const clientSide = (id: { cert: string; key: string } | null, extra: Side = {}): Side => ({ ca: pki.ca, ...(id ? { cert: id.cert, key: id.key } : {}), ...extra });

test('client side: a server certificate the CRL revokes is refused; an unrevoked one is accepted', async (t) => {
  const revoked = await handshake(clientSide(pki.client, { crl: pki.crl }), serverSide(pki.revokedServer));
  assertRevoked(t, revoked.client, 'client');
  const good = await handshake(clientSide(pki.client, { crl: pki.crl }), serverSide(pki.server));
  t.false(good.client instanceof Error, String(good.client));
  t.true((good.client as TlsStream).tlsInfo?.peerVerified, 'verified with the CRL checked');
  t.false(good.server instanceof Error, String(good.server));
  // Without a CRL the revoked certificate passes: the refusal above is the CRL's doing.
  const noCrl = await handshake(clientSide(pki.client), serverSide(pki.revokedServer));
  t.false(noCrl.client instanceof Error, String(noCrl.client));
});

test('server side: a client certificate the CRL revokes is refused; an unrevoked one is accepted (mtls)', async (t) => {
  const revoked = await handshake(clientSide(pki.revokedClient), serverSide(pki.server, { crl: pki.crl }));
  assertRevoked(t, revoked.server, 'server');
  const good = await handshake(clientSide(pki.client), serverSide(pki.server, { crl: pki.crl }));
  t.false(good.server instanceof Error, String(good.server));
  t.is((good.server as TlsStream).tlsInfo?.authMode, 'mtls');
  const noCrl = await handshake(clientSide(pki.revokedClient), serverSide(pki.server));
  t.false(noCrl.server instanceof Error, String(noCrl.server));
});

test('setCrl: new handshakes use the replaced CRL; undefined removes it', async (t) => {
  const server = new TlsContext({ role: 'server', kernelTls: 'off', ...serverSide(pki.server, { crl: pki.emptyCrl }) });
  const id = server.stats().id;
  t.false((await handshake(clientSide(pki.revokedClient), server)).server instanceof Error, 'not revoked yet');
  server.setCrl(pki.crl);
  assertRevoked(t, (await handshake(clientSide(pki.revokedClient), server)).server, 'server after setCrl');
  t.false((await handshake(clientSide(pki.client), server)).server instanceof Error, 'others still accepted');
  server.setCrl([pki.emptyCrl, pki.otherCaCrl]);
  t.false((await handshake(clientSide(pki.revokedClient), server)).server instanceof Error, 'back to the CRL revoking nothing');
  server.setCrl(undefined);
  t.false((await handshake(clientSide(pki.revokedClient), server)).server instanceof Error, 'no CRL');
  t.is(server.stats().id, id, 'the same SSL_CTX throughout');

  const client = new TlsContext({ role: 'client', kernelTls: 'off', ...clientSide(null) });
  t.false((await handshake(client, serverSide(pki.revokedServer))).client instanceof Error);
  client.setCrl(pki.crl);
  assertRevoked(t, (await handshake(client, serverSide(pki.revokedServer))).client, 'client after setCrl');
  // A CRL OpenSSL cannot read is refused, and the one in force stays.
  const bad = t.throws(() => client.setCrl('-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n'), { instanceOf: InvalidOptionError });
  t.regex(bad?.message ?? '', /^crl must be PEM CRLs OpenSSL can load/);
  assertRevoked(t, (await handshake(client, serverSide(pki.revokedServer))).client, 'client after a refused setCrl');
});

test('fail closed: a CRL of another CA refuses every peer of this one; a CA above the leaf needs no CRL of its own', async (t) => {
  const wrong = await handshake(clientSide(null, { crl: pki.otherCaCrl }), serverSide(pki.server));
  t.true(wrong.client instanceof Error);
  t.is((wrong.client as TlsCertVerifyError).reason, 'unable to get certificate CRL');
  // root -> intermediate -> leaf, with only the intermediate's CRL: the leaf is checked, the intermediate is not.
  const chainServer = (cert: string, key: string): Side => ({ cert, key });
  const ok = await handshake(clientSide(null, { crl: pki.chained.interCrlRevoking }), chainServer(pki.chained.cert, pki.chained.key));
  t.false(ok.client instanceof Error, String(ok.client));
  t.true((ok.client as TlsStream).tlsInfo?.peerVerified);
  const revokedLeaf = await handshake(clientSide(null, { crl: pki.chained.interCrlRevoking }), chainServer(pki.chained.revokedCert, pki.chained.revokedKey));
  assertRevoked(t, revokedLeaf.client, 'client, chained leaf');
  const notYet = await handshake(clientSide(null, { crl: pki.chained.interCrl }), chainServer(pki.chained.revokedCert, pki.chained.revokedKey));
  t.false(notYet.client instanceof Error, String(notYet.client));
});

test('crl option validation: PEM X509 CRL blocks only, named with its prefix; createTlsClient takes it', (t) => {
  const bad = (crl: unknown, message: RegExp): void => {
    const error = t.throws(() => new TlsContext({ role: 'client', ca: pki.ca, crl } as TlsContextOptions, 'tls.'), { instanceOf: InvalidOptionError });
    t.regex(error?.message ?? '', message);
  };
  bad(pki.ca, /^tls\.crl must be a PEM CRL \(string or Buffer\); received a string of \d+ characters$/);
  bad([], /^tls\.crl must be a PEM CRL or a non-empty array of them/);
  bad([pki.crl, 42], /^tls\.crl\[1\] must be a PEM CRL/);
  t.notThrows(() => new TlsContext({ role: 'client', ca: pki.ca, crl: [Buffer.from(pki.crl), pki.emptyCrl] }));
  const typo = t.throws(() => createTlsClient({ host: '127.0.0.1', port: 1, tls: { ca: pki.ca, crls: pki.crl } } as never));
  t.regex(typo?.message ?? '', /tls\.crls.*did you mean tls\.crl\?/);
});
