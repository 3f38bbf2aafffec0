import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { InvalidOptionError, optionNames, rejectUnknownOptions, validateInteger } from '../errors.js';
import { DEFAULT_MAX_DATAGRAM_SIZE, DatagramChannel, MAX_DATAGRAM_SIZE } from '../transport/datagram.js';
import { DatagramTooLargeError } from '../transport/errors.js';
import type { OpaqueAuth } from './auth.js';
import { CallTable, resolveCallOptions, type CallWriter, typedRequest } from './call-table.js';
import { MsgType } from './constants.js';
import { ConnectError, ConnectionClosedError } from './errors.js';
import { type RpcReply, decodeMessage } from './message.js';
import type { CallOptions, ConnectionStats, ProcedureRef } from './peer.js';

/**
 * An ONC-RPC client over UDP. The call table is the TCP client's (XIDs, deadlines, aborts, the bounded
 * queue, settling once); what differs is underneath: each call is one datagram, resent with the same XID
 * until a reply comes or the call times out, and a reply counts only when it comes from the server's
 * address and port. Anything else that arrives is counted and ignored.
 */

/** First retransmission after this long; each next one waits twice as long, up to the maximum. */
export const DEFAULT_RETRANSMIT_TIMEOUT_MS = 1000;
export const DEFAULT_MAX_RETRANSMIT_TIMEOUT_MS = 8000;

export interface UdpClientOptions {
  /** Server address or name (default '127.0.0.1'); a name is resolved once, on connect. */
  host?: string;
  port: number;
  /** Local address to send from (default: any, the kernel picks per route). */
  localAddress?: string;
  /** Default per-call timeout in ms, retransmissions included (default 30000; 0 disables). */
  timeout?: number;
  /** Credential for outgoing calls (default AUTH_NONE). */
  auth?: OpaqueAuth;
  /**
   * Largest datagram sent or accepted (default 8800, libtirpc's UDPMSGSIZE; at most 65507). A larger call
   * or reply fails the call with ERR_RPC_DATAGRAM_TOO_LARGE.
   */
  maxDatagramSize?: number;
  /** Milliseconds before the first retransmission (default 1000); it doubles each time. */
  retransmitTimeout?: number;
  /** Cap on the doubling interval (default 8000). */
  maxRetransmitTimeout?: number;
  /** Calls awaiting a reply at once; more wait in a queue (default 1024). */
  maxPendingCalls?: number;
  /** Calls that may wait for a slot; past this ERR_RPC_QUEUE_FULL (default 16384). */
  maxQueuedCalls?: number;
}

export interface UdpClientStats extends ConnectionStats {
  /** Calls sent again because no reply came in time. */
  retransmits: number;
  /** Datagrams from any address or port but the server's. */
  foreignDatagrams: number;
  /** Datagrams from the server that are no RPC reply (too short, garbage, or a CALL). */
  malformedDatagrams: number;
  /** Datagrams larger than maxDatagramSize (one from the server fails the call it answers). */
  oversizedDatagrams: number;
}

const UDP_CLIENT_OPTIONS = optionNames<UdpClientOptions>()(
  'host', 'port', 'localAddress', 'timeout', 'auth', 'maxDatagramSize', 'retransmitTimeout', 'maxRetransmitTimeout', 'maxPendingCalls', 'maxQueuedCalls',
);

export class UdpClient {
  readonly stats: UdpClientStats = {
    callsSent: 0,
    repliesReceived: 0,
    callsReceived: 0,
    repliesSent: 0,
    unmatchedReplies: 0,
    retransmits: 0,
    foreignDatagrams: 0,
    malformedDatagrams: 0,
    oversizedDatagrams: 0,
  };
  private readonly host: string;
  private readonly port: number;
  private readonly localAddress: string | undefined;
  private readonly maxDatagramSize: number;
  private readonly calls: CallTable;
  private channel: DatagramChannel | null = null;
  private connecting: Promise<void> | null = null;
  /** The server's resolved address: replies must come from it. */
  private serverAddress = '';
  private closing = false;
  private closed = false;
  private closeResolvers: (() => void)[] = [];
  private refed = true;

  constructor(options: UdpClientOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
    rejectUnknownOptions(options, UDP_CLIENT_OPTIONS);
    if (options.host !== undefined && (typeof options.host !== 'string' || options.host.length === 0)) {
      throw new InvalidOptionError('host', 'a non-empty string', options.host);
    }
    this.host = options.host ?? '127.0.0.1';
    this.port = validateInteger(options.port, 'port', 1, 65535);
    if (options.localAddress !== undefined && net.isIP(options.localAddress) === 0) {
      throw new InvalidOptionError('localAddress', 'an IP address', options.localAddress);
    }
    this.localAddress = options.localAddress;
    this.maxDatagramSize = validateInteger(options.maxDatagramSize ?? DEFAULT_MAX_DATAGRAM_SIZE, 'maxDatagramSize', 28, MAX_DATAGRAM_SIZE);
    const initial = validateInteger(options.retransmitTimeout ?? DEFAULT_RETRANSMIT_TIMEOUT_MS, 'retransmitTimeout', 1, 0x7fffffff);
    const max = validateInteger(
      options.maxRetransmitTimeout ?? Math.max(DEFAULT_MAX_RETRANSMIT_TIMEOUT_MS, initial),
      'maxRetransmitTimeout',
      initial,
      0x7fffffff,
    );
    const writer: CallWriter = {
      writable: true, // a datagram socket queues sends itself; only maxPendingCalls holds calls back
      writeRecord: (parts) => this.send(parts),
      resendRecord: (parts) => {
        this.stats.retransmits++;
        this.send(parts);
      },
    };
    this.calls = new CallTable(
      writer,
      this.stats,
      resolveCallOptions({
        timeout: options.timeout,
        auth: options.auth,
        maxPendingCalls: options.maxPendingCalls,
        maxQueuedCalls: options.maxQueuedCalls,
        retransmit: { initial, max },
      }),
    );
    this.calls.onSettled = () => this.settled();
    this.calls.owner = this;
  }

  /** Where this client sends, as `host:port`. */
  get target(): string {
    return `${this.host}:${this.port}`;
  }

  /** Calls awaiting a reply. */
  get pendingCalls(): number {
    return this.calls.size;
  }

  /** Resolves the server's name and binds a local port (calls do this on demand). */
  connect(): Promise<void> {
    if (this.closed || this.closing) return Promise.reject(new ConnectionClosedError('the client is closed'));
    this.connecting ??= this.open();
    return this.connecting;
  }

  call(program: number, version: number, procedure: number, args?: Buffer | readonly Buffer[], options?: CallOptions): Promise<Buffer> {
    if (this.channel !== null) return this.calls.send(program, version, procedure, args ?? EMPTY, options, false) as Promise<Buffer>;
    return this.connect().then(() => this.calls.send(program, version, procedure, args ?? EMPTY, options, false) as Promise<Buffer>);
  }

  /** Resolves with the whole decoded reply whatever its status (e.g. to see how a probe was answered). */
  async callForReply(program: number, version: number, procedure: number, args?: Buffer | readonly Buffer[], options?: CallOptions): Promise<RpcReply> {
    if (this.channel === null) await this.connect();
    return this.calls.send(program, version, procedure, args ?? EMPTY, options, true) as Promise<RpcReply>;
  }

  request<A, R>(ref: ProcedureRef<A, R>, args: A, options?: CallOptions): Promise<R> {
    return typedRequest(this, ref, args, options);
  }

  /** Graceful close: new calls are refused, calls in flight finish (or time out), then the socket closes. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.closeResolvers.push(resolve);
      this.closing = true;
      this.calls.refuseNew();
      this.settled();
    });
  }

  /** Closes at once: pending calls fail with ERR_RPC_CONNECTION_CLOSED (`cause` = `error`). */
  destroy(error?: Error): void {
    this.closing = true;
    this.shutDown(error);
  }

  /** Lets the process exit while this client's socket is open (dgram's unref()); calls in flight do not hold it either. */
  unref(): this {
    this.refed = false;
    this.channel?.setRef(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.refed = true;
    this.channel?.setRef(true);
    return this;
  }

  /** `await using client = new UdpClient(...)` closes it gracefully at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async open(): Promise<void> {
    let address = this.host;
    if (net.isIP(address) === 0) {
      try {
        address = (await lookup(this.host)).address;
      } catch (error) {
        throw new ConnectError(this.host, this.port, error);
      }
    }
    if (this.closing) throw new ConnectionClosedError('the client is closed');
    this.serverAddress = address;
    const socket = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, this.localAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((error: unknown) => {
      socket.close();
      throw new ConnectError(this.host, this.port, error);
    });
    if (this.closed) {
      socket.close();
      throw new ConnectionClosedError('the client is closed');
    }
    this.channel = new DatagramChannel(
      socket,
      {
        onDatagram: (datagram, from, port) => this.receive(datagram, from, port),
        onOversized: (datagram, from, port) => this.receiveOversized(datagram, from, port),
        onClose: (error) => this.shutDown(error),
      },
      this.maxDatagramSize,
    );
    if (!this.refed) this.channel.setRef(false);
  }

  private send(parts: Buffer[]): boolean {
    (this.channel as DatagramChannel).send(parts, this.port, this.serverAddress);
    return true;
  }

  private receive(datagram: Buffer, address: string, port: number): void {
    // The port too: another program on the server's host must not answer for it.
    if (port !== this.port || address !== this.serverAddress) {
      this.stats.foreignDatagrams++;
      return;
    }
    let message;
    try {
      message = decodeMessage(datagram);
    } catch {
      this.stats.malformedDatagrams++;
      return;
    }
    if (message.type !== MsgType.REPLY) {
      this.stats.malformedDatagrams++;
      return;
    }
    // A duplicate (the server answered a retransmission too) finds no call: counted as unmatched.
    this.calls.receiveReply(message);
  }

  /**
   * A reply larger than maxDatagramSize from the server fails its call at once (libtirpc's fixed buffer
   * truncates it and fails the call too); waiting would only get the same reply again to each resend.
   */
  private receiveOversized(datagram: Buffer, address: string, port: number): void {
    this.stats.oversizedDatagrams++;
    if (port !== this.port || address !== this.serverAddress || datagram.length < 8 || datagram.readUInt32BE(4) !== MsgType.REPLY) return;
    this.calls.failXid(datagram.readUInt32BE(0), new DatagramTooLargeError(datagram.length, this.maxDatagramSize));
  }

  private settled(): void {
    if (this.closing && this.calls.size === 0) this.shutDown(undefined);
  }

  private shutDown(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.calls.failAll(error);
    const channel = this.channel;
    const done = channel === null ? Promise.resolve() : channel.close();
    const resolvers = this.closeResolvers;
    this.closeResolvers = [];
    void done.then(() => {
      for (const resolve of resolvers) resolve();
    });
  }
}

const EMPTY = Buffer.alloc(0);
