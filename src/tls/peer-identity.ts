// The verified peer's identity as handlers need it: every subjectAltName entry by kind (otherName
// included, which Node's X509Certificate only renders as text) and the extended key usages. Read from
// the certificate's DER with a small reader: only the extensions are walked, and only once a
// handshake verified the certificate.
import { X509Certificate } from 'node:crypto';

import { TlsCertificateParseError } from './errors.js';

/** A subjectAltName otherName: its type OID, a name for the well-known ones, the value. */
export interface OtherName {
  oid: string;
  /** `upn` (Microsoft UPN), `smtpUtf8Mailbox` (RFC 8398), `krb5PrincipalName` (RFC 4556), or undefined. */
  name: string | undefined;
  /** The value as text when it is a string type (UTF8String, IA5String, ...), else its DER bytes. */
  value: string | Buffer;
}

export interface PeerIdentity {
  /** Distinguished names as Node's X509Certificate prints them (one `KEY=value` per line). */
  subject: string;
  issuer: string;
  serialNumber: string;
  /** SHA-256 of the certificate, as `AA:BB:...` (Node's format). */
  fingerprint256: string;
  validTo: Date;
  dnsNames: string[];
  /** IPv4 dotted, IPv6 in full lowercase groups (`2001:db8:0:0:0:0:0:1`). */
  ipAddresses: string[];
  uris: string[];
  emails: string[];
  otherNames: OtherName[];
  /** The extended key usages: `serverAuth`, `clientAuth`, ... for the well-known ones, else the OID. */
  extendedKeyUsage: string[];
}

const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_EXT_KEY_USAGE = '2.5.29.37';

const OTHER_NAME_NAMES: Record<string, string> = {
  '1.3.6.1.4.1.311.20.2.3': 'upn',
  '1.3.6.1.5.5.7.8.9': 'smtpUtf8Mailbox',
  '1.3.6.1.5.2.2': 'krb5PrincipalName',
};

const EKU_NAMES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
};

interface Tlv {
  tag: number;
  /** The contents (a view into the certificate). */
  value: Buffer;
  /** Offset just past this element in the buffer it was read from. */
  end: number;
}


/** One DER element at `offset` (definite lengths only, as DER requires; tags below 31). */
function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new TlsCertificateParseError('truncated');
  const tag = buf[offset]!;
  let length = buf[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > buf.length) throw new TlsCertificateParseError('bad length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[start + i]!;
    start += count;
  }
  if (start + length > buf.length) throw new TlsCertificateParseError('truncated');
  return { tag, value: buf.subarray(start, start + length), end: start + length };
}

/** The elements of a constructed value, in order. */
function children(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = 0; offset < buf.length; ) {
    const tlv = readTlv(buf, offset);
    out.push(tlv);
    offset = tlv.end;
  }
  return out;
}

function decodeOid(bytes: Buffer): string {
  const arcs: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

function decodeIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    return groups.join(':');
  }
  return bytes.toString('hex');
}

/** An otherName's value: text for the ASN.1 string types, else the DER of the value. */
function decodeOtherValue(explicit: Buffer): string | Buffer {
  const inner = readTlv(explicit, 0);
  switch (inner.tag) {
    case 0x0c: // UTF8String
      return inner.value.toString('utf8');
    case 0x16: // IA5String
    case 0x13: // PrintableString
      return inner.value.toString('latin1');
    case 0x1e: // BMPString (UTF-16BE)
      return Buffer.from(inner.value).swap16().toString('utf16le');
    default:
      return Buffer.from(explicit.subarray(0, inner.end));
  }
}

/** The extensions of a certificate's DER, as OID -> extnValue contents. */
function extensions(der: Buffer): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  const certificate = readTlv(der, 0);
  const tbs = readTlv(certificate.value, 0);
  for (const field of children(tbs.value)) {
    if (field.tag !== 0xa3) continue; // [3] EXPLICIT Extensions
    for (const extension of children(readTlv(field.value, 0).value)) {
      const parts = children(extension.value);
      const oid = parts[0];
      const value = parts[parts.length - 1];
      if (oid?.tag === 0x06 && value?.tag === 0x04) found.set(decodeOid(oid.value), value.value);
    }
  }
  return found;
}

/**
 * The identity in a certificate (DER). Throws TlsCertificateParseError on DER it cannot read; callers
 * hand it only certificates OpenSSL has parsed and verified.
 */
export function peerIdentityOf(der: Buffer, x509: X509Certificate = new X509Certificate(der)): PeerIdentity {
  const identity: PeerIdentity = {
    subject: x509.subject,
    issuer: x509.issuer,
    serialNumber: x509.serialNumber,
    fingerprint256: x509.fingerprint256,
    validTo: new Date(x509.validTo),
    dnsNames: [],
    ipAddresses: [],
    uris: [],
    emails: [],
    otherNames: [],
    extendedKeyUsage: [],
  };
  const ext = extensions(der);
  const san = ext.get(OID_SUBJECT_ALT_NAME);
  if (san) {
    for (const name of children(readTlv(san, 0).value)) {
      switch (name.tag) {
        case 0x82:
          identity.dnsNames.push(name.value.toString('latin1'));
          break;
        case 0x87:
          identity.ipAddresses.push(decodeIp(name.value));
          break;
        case 0x86:
          identity.uris.push(name.value.toString('latin1'));
          break;
        case 0x81:
          identity.emails.push(name.value.toString('latin1'));
          break;
        case 0xa0: {
          const [typeId, value] = children(name.value);
          if (typeId?.tag !== 0x06 || value?.tag !== 0xa0) throw new TlsCertificateParseError('bad otherName');
          const oid = decodeOid(typeId.value);
          identity.otherNames.push({ oid, name: OTHER_NAME_NAMES[oid], value: decodeOtherValue(value.value) });
          break;
        }
        default:
          break; // x400Address, directoryName, ediPartyName, registeredID: not identities handlers match on
      }
    }
  }
  const eku = ext.get(OID_EXT_KEY_USAGE);
  if (eku) {
    for (const usage of children(readTlv(eku, 0).value)) {
      if (usage.tag !== 0x06) continue;
      const oid = decodeOid(usage.value);
      identity.extendedKeyUsage.push(EKU_NAMES[oid] ?? oid);
    }
  }
  return identity;
}
