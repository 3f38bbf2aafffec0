import { InvalidOptionError, validateInteger } from '../errors.js';
import { TLS_CIPHERSUITES, type TlsCipherSuite, type TlsStreamOptions } from '../tls/tls-stream.js';
import type { RpcReply } from '../rpc/message.js';
import type { RpcCall } from '../rpc/message.js';
import type { ProbeAnswer } from './probe.js';

/** The TLS options of RPC-with-TLS clients and servers, and the one place they are checked. */

type Pem = string | Buffer;

export interface CommonTlsOptions {
  cert?: Pem;
  key?: Pem;
  /** Trusted CAs; without it the OpenSSL default store is used. */
  ca?: Pem | Pem[];
  /** 'offer' (default): offer/select "sunrpc" but accept a peer without ALPN (Linux sends none). */
  alpn?: 'offer' | 'require' | 'off';
  /** Handshake time limit in ms (default: client 10000, server 5000, as Linux; 0: none). */
  handshakeTimeout?: number;
  /** 'auto' (default): kernel TLS when the kernel has it, else userspace records. */
  kernelTls?: 'auto' | 'off' | 'require';
  ciphersuites?: readonly TlsCipherSuite[];
  /**
   * Receives SSLKEYLOGFILE lines; only for debugging. Without it, lines are appended to the file the
   * SSLKEYLOGFILE environment variable names, when it is set (read at each handshake).
   */
  keylog?: (line: string) => void;
}

export interface RpcTlsClientOptions extends CommonTlsOptions {
  /** Name (or IP literal) the server certificate must match; default: the address connected to. */
  servername?: string;
  /** Reject a server certificate that fails verification (default true). */
  rejectUnauthorized?: boolean;
  /** Milliseconds to wait for the probe's reply (default 10000). */
  probeTimeout?: number;
  /**
   * Sees the probe's reply on each connection, whatever it says, before it is judged (for diagnostics
   * such as `rpctls probe`). Its verifier body is a view into the received record: copy what you keep.
   */
  onProbeReply?: (reply: RpcReply) => void;
}

export interface RpcTlsServerOptions extends CommonTlsOptions {
  /** Ask clients for a certificate (default: true when `ca` is given, as RFC 9289 wants). */
  requestCert?: boolean;
  /** Refuse clients without a verified certificate (mutual TLS only). */
  requireClientCert?: boolean;
  /**
   * Plaintext CALLs other than NULL are answered MSG_DENIED / AUTH_ERROR / AUTH_TOOWEAK ("rejected for
   * security reasons"), so a client must probe and upgrade first. NULL stays open for pings and probes.
   * (Linux nfsd instead decides per export and answers in NFS terms; this is the transport-level switch.)
   */
  requireTls?: boolean;
  /** Sees each AUTH_TLS probe and the answer it gets (for logs such as `rpctls serve`'s). */
  onProbe?: (call: RpcCall, answer: ProbeAnswer) => void;
}

/** Linux's client gives the probe and the handshake 10 s each. */
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
const MAX_MS = 0x7fffffff;
const CIPHERSUITE_SET: ReadonlySet<string> = new Set(TLS_CIPHERSUITES);

function oneOf<T extends string>(value: unknown, option: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(option, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  }
  return value as T;
}

function flag(value: unknown, option: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidOptionError(option, 'true or false', value);
  return value as boolean | undefined;
}

function pem(value: unknown, option: string): void {
  if (value === undefined) return;
  const items = option.endsWith('.ca') && Array.isArray(value) ? value : [value];
  for (const item of items) {
    const text = typeof item === 'string' ? item : Buffer.isBuffer(item) ? item.toString('latin1') : null;
    if (text === null) throw new InvalidOptionError(option, 'a PEM string or Buffer', item);
    if (!text.includes('-----BEGIN ')) throw new InvalidOptionError(option, 'PEM text (-----BEGIN ...)', item);
  }
}

function fn(value: unknown, option: string): void {
  if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(option, 'a function', value);
}

/** Checks the options both roles share and maps them to the TLS stream's. */
function common(role: 'client' | 'server', o: CommonTlsOptions, prefix: string): TlsStreamOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidOptionError(prefix.slice(0, -1) || 'tls', 'an object', o);
  pem(o.cert, `${prefix}cert`);
  pem(o.key, `${prefix}key`);
  pem(o.ca, `${prefix}ca`);
  if ((o.cert === undefined) !== (o.key === undefined)) {
    throw new InvalidOptionError(o.cert === undefined ? `${prefix}cert` : `${prefix}key`, `given together with ${prefix}${o.cert === undefined ? 'key' : 'cert'}`, undefined);
  }
  const out: TlsStreamOptions = { role };
  if (o.cert !== undefined) out.cert = o.cert;
  if (o.key !== undefined) out.key = o.key;
  if (o.ca !== undefined) out.ca = o.ca;
  const alpn = oneOf(o.alpn, `${prefix}alpn`, ['offer', 'require', 'off'] as const);
  if (alpn !== undefined) out.alpn = alpn;
  if (o.handshakeTimeout !== undefined) out.handshakeTimeoutMs = validateInteger(o.handshakeTimeout, `${prefix}handshakeTimeout`, 0, MAX_MS);
  const kernelTls = oneOf(o.kernelTls, `${prefix}kernelTls`, ['auto', 'off', 'require'] as const);
  if (kernelTls !== undefined) out.kernelTls = kernelTls;
  if (o.ciphersuites !== undefined) {
    const option = `${prefix}ciphersuites`;
    if (!Array.isArray(o.ciphersuites) || o.ciphersuites.length === 0) throw new InvalidOptionError(option, `a non-empty array of ${TLS_CIPHERSUITES.join(', ')}`, o.ciphersuites);
    for (const suite of o.ciphersuites) {
      if (!CIPHERSUITE_SET.has(suite)) throw new InvalidOptionError(option, `made of ${TLS_CIPHERSUITES.join(', ')} (the suites kernel TLS can take)`, suite);
    }
    out.ciphersuites = o.ciphersuites;
  }
  fn(o.keylog, `${prefix}keylog`);
  if (o.keylog !== undefined) out.keylog = o.keylog;
  return out;
}

export interface ClientTls {
  stream: TlsStreamOptions;
  probeTimeout: number;
  onProbeReply: ((reply: RpcReply) => void) | undefined;
}

export function validateClientTls(o: RpcTlsClientOptions, prefix = 'tls.'): ClientTls {
  const stream = common('client', o, prefix);
  if (o.servername !== undefined) {
    if (typeof o.servername !== 'string' || o.servername.length === 0) throw new InvalidOptionError(`${prefix}servername`, 'a non-empty host name or IP literal', o.servername);
    stream.servername = o.servername;
  }
  const reject = flag(o.rejectUnauthorized, `${prefix}rejectUnauthorized`);
  if (reject !== undefined) stream.rejectUnauthorized = reject;
  fn(o.onProbeReply, `${prefix}onProbeReply`);
  return {
    stream,
    probeTimeout: validateInteger(o.probeTimeout ?? DEFAULT_PROBE_TIMEOUT_MS, `${prefix}probeTimeout`, 1, MAX_MS),
    onProbeReply: o.onProbeReply,
  };
}

export interface ServerTls {
  stream: TlsStreamOptions;
  requireTls: boolean;
  onProbe: ((call: RpcCall, answer: ProbeAnswer) => void) | undefined;
}

export function validateServerTls(o: RpcTlsServerOptions, prefix = 'tls.'): ServerTls {
  const stream = common('server', o, prefix);
  if (o.cert === undefined) throw new InvalidOptionError(`${prefix}cert`, 'a PEM certificate (a TLS server needs one, with its key)', undefined);
  const requestCert = flag(o.requestCert, `${prefix}requestCert`);
  if (requestCert !== undefined) stream.requestCert = requestCert;
  const requireClientCert = flag(o.requireClientCert, `${prefix}requireClientCert`);
  if (requireClientCert !== undefined) stream.requireClientCert = requireClientCert;
  fn(o.onProbe, `${prefix}onProbe`);
  return { stream, requireTls: flag(o.requireTls, `${prefix}requireTls`) ?? false, onProbe: o.onProbe };
}
