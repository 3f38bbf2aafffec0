// The in-memory X.509 builder: accepted by node:crypto, by `openssl verify`, and by our TLS handshake.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { createCertificateAuthority, createDemoPki, ipBytes, issueCertificate } from '../../src/cli/certs.js';
import { createTlsClient, tlsInfoOf } from '../../src/rpc-tls/index.js';
import { TEST_PROGRAM, TEST_VERSION } from '../../src/cli/common.js';
import { pkiFiles, tlsServer } from './helpers.js';

const pki = createDemoPki();

test('CA and leaf parse with X509Certificate, with the extensions asked for', (t) => {
  const ca = new X509Certificate(pki.ca.cert);
  const server = new X509Certificate(pki.server.cert);
  const client = new X509Certificate(pki.client.cert);
  t.true(ca.ca);
  t.false(server.ca);
  t.true(server.checkIssued(ca));
  t.true(server.verify(ca.publicKey));
  t.true(client.verify(ca.publicKey));
  t.true(ca.verify(ca.publicKey), 'the CA is self-signed');
  t.is(server.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  t.is(server.checkHost('localhost'), 'localhost');
  t.is(server.checkIP('127.0.0.1'), '127.0.0.1');
  t.is(server.checkHost('elsewhere.example'), undefined);
  t.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.34']);
  t.deepEqual(client.keyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.33']);
  t.is(server.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  t.true(new Date(server.validTo).getTime() > Date.now());
  t.true(new Date(server.validFrom).getTime() < Date.now());
});

test('openssl verify accepts the chain (strict X.509, server and client purposes) and shows CA:TRUE + keyUsage', (t) => {
  const f = pkiFiles(pki);
  const verify = (purpose: string, cert: string): string =>
    execFileSync('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', f.ca, cert], { encoding: 'utf8' });
  t.regex(verify('sslserver', f.cert), /: OK/);
  t.regex(verify('sslclient', f.clientCert), /: OK/);
  const text = execFileSync('openssl', ['x509', '-in', f.ca, '-noout', '-text'], { encoding: 'utf8' });
  t.regex(text, /Basic Constraints: critical\s+CA:TRUE/);
  t.regex(text, /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
  t.regex(text, /Signature Algorithm: ecdsa-with-SHA256/);
  // A certificate from another CA must not verify: the check above can fail.
  const other = createCertificateAuthority({ commonName: 'other' });
  writeFileSync(join(f.dir, 'other-ca.pem'), other.cert);
  t.throws(() => execFileSync('openssl', ['verify', '-CAfile', join(f.dir, 'other-ca.pem'), f.cert], { stdio: 'pipe' }));
});

test('IPv6 SANs encode as 16 bytes', (t) => {
  t.is(ipBytes('::1').toString('hex'), '00000000000000000000000000000001');
  t.is(ipBytes('fe80::1:2').toString('hex'), 'fe800000000000000000000000010002');
  t.is(ipBytes('::ffff:10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001');
  const cert = issueCertificate(pki.ca, { commonName: 'v6', ips: ['2001:db8::7'], usage: 'server' });
  t.is(cert.x509.checkIP('2001:db8::7'), '2001:db8::7');
});

test('our TLS client and server handshake with them, mutual TLS included; another CA is refused', async (t) => {
  const { server, port } = await tlsServer({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert });
  try {
    const client = createTlsClient({
      host: '127.0.0.1', port, probe: { program: TEST_PROGRAM, version: TEST_VERSION },
      tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, servername: 'localhost' },
    });
    const info = tlsInfoOf(await client.connect());
    t.is(info?.version, 'TLSv1.3');
    t.true(info?.peerVerified);
    t.is(info?.authMode, 'mtls');
    await client.call(TEST_PROGRAM, TEST_VERSION, 0);
    await client.close();

    const stranger = createTlsClient({
      host: '127.0.0.1', port, probe: { program: TEST_PROGRAM, version: TEST_VERSION },
      tls: { ca: createCertificateAuthority().cert, servername: 'localhost' },
    });
    const error = await t.throwsAsync(stranger.connect());
    t.is((error as { code?: string }).code, 'ERR_TLS_CERT_VERIFY');
    stranger.destroy();
  } finally {
    await server.close();
  }
});
