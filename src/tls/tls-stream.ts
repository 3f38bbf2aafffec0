// TlsStream: a TLS 1.3 byte stream over a connected TCP socket whose fd the addon takes over. Once
// 'secure' fired it behaves as a plain Duplex, so the RPC layer runs on it exactly as on a net.Socket.
// The configuration comes from a shared TlsContext; only per-connection settings are given here.
import { channels, debug } from '../diagnostics.js';
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

import { InvalidOptionError } from '../errors.js';
import { TlsContext } from './context.js';
import { TlsError, TlsTakeoverError, TlsTruncatedError } from './errors.js';
import { loadNative, type NativeCounters, type NativeTlsInfo } from './native.js';
import { peerIdentityOf, type PeerIdentity } from './peer-identity.js';
import { TlsSession, type TlsSessionHandler } from './session.js';

export { TLS_CIPHERSUITES, type TlsCipherSuite } from './context.js';

export interface TlsStreamOptions {
  /** The shared configuration (one SSL_CTX for all its connections). */
  context: TlsContext;
  /** Client: name or IP literal the server certificate must match; defaults to the peer address. */
  servername?: string;
  allowHalfOpen?: boolean;
}

export interface TlsInfo extends NativeTlsInfo {
  /** The peer's certificate, verified or not (see `peerVerified`). */
  peerX509: X509Certificate | null;
  /**
   * The peer's identity from a certificate this handshake verified (null when none was presented, or
   * verification was off or failed): every subjectAltName by kind, otherNames included, and the
   * extended key usages. What a handler should authorize on (read on first use).
   */
  readonly peerIdentity: PeerIdentity | null;
  /** TLS 1.3 KeyUpdates this end has sent and followed so far (read live). */
  readonly keyUpdates: { sent: number; received: number };
}

export type TlsCounters = NativeCounters;

interface SocketHandle {
  fd?: number;
  readStop?: () => number;
}

function socketHandle(socket: Socket): SocketHandle | undefined {
  return (socket as unknown as { _handle?: SocketHandle })._handle ?? undefined;
}

/**
 * Stops libuv reading `socket` (socket.pause() alone does not: libuv keeps a read armed). Whatever
 * arrives afterwards stays in the kernel for whoever reads the fd next.
 */
export function stopReading(socket: Socket): void {
  socket.pause();
  socketHandle(socket)?.readStop?.();
}

function socketFd(socket: Socket): number {
  const fd = socketHandle(socket)?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new TlsTakeoverError('socket has no file descriptor (not connected, or not a TCP socket)');
  }
  return fd;
}

export class TlsStream extends Duplex {
  readonly #session: TlsSession;
  #info: TlsInfo | null = null;
  #pendingCallback: ((error?: Error | null) => void) | null = null;
  #afterSecure: (() => void) | null = null;
  #keyUpdateWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  /**
   * Takes over `socket` synchronously: libuv stops reading it, its fd is duplicated, the net.Socket
   * destroyed (no FIN is sent) and the handshake started. The socket must have no unread bytes and no
   * queued writes.
   */
  constructor(socket: Socket, options: TlsStreamOptions) {
    if (options === null || typeof options !== 'object' || !(options.context instanceof TlsContext)) {
      throw new InvalidOptionError('options.context', 'a TlsContext (new TlsStream(socket, { context, servername?, allowHalfOpen? }))', (options as Partial<TlsStreamOptions> | null)?.context);
    }
    super({ allowHalfOpen: options.allowHalfOpen ?? false });
    const { context } = options;
    if (socket.readableLength > 0) {
      throw new TlsTakeoverError(`${socket.readableLength} unread bytes before the TLS handshake`);
    }
    if (socket.writableLength > 0) {
      throw new TlsTakeoverError('the socket still has queued writes; wait for their callbacks');
    }
    let servername: string | undefined;
    if (context.role === 'client') {
      // Never reverse DNS: without a name the certificate must match the address we connected to.
      const name = options.servername ?? socket.remoteAddress;
      if (name) servername = name.startsWith('::ffff:') ? name.slice(7) : name;
    }
    const fd = loadNative().dup(socketFd(socket));
    this.#session = new TlsSession(fd, context, servername === undefined ? {} : { servername }, this.#handler);
    socket.destroy();
  }

  /** Lets the process exit while this stream is open (as net.Socket's unref()). */
  unref(): this {
    this.#session.setRef(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.#session.setRef(true);
    return this;
  }

  /** Handshake result; null until 'secure'. */
  get tlsInfo(): TlsInfo | null {
    return this.#info;
  }

  /**
   * Memory for a large record read from this stream (the record channel joins records of 32 KiB or more
   * here): native memory that goes back to the addon's pool when the GC frees it, as the reads it is
   * joined from do, so a steady flow of large records reuses pages instead of faulting in new ones.
   */
  recordBuffer(length: number): Buffer {
    return loadNative().pooledBuffer(length);
  }

  get counters(): TlsCounters {
    return this.#session.counters();
  }

  /** Record sequence numbers held by the kernel (kernel TLS only), for diagnostics and tests. */
  kernelState(): { txSeq: number; rxSeq: number } | null {
    return this.#session.kernelState();
  }

  /**
   * Sends a TLS 1.3 KeyUpdate and moves this end's sending key on (after any write in progress, before
   * the next); `requestPeerUpdate` asks the peer to move its own too. Resolves once the KeyUpdate is
   * written; calls made while one is still waiting share it. Rejects with ERR_TLS_KEY_UPDATE where kernel TLS cannot rekey (Linux < 6.14), see
   * `tlsInfo.offload.rekey`.
   */
  updateKeys(options: { requestPeerUpdate?: boolean } = {}): Promise<void> {
    if (options === null || typeof options !== 'object') {
      return Promise.reject(new InvalidOptionError('options', 'an object ({ requestPeerUpdate?: boolean })', options));
    }
    if (options.requestPeerUpdate !== undefined && typeof options.requestPeerUpdate !== 'boolean') {
      return Promise.reject(new InvalidOptionError('requestPeerUpdate', 'a boolean', options.requestPeerUpdate));
    }
    if (this.destroyed || this.writableEnded) {
      return Promise.reject(new TlsError('ERR_TLS_INVALID_STATE', 'updateKeys on a TLS stream that is closed or ending'));
    }
    if (!this.#info) {
      return new Promise<void>((resolve) => this.once('secure', resolve)).then(() => this.updateKeys(options));
    }
    const error = this.#session.updateKeys(options.requestPeerUpdate === true);
    if (error) return Promise.reject(error);
    return new Promise<void>((resolve, reject) => this.#keyUpdateWaiters.push({ resolve, reject }));
  }

  readonly #handler: TlsSessionHandler = {
    secure: (info) => {
      const session = this.#session;
      const peerX509 = info.peerCertificate ? new X509Certificate(info.peerCertificate) : null;
      let identity: PeerIdentity | null | undefined;
      this.#info = Object.defineProperties(
        { ...info, peerX509 },
        {
          keyUpdates: {
            enumerable: true,
            get: () => {
              const counters = session.counters();
              return { sent: counters.keyUpdatesSent, received: counters.keyUpdatesReceived };
            },
          },
          peerIdentity: {
            enumerable: true,
            get: () => {
              if (identity === undefined) {
                identity = info.peerVerified && info.peerCertificate && peerX509 ? peerIdentityOf(info.peerCertificate, peerX509) : null;
              }
              return identity;
            },
          },
        },
      ) as TlsInfo;
      this.emit('secure', this.#info);
      const deferred = this.#afterSecure;
      this.#afterSecure = null;
      deferred?.();
    },
    data: (chunk) => {
      if (!this.push(chunk)) this.#session.readStop();
    },
    end: (closeNotify) => {
      // RFC 8446 6.1: answer the peer's close_notify with ours. Ended here, before the readable side
      // ends, so it goes out (after any queued write) even when the owner destroys the stream on 'end'.
      if (!closeNotify) {
        // A TCP FIN without close_notify: everything before it was delivered; the end itself is
        // reported as a truncation, not as an orderly end.
        this.destroy(new TlsTruncatedError());
        return;
      }
      if (!this.allowHalfOpen && !this.writableEnded) this.end();
      this.push(null);
    },
    error: (error) => {
      this.destroy(error);
    },
    writeDone: () => {
      const callback = this.#pendingCallback;
      this.#pendingCallback = null;
      callback?.();
    },
    keysUpdated: () => {
      if (channels.tlsKeyUpdate.hasSubscribers) channels.tlsKeyUpdate.publish({ stream: this, keyUpdates: this.#info?.keyUpdates });
      const waiters = this.#keyUpdateWaiters;
      this.#keyUpdateWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    },
    // The key-usage limits are reached and the policy is to replace the connection (context `rekey`).
    rekeyDue: () => {
      if (channels.tlsRekeyDue.hasSubscribers) channels.tlsRekeyDue.publish({ stream: this });
      debug('TLS key-usage limit reached: the connection will be replaced');
      this.emit('rekeyDue');
    },
  };

  #complete(result: boolean | TlsError, callback: (error?: Error | null) => void): void {
    if (result === true) callback();
    else if (result === false) this.#pendingCallback = callback;
    else callback(result);
  }

  override _read(): void {
    this.#session.readStart();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (!this.#info) {
      this.#afterSecure = () => this._writev(chunks, callback);
      return;
    }
    this.#complete(this.#session.write(chunks.map((c) => c.chunk)), callback);
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
    this.#complete(this.#session.shutdown(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#session.close();
    this.#afterSecure = null;
    const pending = this.#pendingCallback;
    this.#pendingCallback = null;
    pending?.(error ?? new TlsError('ERR_STREAM_DESTROYED', 'TLS stream destroyed'));
    const waiters = this.#keyUpdateWaiters;
    this.#keyUpdateWaiters = [];
    for (const waiter of waiters) waiter.reject(error ?? new TlsError('ERR_STREAM_DESTROYED', 'TLS stream destroyed before the KeyUpdate was sent'));
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
