import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { channels, debug } from '../diagnostics.js';
import { RecordChannel, type RecordSink } from '../transport/channel.js';
import { CallTable, type CallWriter, typedRequest } from './call-table.js';
import { type ConnectionOptions, type ResolvedConnectionOptions, kResolvedOptions, resolveConnectionOptions } from './connection-options.js';
import { AcceptStat, AuthStat, MsgType, RPC_VERSION, ReplyStat } from './constants.js';
import type { DispatchHost } from './dispatcher.js';
import { NotSecureError } from './errors.js';
import { CallAuthTooLongError, type RpcReply, decodeMessage } from './message.js';
import type { CallOptions, ConnectionSecurity, ConnectionStats, KeyRotatingStream, KeyUpdateOptions, RpcConnectionEvents, RpcPeer, StreamUpgrade } from './peer.js';
import type { CallContext, CheckedProgramDefinition, ProcedureRef, ProgramRegistry } from './program.js';

/**
 * One ONC-RPC connection: a thin facade wiring the record channel (the byte stream's one owner), the
 * call table (outgoing calls) and the dispatcher (incoming calls). It is symmetric: REPLYs settle its
 * own calls by XID, CALLs go to the programs registered for it, so either end may call the other. It
 * never touches the stream: the channel does, and an upgrade (STARTTLS) swaps it under this object.
 */

export type { AuthenticateHook, ConnectionOptions } from './connection-options.js';
export type { CallInterceptor, CallOptions, ConnectionSecurity, ConnectionStats, KeyUpdateOptions, RpcConnectionEvents, RpcPeer, StreamUpgrade } from './peer.js';

const EMPTY = Buffer.alloc(0);

function describeStream(stream: Duplex): string {
  const socket = stream as Partial<net.Socket>;
  return socket.remoteAddress === undefined ? '(not a TCP socket)' : `${socket.localAddress}:${socket.localPort} <-> ${socket.remoteAddress}:${socket.remotePort}`;
}

/**
 * @internal What holds a connection (an RpcServer): hears its close and its handler errors before its
 * listeners do, with no listener (and no closure) per connection.
 */
const enum ConnectionState {
  WriteBlocked = 1,
  CallsHeld = 2,
  Closing = 4,
  Opened = 8,
}

export interface ConnectionObserver {
  connectionClosed(connection: RpcConnection, error: Error | undefined): void;
  handlerError(error: unknown, context: CallContext, connection: RpcConnection): void;
}

export class RpcConnection extends EventEmitter<RpcConnectionEvents> implements RpcPeer {
  /** `retransmits`: calls sent again with the same XID (only with the `retransmit` option). */
  readonly stats: ConnectionStats & { retransmits: number } = { callsSent: 0, repliesReceived: 0, callsReceived: 0, repliesSent: 0, unmatchedReplies: 0, retransmits: 0 };
  /** @internal Set by whoever holds this connection (a server), before the stream is read. */
  observer: ConnectionObserver | null = null;
  private readonly channel: RecordChannel;
  private readonly ports: InstanceType<typeof RpcConnection.Ports>;
  /** Made at the first outgoing call: most of a server's connections never call their peer. */
  private callTable: CallTable | null = null;
  /** Resolved once per server, and shared by its connections: one reference, not a field per option. */
  private readonly options: ResolvedConnectionOptions;
  private securityInfo: ConnectionSecurity | null = null;
  /** Bits of ConnectionState: booleans packed in one small integer (8 bytes a field per connection). */
  private state = 0;
  private closeResolvers: (() => void)[] | null = null;
  /** The peer's address and port when the stream is a TCP socket (kept across a TLS upgrade). */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;

  /**
   * `options` may be resolved already (`resolveConnectionOptions`): a server resolves its options once,
   * and its connections share them.
   */
  constructor(stream: Duplex | null, options: ConnectionOptions | ResolvedConnectionOptions = {}) {
    super();
    // EventEmitter makes its listener table (a dictionary of about 250 bytes) here; without one it makes
    // it at the first listener (node:events handles `_events === undefined` throughout), and most of a
    // server's connections never get a listener.
    (this as unknown as { _events: object | undefined })._events = undefined;
    this.remoteAddress = (stream as Partial<net.Socket> | null)?.remoteAddress;
    this.remotePort = (stream as Partial<net.Socket> | null)?.remotePort;
    const o = isResolved(options) ? options : resolveConnectionOptions(options);
    this.options = o;
    // The parts reach this connection through one adapter object with prototype methods: a closure per
    // callback per connection cost about 2 KiB of heap for every idle connection.
    const ports = new RpcConnection.Ports(this);
    this.ports = ports;
    this.channel = new RecordChannel(stream, ports, o.channel);
    if (stream !== null) this.state = ConnectionState.Opened;
    if (stream !== null) {
      if (channels.connectionOpen.hasSubscribers) channels.connectionOpen.publish({ connection: this });
      // Only when logging: reading the local address makes the socket keep it.
      if (debug.enabled) debug('connection open %s', describeStream(stream));
    }
  }

  /** Our writes are blocked (the channel said so). */
  private get writeBlocked(): boolean {
    return (this.state & ConnectionState.WriteBlocked) !== 0;
  }
  private set writeBlocked(on: boolean) {
    this.state = on ? this.state | ConnectionState.WriteBlocked : this.state & ~ConnectionState.WriteBlocked;
  }

  /** A CALL arrived while our writes were blocked: read no more until they drain (replies still flow). */
  private get callsHeld(): boolean {
    return (this.state & ConnectionState.CallsHeld) !== 0;
  }
  private set callsHeld(on: boolean) {
    this.state = on ? this.state | ConnectionState.CallsHeld : this.state & ~ConnectionState.CallsHeld;
  }

  private get closing(): boolean {
    return (this.state & ConnectionState.Closing) !== 0;
  }

  /** Made over a stream (not just to validate options): its close is published. */
  private get opened(): boolean {
    return (this.state & ConnectionState.Opened) !== 0;
  }

  /** The outgoing calls' table, made at first use. */
  private get calls(): CallTable {
    return this.callTable ?? this.makeCallTable();
  }

  private makeCallTable(): CallTable {
    const table = new CallTable(this.ports, this.stats, this.options.calls);
    table.owner = this;
    table.onSettled = () => this.settled();
    // Why the connection closed (undefined: cleanly), for a call table made after the close.
    if (this.channel.closed) table.failAll(this.channel.closeReason);
    else if (this.closing) table.refuseNew();
    this.callTable = table;
    return table;
  }

  /** What the call table (CallWriter), the channel (RecordSink) and the dispatcher (DispatchHost) call. */
  private static readonly Ports = class ConnectionPorts implements CallWriter, RecordSink, DispatchHost {
    /** Incoming calls whose handlers have not finished (counted by the shared dispatcher). */
    incoming = 0;

    constructor(readonly peer: RpcConnection) {}

    get writable(): boolean {
      return this.peer.channel.writable;
    }

    get reservedAt(): number {
      return this.peer.channel.reservedAt;
    }

    writeRecord(parts: Buffer[]): boolean {
      return this.peer.writeRecord(parts);
    }

    reserveRecord(bodyLength: number): Buffer | null {
      return this.peer.reserveRecord(bodyLength);
    }

    /** A copy that cannot go out now (blocked, or mid-upgrade) is skipped: the next round resends it. */
    resendRecord(parts: Buffer[]): void {
      if (!this.peer.channel.writable) return;
      this.peer.stats.retransmits++;
      this.peer.writeRecord(parts);
    }

    onRecord(buffer: Buffer, start: number, end: number): void {
      this.peer.receiveRecord(buffer, start, end);
    }

    onWritable(): void {
      this.peer.writableAgain();
    }

    onClose(error: Error | undefined): void {
      this.peer.closed_(error);
    }

    busy(): boolean {
      return this.peer.busy;
    }

    handlerError(error: unknown, context: CallContext): void {
      this.peer.reportHandlerError(error, context);
    }

    onIdle(): void {
      this.peer.emit('idle');
      void this.peer.close();
    }

    sendReply(parts: Buffer[]): void {
      this.peer.sendReply(parts);
    }

    reserveReply(bodyLength: number): Buffer | null {
      return this.peer.reserveReply(bodyLength);
    }

    incomingChanged(): void {
      this.peer.updateReading();
      if (this.peer.closing) this.peer.settled();
    }
  };

  /** The programs this end serves to its peer (a server's, shared by its connections). */
  get programs(): ProgramRegistry {
    return this.options.programs;
  }

  /** Calls awaiting a reply (written or queued). */
  get pendingCalls(): number {
    return this.callTable === null ? 0 : this.callTable.size;
  }

  /** Incoming calls whose handlers have not finished. */
  get incomingCalls(): number {
    return this.ports.incoming;
  }

  get closed(): boolean {
    return this.channel.closed;
  }

  /** The TLS session (or other protection) under this connection; null while it is plaintext. */
  get security(): ConnectionSecurity | null {
    return this.securityInfo;
  }

  /** The byte stream underneath, for diagnostics (null while an upgrade holds it, and once closed). */
  get transport(): Duplex | null {
    return this.channel.transport;
  }

  /**
   * performance.now() of the last complete record received (or of the connection's start), rounded up to
   * the millisecond, and whether calls are in flight either way: a server at maxConnections evicts the
   * connection idle the longest.
   */
  get lastActivity(): number {
    return this.channel.lastActivity;
  }

  get busy(): boolean {
    return this.ports.incoming > 0 || this.pendingCalls > 0 || this.channel.upgrading;
  }

  /** True from the start of an upgrade until the new stream carries records. */
  get upgrading(): boolean {
    return this.channel.upgrading;
  }

  /** Registers a program this end serves to the peer (for callbacks on a client's connection). */
  addProgram<A, R extends { [K in keyof A]: unknown }>(definition: CheckedProgramDefinition<A, R>): this {
    this.programs.add(definition);
    return this;
  }

  // ---- outgoing calls --------------------------------------------------------------------------------

  /** Calls a remote procedure with encoded arguments; resolves with a view of the result bytes. */
  call(program: number, version: number, procedure: number, args: Buffer | readonly Buffer[] = EMPTY, options?: CallOptions): Promise<Buffer> {
    return this.calls.send(program, version, procedure, args, options, false) as Promise<Buffer>;
  }

  /** Resolves with the whole decoded reply whatever its status, for steps like the RFC 9289 probe. */
  callForReply(program: number, version: number, procedure: number, args: Buffer | readonly Buffer[] = EMPTY, options?: CallOptions): Promise<RpcReply> {
    return this.calls.send(program, version, procedure, args, options, true) as Promise<RpcReply>;
  }

  /** Calls a procedure through a typed reference: encodes `args`, decodes the result. */
  request<A, R>(ref: ProcedureRef<A, R>, args: A, options?: CallOptions): Promise<R> {
    return typedRequest(this, ref, args, options);
  }

  /** Answers a call with MSG_DENIED / AUTH_ERROR; for interceptors (a refused probe), counted as a reply. */
  replyAuthError(xid: number, authStat: number): void {
    this.options.dispatcher.replyAuthError(this.ports, xid, authStat);
  }

  // ---- upgrade -------------------------------------------------------------------------------------

  /**
   * The next record received is the last one read, and nothing more is written, before `upgrade()`:
   * a client calls this right after sending its probe (calls made meanwhile wait for the new stream).
   */
  prepareUpgrade(): void {
    this.channel.stopAfterNextRecord();
  }

  /**
   * Swaps the byte stream at this record boundary: `finalReply` (a reply record whose first 4 bytes are
   * the mark's place, e.g. STARTTLS) goes out in clear first, then `upgrader` gets the old stream and
   * returns the new one with its security; `signal` aborts if the connection is destroyed meanwhile.
   * Calls made meanwhile wait and go out on the new stream.
   */
  upgrade(upgrader: (stream: Duplex, signal: AbortSignal) => Promise<StreamUpgrade>, finalReply?: Buffer[]): Promise<void> {
    if (finalReply !== undefined) this.stats.repliesSent++;
    return this.channel.upgrade(finalReply ?? null, async (stream, signal) => {
      const next = await upgrader(stream, signal);
      // Set before the new stream is read, so no call read from it can see a plaintext connection.
      this.securityInfo = next.security;
      return next.stream;
    });
  }

  /**
   * Rotates the keys of the stream under this connection (a TLS 1.3 KeyUpdate: ours, and the peer's too
   * with `requestPeerUpdate`). Resolves once it is sent; calls in flight are not disturbed. Rejects with
   * ERR_RPC_NOT_SECURE on a plaintext connection, ERR_TLS_KEY_UPDATE where kernel TLS cannot rekey.
   */
  updateKeys(options: KeyUpdateOptions = {}): Promise<void> {
    const stream = this.channel.transport as (Duplex & Partial<KeyRotatingStream>) | null;
    if (this.securityInfo === null || stream === null || typeof stream.updateKeys !== 'function') {
      return Promise.reject(new NotSecureError('updateKeys()'));
    }
    return stream.updateKeys(options);
  }

  /**
   * Asks for this connection to be replaced (its keys reached their usage limit, say): it emits 'retire';
   * an RpcClient then sends new calls on a fresh connection and closes this one once its calls are
   * answered. With no 'retire' listener (a server's connection) it closes gracefully; the client
   * reconnects.
   */
  retire(): void {
    if (this.closing || this.closed) return;
    if (!this.emit('retire')) void this.close();
  }

  // ---- what the channel, the call table and the dispatcher call back ---------------------------------

  private writeRecord(parts: Buffer[]): boolean {
    if (this.channel.write(parts)) return true;
    this.writeBlocked = true;
    return false;
  }

  private reserveReply(bodyLength: number): Buffer | null {
    if (this.channel.closed) return null;
    const out = this.reserveRecord(bodyLength);
    if (out !== null) this.stats.repliesSent++;
    return out;
  }

  private reserveRecord(bodyLength: number): Buffer | null {
    const out = this.channel.reserve(bodyLength);
    if (out !== null && !this.channel.writable) this.writeBlocked = true;
    return out;
  }

  private sendReply(parts: Buffer[]): void {
    if (this.channel.closed) return;
    this.stats.repliesSent++;
    this.writeRecord(parts);
  }

  /** One record: bytes `start` to `end` of `buffer` (no view is made of the whole record). */
  private receiveRecord(buffer: Buffer, start: number, end: number): void {
    // The common reply (accepted, SUCCESS, empty verifier) goes straight to its call: no reader, no
    // message object; anything else, or a call that wants the whole reply, takes the full decode.
    if (
      end - start >= SUCCESS_RESULTS_AT &&
      word(buffer, start + 4) === MsgType.REPLY &&
      word(buffer, start + 8) === ReplyStat.MSG_ACCEPTED &&
      word(buffer, start + 16) === 0 &&
      word(buffer, start + 20) === AcceptStat.SUCCESS &&
      this.callTable !== null &&
      this.callTable.receiveResults(word(buffer, start), buffer, start + SUCCESS_RESULTS_AT, end)
    ) {
      return;
    }
    // The common call (RPC version 2, empty AUTH_NONE credential and verifier) likewise, unless an
    // interceptor must see it as a message.
    if (
      end - start >= PLAIN_CALL_ARGS_AT &&
      word(buffer, start + 4) === MsgType.CALL &&
      word(buffer, start + 8) === RPC_VERSION &&
      zeroWords(buffer, start + 24, 4) &&
      !this.options.dispatcher.intercepts
    ) {
      this.stats.callsReceived++;
      if (this.channel.closed) return;
      const args = end === start + PLAIN_CALL_ARGS_AT ? EMPTY : buffer.subarray(start + PLAIN_CALL_ARGS_AT, end);
      this.options.dispatcher.receivePlainCall(this.ports, word(buffer, start), word(buffer, start + 12), word(buffer, start + 16), word(buffer, start + 20), args);
      this.holdCallsIfBlocked();
      return;
    }
    let message;
    try {
      message = decodeMessage(buffer, start, end);
    } catch (error) {
      if (!(error instanceof CallAuthTooLongError)) throw error; // not RPC at all: the channel closes
      this.stats.callsReceived++;
      this.options.dispatcher.replyAuthError(this.ports, error.call.xid, AuthStat.AUTH_BADCRED);
      return;
    }
    if (message.type === MsgType.REPLY) {
      if (!this.calls.receiveReply(message)) this.emit('unmatchedReply', message.xid);
      return;
    }
    this.stats.callsReceived++;
    if (this.channel.closed) return;
    this.options.dispatcher.receiveCall(this.ports, message);
    this.holdCallsIfBlocked();
  }

  /** A CALL came while our writes were blocked: read no more until they drain. */
  private holdCallsIfBlocked(): void {
    if (this.writeBlocked && !this.callsHeld) {
      this.callsHeld = true;
      this.updateReading();
    }
  }

  private writableAgain(): void {
    this.writeBlocked = false;
    this.callsHeld = false;
    this.callTable?.flush();
    this.updateReading();
  }

  private reportHandlerError(error: unknown, context: CallContext): void {
    this.observer?.handlerError(error, context, this);
    this.emit('handlerError', error, context);
  }

  private closed_(error: Error | undefined): void {
    this.callTable?.failAll(error);
    const resolvers = this.closeResolvers;
    this.closeResolvers = null;
    if (resolvers !== null) for (const resolve of resolvers) resolve();
    // A stream-less connection is only ever made to validate options: it never opened.
    if (this.opened) {
      if (channels.connectionClose.hasSubscribers) channels.connectionClose.publish({ connection: this, error });
      debug('connection with %s closed%s', this.remoteAddress ?? 'a stream', error === undefined ? '' : `: ${error.message}`);
    }
    this.observer?.connectionClosed(this, error);
    this.emit('close', error);
  }

  /**
   * Reads while handlers have room, and while our writes flow or no CALL came since they blocked. Write
   * backpressure alone never stops reading: replies to our own calls must keep flowing, or two ends
   * writing large records at each other deadlock. A peer that sends calls without reading the replies is
   * stopped at its first call after the block, so replies buffered for it stay bounded.
   */
  private updateReading(): void {
    if (this.ports.incoming >= this.options.maxIncomingCalls || this.callsHeld) this.channel.pauseReading();
    else this.channel.resumeReading();
  }

  // ---- closing -------------------------------------------------------------------------------------

  /** Graceful close: new calls are refused, calls in flight both ways finish (or time out), then the stream ends. */
  close(): Promise<void> {
    if (this.channel.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      (this.closeResolvers ??= []).push(resolve);
      this.state |= ConnectionState.Closing;
      this.callTable?.refuseNew();
      this.settled();
    });
  }

  private settled(): void {
    if (this.closing && this.pendingCalls === 0 && this.ports.incoming === 0) this.channel.end();
  }

  /** `await using` closes the connection gracefully at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Closes at once: every pending call fails with ERR_RPC_CONNECTION_CLOSED (`cause` = `error`). */
  destroy(error?: Error): void {
    this.channel.destroy(error);
  }
}

/** Where the results start in an accepted SUCCESS reply with an empty verifier (xid, type, stat, verf, stat). */
const SUCCESS_RESULTS_AT = 24;
/** Where the arguments start in a call with empty credential and verifier (xid, type, rpcvers, prog, vers, proc, cred, verf). */
const PLAIN_CALL_ARGS_AT = 40;

function isResolved(options: ConnectionOptions | ResolvedConnectionOptions): options is ResolvedConnectionOptions {
  return (options as Partial<ResolvedConnectionOptions>)[kResolvedOptions] === true;
}

/** Whether `count` words from `at` are all zero (an empty AUTH_NONE credential and verifier are four). */
function zeroWords(b: Buffer, at: number, count: number): boolean {
  let bits = 0;
  for (let i = at; i < at + 4 * count; i++) bits |= b[i] as number;
  return bits === 0;
}

function word(b: Buffer, at: number): number {
  return ((b[at] as number) * 0x1000000 + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)));
}
