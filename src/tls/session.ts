// TlsSession: the one driver of a native TLS socket (handshake, then records). It owns the event switch
// of the addon; TlsStream (a Duplex over a taken-over net.Socket) and the handshake agent (a kernel
// socket's fd) both run on it. Holds the fd from construction until close().
import { appendFileSync, closeSync } from 'node:fs';

import type { TlsContext } from './context.js';
import { type TlsError, tlsErrorFromNative } from './errors.js';
import {
  NativeEvent,
  loadNative,
  type NativeCounters,
  type NativeErrorInfo,
  type NativeTlsInfo,
  type NativeTlsSocket,
} from './native.js';

/** What a session's owner hears. Called synchronously from the native event. */
export interface TlsSessionHandler {
  secure(info: NativeTlsInfo): void;
  data(chunk: Buffer): void;
  /** closeNotify: the peer sent close_notify (false: bare TCP FIN). */
  end(closeNotify: boolean): void;
  error(error: TlsError): void;
  /** A pending write() or shutdown() completed. */
  writeDone(): void;
  /** An updateKeys() completed. */
  keysUpdated?(): void;
  /** The key-usage limits were reached and the policy says to replace the connection. */
  rekeyDue?(): void;
}

export interface TlsSessionOptions {
  /** Client: the name or IP literal the server certificate must match. */
  servername?: string;
  /** Overrides the context's handshakeTimeout for this connection (ms; 0 = none). */
  handshakeTimeout?: number;
}

let keylogWarned = false;

/** The SSLKEYLOGFILE environment variable as a keylog sink (as curl and others do), or undefined. */
export function keylogToFile(path: string | undefined): ((line: string) => void) | undefined {
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

export class TlsSession {
  readonly #native: NativeTlsSocket;
  #handler: TlsSessionHandler | null;
  readonly #keylog: ((line: string) => void) | undefined;
  #closed = false;

  /**
   * Takes ownership of `fd` (closed by close(), or here when the construction fails) and starts the
   * handshake; every event arrives asynchronously.
   */
  constructor(fd: number, context: TlsContext, options: TlsSessionOptions, handler: TlsSessionHandler) {
    this.#handler = handler;
    this.#keylog = context.keylog ?? keylogToFile(process.env.SSLKEYLOGFILE);
    const addon = loadNative();
    const native = {
      kernelTls: context.kernelTls,
      handshakeTimeoutMs: options.handshakeTimeout ?? context.handshakeTimeout,
      keylog: this.#keylog !== undefined,
      rekey: context.rekey,
      ...(options.servername !== undefined && context.role === 'client' ? { servername: options.servername } : {}),
    };
    try {
      this.#native = new addon.TlsSocket(fd, context.native, native, this.#onEvent);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.#native.start();
  }

  get closed(): boolean {
    return this.#closed;
  }

  // One bound function for every native event: no closure per record.
  readonly #onEvent = (type: number, arg: unknown): void => {
    const handler = this.#handler;
    if (handler === null) return;
    switch (type) {
      case NativeEvent.secure: handler.secure(arg as NativeTlsInfo); break;
      case NativeEvent.data: handler.data(arg as Buffer); break;
      case NativeEvent.end: handler.end(arg === true); break;
      case NativeEvent.error: handler.error(tlsErrorFromNative(arg as NativeErrorInfo)); break;
      case NativeEvent.writeDone:
      case NativeEvent.shutdownDone: handler.writeDone(); break;
      case NativeEvent.keylog: this.#keylog?.(arg as string); break;
      case NativeEvent.keysUpdated: handler.keysUpdated?.(); break;
      case NativeEvent.rekeyDue: handler.rekeyDue?.(); break;
    }
  };

  readStart(): void {
    if (!this.#closed) this.#native.readStart();
  }

  readStop(): void {
    if (!this.#closed) this.#native.readStop();
  }

  /** Whether the session's handles keep the event loop alive (as net.Socket's ref()/unref()). */
  setRef(ref: boolean): void {
    if (!this.#closed) this.#native.setRef(ref);
  }

  /** true: all taken; false: pending until handler.writeDone(); a TlsError: failed. */
  write(chunks: Buffer[]): boolean | TlsError {
    const result = this.#native.write(chunks);
    return typeof result === 'boolean' ? result : tlsErrorFromNative(result);
  }

  /** close_notify then TCP FIN, after every write completed. Same results as write(). */
  shutdown(): boolean | TlsError {
    const result = this.#native.shutdown();
    return typeof result === 'boolean' ? result : tlsErrorFromNative(result);
  }

  /** Closes the fd (no close_notify) and drops every reference to the handler. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler = null;
    this.#native.close();
  }

  /** Starts a KeyUpdate; undefined (keysUpdated follows) or the error. */
  updateKeys(requestPeer: boolean): TlsError | undefined {
    const result = this.#native.updateKeys(requestPeer);
    return result === undefined ? undefined : tlsErrorFromNative(result);
  }

  counters(): NativeCounters {
    return this.#native.counters();
  }

  kernelState(): { txSeq: number; rxSeq: number } | null {
    return this.#native.kernelState();
  }
}

/**
 * Runs a handshake on an fd the caller lends (it is duplicated; the copy is closed when done) and
 * resolves with the session's info once it completed; the session is closed without close_notify
 * (the handshake agent's use: the kernel keeps the socket).
 */
export function handshakeOnFd(fd: number, context: TlsContext, options: TlsSessionOptions = {}): Promise<NativeTlsInfo> {
  const copy = loadNative().dup(fd);
  return new Promise<NativeTlsInfo>((resolve, reject) => {
    let session: TlsSession | null = null;
    const finish = (error: Error | null, info?: NativeTlsInfo): void => {
      session?.close();
      session = null;
      if (error) reject(error);
      else resolve(info!);
    };
    const handler: TlsSessionHandler = {
      secure: (info) => finish(null, info),
      error: (error) => finish(error),
      data: () => {},
      end: () => {},
      writeDone: () => {},
    };
    try {
      session = new TlsSession(copy, context, options, handler);
    } catch (error) {
      reject(error as Error);
    }
  });
}
