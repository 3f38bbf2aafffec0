import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { InvalidOptionError, optionNames, rejectUnknownOptions, validateInteger } from '../errors.js';
import { type ConnectionObserver, type ConnectionOptions, RpcConnection } from './connection.js';
import { CONNECTION_OPTIONS, type ResolvedConnectionOptions, resolveConnectionOptions } from './connection-options.js';
import { type CheckedProgramDefinition, ProgramRegistry } from './program.js';
import type { CallContext, ConnectionSecurity, RpcPeer } from './peer.js';
import type { DatagramTooLargeError } from '../transport/errors.js';
import { registerWithRpcbind } from './rpcbind.js';
import { UdpEndpoint, type UdpServerOptions, type UdpServerStats, resolveUdpOptions } from './udp-server.js';

/** Time a client may take to finish a record it started: 30 s is 35 KiB/s for a 1 MiB NFS WRITE. */
export const DEFAULT_RECORD_TIMEOUT_MS = 30_000;
/** A connection with nothing received and nothing in flight this long is closed (nfsd: a few minutes). */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
/** A new connection must say something within this time; every real client speaks at once. */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 10_000;
/** Replies may sit unread this long without progress (35 KiB/s for a 1 MiB NFS READ reply). */
export const DEFAULT_WRITE_TIMEOUT_MS = 30_000;

export interface ServerOptions extends Omit<ConnectionOptions, 'programs' | 'auth'> {
  /**
   * Connections held at once (default 4096). A new one past it evicts the connection idle the longest
   * (nothing in flight; one that never sent a byte first), as Linux nfsd does; only when every connection
   * is busy is the new one refused.
   */
  maxConnections?: number;
  /** Milliseconds `close()` waits for calls in flight before destroying connections (default 5000). */
  closeTimeout?: number;
  /** Limits of the UDP socket, used when `listen({ udp: true })` (see UdpServerOptions for defaults). */
  udp?: UdpServerOptions;
}

export interface ListenOptions {
  port?: number;
  /** Address to bind (default '0.0.0.0'). */
  host?: string;
  /** Also serve the same programs over UDP on the same port number (default false). */
  udp?: boolean;
}

const OWN_OPTIONS = optionNames<Omit<ServerOptions, keyof ConnectionOptions>>()('maxConnections', 'closeTimeout', 'udp');
/** Every option RpcServer takes (its connections' options but `programs` and `auth`). */
export const SERVER_OPTIONS: ReadonlySet<string> = new Set([...CONNECTION_OPTIONS, ...OWN_OPTIONS].filter((name) => name !== 'programs' && name !== 'auth'));
const LISTEN_OPTIONS = optionNames<ListenOptions>()('port', 'host', 'udp');

/**
 * Events of an RpcServer (each entry: the listener's arguments). `secureConnection` and `tlsClientError`
 * come from servers made by `createTlsServer`.
 */
export interface RpcServerEvents {
  /** A TCP connection was accepted. */
  connection: [connection: RpcConnection, socket: net.Socket];
  /** A connection closed with an error (a record too large, a timeout, a reset, a failed handshake). */
  connectionError: [error: Error, connection: RpcConnection];
  /** A connection was refused: `maxConnections` are held and every one is busy. */
  connectionRefused: [remoteAddress: string | undefined];
  /** The connection idle the longest was closed to make room for a new one at `maxConnections`. */
  connectionEvicted: [connection: RpcConnection];
  /** A handler threw something that is no RPC error (answered SYSTEM_ERR), TCP or UDP. */
  handlerError: [error: unknown, context: CallContext];
  /** UDP: a reply exceeded `maxDatagramSize` (answered SYSTEM_ERR instead); `source` is the caller. */
  replyTooLarge: [error: DatagramTooLargeError, source: RpcPeer];
  /** The listening socket failed after `listen()` resolved, or rpcbind refused the unregistration at close. */
  error: [error: Error];
  /** TLS is up on a connection (createTlsServer). */
  secureConnection: [connection: RpcConnection, security: ConnectionSecurity];
  /**
   * A connection's TLS handshake failed (createTlsServer); the connection closes with it. Not for a client
   * that left after STARTTLS without starting a handshake: that connection closes with ERR_TLS_NO_HANDSHAKE.
   */
  tlsClientError: [error: Error, connection: RpcConnection];
}

/**
 * An ONC-RPC server over TCP, and over UDP too when listened with `udp` (udp-server.ts: the same programs
 * and dispatcher, one datagram per call). Every accepted socket becomes an RpcConnection sharing this server's
 * programs; the server itself only accepts, tracks and closes connections and talks to rpcbind.
 */
export class RpcServer extends EventEmitter<RpcServerEvents> {
  readonly programs = new ProgramRegistry();
  readonly connections = new Set<RpcConnection>();
  private readonly options: ServerOptions;
  private readonly maxConnections: number;
  private readonly closeTimeout: number;
  private readonly server: net.Server;
  private registered: Parameters<typeof registerWithRpcbind>[0] | null = null;
  private listenPending = 0;
  private readonly udpOptions: ReturnType<typeof resolveUdpOptions>;
  private udp: UdpEndpoint | null = null;
  private refed = true;
  /** The connections' options, checked once and shared by all of them. */
  private readonly resolvedOptions: ResolvedConnectionOptions;
  /** Hears every connection's close and handler errors: no listener per connection. */
  private readonly observer: ConnectionObserver = {
    connectionClosed: (connection, error) => {
      this.connections.delete(connection);
      if (error) this.emit('connectionError', error, connection);
    },
    handlerError: (error, context) => this.emit('handlerError', error, context),
  };

  constructor(options: ServerOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
    rejectUnknownOptions(options, SERVER_OPTIONS);
    this.options = options;
    this.maxConnections = validateInteger(options.maxConnections ?? 4096, 'maxConnections', 1, 0x7fffffff);
    this.closeTimeout = validateInteger(options.closeTimeout ?? 5000, 'closeTimeout', 0, 0x7fffffff);
    this.udpOptions = resolveUdpOptions(options.udp);
    this.resolvedOptions = resolveConnectionOptions(this.connectionOptions());
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    // An error while listen() is pending rejects that promise and nothing else; later ones are events,
    // emitted only when someone listens (an unheard 'error' event would crash the process).
    this.server.on('error', (error) => {
      if (this.listenPending === 0 && this.listenerCount('error') > 0) this.emit('error', error);
    });
  }

  addProgram<A, R extends { [K in keyof A]: unknown }>(definition: CheckedProgramDefinition<A, R>): this {
    this.programs.add(definition);
    return this;
  }

  /**
   * Starts listening; resolves with the bound TCP address. With `udp`, the same programs are served over
   * UDP on the same port number (with port 0, a number free for both).
   */
  async listen(options: ListenOptions = {}): Promise<net.AddressInfo> {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
    rejectUnknownOptions(options, LISTEN_OPTIONS);
    const port = validateInteger(options.port ?? 0, 'port', 0, 65535);
    const host = options.host ?? '0.0.0.0';
    if (typeof host !== 'string' || host.length === 0) throw new InvalidOptionError('host', 'a non-empty string', host);
    if (options.udp !== undefined && typeof options.udp !== 'boolean') throw new InvalidOptionError('udp', 'a boolean', options.udp);
    // A port the kernel picked for TCP may be taken for UDP: pick again a few times.
    for (let attempt = 0; ; attempt++) {
      const address = await this.listenTcp(port, host);
      if (!options.udp) return address;
      try {
        this.udp = await this.bindUdp(address.port, host);
        return address;
      } catch (error) {
        if (port !== 0 || attempt === 4 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
          await new Promise<void>((resolve) => this.server.close(() => resolve()));
          throw error;
        }
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
      }
    }
  }

  private listenTcp(port: number, host: string): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.listenPending++;
      const onError = (error: Error): void => {
        this.listenPending--;
        reject(error);
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.listenPending--;
        this.server.off('error', onError);
        resolve(this.address());
      });
    });
  }

  private async bindUdp(port: number, host: string): Promise<UdpEndpoint> {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((error: unknown) => {
      socket.close();
      throw error;
    });
    const endpoint = new UdpEndpoint(socket, this.resolvedOptions.dispatcher, this.udpOptions);
    if (!this.refed) endpoint.setRef(false);
    endpoint.on('handlerError', (error, context) => this.emit('handlerError', error, context));
    endpoint.on('replyTooLarge', (error, source) => this.emit('replyTooLarge', error, source));
    endpoint.on('error', (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    return endpoint;
  }

  /**
   * Lets the process exit while this server listens (net.Server's unref(), and the UDP socket's). As in
   * Node, accepted connections still hold it until they close.
   */
  unref(): this {
    this.refed = false;
    this.server.unref();
    this.udp?.setRef(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.refed = true;
    this.server.ref();
    this.udp?.setRef(true);
    return this;
  }

  /** `await using server = new RpcServer(...)` closes it (as `close()`) at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The bound UDP address, or null when UDP is not served. */
  udpAddress(): net.AddressInfo | null {
    if (this.udp === null) return null;
    const a = this.udp.address();
    return { address: a.address, family: a.family, port: a.port };
  }

  /** Counters of the UDP socket (datagrams, drops, duplicate request cache), or null without UDP. */
  get udpStats(): Readonly<UdpServerStats> | null {
    return this.udp?.stats ?? null;
  }

  address(): net.AddressInfo {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new InvalidOptionError('server', 'listening on TCP', address);
    return address;
  }

  /** Registers every program version with the local rpcbind (`rpcinfo -p` then lists them). */
  async register(options?: { timeout?: number }): Promise<void> {
    const address = this.address();
    const registration = {
      programs: this.programs.list(),
      port: address.port,
      family: address.family === 'IPv6' ? ('IPv6' as const) : ('IPv4' as const),
      address: address.address,
      udp: this.udp !== null,
    };
    await registerWithRpcbind(registration, options);
    this.registered = registration;
  }

  /** Removes this server's registrations from rpcbind. */
  async unregister(options?: { timeout?: number }): Promise<void> {
    if (!this.registered) return;
    const registration = this.registered;
    this.registered = null;
    await registerWithRpcbind(registration, { ...options, unset: true });
  }

  /**
   * Stops accepting, unregisters from rpcbind, lets calls in flight finish (up to `closeTimeout`), then
   * closes every connection.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.unregister().catch((error) => this.emit('error', error));
    const udpClosed = this.udp?.close();
    this.udp = null;
    const graceful = Promise.all([...this.connections].map((c) => c.close()));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.closeTimeout);
    });
    await Promise.race([graceful, deadline]);
    clearTimeout(timer);
    for (const connection of this.connections) connection.destroy();
    await closed;
    await udpClosed;
  }

  private connectionOptions(): ConnectionOptions {
    const { maxConnections: _m, closeTimeout: _c, udp: _u, ...rest } = this.options;
    // A peer may not hold a connection by dribbling a record (slowloris), by saying nothing, or by
    // never reading its replies.
    return {
      recordTimeout: DEFAULT_RECORD_TIMEOUT_MS,
      idleTimeout: DEFAULT_IDLE_TIMEOUT_MS,
      firstByteTimeout: DEFAULT_FIRST_BYTE_TIMEOUT_MS,
      writeTimeout: DEFAULT_WRITE_TIMEOUT_MS,
      ...rest,
      programs: this.programs,
    };
  }

  /** The connection idle the longest (nothing in flight either way), or null when all are busy. */
  private longestIdle(): RpcConnection | null {
    let victim: RpcConnection | null = null;
    for (const connection of this.connections) {
      if (connection.busy) continue;
      if (victim === null || connection.lastActivity < victim.lastActivity) victim = connection;
    }
    return victim;
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.maxConnections) {
      const victim = this.longestIdle();
      if (victim === null) {
        socket.destroy();
        this.emit('connectionRefused', socket.remoteAddress);
        return;
      }
      this.emit('connectionEvicted', victim);
      victim.destroy();
    }
    const connection = new RpcConnection(socket, this.resolvedOptions);
    this.connections.add(connection);
    connection.observer = this.observer;
    this.emit('connection', connection, socket);
  }
}
