// Kernel keyrings, as tlshd uses them: the kernel names identities by key serial in ACCEPT
// (certificate and private key: DER payloads; PSK: the key's description is the PSK identity, its
// payload the raw key), the upcall may name a keyring to link into the session keyring for the
// handshake, and `[authenticate] keyrings` names keyrings linked into it at start. The session keyring
// is where a ServerHello PSK is searched for by the identity the client offers.
import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';

import { RpctlsError } from '../errors.js';
import { loadNative } from '../tls/native.js';

/** keyctl's special keyring ids. */
export const KeySpec = { THREAD: -1, PROCESS: -2, SESSION: -3, USER: -4, USER_SESSION: -5 } as const;

/** The keyrings tlshd always links into its session keyring (the kernel consumers' own). */
export const CONSUMER_KEYRINGS = ['.nvme', '.nfs', '.nfsd'] as const;

/** A keyctl(2) or add_key(2) call failed; `errnoName` says why (ENOKEY, EACCES, ENOSYS without CONFIG_KEYS). */
export class KeyringError extends RpctlsError {
  readonly operation: string;
  readonly serial: number;
  readonly errno: number | undefined;
  readonly errnoName: string | undefined;
  constructor(message: string, fields: { operation: string; serial: number; errno?: number; errnoName?: string }) {
    super('ERR_KEYRING', message);
    this.operation = fields.operation;
    this.serial = fields.serial;
    this.errno = fields.errno;
    this.errnoName = fields.errnoName;
  }
}

/** What the agent needs of the kernel's keys (tests pass an in-memory one where the kernel has none). */
export interface KeyringAccess {
  /** The payload; the caller wipes it (fill(0)) when done. */
  read(serial: number): Buffer;
  /** "type;uid;gid;perm;description". */
  describe(serial: number): string;
  link(serial: number, keyring: number): void;
  unlink(serial: number, keyring: number): void;
  /** A key of `type` and `description` reachable from `keyring`, or null. */
  search(keyring: number, type: string, description: string): number | null;
  /** Keyrings by description, as /proc/keys lists those this process may view. */
  findKeyring(description: string): number | null;
  /** add_key(2): the new key's serial. */
  add(type: string, description: string, payload: Buffer, keyring: number): number;
}

interface NativeKeys {
  read(serial: number): Buffer;
  describe(serial: number): string;
  link(serial: number, keyring: number): void;
  unlink(serial: number, keyring: number): void;
  search(keyring: number, type: string, description: string): number | null;
  add(type: string, description: string, payload: Buffer, keyring: number): number;
}

function nativeKeys(): NativeKeys {
  const keys = (loadNative() as unknown as { keys?: NativeKeys }).keys;
  if (!keys) throw new KeyringError('kernel keyrings are Linux-only', { operation: 'keyctl', serial: 0, errnoName: 'ENOSYS' });
  return keys;
}

function coded<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    const e = error as Error & { code?: string; operation?: string; serial?: number; errno?: number; errnoName?: string };
    if (e.code !== 'ERR_KEYRING') throw error;
    throw new KeyringError(e.message, { operation: e.operation ?? 'keyctl', serial: e.serial ?? 0, errno: e.errno, errnoName: e.errnoName });
  }
}

/** The description of the first keyring of that name in /proc/keys (as keyutils' find_key_by_type_and_desc falls back to). */
export function findInProcKeys(text: string, type: string, description: string): number | null {
  for (const line of text.split('\n')) {
    // serial flags usage expiry perm uid gid type description: summary
    const m = /^([0-9a-f]+)\s+\S+\s+\d+\s+\S+\s+[0-9a-f]+\s+\d+\s+\d+\s+(\S+)\s+(.*)$/.exec(line);
    if (!m || m[2] !== type) continue;
    const rest = m[3]!;
    const colon = rest.lastIndexOf(': ');
    if ((colon < 0 ? rest : rest.slice(0, colon)) === description) return Number.parseInt(m[1]!, 16);
  }
  return null;
}

/** This kernel's keyrings (throws KeyringError; ENOSYS where the kernel has no CONFIG_KEYS). */
export function kernelKeyring(): KeyringAccess {
  return {
    read: (serial) => coded(() => nativeKeys().read(serial)),
    describe: (serial) => coded(() => nativeKeys().describe(serial)),
    link: (serial, keyring) => coded(() => nativeKeys().link(serial, keyring)),
    unlink: (serial, keyring) => coded(() => nativeKeys().unlink(serial, keyring)),
    search: (keyring, type, description) => coded(() => nativeKeys().search(keyring, type, description)),
    add: (type, description, payload, keyring) => coded(() => nativeKeys().add(type, description, payload, keyring)),
    findKeyring: (description) => {
      // Already reachable from our own keyrings (request_key's first step in keyutils).
      const own = coded(() => nativeKeys().search(KeySpec.SESSION, 'keyring', description));
      if (own !== null) return own;
      let text: string;
      try {
        text = readFileSync('/proc/keys', 'utf8');
      } catch {
        return null;
      }
      return findInProcKeys(text, 'keyring', description);
    },
  };
}

/** add_key(2), for tests and tools: the serial of a new key in `keyring`. */
export function addKey(type: string, description: string, payload: Buffer, keyring: number = KeySpec.SESSION): number {
  return coded(() => nativeKeys().add(type, description, payload, keyring));
}

/** The description field of "type;uid;gid;perm;description" (tlshd takes what follows the last ';'). */
export function keyDescription(described: string): string {
  const at = described.lastIndexOf(';');
  return at < 0 ? described : described.slice(at + 1);
}

/** The type field of "type;uid;gid;perm;description". */
export function keyType(described: string): string {
  const at = described.indexOf(';');
  return at < 0 ? described : described.slice(0, at);
}

function pemOf(der: Buffer, label: string): Buffer {
  const body = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return Buffer.from(`-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`, 'latin1');
}

/**
 * A certificate key's payload (DER, as the handshake upcall passes it: tlshd imports only DER) as
 * PEM for the TLS context. Throws KeyringError naming the serial when it is not one certificate.
 */
export function certificatePem(der: Buffer, serial: number): Buffer {
  // A DER certificate is one SEQUENCE with a long-form length; PEM text would start with '-'.
  if (der.length < 4 || der[0] !== 0x30) {
    throw new KeyringError(`key ${serial} is not a DER certificate (tlshd reads only DER from the keyring)`, { operation: 'certificate', serial });
  }
  return pemOf(der, 'CERTIFICATE');
}

/** A private key's payload (DER: PKCS#8, or PKCS#1 RSA, or SEC1 EC) as PEM; the caller wipes both. */
export function privateKeyPem(der: Buffer, serial: number): Buffer {
  for (const [type, label] of [['pkcs8', 'PRIVATE KEY'], ['pkcs1', 'RSA PRIVATE KEY'], ['sec1', 'EC PRIVATE KEY']] as const) {
    try {
      createPrivateKey({ key: der, format: 'der', type });
      return pemOf(der, label);
    } catch {
      // next encoding
    }
  }
  throw new KeyringError(`key ${serial} is not a DER private key (PKCS#8, PKCS#1 or SEC1; tlshd reads only DER from the keyring)`, { operation: 'private key', serial });
}

/**
 * NVMe/TCP PSK identities ("NVMe<version><type><hmac> <hostnqn> <subnqn>...") name the PSK's hash: 01
 * SHA-256, 02 SHA-384 (tlshd binds the PSK accordingly). Other identities: SHA-256.
 */
export function pskHash(identity: string): 'SHA256' | 'SHA384' | null {
  // As tlshd's sscanf("NVMe%01d%c%02d"): a match with any other hash number is an invalid identity.
  const m = /^NVMe\d[^]([+-]?\d{1,2})/.exec(identity);
  if (!m) return 'SHA256';
  const hash = Number(m[1]);
  return hash === 1 ? 'SHA256' : hash === 2 ? 'SHA384' : null;
}
