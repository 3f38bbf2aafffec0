// TlsContext: one TLS configuration, validated once and compiled once into a native SecureContext (one
// OpenSSL SSL_CTX: PEM parsed and CA store loaded a single time), shared by every TlsStream made from it.
// Per-connection settings (the server name a client checks) are given to each TlsStream instead.
import { InvalidOptionError } from '../errors.js';
import { TlsError } from './errors.js';
import { loadNative, type NativeRekeyPolicy, type NativeSecureContext } from './native.js';

/** The only suites offered: those Linux kernel TLS can take over. */
export const TLS_CIPHERSUITES = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
] as const;
export type TlsCipherSuite = (typeof TLS_CIPHERSUITES)[number];

type Pem = string | Buffer;

export interface TlsContextOptions {
  role: 'client' | 'server';
  /** PEM certificate (chain, leaf first). Required for a server; a client presents it when asked. */
  cert?: Pem;
  /** PEM private key of `cert`. */
  key?: Pem;
  /** Passphrase of an encrypted `key`. OpenSSL never prompts: an encrypted key without it is refused. */
  passphrase?: string;
  /** Trusted CAs (PEM, one or several); without it the system store is loaded (once per context). */
  ca?: Pem | Pem[];
  /**
   * Certificate revocation lists (PEM `X509 CRL`, one or several): a peer certificate they revoke is
   * refused (ERR_TLS_CERT_VERIFY, reason "certificate revoked"). The leaf's issuer must have one here
   * (without it every peer is refused: "unable to get certificate CRL"); CA certificates higher up are
   * checked when their issuer's CRL is given too. An expired CRL (past its nextUpdate) refuses every
   * peer. Replace them with setCrl().
   */
  crl?: Pem | Pem[];
  /** Reject a peer certificate that fails verification (default true). */
  rejectUnauthorized?: boolean;
  /**
   * TLS 1.3 external PSK (RFC 8446 2.2; what NVMe/TCP uses), bound to SHA-256: the client offers it,
   * the server accepts a client offering this identity (with (EC)DHE, so forward secrecy is kept). A
   * session on it has no certificates (`tlsInfo.psk` is true). A server given `psk` needs no `cert`;
   * with one, clients without the PSK still get a certificate handshake. A server with a PSK picks the
   * suite in its own order (SHA-256 suites first by default): under a SHA-384 suite the PSK cannot be used.
   * Server on Linux, `{ keyring: 'session' }`: the key is looked up per handshake in this process's
   * session keyring by the identity the client offers, as tlshd does: a `psk` key whose description is
   * the identity, else a `user` key; its payload is the PSK (`tlsInfo.pskKeySerial` names the key).
   */
  psk?: TlsPsk | TlsPskKeyring;
  /** Server: ask for a client certificate (default: true when `ca` is given). */
  requestCert?: boolean;
  /** Server: refuse clients without a certificate. */
  requireClientCert?: boolean;
  /** 'offer' (default): offer/select "sunrpc", accept peers without ALPN; 'require'; 'off'. */
  alpn?: 'offer' | 'require' | 'off';
  /** Subset of TLS_CIPHERSUITES, in preference order. */
  ciphersuites?: readonly TlsCipherSuite[];
  /** 'auto' (default): kernel TLS when available, else userspace; 'require'; 'off'. */
  kernelTls?: 'auto' | 'off' | 'require';
  /** Handshake time limit in ms: default 10000 for clients, 5000 for servers (as Linux); 0 = none. */
  handshakeTimeout?: number;
  /**
   * Receives SSLKEYLOGFILE lines; only set it when debugging. Without it, the lines are appended to
   * the file named by the SSLKEYLOGFILE environment variable when that is set (read per connection).
   */
  keylog?: (line: string) => void;
  /**
   * What to do before a key is used past the AEAD limits (RFC 8446 5.5: about 2^24.5 full records for
   * AES-GCM; ChaCha20-Poly1305 has no practical limit). Checked in both directions.
   * - `'reconnect'` (default): never sends a KeyUpdate (the Linux kernel's NFS client and server, and
   *   FreeBSD, cannot follow one under kernel TLS); at the limit the connection emits 'rekeyDue' and is
   *   replaced: a client opens a fresh connection for new calls, a server closes it gracefully.
   * - `{ records?, bytes? }`: send our own KeyUpdate when either count of this direction reaches the
   *   limit, and ask the peer for its own when the other direction does: only toward peers known to
   *   follow KeyUpdates (rpctls, OpenSSL, GnuTLS, NFS-Ganesha). Without limits: the cipher's own.
   *   `action: 'reconnect'` with limits replaces the connection at those limits instead.
   * - `false`: nothing (not recommended for long-lived AES-GCM connections).
   * A KeyUpdate from the peer is always followed (kernel TLS: Linux >= 6.14).
   */
  rekey?: false | 'reconnect' | RekeyLimits;
}

export interface TlsPsk {
  /** The PSK identity both sides know it by (1 to 1024 bytes of UTF-8). */
  identity: string;
  /** The key: 16 to 64 bytes. */
  key: Buffer;
  /**
   * The hash the PSK is bound to (RFC 8446 4.2.11): `'sha256'` (default: TLS_AES_128_GCM_SHA256, as
   * openssl and GnuTLS bind one) or `'sha384'` (TLS_AES_256_GCM_SHA384; NVMe/TCP's `NVMe?R02` PSKs).
   */
  hash?: 'sha256' | 'sha384';
}

export interface TlsPskKeyring {
  /** Server: the PSK is the session keyring's key named by the client's identity. */
  keyring: 'session';
}

export interface RekeyLimits {
  /** Records protected with one key, each direction. */
  records?: number;
  /** Bytes of application data protected with one key, each direction. */
  bytes?: number;
  /** 'update' (default): our own KeyUpdate; 'reconnect': replace the connection. */
  action?: 'update' | 'reconnect';
}

/** Live-object figures of a context (tests and diagnostics). */
export interface TlsContextStats {
  /** Process-unique id of the native SSL_CTX; each TlsStream's counters carry it as `contextId`. */
  id: number;
  /** Connections made from this context and not closed yet. */
  liveSockets: number;
  /** Connections ever made from it. */
  socketsCreated: number;
}

const ROLES = ['client', 'server'] as const;
const ALPN_MODES = ['offer', 'require', 'off'] as const;
const KERNEL_TLS = ['auto', 'off', 'require'] as const;
const MAX_TIMEOUT = 2_147_483_647;
/** Options that moved or went away, with what to do instead. */
const RENAMED: Readonly<Record<string, string>> = {
  handshakeTimeoutMs: 'use handshakeTimeout (milliseconds)',
  servername: 'the server name is per connection: pass it to new TlsStream(socket, { context, servername })',
  preface: 'removed: write plaintext (such as a STARTTLS reply) on the socket before handing it over',
  allowHalfOpen: 'per connection: pass it to new TlsStream(socket, { context, allowHalfOpen })',
};

const quoted = (values: readonly string[]): string => values.map((v) => `"${v}"`).join(', ');

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(name, `one of ${quoted(allowed)}`, value);
  }
  return value as T;
}

function bool(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'a boolean', value);
  return value;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----/;

/** PEM text (no secrets echoed back in messages: only the kind and size of what was received). */
function pemError(name: string, expectation: string, value: unknown): InvalidOptionError {
  const error = new InvalidOptionError(name, expectation, undefined);
  const received =
    typeof value === 'string' ? `a string of ${value.length} characters`
      : Buffer.isBuffer(value) ? `a Buffer of ${value.length} bytes`
        : undefined;
  if (received !== undefined) error.message = `${name} must be ${expectation}; received ${received}`;
  else error.message = new InvalidOptionError(name, expectation, value).message;
  return error;
}

function pem(value: unknown, name: string, kind: 'certificate' | 'private key' | 'CRL'): Pem | undefined {
  if (value === undefined) return undefined;
  const expectation = `a PEM ${kind} (string or Buffer)`;
  if (typeof value !== 'string' && !Buffer.isBuffer(value)) throw pemError(name, expectation, value);
  const match = PEM_BLOCK.exec(typeof value === 'string' ? value : value.toString('latin1'));
  const ok = match !== null && (kind === 'certificate' ? match[1] === 'CERTIFICATE' : kind === 'CRL' ? match[1] === 'X509 CRL' : match[1]!.endsWith('PRIVATE KEY'));
  if (!ok) throw pemError(name, expectation, value);
  return value;
}

/** One PEM or a non-empty array of them, joined into one PEM text (as OpenSSL reads a bundle). */
function pemList(value: unknown, name: string, kind: 'certificate' | 'CRL'): Pem | undefined {
  if (!Array.isArray(value)) return pem(value, name, kind);
  if (value.length === 0) throw new InvalidOptionError(name, `a PEM ${kind} or a non-empty array of them`, value);
  const parts = value.map((entry, i) => pem(entry, `${name}[${i}]`, kind) as Pem);
  return parts.every((p) => typeof p === 'string')
    ? parts.join('\n')
    : Buffer.concat(parts.flatMap((p) => [Buffer.from(p), Buffer.from('\n')]));
}

export class TlsContext {
  readonly role: 'client' | 'server';
  readonly kernelTls: 'auto' | 'off' | 'require';
  /** Milliseconds; 0 = no limit. */
  readonly handshakeTimeout: number;
  readonly keylog: ((line: string) => void) | undefined;
  /** The validated `rekey` policy, as the addon takes it. */
  readonly rekey: NativeRekeyPolicy;
  /** @internal the addon's SecureContext (one SSL_CTX). */
  readonly native: NativeSecureContext;

  /**
   * Validates every option (throwing InvalidOptionError naming it, prefixed with `optionPrefix`, e.g.
   * "tls.") and builds the SSL_CTX: bad PEM or a key that does not match the certificate throw here.
   */
  constructor(options: TlsContextOptions, optionPrefix = '') {
    const prefix = optionPrefix === '' || optionPrefix.endsWith('.') ? optionPrefix : `${optionPrefix}.`;
    const name = (option: string): string => `${prefix}${option}`;
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError(prefix === '' ? 'options' : prefix.slice(0, -1), 'an object', options);
    }
    const raw = options as unknown as Record<string, unknown>;
    for (const [option, hint] of Object.entries(RENAMED)) {
      if (raw[option] !== undefined) {
        const error = new InvalidOptionError(name(option), 'absent', raw[option]);
        error.message = `${name(option)} is not a TlsContext option: ${hint}`;
        throw error;
      }
    }
    if (raw.role === undefined) throw new InvalidOptionError(name('role'), `one of ${quoted(ROLES)}`, undefined);
    const role = oneOf(raw.role, name('role'), ROLES, 'client');
    const isServer = role === 'server';
    const cert = pem(raw.cert, name('cert'), 'certificate');
    const key = pem(raw.key, name('key'), 'private key');
    if (cert !== undefined && key === undefined) {
      throw new InvalidOptionError(name('key'), `given with ${name('cert')} (the certificate's private key)`, undefined);
    }
    if (key !== undefined && cert === undefined) {
      throw new InvalidOptionError(name('cert'), `given with ${name('key')} (the key's certificate)`, undefined);
    }
    if (raw.passphrase !== undefined && typeof raw.passphrase !== 'string') {
      const error = new InvalidOptionError(name('passphrase'), 'a string', undefined);
      error.message = `${name('passphrase')} must be a string; received ${raw.passphrase === null ? 'null' : typeof raw.passphrase}`;
      throw error;
    }
    if (raw.passphrase !== undefined && key === undefined) {
      throw new InvalidOptionError(name('key'), `given with ${name('passphrase')} (the encrypted private key)`, undefined);
    }
    const psk = pskOption(raw.psk, name('psk'), isServer);
    if (isServer && cert === undefined && psk === undefined) {
      throw new InvalidOptionError(name('cert'), 'a PEM certificate (a server must present one, unless it takes a psk)', undefined);
    }
    const ca = pemList(raw.ca, name('ca'), 'certificate');
    const crl = pemList(raw.crl, name('crl'), 'CRL');
    const rejectUnauthorized = bool(raw.rejectUnauthorized, name('rejectUnauthorized'), true);
    const requestCert = bool(raw.requestCert, name('requestCert'), isServer && ca !== undefined);
    const requireClientCert = bool(raw.requireClientCert, name('requireClientCert'), false);
    const alpn = oneOf(raw.alpn, name('alpn'), ALPN_MODES, 'offer');
    this.kernelTls = oneOf(raw.kernelTls, name('kernelTls'), KERNEL_TLS, 'auto');
    let ciphersuites: string | undefined;
    if (raw.ciphersuites !== undefined) {
      const expectation = `a non-empty array of distinct values from ${quoted(TLS_CIPHERSUITES)}`;
      const list = raw.ciphersuites;
      if (!Array.isArray(list) || list.length === 0 || new Set(list).size !== list.length) {
        throw new InvalidOptionError(name('ciphersuites'), expectation, list);
      }
      list.forEach((suite: unknown, i) => {
        if (typeof suite !== 'string' || !(TLS_CIPHERSUITES as readonly string[]).includes(suite)) {
          throw new InvalidOptionError(`${name('ciphersuites')}[${i}]`, `one of ${quoted(TLS_CIPHERSUITES)}`, suite);
        }
      });
      ciphersuites = list.join(':');
    }
    const timeout = raw.handshakeTimeout;
    if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0 || timeout > MAX_TIMEOUT)) {
      throw new InvalidOptionError(name('handshakeTimeout'), `an integer number of milliseconds from 0 (no limit) to ${MAX_TIMEOUT}`, timeout);
    }
    this.handshakeTimeout = (timeout as number | undefined) ?? (isServer ? 5000 : 10000);
    if (raw.keylog !== undefined && typeof raw.keylog !== 'function') {
      throw new InvalidOptionError(name('keylog'), 'a function (line: string) => void', raw.keylog);
    }
    this.keylog = raw.keylog as ((line: string) => void) | undefined;
    this.rekey = rekeyPolicy(raw.rekey, name('rekey'));
    this.role = role;

    const native: Record<string, unknown> = { role, rejectUnauthorized, requestCert, requireClientCert, alpn };
    if (cert !== undefined) native.cert = cert;
    if (key !== undefined) native.key = key;
    if (raw.passphrase !== undefined) native.passphrase = raw.passphrase;
    if (ca !== undefined) native.ca = ca;
    if (crl !== undefined) native.crl = crl;
    if (psk !== undefined && 'keyring' in psk) {
      native.pskKeyring = true;
    } else if (psk !== undefined) {
      native.pskIdentity = psk.identity;
      native.pskKey = psk.key;
      if (psk.hash === 'sha384') native.pskSha384 = true;
    }
    if (ciphersuites !== undefined) native.ciphersuites = ciphersuites;
    const addon = loadNative();
    try {
      this.native = new addon.SecureContext(native);
    } catch (error) {
      throw configError(error, name, raw);
    }
    this.#optionName = name;
  }

  readonly #optionName: (option: string) => string;

  /**
   * Replaces the CRLs (as the `crl` option takes them; undefined: none) for connections made from now
   * on; those already made keep the ones they started with. Throws InvalidOptionError, keeping the
   * current CRLs, when OpenSSL cannot read them.
   */
  setCrl(crl: Pem | Pem[] | undefined): void {
    const name = this.#optionName;
    const value = pemList(crl, name('crl'), 'CRL');
    try {
      this.native.setCrl(value);
    } catch (error) {
      throw configError(error, name, { crl });
    }
  }

  /** Identity and live connection count of the shared native context. */
  stats(): TlsContextStats {
    return this.native.stats();
  }
}

const MAX_LIMIT = Number.MAX_SAFE_INTEGER;

function pskOption(value: unknown, name: string, isServer: boolean): TlsPsk | TlsPskKeyring | undefined {
  if (value === undefined) return undefined;
  const expectation = isServer ? "{ identity: string, key: Buffer } or { keyring: 'session' }" : '{ identity: string, key: Buffer }';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidOptionError(name, expectation, value);
  const o = value as Record<string, unknown>;
  if (isServer && 'keyring' in o) {
    for (const key of Object.keys(o)) {
      if (key !== 'keyring') throw new InvalidOptionError(`${name}.${key}`, `absent (${name} takes ${expectation})`, o[key]);
    }
    if (o.keyring !== 'session') throw new InvalidOptionError(`${name}.keyring`, "'session'", o.keyring);
    return { keyring: 'session' };
  }
  for (const key of Object.keys(o)) {
    if (key !== 'identity' && key !== 'key' && key !== 'hash') throw new InvalidOptionError(`${name}.${key}`, `absent (${name} takes ${expectation})`, o[key]);
  }
  const identityBytes = typeof o.identity === 'string' ? Buffer.byteLength(o.identity) : 0;
  if (typeof o.identity !== 'string' || identityBytes < 1 || identityBytes > 1024) {
    throw new InvalidOptionError(`${name}.identity`, 'a string of 1 to 1024 bytes (UTF-8)', o.identity);
  }
  if (!Buffer.isBuffer(o.key) || o.key.length < 16 || o.key.length > 64) {
    // The key is secret: only its kind and size are echoed.
    const error = new InvalidOptionError(`${name}.key`, 'a Buffer of 16 to 64 bytes', undefined);
    error.message = `${name}.key must be a Buffer of 16 to 64 bytes; received ${Buffer.isBuffer(o.key) ? `a Buffer of ${o.key.length} bytes` : o.key === null ? 'null' : typeof o.key}`;
    throw error;
  }
  if (o.hash !== undefined && o.hash !== 'sha256' && o.hash !== 'sha384') throw new InvalidOptionError(`${name}.hash`, "'sha256' or 'sha384'", o.hash);
  return { identity: o.identity, key: Buffer.from(o.key), ...(o.hash === 'sha384' ? { hash: 'sha384' as const } : {}) };
}

function rekeyPolicy(value: unknown, name: string): NativeRekeyPolicy {
  const expectation = "false, 'reconnect' or { records?, bytes?, action?: 'update' | 'reconnect' }";
  if (value === undefined || value === 'reconnect') return { mode: 'reconnect', records: 0, bytes: 0, cipherDefaults: true };
  if (value === false) return { mode: 'off', records: 0, bytes: 0, cipherDefaults: false };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidOptionError(name, expectation, value);
  const limits = value as Record<string, unknown>;
  for (const key of Object.keys(limits)) {
    if (key !== 'records' && key !== 'bytes' && key !== 'action') throw new InvalidOptionError(`${name}.${key}`, `absent (${name} takes ${expectation})`, limits[key]);
  }
  const count = (key: 'records' | 'bytes'): number => {
    const v = limits[key];
    if (v === undefined) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_LIMIT) {
      throw new InvalidOptionError(`${name}.${key}`, `an integer from 1 to ${MAX_LIMIT}`, v);
    }
    return v;
  };
  const records = count('records');
  const bytes = count('bytes');
  const mode = oneOf(limits.action, `${name}.action`, ['update', 'reconnect'] as const, 'update');
  return { mode, records, bytes, cipherDefaults: records === 0 && bytes === 0 };
}

/** The addon reports { option, problem, reason }: the message is written here. */
function configError(error: unknown, name: (option: string) => string, raw: Record<string, unknown>): Error {
  const info = error as { code?: string; option?: string; problem?: string; reason?: string };
  if (info.code !== 'ERR_TLS_INVALID_CONFIG' || info.option === undefined) return error as Error;
  const why = info.reason ? ` (OpenSSL: ${info.reason})` : '';
  switch (info.option) {
    case 'cert': return pemError(name('cert'), `a PEM certificate OpenSSL can load${why}`, raw.cert);
    case 'ca': return pemError(name('ca'), `PEM certificates OpenSSL can load${why}`, raw.ca);
    case 'crl': return pemError(name('crl'), `PEM CRLs OpenSSL can load${why}`, raw.crl);
    case 'passphrase': {
      const error = new InvalidOptionError(name('passphrase'), `the passphrase of the encrypted ${name('key')}`, undefined);
      error.message = `${name('passphrase')} must be the passphrase of the encrypted ${name('key')}: it does not decrypt it${why}`;
      return error;
    }
    case 'key':
      if (info.problem === 'encrypted key without passphrase') {
        const error = new InvalidOptionError(name('passphrase'), `given: ${name('key')} is encrypted`, undefined);
        error.message = `${name('passphrase')} must be given: ${name('key')} is encrypted (OpenSSL is never left to prompt for it)`;
        return error;
      }
      return info.problem === 'key does not match cert'
        ? pemError(name('key'), `the private key of ${name('cert')}${why}`, raw.key)
        : pemError(name('key'), `a PEM private key OpenSSL can load (unencrypted)${why}`, raw.key);
    case 'ciphersuites': return new InvalidOptionError(name('ciphersuites'), `suites this OpenSSL accepts${why}`, raw.ciphersuites);
    default: return new TlsError('ERR_TLS_INVALID_CONFIG', `OpenSSL refused the TLS configuration (${info.option}: ${info.problem ?? 'invalid'})${why}`);
  }
}
