// TlsStream: a TLS 1.3 byte stream over a connected TCP socket whose fd the addon takes over. Once
// 'secure' fired it behaves as a plain Duplex, so the RPC layer runs on it exactly as on a net.Socket.
import { appendFileSync, closeSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

import { TlsError, TlsTakeoverError, tlsErrorFromNative } from './errors.js';
import {
  NativeEvent,
  loadNative,
  type NativeCounters,
  type NativeErrorInfo,
  type NativeSocketOptions,
  type NativeTlsInfo,
  type NativeTlsSocket,
} from './native.js';

/** The only suites offered: those Linux kernel TLS can take over. */
export const TLS_CIPHERSUITES = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
] as const;
export type TlsCipherSuite = (typeof TLS_CIPHERSUITES)[number];

type Pem = string | Buffer;

export interface TlsStreamOptions {
  role: 'client' | 'server';
  cert?: Pem;
  key?: Pem;
  /** Trusted CAs; without it the OpenSSL default store is used. */
  ca?: Pem | Pem[];
  /** Client: name or IP literal the server certificate must match; defaults to the peer address. */
  servername?: string;
  /** Reject a peer certificate that fails verification (default true). */
  rejectUnauthorized?: boolean;
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
  /** Default 10000 ms for clients, 5000 ms for servers (as Linux). 0 disables the timer. */
  handshakeTimeoutMs?: number;
  /**
   * Receives SSLKEYLOGFILE lines; only set it when debugging. Without it, the lines are appended to
   * the file named by the SSLKEYLOGFILE environment variable when that is set (read per stream).
   */
  keylog?: (line: string) => void;
  /** Bytes written in clear on the fd before the handshake, e.g. a server's STARTTLS reply. */
  preface?: Buffer;
  allowHalfOpen?: boolean;
}

export interface TlsInfo extends NativeTlsInfo {
  peerX509: X509Certificate | null;
}

export type TlsCounters = NativeCounters;

const CIPHERSUITE_SET: ReadonlySet<string> = new Set(TLS_CIPHERSUITES);

function toNativeOptions(socket: Socket, options: TlsStreamOptions): NativeSocketOptions {
  if (options.role !== 'client' && options.role !== 'server') {
    throw new TypeError(`options.role must be "client" or "server", got ${String(options.role)}`);
  }
  for (const suite of options.ciphersuites ?? []) {
    if (!CIPHERSUITE_SET.has(suite)) {
      throw new TypeError(`options.ciphersuites: ${suite} is not one of ${TLS_CIPHERSUITES.join(', ')}`);
    }
  }
  const ca = Array.isArray(options.ca) ? options.ca.map(String).join('\n') : options.ca;
  const isServer = options.role === 'server';
  const native: NativeSocketOptions = {
    role: options.role,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    requestCert: options.requestCert ?? (isServer && ca !== undefined),
    requireClientCert: options.requireClientCert ?? false,
    alpn: options.alpn ?? 'offer',
    kernelTls: options.kernelTls ?? 'auto',
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? (isServer ? 5000 : 10000),
    keylog: options.keylog !== undefined,
  };
  if (options.cert !== undefined) native.cert = options.cert;
  if (options.key !== undefined) native.key = options.key;
  if (ca !== undefined) native.ca = ca;
  if (options.ciphersuites?.length) native.ciphersuites = options.ciphersuites.join(':');
  if (options.preface !== undefined) native.preface = options.preface;
  if (!isServer) {
    // Never reverse DNS: without a name the certificate must match the address we connected to.
    const name = options.servername ?? socket.remoteAddress;
    if (name) native.servername = name.startsWith('::ffff:') ? name.slice(7) : name;
  }
  return native;
}

let keylogWarned = false;

/** The SSLKEYLOGFILE environment variable as a keylog sink (as curl and others do), or undefined. */
function keylogFromEnv(): ((line: string) => void) | undefined {
  const path = process.env.SSLKEYLOGFILE;
  if (!path) return undefined;
  return (line) => {
    try {
      appendFileSync(path, `${line}\n`, { mode: 0o600 });
    } catch (error) {
      // A debugging aid must not break the connection: warn once.
      if (!keylogWarned) {
        keylogWarned = true;
        process.emitWarning(`SSLKEYLOGFILE ${path}: ${(error as Error).message}`, 'RpcTlsWarning');
      }
    }
  };
}

function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new TlsTakeoverError('socket has no file descriptor (not connected, or not a TCP socket)');
  }
  return fd;
}

export class TlsStream extends Duplex {
  readonly #native: NativeTlsSocket;
  readonly #keylog: ((line: string) => void) | undefined;
  #info: TlsInfo | null = null;
  #pendingCallback: ((error?: Error | null) => void) | null = null;
  #afterSecure: (() => void) | null = null;

  /**
   * Takes over `socket` synchronously: its fd is duplicated, the net.Socket destroyed (no FIN is
   * sent) and the handshake started. The socket must have no unread bytes and no queued writes.
   */
  constructor(socket: Socket, options: TlsStreamOptions) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false });
    const addon = loadNative();
    const keylog = options.keylog ?? keylogFromEnv();
    const nativeOptions = toNativeOptions(socket, keylog === options.keylog ? options : { ...options, keylog });
    if (socket.readableLength > 0) {
      throw new TlsTakeoverError(`${socket.readableLength} unread bytes before the TLS handshake`);
    }
    if (socket.writableLength > 0) {
      throw new TlsTakeoverError('the socket still has queued writes; wait for their callbacks');
    }
    const fd = addon.dup(socketFd(socket));
    try {
      this.#native = new addon.TlsSocket(fd, nativeOptions, this.#onEvent);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.#keylog = keylog;
    socket.destroy();
    this.#native.start();
  }

  /** Handshake result; null until 'secure'. */
  get tlsInfo(): TlsInfo | null {
    return this.#info;
  }

  get counters(): TlsCounters {
    return this.#native.counters();
  }

  /** Record sequence numbers held by the kernel (kernel TLS only), for diagnostics and tests. */
  kernelState(): { txSeq: number; rxSeq: number } | null {
    return this.#native.kernelState();
  }

  // One bound function for every native event: no closure per record.
  readonly #onEvent = (type: number, arg: unknown): void => {
    switch (type) {
      case NativeEvent.secure: {
        const info = arg as NativeTlsInfo;
        this.#info = {
          ...info,
          peerX509: info.peerCertificate ? new X509Certificate(info.peerCertificate) : null,
        };
        this.emit('secure', this.#info);
        const deferred = this.#afterSecure;
        this.#afterSecure = null;
        deferred?.();
        break;
      }
      case NativeEvent.data:
        if (!this.push(arg as Buffer)) this.#native.readStop();
        break;
      case NativeEvent.end:
        this.push(null);
        break;
      case NativeEvent.error:
        this.destroy(tlsErrorFromNative(arg as NativeErrorInfo));
        break;
      case NativeEvent.writeDone:
      case NativeEvent.shutdownDone: {
        const callback = this.#pendingCallback;
        this.#pendingCallback = null;
        callback?.();
        break;
      }
      case NativeEvent.keylog:
        this.#keylog?.(arg as string);
        break;
    }
  };

  #complete(result: boolean | NativeErrorInfo, callback: (error?: Error | null) => void): void {
    if (result === true) callback();
    else if (result === false) this.#pendingCallback = callback;
    else callback(tlsErrorFromNative(result));
  }

  override _read(): void {
    this.#native.readStart();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (!this.#info) {
      this.#afterSecure = () => this._writev(chunks, callback);
      return;
    }
    this.#complete(
      this.#native.write(chunks.map((c) => c.chunk)),
      callback,
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback);
  }

  /** end(): close_notify goes out after every queued write. */
  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#info) {
      this.#afterSecure = () => this._final(callback);
      return;
    }
    this.#complete(this.#native.shutdown(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#native.close();
    const pending = this.#pendingCallback;
    this.#pendingCallback = null;
    pending?.(error ?? new TlsError('ERR_STREAM_DESTROYED', 'TLS stream destroyed'));
    callback(error);
  }
}

/**
 * Takes over a connected socket and resolves with the TlsStream once the handshake completed, or
 * rejects with the coded error (TlsError subclasses). Queued writes are flushed first.
 */
export async function connectTlsStream(socket: Socket, options: TlsStreamOptions): Promise<TlsStream> {
  if (socket.writableLength > 0) {
    await new Promise<void>((resolve, reject) =>
      socket.write(Buffer.alloc(0), (error) => (error ? reject(error) : resolve())),
    );
  }
  const stream = new TlsStream(socket, options);
  return new Promise<TlsStream>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    stream.once('error', onError);
    stream.once('secure', () => {
      stream.off('error', onError);
      resolve(stream);
    });
  });
}
