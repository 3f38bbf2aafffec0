/**
 * Throwaway X.509 certificates made in memory with node:crypto: a CA and the certificates it issues,
 * EC P-256 keys, ECDSA-SHA256 signatures. For demos, tests and `rpctls serve --self-signed`; no openssl
 * binary, no files. A minimal DER writer is enough because we only ever *write* certificates; reading
 * them back is node:crypto's X509Certificate's job.
 */
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import net from 'node:net';

// ---- DER (X.690) -----------------------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const boolTrue = (): Buffer => tlv(0x01, Buffer.from([0xff]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
/** Context-specific constructed [n] (EXPLICIT tagging). */
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

/** A non-negative INTEGER from big-endian magnitude bytes (a leading 0 keeps it positive). */
function uint(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  return tlv(0x02, (trimmed[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes: number[] = [40 * (parts[0] as number) + (parts[1] as number)];
  for (const part of parts.slice(2)) {
    const base128: number[] = [part & 0x7f];
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** BIT STRING with the minimal unused-bit count DER requires (for named-bit lists like keyUsage). */
function namedBits(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  const used = bytes.subarray(0, end);
  const last = end > 0 ? (used[end - 1] as number) : 0;
  let unused = 0;
  while (end > 0 && unused < 7 && !(last & (1 << unused))) unused++;
  return tlv(0x03, Buffer.from([unused]), used);
}

const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

// ---- X.509 (RFC 5280) --------------------------------------------------------------------------------

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  // RFC 9289 7.1: id-kp-rpcTLSClient / id-kp-rpcTLSServer.
  rpcTlsClient: '1.3.6.1.5.5.7.3.33',
  rpcTlsServer: '1.3.6.1.5.5.7.3.34',
} as const;

const KEY_USAGE = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const;

function name(commonName: string, organization?: string): Buffer {
  const rdns = [];
  if (organization !== undefined) rdns.push(set(seq(oid(OID.organization), utf8(organization))));
  rdns.push(set(seq(oid(OID.commonName), utf8(commonName))));
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), boolTrue(), octets(value)) : seq(oid(id), octets(value));
}

/** Bytes of an IPv4 or IPv6 literal, for an iPAddress SAN. */
export function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!net.isIPv6(ip)) throw new TypeError(`not an IP address: ${ip}`);
  let text = ip;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail = (v4[1] as string).split('.').map(Number);
    text = `${text.slice(0, -(v4[1] as string).length)}0:0`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const words = rest === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  if (tail.length) Buffer.from(tail).copy(out, 12);
  return out;
}

function subjectAltName(dns: readonly string[], ips: readonly string[]): Buffer {
  // GeneralName: dNSName [2] IA5String, iPAddress [7] OCTET STRING, both IMPLICIT.
  return seq(...dns.map((d) => tlv(0x82, Buffer.from(d, 'ascii'))), ...ips.map((ip) => tlv(0x87, ipBytes(ip))));
}

function spkiDer(publicKey: KeyObject): Buffer {
  return publicKey.export({ type: 'spki', format: 'der' });
}

/** Key identifier: SHA-1 of the SubjectPublicKeyInfo (RFC 7093 allows any such hash). */
function keyId(publicKey: KeyObject): Buffer {
  return createHash('sha1').update(spkiDer(publicKey)).digest();
}

interface TbsFields {
  subject: Buffer;
  issuer: Buffer;
  publicKey: KeyObject;
  issuerKey: KeyObject;
  /** KeyObject of the issuer's public key, for the authority key id. */
  issuerPublicKey: KeyObject;
  days: number;
  extensions: Buffer[];
}

function buildCertificate(f: TbsFields): Buffer {
  const algorithm = seq(oid(OID.ecdsaWithSha256)); // no parameters for ECDSA (RFC 5758)
  // An hour back-dated so a peer with a slightly slow clock accepts it at once.
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + f.days * 86400_000);
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f; // positive, at most 20 octets
  const tbs = seq(
    explicit(0, tlv(0x02, Buffer.from([2]))), // v3
    uint(serial),
    algorithm,
    f.issuer,
    seq(time(notBefore), time(notAfter)),
    f.subject,
    spkiDer(f.publicKey),
    explicit(3, seq(
      extension(OID.subjectKeyId, false, octets(keyId(f.publicKey))),
      extension(OID.authorityKeyId, false, seq(tlv(0x80, keyId(f.issuerPublicKey)))),
      ...f.extensions,
    )),
  );
  // crypto.sign with an EC key yields the DER Ecdsa-Sig-Value X.509 wants.
  const signature = sign('sha256', tbs, f.issuerKey);
  return seq(tbs, algorithm, bitString(signature));
}

function pem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

// ---- public API --------------------------------------------------------------------------------------

export interface KeyPairPem {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
  /** The same certificate, parsed. */
  x509: X509Certificate;
}

export interface CertificateAuthority extends KeyPairPem {
  readonly commonName: string;
}

export interface CaOptions {
  commonName?: string;
  organization?: string;
  /** Validity in days (default 2: these are throwaway). */
  days?: number;
}

/** A self-signed CA: basicConstraints CA:true (critical), keyUsage keyCertSign + cRLSign (critical). */
export function createCertificateAuthority(options: CaOptions = {}): CertificateAuthority {
  const commonName = options.commonName ?? 'rpctls throwaway CA';
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const subject = name(commonName, options.organization ?? 'rpctls');
  const der = buildCertificate({
    subject,
    issuer: subject,
    publicKey,
    issuerKey: privateKey,
    issuerPublicKey: publicKey,
    days: options.days ?? 2,
    extensions: [
      extension(OID.basicConstraints, true, seq(boolTrue())),
      extension(OID.keyUsage, true, namedBits(Buffer.from([KEY_USAGE.digitalSignature | KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign]))),
    ],
  });
  return {
    commonName,
    cert: pem(der),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    x509: new X509Certificate(der),
  };
}

export interface IssueOptions {
  commonName: string;
  /** subjectAltName dNSName entries (no wildcards: RFC 9289 forbids matching them). */
  dns?: readonly string[];
  /** subjectAltName iPAddress entries, IPv4 or IPv6 literals. */
  ips?: readonly string[];
  /**
   * extendedKeyUsage: 'server' = serverAuth + id-kp-rpcTLSServer, 'client' = clientAuth +
   * id-kp-rpcTLSClient, 'both' = all four.
   */
  usage: 'server' | 'client' | 'both';
  days?: number;
}

/** An end-entity certificate signed by `ca`: basicConstraints CA:false, keyUsage digitalSignature. */
export function issueCertificate(ca: CertificateAuthority, options: IssueOptions): KeyPairPem {
  const caKey = createPrivateKey(ca.key);
  const caPublic = ca.x509.publicKey;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const eku: string[] = [];
  if (options.usage !== 'client') eku.push(OID.serverAuth, OID.rpcTlsServer);
  if (options.usage !== 'server') eku.push(OID.clientAuth, OID.rpcTlsClient);
  const extensions = [
    extension(OID.basicConstraints, true, seq()),
    extension(OID.keyUsage, true, namedBits(Buffer.from([KEY_USAGE.digitalSignature]))),
    extension(OID.extKeyUsage, false, seq(...eku.map(oid))),
  ];
  const dns = options.dns ?? [];
  const ips = options.ips ?? [];
  if (dns.length + ips.length > 0) extensions.push(extension(OID.subjectAltName, false, subjectAltName(dns, ips)));
  const der = buildCertificate({
    subject: name(options.commonName),
    issuer: issuerName(ca),
    publicKey,
    issuerKey: caKey,
    issuerPublicKey: caPublic,
    days: options.days ?? 2,
    extensions,
  });
  return { cert: pem(der), key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, x509: new X509Certificate(der) };
}

/** The CA's subject Name, byte for byte as in its certificate, so issuer and subject compare equal. */
function issuerName(ca: CertificateAuthority): Buffer {
  // Walk Certificate -> TBSCertificate -> [version, serial, signature, issuer, validity, subject].
  const der = ca.x509.raw;
  const children = (buf: Buffer, at: number): { start: number; end: number }[] => {
    const out: { start: number; end: number }[] = [];
    const { contentStart, contentEnd } = header(buf, at);
    for (let p = contentStart; p < contentEnd; ) {
      const h = header(buf, p);
      out.push({ start: p, end: h.contentEnd });
      p = h.contentEnd;
    }
    return out;
  };
  const tbs = children(der, 0)[0] as { start: number };
  const fields = children(der, tbs.start);
  const subject = fields[5] as { start: number; end: number };
  return Buffer.from(der.subarray(subject.start, subject.end));
}

function header(buf: Buffer, at: number): { contentStart: number; contentEnd: number } {
  const first = buf[at + 1] as number;
  if (first < 0x80) return { contentStart: at + 2, contentEnd: at + 2 + first };
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (buf[at + 2 + i] as number);
  return { contentStart: at + 2 + n, contentEnd: at + 2 + n + len };
}

export interface DemoPki {
  ca: CertificateAuthority;
  /** CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1 (plus extra names given). */
  server: KeyPairPem;
  /** CN=rpctls client, for mutual TLS. */
  client: KeyPairPem;
}

/** A CA, a server certificate for this machine's loopback names, and a client certificate. */
export function createDemoPki(options: { dns?: readonly string[]; ips?: readonly string[] } = {}): DemoPki {
  const ca = createCertificateAuthority();
  const server = issueCertificate(ca, {
    commonName: 'localhost',
    dns: [...new Set(['localhost', ...(options.dns ?? [])])],
    ips: [...new Set(['127.0.0.1', '::1', ...(options.ips ?? [])])],
    usage: 'server',
  });
  const client = issueCertificate(ca, { commonName: 'rpctls client', usage: 'client' });
  return { ca, server, client };
}
