// The verified peer identity handlers authorize on (tlsInfo.peerIdentity): a client certificate made by
// `openssl` with every subjectAltName kind handlers match (DNS, IPv4, IPv6, URI, email, a UPN otherName)
// and extended key usages, read back over a real mTLS connection inside an RPC handler, and checked
// against Node's own parse of the same certificate and against openssl's text output.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { CallContext } from '../../src/rpc/program.js';
import { createTlsClient, createTlsServer, tlsInfoOf } from '../../src/rpc-tls/index.js';
import { peerIdentityOf } from '../../src/tls/index.js';

const dir = mkdtempSync(join(tmpdir(), 'rpctls-identity-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A CA, a server certificate for localhost, and a client certificate carrying every identity kind. */
function makePki() {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/O=rpctls test/CN=identity CA');
  const issue = (name: string, subject: string, extensions: string) => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`);
    return { cert: readFileSync(join(dir, `${name}.pem`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
  };
  const server = issue('server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const client = issue(
    'client',
    '/O=storage team/CN=nfs-client-7',
    'subjectAltName=DNS:client7.example.org,IP:192.0.2.7,IP:2001:db8::7,URI:spiffe://example.org/ns/nfs/sa/client7,' +
      'email:ops@example.org,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@EXAMPLE.ORG,otherName:1.3.6.1.4.1.99999.7;INTEGER:42\n' +
      'extendedKeyUsage=clientAuth,1.3.6.1.4.1.99999.1\n',
  );
  return { ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), server, client };
}

const pki = makePki();
const clientDer = new X509Certificate(pki.client.cert).raw;

test('peerIdentityOf reads every subjectAltName kind, otherNames and extended key usages', (t) => {
  const id = peerIdentityOf(clientDer);
  t.is(id.subject, 'O=storage team\nCN=nfs-client-7');
  t.is(id.issuer, 'O=rpctls test\nCN=identity CA');
  t.deepEqual(id.dnsNames, ['client7.example.org']);
  t.deepEqual(id.ipAddresses, ['192.0.2.7', '2001:db8:0:0:0:0:0:7']);
  t.deepEqual(id.uris, ['spiffe://example.org/ns/nfs/sa/client7']);
  t.deepEqual(id.emails, ['ops@example.org']);
  t.is(id.otherNames.length, 2);
  t.deepEqual(id.otherNames[0], { oid: '1.3.6.1.4.1.311.20.2.3', name: 'upn', value: 'alice@EXAMPLE.ORG' });
  // A non-string value stays DER: INTEGER 42.
  t.is(id.otherNames[1]!.oid, '1.3.6.1.4.1.99999.7');
  t.is(id.otherNames[1]!.name, undefined);
  t.deepEqual(id.otherNames[1]!.value, Buffer.from([0x02, 0x01, 0x2a]));
  t.deepEqual(id.extendedKeyUsage, ['clientAuth', '1.3.6.1.4.1.99999.1']);
  t.true(id.validTo.getTime() > Date.now());

  // The same certificate as Node and openssl see it.
  const node = new X509Certificate(pki.client.cert);
  t.is(id.fingerprint256, node.fingerprint256);
  t.deepEqual(node.keyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.4.1.99999.1']);
  for (const entry of ['DNS:client7.example.org', 'IP Address:192.0.2.7', 'URI:spiffe://example.org/ns/nfs/sa/client7', 'email:ops@example.org']) {
    t.true(node.subjectAltName!.includes(entry), entry);
  }
  const text = openssl('x509', '-in', 'client.pem', '-noout', '-ext', 'subjectAltName');
  t.regex(text, /IP Address:2001:DB8:0:0:0:0:0:7/i);
  t.regex(text, /othername: UPN::alice@EXAMPLE\.ORG/); // openssl renders the UPN; the INTEGER one as <unsupported>
});

test('a certificate without the extensions has empty lists; truncated DER is refused, never misread', (t) => {
  const ca = peerIdentityOf(new X509Certificate(pki.ca).raw);
  t.deepEqual([ca.dnsNames, ca.ipAddresses, ca.uris, ca.emails, ca.otherNames, ca.extendedKeyUsage], [[], [], [], [], [], []]);
  const x509 = new X509Certificate(pki.client.cert);
  for (const cut of [10, 100, 200, clientDer.length - 80, clientDer.length - 1]) {
    t.throws(() => peerIdentityOf(clientDer.subarray(0, cut), x509), { code: 'ERR_TLS_CERTIFICATE_PARSE' }, `cut at ${cut}`);
  }
});

test('over mTLS: the handler sees the verified client identity; the client sees the server identity; unverified is null', async (t) => {
  const PROG = 0x20000071;
  const probe = { program: PROG, version: 1 };
  const server = createTlsServer({ tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca, requireClientCert: true, kernelTls: 'off' } });
  server.addProgram({
    program: PROG,
    version: 1,
    procedures: {
      1: (_args: Buffer, context: CallContext) => {
        const id = tlsInfoOf(context.connection)?.peerIdentity ?? null;
        return Buffer.from(JSON.stringify(id && { subject: id.subject, upn: id.otherNames.find((o) => o.name === 'upn')?.value, uris: id.uris, eku: id.extendedKeyUsage }));
      },
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1' });
  t.teardown(() => server.close());

  const client = createTlsClient({ host: '127.0.0.1', port, probe, tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, servername: 'localhost', kernelTls: 'off' } });
  try {
    const seen = JSON.parse((await client.call(PROG, 1, 1)).toString()) as Record<string, unknown>;
    t.deepEqual(seen, { subject: 'O=storage team\nCN=nfs-client-7', upn: 'alice@EXAMPLE.ORG', uris: ['spiffe://example.org/ns/nfs/sa/client7'], eku: ['clientAuth', '1.3.6.1.4.1.99999.1'] });
    const serverId = tlsInfoOf(client.connection!)?.peerIdentity;
    t.deepEqual(serverId?.dnsNames, ['localhost']);
    t.deepEqual(serverId?.ipAddresses, ['127.0.0.1']);
    t.deepEqual(serverId?.extendedKeyUsage, ['serverAuth']);
  } finally {
    await client.close();
  }

  // Verification off: the certificate is there to look at, but it is no identity.
  const unverified = createTlsClient({ host: '127.0.0.1', port, probe, tls: { cert: pki.client.cert, key: pki.client.key, rejectUnauthorized: false, kernelTls: 'off' } });
  try {
    await unverified.call(PROG, 1, 0);
    const info = tlsInfoOf(unverified.connection!);
    t.false(info?.peerVerified);
    t.truthy(info?.peerX509);
    t.is(info?.peerIdentity, null);
  } finally {
    await unverified.close();
  }
});
