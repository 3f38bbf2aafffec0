import { InvalidOptionError, optionNames, rejectUnknownOptions, validateInteger } from '../errors.js';
import { TlsContext, type TlsCipherSuite, type TlsContextOptions } from '../tls/context.js';
import type { RpcCall, RpcReply } from '../rpc/message.js';
import type { ProbeAnswer } from './probe.js';

/** The TLS options of RPC-with-TLS clients and servers, and the one place they are checked. */

type Pem = string | Buffer;

export interface CommonTlsOptions {
  cert?: Pem;
  key?: Pem;
  /** Passphrase of an encrypted `key` (OpenSSL never prompts for one). */
  passphrase?: string;
  /** Trusted CAs; without it the OpenSSL default store is used. */
  ca?: Pem | Pem[];
  /** Certificate revocation lists (PEM, one or several): peers they revoke are refused (TlsContextOptions.crl). */
  crl?: Pem | Pem[];
  /** TLS 1.3 external PSK (TlsContextOptions.psk): `{ identity, key }`. */
  psk?: TlsContextOptions['psk'];
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
  /**
   * Key-usage limits (TlsContextOptions.rekey): 'reconnect' (default) replaces the connection at the
   * cipher's AEAD limit without ever sending a KeyUpdate (the Linux NFS client/server cannot follow
   * one); `{ records?, bytes? }` sends our own KeyUpdate at those limits (peers that follow them only);
   * false: nothing. A peer's KeyUpdate is always followed (kernel TLS: Linux >= 6.14).
   */
  rekey?: TlsContextOptions['rekey'];
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

/** What the TLS engine's TlsContext takes; everything else here is RPC-with-TLS's own. */
const CONTEXT_OPTIONS = [
  'cert', 'key', 'passphrase', 'ca', 'crl', 'psk', 'alpn', 'handshakeTimeout', 'kernelTls', 'ciphersuites', 'keylog',
  'rejectUnauthorized', 'requestCert', 'requireClientCert', 'rekey',
] as const;

const CLIENT_TLS_OPTIONS = optionNames<RpcTlsClientOptions>()(
  'cert', 'key', 'passphrase', 'ca', 'crl', 'psk', 'alpn', 'handshakeTimeout', 'kernelTls', 'ciphersuites', 'keylog', 'rekey',
  'servername', 'rejectUnauthorized', 'probeTimeout', 'onProbeReply',
);
const SERVER_TLS_OPTIONS = optionNames<RpcTlsServerOptions>()(
  'cert', 'key', 'passphrase', 'ca', 'crl', 'psk', 'alpn', 'handshakeTimeout', 'kernelTls', 'ciphersuites', 'keylog', 'rekey',
  'requestCert', 'requireClientCert', 'requireTls', 'onProbe',
);

function flag(value: unknown, option: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidOptionError(option, 'a boolean', value);
  return value as boolean | undefined;
}

function fn(value: unknown, option: string): void {
  if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(option, 'a function', value);
}

/** One validated TLS configuration (one SSL_CTX) for every connection of a client or server. */
function context(role: 'client' | 'server', o: object, prefix: string): TlsContext {
  if (typeof o !== 'object' || o === null) throw new InvalidOptionError(prefix.slice(0, -1) || 'tls', 'an object', o);
  rejectUnknownOptions(o, role === 'client' ? CLIENT_TLS_OPTIONS : SERVER_TLS_OPTIONS, prefix);
  const raw = o as Record<string, unknown>;
  const options: Record<string, unknown> = { role };
  for (const key of CONTEXT_OPTIONS) if (raw[key] !== undefined) options[key] = raw[key];
  return new TlsContext(options as unknown as TlsContextOptions, prefix);
}

export interface ClientTls {
  context: TlsContext;
  servername: string | undefined;
  probeTimeout: number;
  onProbeReply: ((reply: RpcReply) => void) | undefined;
}

/** Checks a client's TLS options at construction (the TLS engine checks its own, with this prefix). */
export function validateClientTls(o: RpcTlsClientOptions, prefix = 'tls.'): ClientTls {
  const tls = context('client', o, prefix);
  if (o.servername !== undefined && (typeof o.servername !== 'string' || o.servername.length === 0)) {
    throw new InvalidOptionError(`${prefix}servername`, 'a non-empty host name or IP literal', o.servername);
  }
  fn(o.onProbeReply, `${prefix}onProbeReply`);
  return {
    context: tls,
    servername: o.servername,
    probeTimeout: validateInteger(o.probeTimeout ?? DEFAULT_PROBE_TIMEOUT_MS, `${prefix}probeTimeout`, 1, MAX_MS),
    onProbeReply: o.onProbeReply,
  };
}

export interface ServerTls {
  context: TlsContext;
  requireTls: boolean;
  onProbe: ((call: RpcCall, answer: ProbeAnswer) => void) | undefined;
}

export function validateServerTls(o: RpcTlsServerOptions, prefix = 'tls.'): ServerTls {
  const tls = context('server', o, prefix);
  fn(o.onProbe, `${prefix}onProbe`);
  return { context: tls, requireTls: flag(o.requireTls, `${prefix}requireTls`) ?? false, onProbe: o.onProbe };
}
