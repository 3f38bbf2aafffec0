import { EventEmitter } from 'node:events';
import net from 'node:net';
import { InvalidOptionError, optionNames, rejectUnknownOptions, validateInteger } from '../errors.js';
import { CONNECTION_OPTIONS } from './connection-options.js';
import { debug } from '../diagnostics.js';
import { type CallOptions, type ConnectionOptions, RpcConnection } from './connection.js';
import { ConnectError, ConnectionClosedError, RpcAbortError, RpcTimeoutError } from './errors.js';
import { type CallContext, type CheckedProgramDefinition, type ProcedureRef, ProgramRegistry } from './program.js';

/** How long a server may take to finish a record it started (a 1 MiB reply at 35 KiB/s). */
export const DEFAULT_CLIENT_RECORD_TIMEOUT_MS = 30_000;

export interface ReconnectOptions {
  /** First delay before reconnecting, in ms (default 100). */
  initialDelay?: number;
  /** Cap on the doubling delay, in ms (default 10000). */
  maxDelay?: number;
  /** Attempts per outage before calls fail with ERR_RPC_CONNECT (default 10). */
  maxAttempts?: number;
}

export interface ClientOptions extends Omit<ConnectionOptions, 'programs'> {
  host?: string;
  port?: number;
  /** A Unix-domain socket path instead of host/port (e.g. rpcbind's /run/rpcbind.sock). */
  path?: string;
  /** Milliseconds allowed for one TCP connect (default 10000). */
  connectTimeout?: number;
  /** Reconnect after the connection is lost (default off: the client stays closed). */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Runs on every new connection before it is handed to callers (e.g. the RFC 9289 probe and TLS
   * handshake, which swap the stream under the connection with `connection.upgrade`). If it rejects,
   * that connection is closed and the attempt fails with its error.
   */
  upgrade?: (connection: RpcConnection) => Promise<void>;
}

/** Events of an RpcClient (each entry: the listener's arguments). */
export interface RpcClientEvents {
  /** A connection is up (after its `upgrade`, e.g. TLS), before calls waiting for it are sent. */
  connect: [connection: RpcConnection];
  /** The connection closed; `error` says why when it did not end cleanly. A reconnect may follow. */
  disconnect: [error: Error | undefined];
  /** One attempt to connect (or to upgrade a new connection) failed; with `reconnect`, another follows. */
  connectError: [error: unknown];
  /** A handler of a program this client serves back to the server threw (see RpcConnection). */
  handlerError: [error: unknown, context: CallContext];
}

const OWN_OPTIONS = optionNames<Omit<ClientOptions, keyof ConnectionOptions>>()('host', 'port', 'path', 'connectTimeout', 'reconnect', 'upgrade');
/** Every option RpcClient takes (its connections' options but `programs`, which addProgram fills). */
export const CLIENT_OPTIONS: ReadonlySet<string> = new Set([...CONNECTION_OPTIONS, ...OWN_OPTIONS].filter((name) => name !== 'programs'));
const RECONNECT_OPTIONS = optionNames<ReconnectOptions>()('initialDelay', 'maxDelay', 'maxAttempts');

/**
 * An ONC-RPC client over TCP: one RpcConnection at a time, optionally re-established with backoff when
 * it is lost. Programs added with `addProgram` are served to the server over the same connection.
 */
export class RpcClient extends EventEmitter<RpcClientEvents> {
  readonly programs = new ProgramRegistry();
  private readonly options: ClientOptions;
  private readonly host: string;
  private readonly port: number;
  private readonly path: string | undefined;
  private readonly connectTimeout: number;
  private readonly reconnect: Required<ReconnectOptions> | null;
  private current: RpcConnection | null = null;
  private connecting: Promise<RpcConnection> | null = null;
  private everConnected = false;
  /** The last connection retired itself (rekey limit): the next call opens a new one, reconnect or not. */
  private replacing = false;
  private closed = false;
  /** unref(): no connection, handshake or reconnect wait of this client keeps the process alive. */
  private refed = true;

  constructor(options: ClientOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
    rejectUnknownOptions(options, CLIENT_OPTIONS);
    this.options = options;
    if (options.path !== undefined) {
      if (typeof options.path !== 'string' || options.path.length === 0) throw new InvalidOptionError('path', 'a non-empty string', options.path);
      this.path = options.path;
      this.host = 'localhost';
      this.port = 0;
    } else {
      this.path = undefined;
      if (options.host !== undefined && (typeof options.host !== 'string' || options.host.length === 0)) {
        throw new InvalidOptionError('host', 'a non-empty string', options.host);
      }
      this.host = options.host ?? '127.0.0.1';
      this.port = validateInteger(options.port, 'port', 1, 65535);
    }
    if (options.upgrade !== undefined && typeof options.upgrade !== 'function') {
      throw new InvalidOptionError('upgrade', 'a function', options.upgrade);
    }
    this.connectTimeout = validateInteger(options.connectTimeout ?? 10_000, 'connectTimeout', 1, 0x7fffffff);
    const reconnect = options.reconnect;
    if (reconnect === undefined || reconnect === false) {
      this.reconnect = null;
    } else if (reconnect === true || (typeof reconnect === 'object' && reconnect !== null)) {
      const r = reconnect === true ? {} : reconnect;
      rejectUnknownOptions(r, RECONNECT_OPTIONS, 'reconnect.');
      this.reconnect = {
        initialDelay: validateInteger(r.initialDelay ?? 100, 'reconnect.initialDelay', 0, 0x7fffffff),
        maxDelay: validateInteger(r.maxDelay ?? 10_000, 'reconnect.maxDelay', 0, 0x7fffffff),
        maxAttempts: validateInteger(r.maxAttempts ?? 10, 'reconnect.maxAttempts', 1, 0x7fffffff),
      };
    } else {
      throw new InvalidOptionError('reconnect', 'a boolean or { initialDelay, maxDelay, maxAttempts }', reconnect);
    }
    // Validate connection options now rather than at the first connect.
    new RpcConnection(null, this.connectionOptions()).destroy();
  }

  /** The live connection, or null between connections. */
  get connection(): RpcConnection | null {
    return this.current;
  }

  /** Where this client connects, as `host:port` or the socket path. */
  get target(): string {
    return this.path ?? `${this.host}:${this.port}`;
  }

  addProgram<A, R extends { [K in keyof A]: unknown }>(definition: CheckedProgramDefinition<A, R>): this {
    this.programs.add(definition);
    return this;
  }

  /**
   * Opens the connection (calls do this on demand). `signal` abandons the wait (rejecting with
   * ERR_RPC_ABORTED); an attempt already under way continues for other callers.
   */
  async connect(options: { signal?: AbortSignal } = {}): Promise<RpcConnection> {
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidOptionError('signal', 'an AbortSignal', signal);
    if (signal?.aborted) throw new RpcAbortError(signal.reason);
    if (this.closed) throw new ConnectionClosedError('the client is closed');
    if (this.current && !this.current.closed) return this.current;
    if (!this.connecting) {
      this.connecting = this.establish().finally(() => {
        this.connecting = null;
      });
    }
    return signal === undefined ? this.connecting : abortable(this.connecting, signal);
  }

  /**
   * Lets the process exit while this client is open (as net.Socket's unref()): its connection, a
   * handshake and a reconnect wait no longer keep the event loop alive. Like Node's sockets, calls in
   * flight do not hold it either: await them.
   */
  unref(): this {
    this.refed = false;
    refStream(this.current?.transport, false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.refed = true;
    refStream(this.current?.transport, true);
    return this;
  }

  /** `await using client = new RpcClient(...)` closes it gracefully at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  call(program: number, version: number, procedure: number, args?: Buffer | readonly Buffer[], options?: CallOptions): Promise<Buffer> {
    const connection = this.current;
    if (connection && !connection.closed) return connection.call(program, version, procedure, args, options);
    return this.connectThen((c) => c.call(program, version, procedure, args, options), options);
  }

  request<A, R>(ref: ProcedureRef<A, R>, args: A, options?: CallOptions): Promise<R> {
    const connection = this.current;
    if (connection && !connection.closed) return connection.request(ref, args, options);
    return this.connectThen((c) => c.request(ref, args, options), options);
  }

  private async connectThen<T>(fn: (connection: RpcConnection) => Promise<T>, options?: CallOptions): Promise<T> {
    if (this.closed) throw new ConnectionClosedError('the client is closed');
    if (this.everConnected && !this.reconnect && !this.replacing) throw new ConnectionClosedError('the connection is closed and reconnect is off');
    return fn(await this.connect(options?.signal === undefined ? {} : { signal: options.signal }));
  }

  /** Graceful close: calls in flight finish, then the connection closes; no reconnect afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    await this.connecting?.catch(() => undefined);
    await this.current?.close();
  }

  /** Immediate close: pending calls fail with ERR_RPC_CONNECTION_CLOSED. */
  destroy(error?: Error): void {
    this.closed = true;
    this.current?.destroy(error);
  }

  private connectionOptions(): ConnectionOptions {
    const { host: _h, port: _p, path: _path, connectTimeout: _c, reconnect: _r, upgrade: _u, ...rest } = this.options;
    // A server that starts a reply must finish it: no holding a call's connection with a partial record.
    return { recordTimeout: DEFAULT_CLIENT_RECORD_TIMEOUT_MS, ...rest, programs: this.programs };
  }

  private async establish(): Promise<RpcConnection> {
    const attempts = this.reconnect?.maxAttempts ?? 1;
    let delay = this.reconnect?.initialDelay ?? 0;
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, delay);
          if (!this.refed) timer.unref();
        });
        delay = Math.min(delay * 2 || 1, this.reconnect?.maxDelay ?? 0);
      }
      if (this.closed) break;
      try {
        const socket = await this.openSocket();
        if (!this.refed) socket.unref();
        if (this.closed) {
          socket.destroy();
          break;
        }
        const connection = new RpcConnection(socket, this.connectionOptions());
        if (this.options.upgrade) {
          try {
            await this.options.upgrade(connection);
          } catch (error) {
            connection.destroy(error as Error);
            throw error;
          }
        }
        // The upgrade may have put a TLS stream under the connection: it follows unref() too.
        if (!this.refed) refStream(connection.transport, false);
        this.current = connection;
        this.everConnected = true;
        this.replacing = false;
        connection.once('retire', () => {
          // New calls go to a fresh connection; this one closes once its calls are answered.
          if (this.current === connection) {
            this.current = null;
            this.replacing = true;
          }
          void connection.close();
        });
        connection.on('close', (error?: Error) => {
          if (this.current === connection) this.current = null;
          this.emit('disconnect', error);
        });
        connection.on('handlerError', (error, context) => this.emit('handlerError', error, context));
        this.emit('connect', connection);
        return connection;
      } catch (error) {
        lastError = error;
        debug('connect to %s failed: %s', this.target, (error as Error)?.message);
        this.emit('connectError', error);
      }
    }
    if (this.closed) throw new ConnectionClosedError('the client is closed');
    throw lastError;
  }

  private openSocket(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = this.path !== undefined ? net.connect({ path: this.path }) : net.connect({ host: this.host, port: this.port, noDelay: true });
      if (!this.refed) socket.unref();
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectError(this.host, this.port, new RpcTimeoutError(this.connectTimeout)));
      }, this.connectTimeout);
      if (!this.refed) timer.unref();
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new ConnectError(this.path ?? this.host, this.port, error));
      });
    });
  }
}

/** A stream that can stop holding the event loop (net.Socket, TlsStream). */
interface Refable {
  ref(): unknown;
  unref(): unknown;
}

function refStream(stream: unknown, ref: boolean): void {
  const refable = stream as Partial<Refable> | null | undefined;
  if (typeof refable?.unref !== 'function' || typeof refable.ref !== 'function') return;
  if (ref) refable.ref();
  else refable.unref();
}

/** `promise`, or an RpcAbortError as soon as `signal` aborts (the work behind `promise` goes on). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new RpcAbortError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
