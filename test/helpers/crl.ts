// A throwaway PKI with revocation, made by the openssl CLI (as an operator would make one): a CA with
// `openssl ca` bookkeeping (index.txt), server and client certificates, one of each revoked, and CRLs:
// one revoking them, one revoking nothing, one from an unrelated CA, and a chain through an
// intermediate CA whose CRL revokes its own leaf.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CrlPki {
  dir: string;
  ca: string;
  /** localhost / 127.0.0.1, not revoked. */
  server: { cert: string; key: string };
  /** localhost / 127.0.0.1, revoked by `crl`. */
  revokedServer: { cert: string; key: string };
  client: { cert: string; key: string };
  revokedClient: { cert: string; key: string };
  /** The CA's CRL revoking revokedServer and revokedClient. */
  crl: string;
  /** The CA's CRL revoking nothing (issued before the revocations). */
  emptyCrl: string;
  /** An unrelated CA's CRL: says nothing about this CA's certificates. */
  otherCaCrl: string;
  /** root -> intermediate -> leaf (localhost): the chain to present, and the intermediate's CRL revoking nothing. */
  chained: { cert: string; key: string; interCrl: string; revokedCert: string; revokedKey: string; interCrlRevoking: string };
  /** File paths of the PEMs above, by name (for tlshd-format configuration files). */
  file: (name: string) => string;
}

const CA_CONF = (name: string): string => `[ca]
default_ca = ca_default
[ca_default]
dir = .
database = ${name}-index.txt
new_certs_dir = .
certificate = ${name}.pem
private_key = ${name}.key
default_md = sha256
default_crl_days = 2
crlnumber = ${name}-crlnumber
policy = policy_any
[policy_any]
commonName = supplied
`;

let pki: CrlPki | undefined;

export function makeCrlPki(): CrlPki {
  if (pki) return pki;
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-crl-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const newCa = (name: string, subject: string): void => {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', subject);
    writeFileSync(join(dir, `${name}.cnf`), CA_CONF(name));
    writeFileSync(join(dir, `${name}-index.txt`), '');
    writeFileSync(join(dir, `${name}-crlnumber`), '01\n');
  };
  const issue = (name: string, ca: string, subject: string, extensions: string): void => {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`,
      '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`);
  };
  const gencrl = (ca: string, out: string): void => openssl('ca', '-config', `${ca}.cnf`, '-gencrl', '-out', out);
  const revoke = (ca: string, cert: string): void => openssl('ca', '-config', `${ca}.cnf`, '-revoke', `${cert}.pem`);
  const serverExt = 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';
  const clientExt = 'extendedKeyUsage=clientAuth\n';

  newCa('ca', '/CN=rpctls CRL test CA');
  issue('server', 'ca', '/CN=localhost', serverExt);
  issue('revoked-server', 'ca', '/CN=localhost', serverExt);
  issue('client', 'ca', '/CN=rpctls client', clientExt);
  issue('revoked-client', 'ca', '/CN=rpctls revoked client', clientExt);
  gencrl('ca', 'empty-crl.pem');
  revoke('ca', 'revoked-server');
  revoke('ca', 'revoked-client');
  gencrl('ca', 'crl.pem');

  newCa('other-ca', '/CN=unrelated CA');
  gencrl('other-ca', 'other-ca-crl.pem');

  // An intermediate CA under `ca`, with its own bookkeeping.
  issue('inter', 'ca', '/CN=rpctls intermediate CA', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  writeFileSync(join(dir, 'inter.cnf'), CA_CONF('inter'));
  writeFileSync(join(dir, 'inter-index.txt'), '');
  writeFileSync(join(dir, 'inter-crlnumber'), '01\n');
  issue('leaf', 'inter', '/CN=localhost', serverExt);
  issue('revoked-leaf', 'inter', '/CN=localhost', serverExt);
  gencrl('inter', 'inter-crl.pem');
  revoke('inter', 'revoked-leaf');
  gencrl('inter', 'inter-crl-revoking.pem');

  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  pki = {
    dir,
    ca: read('ca.pem'),
    server: { cert: read('server.pem'), key: read('server.key') },
    revokedServer: { cert: read('revoked-server.pem'), key: read('revoked-server.key') },
    client: { cert: read('client.pem'), key: read('client.key') },
    revokedClient: { cert: read('revoked-client.pem'), key: read('revoked-client.key') },
    crl: read('crl.pem'),
    emptyCrl: read('empty-crl.pem'),
    otherCaCrl: read('other-ca-crl.pem'),
    chained: {
      cert: read('leaf.pem') + read('inter.pem'),
      key: read('leaf.key'),
      interCrl: read('inter-crl.pem'),
      revokedCert: read('revoked-leaf.pem') + read('inter.pem'),
      revokedKey: read('revoked-leaf.key'),
      interCrlRevoking: read('inter-crl-revoking.pem'),
    },
    file: (name: string) => join(dir, name),
  };
  return pki;
}
