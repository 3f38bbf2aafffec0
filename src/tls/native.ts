// Loads the rpctls_native addon (a local build, or the prebuilt binary for this platform) and describes its surface.
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
  /**
   * The peer's RFC 8449 record_size_limit (counting TLS 1.3's content type byte), or null when it
   * announced none. Every record this end sends fits it: the kernel's TLS_TX_MAX_PAYLOAD_LEN (Linux >=
   * 6.19; older kernels leave such a session in userspace, `offload.reason` says so), or smaller writes.
   */
  recordSizeLimit: number | null;
  authMode: 'tls' | 'mtls';
  /** The session was established with the configured TLS 1.3 external PSK (no certificates). */
  psk: boolean;
  /** Server with `psk: { keyring: 'session' }`: the serial of the kernel key that gave the PSK, else null. */
  pskKeySerial?: number | null;
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

/** The addon's per-thread pool of memory for large Buffers (native/src/buffer_pool.h). */
export interface BlockPoolStats {
  /** Bytes of spare blocks the pool keeps now. */
  pooledBytes: number;
  pooledBlocks: number;
  /** Blocks asked for so far, and how many of them came from the pool rather than from malloc. */
  taken: number;
  reused: number;
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
  /** `size` uninitialized bytes of native memory that go back to the addon's pool when the GC frees them. */
  pooledBuffer(size: number): Buffer;
  blockPoolStats(): BlockPoolStats;
  kernelTlsAvailable(): { available: boolean; reason: string | null };
  opensslVersion: string;
  opensslHeaderVersion: string;
}

const LOCAL_BUILD = join('native', 'build', 'Release', 'rpctls_native.node');
const PREBUILT = join('prebuilds', `${process.platform}-${process.arch}`, 'rpctls_native.node');

/**
 * Where the addon may be, best first: RPCTLS_NATIVE_PATH alone when set (pointing nowhere hides the addon,
 * for tests); else a local build (made for this very Node by install or by hand), then the prebuilt
 * binary the package ships for this platform and arch.
 */
function addonCandidates(): string[] {
  const override = process.env.RPCTLS_NATIVE_PATH;
  if (override) return [override];
  // Walk up from src/tls (or dist/tls) to the package root: the first directory with a package.json.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  return [join(dir, LOCAL_BUILD), join(dir, PREBUILT)];
}

let cached: NativeAddon | undefined;
let loadedFrom: string | undefined;

/**
 * The addon, loaded once, on first use: importing rpctls never needs it, so XDR, plain RPC, rpcbind and
 * the compiler work where it is missing. Throws TlsNativeMissingError naming each place it looked.
 */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const tried: string[] = [];
  let firstError: unknown;
  for (const path of addonCandidates()) {
    if (!existsSync(path)) {
      tried.push(`no ${path}`);
      continue;
    }
    try {
      cached = createRequire(import.meta.url)(path) as NativeAddon;
      loadedFrom = path;
      return cached;
    } catch (error) {
      // A prebuilt binary for another libc (musl) or a build for another Node: say why, try the next.
      firstError ??= error;
      tried.push(`${path} does not load: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  const reason = firstError === undefined ? `is not built or prebuilt for ${process.platform}-${process.arch}` : 'does not load';
  throw new TlsNativeMissingError(`${reason} (${tried.join('; ')})`, { cause: firstError });
}

/** The file the addon was loaded from (undefined before the first TLS use or where it is missing). */
export function nativeAddonPath(): string | undefined {
  return loadedFrom;
}

/** Whether this kernel can take TLS sessions (TCP_ULP "tls"), with the errno name when not. */
export function kernelTlsAvailable(): { available: boolean; reason: string | null } {
  return loadNative().kernelTlsAvailable();
}
