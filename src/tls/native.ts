// Loads the rpctls_native addon (native/build/Release/rpctls_native.node) and describes its surface.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { TlsNativeMissingError } from './errors.js';

/** Event numbers the native socket passes to its `onevent` callback (native/src/tls_socket.h). */
export const NativeEvent = {
  secure: 1,
  data: 2,
  end: 3,
  error: 4,
  writeDone: 5,
  shutdownDone: 6,
  keylog: 7,
  keysUpdated: 8,
  rekeyDue: 9,
} as const;

/** Plain error description built by the addon (a code and data, no message); errors.ts turns it into a TlsError subclass. */
export interface NativeErrorInfo {
  code: string;
  [key: string]: unknown;
}

export interface NativeTlsInfo {
  version: string;
  cipher: string;
  alpn: string | null;
  authMode: 'tls' | 'mtls';
  /** The session was established with the configured TLS 1.3 external PSK (no certificates). */
  psk: boolean;
  peerVerified: boolean;
  verifyError?: string;
  peerCertificate: Buffer | null;
  /**
   * `rekey`: whether this session can follow and send TLS 1.3 KeyUpdates (userspace: always; kernel TLS:
   * Linux >= 6.14).
   */
  offload: { tx: boolean; rx: boolean; reason: string | null; rekey: boolean };
}

export interface NativeCounters {
  ticketsDiscarded: number;
  bytesRead: number;
  bytesWritten: number;
  txSeqAtHandoff: number;
  rxSeqAtHandoff: number;
  closeNotifyReceived: boolean;
  closeNotifySent: boolean;
  /** TLS 1.3 KeyUpdates this end sent / received and followed. */
  keyUpdatesSent: number;
  keyUpdatesReceived: number;
  /** Records protected with the current key, each direction (TX an upper bound in kernel mode). */
  txRecords: number;
  rxRecords: number;
  /** Non-zero bytes left in the addon's copies of the traffic secrets (0 once the handshake is over). */
  secretBytesHeld: number;
  /** Kernel TLS that can rekey (Linux >= 6.14): the current traffic secrets are kept, in native memory only, until close. */
  rekeySecretsHeld: boolean;
  /** Whether OpenSSL's session object still exists (only in userspace mode, which needs it). */
  opensslSessionHeld: boolean;
  /** Id of the SecureContext (SSL_CTX) the connection was made from. */
  contextId: number;
}

/** Per-connection settings of a native socket (the shared ones live in its SecureContext). */
export interface NativeSocketOptions {
  servername?: string;
  kernelTls: 'auto' | 'off' | 'require';
  handshakeTimeoutMs: number;
  keylog: boolean;
  rekey: NativeRekeyPolicy;
}

/** What reaching the key-usage limits does (see TlsContextOptions.rekey). */
export interface NativeRekeyPolicy {
  mode: 'off' | 'update' | 'reconnect';
  /** Limits; 0 = none. With `cipherDefaults`, the negotiated cipher's own limit is used instead. */
  records: number;
  bytes: number;
  cipherDefaults: boolean;
}

/** One SSL_CTX (native/src/tls_context.h); built by TlsContext from validated options. */
export interface NativeSecureContext {
  stats(): { id: number; liveSockets: number; socketsCreated: number };
  /** The CRLs (PEM) for SSLs created from now on; undefined: none. */
  setCrl(crl: string | Buffer | undefined): void;
}

export interface NativeTlsSocket {
  start(): void;
  readStart(): void;
  readStop(): void;
  /** true: all taken; false: pending until a writeDone event; object: failure. */
  write(chunks: Buffer[]): boolean | NativeErrorInfo;
  shutdown(): boolean | NativeErrorInfo;
  close(): void;
  counters(): NativeCounters;
  kernelState(): { txSeq: number; rxSeq: number } | null;
  /** Starts a KeyUpdate (keysUpdated event when done); an object on failure. */
  updateKeys(requestPeer: boolean): undefined | NativeErrorInfo;
  /** uv_ref / uv_unref of the socket's handles. */
  setRef(ref: boolean): void;
}

export interface NativeAddon {
  SecureContext: new (options: Record<string, unknown>) => NativeSecureContext;
  TlsSocket: new (
    fd: number,
    context: NativeSecureContext,
    options: NativeSocketOptions,
    onevent: (type: number, arg: unknown) => void,
  ) => NativeTlsSocket;
  dup(fd: number): number;
  kernelTlsAvailable(): { available: boolean; reason: string | null };
  opensslVersion: string;
  opensslHeaderVersion: string;
}

const ADDON_RELATIVE = join('native', 'build', 'Release', 'rpctls_native.node');

/** The addon's path; RPCTLS_NATIVE_PATH overrides the search (pointing nowhere hides the addon, for tests). */
function findAddon(): string | undefined {
  const override = process.env.RPCTLS_NATIVE_PATH;
  if (override) return existsSync(override) ? override : undefined;
  // Walk up from src/tls (or dist/tls) to the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ADDON_RELATIVE);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

let cached: NativeAddon | undefined;

/**
 * The addon, loaded once, on first use: importing rpctls never needs it, so XDR, plain RPC, rpcbind and
 * the compiler work where it could not be built. Throws TlsNativeMissingError saying how to build it.
 */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const path = findAddon();
  if (!path) throw new TlsNativeMissingError(`is not built (no ${process.env.RPCTLS_NATIVE_PATH || ADDON_RELATIVE})`);
  try {
    cached = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (error) {
    throw new TlsNativeMissingError(`does not load from ${path} (${(error as Error).message.split('\n')[0]})`, { cause: error });
  }
  return cached;
}

/** Whether this kernel can take TLS sessions (TCP_ULP "tls"), with the errno name when not. */
export function kernelTlsAvailable(): { available: boolean; reason: string | null } {
  return loadNative().kernelTlsAvailable();
}
