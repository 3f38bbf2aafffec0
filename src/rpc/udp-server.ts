import { performance } from 'node:perf_hooks';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { InvalidOptionError, optionNames, rejectUnknownOptions, validateInteger } from '../errors.js';
import { DEFAULT_MAX_DATAGRAM_SIZE, DatagramChannel, MAX_DATAGRAM_SIZE, datagramLength } from '../transport/datagram.js';
import { DatagramTooLargeError, UpgradeError } from '../transport/errors.js';
import { XdrWriter } from '../xdr/writer.js';
import { AUTH_NONE } from './auth.js';
import { tag } from './call-table.js';
import { AcceptStat, AuthStat, MsgType } from './constants.js';
import type { Dispatcher } from './dispatcher.js';
import { DuplicateEntry, DuplicateRequestCache, duplicateKey } from './duplicate-cache.js';
import { ConnectionClosedError, NotSecureError } from './errors.js';
import { CallAuthTooLongError, type RpcCall, decodeMessage, writeAcceptedHeader } from './message.js';
import type { CallContext, ConnectionStats, ProgramDefinition, RpcConnectionEvents, RpcPeer, StreamUpgrade } from './peer.js';

/**
 * The UDP side of an RpcServer: one datagram socket, the same programs and the same Dispatcher as its TCP
 * connections. A client address:port is a "source", the UDP counterpart of a connection: it has its own
 * dispatcher (so a reply knows where to go) and is what handlers see as `context.connection`. In front
 * of dispatch sit the bounds a connectionless server needs: the duplicate request cache, calls in flight
 * per client address and in all, an optional rate per address, and a cap on remembered sources.
 */

export interface UdpServerOptions {
  /** Largest datagram received or sent (default 8800, libtirpc's UDPMSGSIZE; at most 65507). */
  maxDatagramSize?: number;
  /** Answered calls remembered for retransmissions (default 1024; 0 turns the cache off). */
  duplicateCacheSize?: number;
  /** Milliseconds an answered call stays in the cache (default 120000, as Linux nfsd). */
  duplicateCacheTtl?: number;
  /** Calls handled at once over UDP, all clients together; more are dropped (default 256). */
  maxIncomingCalls?: number;
  /** Calls handled at once for one client address (any port); more are dropped (default 32). */
  maxIncomingCallsPerAddress?: number;
  /** Calls per second accepted from one client address, a token bucket of one second (default 0: no limit). */
  maxCallsPerSecondPerAddress?: number;
  /** Client address:port pairs remembered at once; the oldest idle one makes room (default 4096). */
  maxSources?: number;
}

export interface UdpServerStats {
  datagramsReceived: number;
  callsReceived: number;
  repliesSent: number;
  /** Datagrams that are no RPC call (too short, garbage, a REPLY) or larger than maxDatagramSize. */
  malformedDatagrams: number;
  oversizedDatagrams: number;
  /** Calls dropped because maxIncomingCalls were in flight. */
  droppedBusy: number;
  /** Calls dropped by maxIncomingCallsPerAddress or maxCallsPerSecondPerAddress. */
  droppedPerAddress: number;
  /** Replies larger than maxDatagramSize, answered SYSTEM_ERR instead. */
  repliesTooLarge: number;
  /** Retransmissions answered from the duplicate request cache / dropped while the first copy ran. */
  duplicateHits: number;
  duplicateDrops: number;
}

interface ResolvedUdpOptions {
  maxDatagramSize: number;
  duplicateCacheSize: number;
  duplicateCacheTtl: number;
  maxIncomingCalls: number;
  maxIncomingCallsPerAddress: number;
  maxCallsPerSecondPerAddress: number;
  maxSources: number;
}

const MAX_INT = 0x7fffffff;

const UDP_SERVER_OPTIONS = optionNames<UdpServerOptions>()(
  'maxDatagramSize', 'duplicateCacheSize', 'duplicateCacheTtl', 'maxIncomingCalls', 'maxIncomingCallsPerAddress',
  'maxCallsPerSecondPerAddress', 'maxSources',
);

export function resolveUdpOptions(options: UdpServerOptions | boolean | undefined): ResolvedUdpOptions {
  const o = options === undefined || typeof options === 'boolean' ? {} : options;
  if (typeof o !== 'object' || o === null) throw new InvalidOptionError('udp', 'a boolean or an object of UDP options', options);
  rejectUnknownOptions(o, UDP_SERVER_OPTIONS, 'udp.');
  return {
    maxDatagramSize: validateInteger(o.maxDatagramSize ?? DEFAULT_MAX_DATAGRAM_SIZE, 'udp.maxDatagramSize', 28, MAX_DATAGRAM_SIZE),
    duplicateCacheSize: validateInteger(o.duplicateCacheSize ?? 1024, 'udp.duplicateCacheSize', 0, MAX_INT),
    duplicateCacheTtl: validateInteger(o.duplicateCacheTtl ?? 120_000, 'udp.duplicateCacheTtl', 1, MAX_INT),
    maxIncomingCalls: validateInteger(o.maxIncomingCalls ?? 256, 'udp.maxIncomingCalls', 1, MAX_INT),
    maxIncomingCallsPerAddress: validateInteger(o.maxIncomingCallsPerAddress ?? 32, 'udp.maxIncomingCallsPerAddress', 1, MAX_INT),
    maxCallsPerSecondPerAddress: validateInteger(o.maxCallsPerSecondPerAddress ?? 0, 'udp.maxCallsPerSecondPerAddress', 0, MAX_INT),
    maxSources: validateInteger(o.maxSources ?? 4096, 'udp.maxSources', 1, MAX_INT),
  };
}

/** Per client address (any port): calls in flight, and the rate bucket when one is set. */
class AddressState {
  inFlight = 0;
  /** Sources (ports) of this address that are remembered. */
  sources = 0;
  tokens: number;
  refilledAt: number;
  constructor(tokens: number, now: number) {
    this.tokens = tokens;
    this.refilledAt = now;
  }
}

/** One client address:port: where its replies go, its dispatcher, and its calls still running. */
class UdpSource extends EventEmitter<RpcConnectionEvents> implements RpcPeer {
  readonly stats: ConnectionStats = { callsSent: 0, repliesReceived: 0, callsReceived: 0, repliesSent: 0, unmatchedReplies: 0 };
  readonly security = null;
  readonly transport: Duplex | null = null;
  readonly pendingCalls = 0;
  readonly upgrading = false;
  /** Calls whose handlers have not finished (counted by the endpoint's dispatcher). */
  incoming = 0;
  /** Duplicate-cache entries of calls still running, by XID (a reply carries its XID). */
  readonly running = new Map<number, DuplicateEntry>();
  private counted = 0;

  constructor(
    private readonly endpoint: UdpEndpoint,
    readonly address: string,
    readonly port: number,
    readonly addressState: AddressState,
    private readonly dispatcher: Dispatcher,
  ) {
    super();
  }

  get peer(): RpcPeer {
    return this;
  }

  get remoteAddress(): string {
    return this.address;
  }

  get remotePort(): number {
    return this.port;
  }

  get closed(): boolean {
    return this.endpoint.closed;
  }

  get incomingCalls(): number {
    return this.incoming;
  }

  sendReply(parts: Buffer[]): void {
    this.stats.repliesSent++;
    this.endpoint.sendReply(this, parts);
  }

  /** Reported to the endpoint (the server) first, then to this source's own listeners. */
  handlerError(error: unknown, context: CallContext): void {
    this.endpoint.reportHandlerError(error, context);
    this.emit('handlerError', error, context);
  }

  /** Keeps the per-address and overall counts of calls in flight in step with this dispatcher's. */
  incomingChanged(): void {
    const delta = this.incoming - this.counted;
    this.counted += delta;
    this.addressState.inFlight += delta;
    this.endpoint.inFlight += delta;
  }

  replyAuthError(xid: number, authStat: number): void {
    this.dispatcher.replyAuthError(this, xid, authStat);
  }

  receiveCall(call: RpcCall): void {
    this.dispatcher.receiveCall(this, call);
  }

  addProgram(_definition: ProgramDefinition): this {
    throw new InvalidOptionError('addProgram', 'called on the server (a UDP client is served the server programs)', 'a UDP source');
  }

  prepareUpgrade(): void {
    throw new UpgradeError('UDP carries no byte stream to upgrade (RPC-with-TLS over UDP needs DTLS)');
  }

  upgrade(_upgrader: (stream: Duplex, signal: AbortSignal) => Promise<StreamUpgrade>): Promise<void> {
    return Promise.reject(new UpgradeError('UDP carries no byte stream to upgrade (RPC-with-TLS over UDP needs DTLS)'));
  }

  call(): Promise<Buffer> {
    return Promise.reject(new ConnectionClosedError('a UDP client cannot be called back over the server socket'));
  }

  callForReply(): Promise<never> {
    return Promise.reject(new ConnectionClosedError('a UDP client cannot be called back over the server socket'));
  }

  request(): Promise<never> {
    return Promise.reject(new ConnectionClosedError('a UDP client cannot be called back over the server socket'));
  }

  updateKeys(): Promise<void> {
    return Promise.reject(new NotSecureError('updateKeys() over UDP'));
  }

  /** Nothing to replace: each datagram stands alone. */
  retire(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }

  destroy(): void {}
}

/** The client address and port behind a handler's `context.connection` when the call came over UDP; else null. */
export function udpPeerOf(peer: RpcPeer): { address: string; port: number } | null {
  return peer instanceof UdpSource ? { address: peer.address, port: peer.port } : null;
}

export class UdpEndpoint extends EventEmitter {
  readonly stats: UdpServerStats = {
    datagramsReceived: 0,
    callsReceived: 0,
    repliesSent: 0,
    malformedDatagrams: 0,
    oversizedDatagrams: 0,
    droppedBusy: 0,
    droppedPerAddress: 0,
    repliesTooLarge: 0,
    duplicateHits: 0,
    duplicateDrops: 0,
  };
  /** Calls being handled, all sources together. */
  inFlight = 0;
  private readonly options: ResolvedUdpOptions;
  private readonly dispatcher: Dispatcher;
  private readonly channel: DatagramChannel;
  private readonly cache: DuplicateRequestCache | null;
  /** `address|port` -> source; insertion order is creation order, the oldest idle one goes first. */
  private readonly sources = new Map<string, UdpSource>();
  private readonly addresses = new Map<string, AddressState>();
  private closedFlag = false;

  constructor(socket: dgram.Socket, dispatcher: Dispatcher, options: ResolvedUdpOptions) {
    super();
    this.options = options;
    this.dispatcher = dispatcher;
    this.cache = options.duplicateCacheSize > 0 ? new DuplicateRequestCache(options.duplicateCacheSize, options.duplicateCacheTtl) : null;
    this.channel = new DatagramChannel(
      socket,
      {
        onDatagram: (datagram, address, port) => this.receive(datagram, address, port),
        onOversized: () => {
          this.stats.oversizedDatagrams++;
        },
        onClose: (error) => {
          this.closedFlag = true;
          if (error) this.emit('error', error);
        },
      },
      options.maxDatagramSize,
    );
  }

  setRef(ref: boolean): void {
    this.channel.setRef(ref);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Entries in the duplicate request cache, answered or running. */
  get duplicateCacheEntries(): number {
    return this.cache?.size ?? 0;
  }

  address(): { address: string; family: string; port: number } {
    return this.channel.address();
  }

  close(): Promise<void> {
    this.closedFlag = true;
    this.cache?.clear();
    return this.channel.close();
  }

  sendReply(source: UdpSource, parts: Buffer[]): void {
    if (this.closedFlag) return;
    const first = parts[0] as Buffer;
    const xid = first.readUInt32BE(4);
    const entry = source.running.get(xid);
    if (entry !== undefined) source.running.delete(xid);
    let reply = parts;
    const length = datagramLength(parts);
    if (length > this.options.maxDatagramSize) {
      this.stats.repliesTooLarge++;
      this.emit('replyTooLarge', tag(new DatagramTooLargeError(length, this.options.maxDatagramSize), { xid, program: 0, version: 0, procedure: 0 }), source);
      const w = new XdrWriter(32);
      w.reserve4();
      writeAcceptedHeader(w, xid, AUTH_NONE, AcceptStat.SYSTEM_ERR);
      reply = w.finish();
    }
    this.stats.repliesSent++;
    if (entry === undefined || this.cache === null) {
      this.channel.send(reply, source.port, source.address);
      return;
    }
    const datagram = reply.length === 1 ? (reply[0] as Buffer).subarray(4) : Buffer.concat(reply).subarray(4);
    this.cache.complete(entry, datagram, performance.now());
    this.channel.sendDatagram(datagram, source.port, source.address);
  }

  private receive(datagram: Buffer, address: string, port: number): void {
    this.stats.datagramsReceived++;
    let message;
    try {
      message = decodeMessage(datagram);
    } catch (error) {
      if (error instanceof CallAuthTooLongError) {
        this.stats.callsReceived++;
        this.sourceFor(address, port)?.replyAuthError(error.call.xid, AuthStat.AUTH_BADCRED);
      } else {
        this.stats.malformedDatagrams++;
      }
      return;
    }
    if (message.type !== MsgType.CALL) {
      this.stats.malformedDatagrams++;
      return;
    }
    this.stats.callsReceived++;
    const now = performance.now();
    if (this.inFlight >= this.options.maxIncomingCalls) {
      // Dropped, not answered: the client retransmits, and an answer would cost as much as the call.
      this.stats.droppedBusy++;
      return;
    }
    const source = this.sourceFor(address, port);
    if (source === null) {
      this.stats.droppedBusy++;
      return;
    }
    if (!this.admit(source.addressState, now)) {
      this.stats.droppedPerAddress++;
      return;
    }
    // NULL does nothing, so running it twice is harmless: it skips the cache (and the cost of an entry).
    if (this.cache !== null && message.procedure !== 0 && !source.running.has(message.xid)) {
      const key = duplicateKey(address, port, message.xid, message.program, message.version, message.procedure, message.args);
      const found = this.cache.begin(key, now);
      if (found === null) {
        this.stats.duplicateDrops++;
        return;
      }
      if (Buffer.isBuffer(found)) {
        this.stats.duplicateHits++;
        this.stats.repliesSent++;
        this.channel.sendDatagram(found, port, address);
        return;
      }
      source.running.set(message.xid, found);
    } else if (source.running.has(message.xid)) {
      // Another call under an XID still running for this client: its reply could not be told apart.
      this.stats.duplicateDrops++;
      return;
    }
    source.stats.callsReceived++;
    source.receiveCall(message);
  }

  /** Calls in flight and the rate bucket of the client's address. */
  private admit(state: AddressState, now: number): boolean {
    if (state.inFlight >= this.options.maxIncomingCallsPerAddress) return false;
    const rate = this.options.maxCallsPerSecondPerAddress;
    if (rate === 0) return true;
    state.tokens = Math.min(rate, state.tokens + ((now - state.refilledAt) * rate) / 1000);
    state.refilledAt = now;
    if (state.tokens < 1) return false;
    state.tokens--;
    return true;
  }

  /** The source for address:port, made on first sight; null when every remembered source is busy. */
  private sourceFor(address: string, port: number): UdpSource | null {
    const key = `${address}|${port}`;
    const found = this.sources.get(key);
    if (found !== undefined) return found;
    if (this.sources.size >= this.options.maxSources && !this.forgetIdleSource()) return null;
    let state = this.addresses.get(address);
    if (state === undefined) {
      state = new AddressState(this.options.maxCallsPerSecondPerAddress, performance.now());
      this.addresses.set(address, state);
    }
    state.sources++;
    const source = new UdpSource(this, address, port, state, this.dispatcher);
    this.sources.set(key, source);
    return source;
  }

  /** Forgets the oldest source with nothing running (and its address once no source uses it). */
  private forgetIdleSource(): boolean {
    for (const [key, source] of this.sources) {
      if (source.incoming > 0 || source.running.size > 0) continue;
      this.sources.delete(key);
      if (--source.addressState.sources === 0) this.addresses.delete(source.address);
      return true;
    }
    return false;
  }

  /** A source's handler failed: every source reports here, with no listener on each. */
  reportHandlerError(error: unknown, context: CallContext): void {
    this.emit('handlerError', error, context);
  }
}
