import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { InvalidOptionError, validateInteger } from '../errors.js';
import {
  DEFAULT_MAX_FRAGMENTS,
  DEFAULT_MAX_RECORD_SIZE,
  MAX_FRAGMENT_LENGTH,
  RecordDecoder,
  frameRecord,
} from '../transport/record-marking.js';
import { RecordTimeoutError } from '../transport/errors.js';
import { XdrError } from '../xdr/errors.js';
import { XdrReader } from '../xdr/reader.js';
import { GATHER_THRESHOLD, XdrWriter } from '../xdr/writer.js';
import { AUTH_NONE, type AuthSysParams, type OpaqueAuth, decodeAuthSys, validateOpaqueAuth } from './auth.js';
import { AcceptStat, AuthFlavor, AuthStat, MsgType, RPC_VERSION, ReplyStat } from './constants.js';
import {
  ConnectionClosedError,
  QueueFullError,
  ResultDecodeError,
  RpcAbortError,
  RpcAcceptedError,
  RpcAuthError,
  RpcError,
  RpcMismatchError,
  RpcTimeoutError,
  SystemErrError,
  acceptedError,
  authError,
} from './errors.js';
import {
  CallAuthTooLongError,
  type RpcCall,
  type RpcReply,
  decodeMessage,
  writeAcceptedHeader,
  writeAuthError,
  writeAuth,
  writeProgMismatch,
  writeRpcMismatch,
} from './message.js';
import {
  type CallContext,
  type ProcedureDefinition,
  type ProcedureRef,
  type ProgramDefinition,
  ProgramRegistry,
  type TypedProcedure,
  isLookupMiss,
} from './program.js';

/**
 * One ONC-RPC connection over any byte stream (a TCP socket, or the TLS stream that replaces it after
 * STARTTLS). It is symmetric: REPLYs it receives settle its own pending calls by XID, CALLs it receives
 * go to the programs registered for it, so either end may call the other. It owns XIDs, timeouts,
 * bounded queues and backpressure; it knows nothing of sockets, addresses or TLS.
 */

/**
 * Decides whether a call's credential is acceptable: return nothing (or AUTH_OK) to accept, or an auth_stat
 * to deny with MSG_DENIED/AUTH_ERROR. Throwing an RpcAuthError denies with its stat.
 */
export type AuthenticateHook = (context: CallContext) => number | void | Promise<number | void>;

export interface ConnectionOptions {
  /** Largest record accepted, in bytes (default 1 MiB + 64 KiB: NFS's 1 MiB I/O plus headers). */
  maxRecordSize?: number;
  /** Most fragments one incoming record may have (default 1024). */
  maxFragments?: number;
  /** Outgoing records are split into fragments of at most this many bytes (default: one fragment). */
  maxFragmentSize?: number;
  /** Outgoing calls awaiting a reply at once; more wait in a queue (default 1024). */
  maxPendingCalls?: number;
  /** Outgoing calls that may wait for a slot; past this a call fails with ERR_RPC_QUEUE_FULL (default 16384). */
  maxQueuedCalls?: number;
  /** Incoming calls handled at once; past this the connection stops reading (default 128). */
  maxIncomingCalls?: number;
  /**
   * Milliseconds a peer may take to finish a record it started (0: no limit, the default for a bare
   * connection; RpcServer uses 30000). Time while this end is not reading does not count. Past it the
   * connection is destroyed with ERR_RPC_RECORD_TIMEOUT: a slowloris sender cannot hold it.
   */
  recordTimeout?: number;
  /**
   * Milliseconds without a byte received and with no call in flight either way after which the
   * connection is closed gracefully (0: never, the default).
   */
  idleTimeout?: number;
  /** Default per-call timeout in ms (default 30000; 0 disables). */
  timeout?: number;
  /** Credential for outgoing calls (default AUTH_NONE). */
  auth?: OpaqueAuth;
  /** Programs served to the peer; a server passes its own, shared by all its connections. */
  programs?: ProgramRegistry;
  /** Credential check for incoming calls (default: AUTH_NONE and AUTH_SYS accepted). */
  authenticate?: AuthenticateHook;
  /**
   * Sees every incoming CALL before authentication and dispatch; returning true means it handled the
   * call (answered, refused or took the stream over). The TLS layer answers AUTH_TLS probes here.
   */
  interceptCall?: CallInterceptor;
}

/** See ConnectionOptions.interceptCall. */
export type CallInterceptor = (call: RpcCall, connection: RpcConnection) => boolean;

export interface CallOptions {
  /** Milliseconds until the call fails with ERR_RPC_TIMEOUT (default: the connection's). 0 disables. */
  timeout?: number;
  signal?: AbortSignal;
  /** Credential for this call only. */
  auth?: OpaqueAuth;
}

export interface ConnectionStats {
  callsSent: number;
  repliesReceived: number;
  callsReceived: number;
  repliesSent: number;
  /** Replies whose XID matched no pending call (late replies after a timeout, or a confused peer). */
  unmatchedReplies: number;
}

const EMPTY = Buffer.alloc(0);
const DEFAULT_TIMEOUT = 30_000;

/** An outgoing call from the moment it is made until it settles. */
class PendingCall {
  xid = 0;
  /** Own timer, only for a timeout other than the connection's default (see CallDeadlines). */
  timer: NodeJS.Timeout | null = null;
  /** performance.now() when a default-timeout call expires; 0 when not in the deadline list. */
  deadline = 0;
  prevDeadline: PendingCall | null = null;
  nextDeadline: PendingCall | null = null;
  record: Buffer[] | null = null;
  settled = false;
  /** Resolve with the whole reply, whatever its status (the STARTTLS probe needs the verifier). */
  wantsReply = false;

  constructor(
    readonly connection: RpcConnection,
    readonly program: number,
    readonly version: number,
    readonly procedure: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (results: Buffer | RpcReply) => void,
    readonly reject: (error: Error) => void,
  ) {}

  /** AbortSignal listener (an object listener, so no closure per call). */
  handleEvent(): void {
    this.connection.failCall(this, new RpcAbortError(this.signal?.reason));
  }
}

function onCallTimeout(call: PendingCall, timeout: number): void {
  call.timer = null;
  call.connection.failCall(call, new RpcTimeoutError(timeout));
}

/** The cred and verifier (AUTH_NONE) of a call, encoded. */
function encodeCredentials(auth: OpaqueAuth): Buffer {
  const w = new XdrWriter(64);
  writeAuth(w, auth);
  writeAuth(w, AUTH_NONE);
  return Buffer.concat(w.finish());
}

function put32(b: Buffer, at: number, value: number): void {
  b[at] = value >>> 24;
  b[at + 1] = value >>> 16;
  b[at + 2] = value >>> 8;
  b[at + 3] = value;
}

/**
 * A call record as a gather list, its first 4 bytes left for the record mark: one buffer holds mark,
 * header, the pre-encoded credentials and small arguments; large arguments are referenced, not copied.
 */
function callRecordParts(call: PendingCall, credentials: Buffer, args: Buffer | readonly Buffer[]): Buffer[] {
  // frameRecord writes the mark into parts[0]'s first 4 bytes.
  const single = Buffer.isBuffer(args);
  const inline = single && args.length < GATHER_THRESHOLD ? args.length : 0;
  const head = Buffer.allocUnsafe(28 + credentials.length + inline);
  put32(head, 4, call.xid);
  put32(head, 8, MsgType.CALL);
  put32(head, 12, RPC_VERSION);
  put32(head, 16, call.program);
  put32(head, 20, call.version);
  put32(head, 24, call.procedure);
  credentials.copy(head, 28);
  if (single) {
    if (inline > 0) (args as Buffer).copy(head, 28 + credentials.length);
    return inline > 0 || args.length === 0 ? [head] : [head, args as Buffer];
  }
  const parts: Buffer[] = [head];
  for (let i = 0; i < args.length; i++) if ((args[i] as Buffer).length > 0) parts.push(args[i] as Buffer);
  return parts;
}

/**
 * Deadlines of the calls that use the connection's default timeout, without a timer per call: they
 * expire in the order they were made, so they sit in a list linked through the calls themselves
 * (O(1) to add and to remove when they settle, memory only for live calls) and one timer waits for
 * the oldest. Calls with their own timeout keep their own timer.
 */
class CallDeadlines {
  private head: PendingCall | null = null;
  private tail: PendingCall | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly expire: (call: PendingCall) => void,
  ) {}

  add(call: PendingCall): void {
    call.deadline = performance.now() + this.timeoutMs;
    call.prevDeadline = this.tail;
    if (this.tail) this.tail.nextDeadline = call;
    else this.head = call;
    this.tail = call;
    if (this.timer === null) this.arm(this.timeoutMs);
  }

  remove(call: PendingCall): void {
    if (call.deadline === 0) return;
    call.deadline = 0;
    const { prevDeadline: prev, nextDeadline: next } = call;
    if (prev) prev.nextDeadline = next;
    else this.head = next;
    if (next) next.prevDeadline = prev;
    else this.tail = prev;
    call.prevDeadline = call.nextDeadline = null;
    // An armed timer for a call that left early just fires once and re-arms for the new head.
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): void {
    // Ref'd, like the per-call timers it replaces: a pending call keeps the process alive until it settles.
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(ms)));
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    const now = performance.now();
    while (this.head && this.head.deadline <= now) {
      const call = this.head;
      this.remove(call);
      this.expire(call);
    }
    if (this.head) this.arm(this.head.deadline - now);
  };
}

/** The context handed to handlers; one per incoming call. */
class IncomingCall implements CallContext {
  constructor(
    readonly connection: RpcConnection,
    readonly xid: number,
    readonly program: number,
    readonly version: number,
    readonly procedure: number,
    readonly cred: OpaqueAuth,
    readonly verf: OpaqueAuth,
    readonly authSys: AuthSysParams | null,
  ) {}
}

function tag(error: RpcError, call: { xid: number; program: number; version: number; procedure: number }): RpcError {
  error.xid = call.xid;
  error.program = call.program;
  error.version = call.version;
  error.procedure = call.procedure;
  return error;
}

export class RpcConnection extends EventEmitter {
  readonly programs: ProgramRegistry;
  readonly stats: ConnectionStats = {
    callsSent: 0,
    repliesReceived: 0,
    callsReceived: 0,
    repliesSent: 0,
    unmatchedReplies: 0,
  };

  private stream: Duplex | null = null;
  private readonly decoder: RecordDecoder;
  private readonly maxFragmentSize: number;
  private readonly maxPendingCalls: number;
  private readonly maxQueuedCalls: number;
  private readonly maxIncomingCalls: number;
  private readonly recordTimeout: number;
  private readonly idleTimeout: number;
  /** One timer each, created on first use and refreshed: no timer per chunk. */
  private recordTimer: NodeJS.Timeout | null = null;
  private recordTimerArmed = false;
  /** Records completed since the record timer was last (re)started. */
  private recordsSinceArmed = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private lastActivity = 0;
  private readonly defaultTimeout: number;
  private readonly deadlines: CallDeadlines;
  private readonly defaultAuth: OpaqueAuth;
  /** cred + verf of the default credential, encoded once: per call only four words change (as libtirpc). */
  private readonly defaultCredentials: Buffer;

  private readonly authenticate: AuthenticateHook | undefined;
  private readonly interceptCall: CallInterceptor | undefined;
  /**
   * What the layer under RPC says about its security (the TLS layer sets its session info here);
   * handlers read it through `context.connection.security`. Null on a plaintext connection.
   */
  security: Readonly<Record<string, unknown>> | null = null;

  private readonly pending = new Map<number, PendingCall>();
  /** Calls encoded but not yet written: waiting for a slot, for drain, or for a stream to be attached. */
  private readonly queue: PendingCall[] = [];
  private queueHead = 0;
  private nextXid = (Math.random() * 0x100000000) >>> 0;
  private incoming = 0;
  private writeBlocked = false;
  private readPaused = false;
  private corked = false;
  private closing = false;
  private closedError: Error | null = null;

  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  private readonly onEnd = (): void => this.destroy(this.decoder.end() ?? undefined);
  private readonly onStreamError = (error: Error): void => this.destroy(error);
  private readonly onStreamClose = (): void => this.destroy();
  private readonly onDrain = (): void => this.drained();
  private readonly uncork = (): void => {
    this.corked = false;
    this.stream?.uncork();
  };

  constructor(stream: Duplex | null, options: ConnectionOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
    const maxRecordSize = validateInteger(options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE, 'maxRecordSize', 28, MAX_FRAGMENT_LENGTH);
    const maxFragments = validateInteger(options.maxFragments ?? DEFAULT_MAX_FRAGMENTS, 'maxFragments', 1, 0x7fffffff);
    this.maxFragmentSize = validateInteger(options.maxFragmentSize ?? MAX_FRAGMENT_LENGTH, 'maxFragmentSize', 1, MAX_FRAGMENT_LENGTH);
    this.maxPendingCalls = validateInteger(options.maxPendingCalls ?? 1024, 'maxPendingCalls', 1, 0x7fffffff);
    this.maxQueuedCalls = validateInteger(options.maxQueuedCalls ?? 16384, 'maxQueuedCalls', 0, 0x7fffffff);
    this.maxIncomingCalls = validateInteger(options.maxIncomingCalls ?? 128, 'maxIncomingCalls', 1, 0x7fffffff);
    this.recordTimeout = validateInteger(options.recordTimeout ?? 0, 'recordTimeout', 0, 0x7fffffff);
    this.idleTimeout = validateInteger(options.idleTimeout ?? 0, 'idleTimeout', 0, 0x7fffffff);
    this.defaultTimeout = validateInteger(options.timeout ?? DEFAULT_TIMEOUT, 'timeout', 0, 0x7fffffff);
    this.deadlines = new CallDeadlines(this.defaultTimeout, (call) => this.failCall(call, new RpcTimeoutError(this.defaultTimeout)));
    this.defaultAuth = options.auth === undefined ? AUTH_NONE : validateOpaqueAuth(options.auth, 'auth');
    this.defaultCredentials = encodeCredentials(this.defaultAuth);
    if (options.authenticate !== undefined && typeof options.authenticate !== 'function') {
      throw new InvalidOptionError('authenticate', 'a function', options.authenticate);
    }
    this.authenticate = options.authenticate;
    if (options.interceptCall !== undefined && typeof options.interceptCall !== 'function') {
      throw new InvalidOptionError('interceptCall', 'a function', options.interceptCall);
    }
    this.interceptCall = options.interceptCall;
    this.programs = options.programs ?? new ProgramRegistry();
    this.decoder = new RecordDecoder((record) => this.receiveRecord(record), { maxRecordSize, maxFragments });
    if (stream) this.attachStream(stream);
  }

  /** Calls awaiting a reply (written or queued). */
  get pendingCalls(): number {
    return this.pending.size + this.queue.length - this.queueHead;
  }

  /** Incoming calls whose handlers have not finished. */
  get incomingCalls(): number {
    return this.incoming;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** The byte stream underneath (null while detached for an upgrade). */
  get transport(): Duplex | null {
    return this.stream;
  }

  /** Registers a program this end serves to the peer (for callbacks on a client's connection). */
  addProgram(definition: ProgramDefinition): this {
    this.programs.add(definition);
    return this;
  }

  // ---- stream management -----------------------------------------------------------------------

  /**
   * Puts a byte stream under this connection. Used once at creation and again after an upgrade (STARTTLS):
   * the RPC layer above does not change; queued calls are written to the new stream.
   */
  attachStream(stream: Duplex): void {
    if (this.closedError) throw new ConnectionClosedError('cannot attach a stream to a closed connection', this.closedError);
    if (this.stream) throw new InvalidOptionError('stream', 'attached only while no stream is attached', stream);
    this.stream = stream;
    this.writeBlocked = false;
    this.decoder.resume();
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('error', this.onStreamError);
    stream.on('close', this.onStreamClose);
    stream.on('drain', this.onDrain);
    if (this.readPaused) stream.pause();
    if (this.idleTimeout > 0) this.touch(); // a peer that never sends a byte is idle too
    this.flushQueue();
  }

  /**
   * Takes the byte stream away (for an upgrade) without closing it. Only allowed between records; calls
   * made meanwhile are queued and go out on the next attached stream. The caller now owns the stream.
   */
  detachStream(): Duplex {
    const stream = this.stream;
    if (!stream) throw new ConnectionClosedError('no stream is attached');
    if (!this.decoder.idle) throw new RpcError('ERR_RPC_DETACH_MID_RECORD', 'cannot detach the stream inside a record');
    // Whatever is still in the chunk being parsed must not be read as records of the old stream.
    this.decoder.halt();
    stream.off('data', this.onData);
    stream.off('end', this.onEnd);
    stream.off('error', this.onStreamError);
    stream.off('close', this.onStreamClose);
    stream.off('drain', this.onDrain);
    stream.pause();
    if (this.corked) {
      this.corked = false;
      stream.uncork();
    }
    this.stream = null;
    return stream;
  }

  // ---- outgoing calls ------------------------------------------------------------------------

  /**
   * Calls a remote procedure with already-encoded arguments (a Buffer or gather list) and resolves with a
   * view of the result bytes. Rejects with a coded RpcError on any failure.
   */
  call(
    program: number,
    version: number,
    procedure: number,
    args: Buffer | readonly Buffer[] = EMPTY,
    options?: CallOptions,
  ): Promise<Buffer> {
    return this.send(program, version, procedure, args, options, false) as Promise<Buffer>;
  }

  /**
   * Makes a call and resolves with the whole decoded reply whatever its status (accepted, denied, any
   * verifier), for protocol steps that inspect the reply itself, like the RFC 9289 AUTH_TLS probe.
   */
  callForReply(
    program: number,
    version: number,
    procedure: number,
    args: Buffer | readonly Buffer[] = EMPTY,
    options?: CallOptions,
  ): Promise<RpcReply> {
    return this.send(program, version, procedure, args, options, true) as Promise<RpcReply>;
  }

  private send(
    program: number,
    version: number,
    procedure: number,
    args: Buffer | readonly Buffer[],
    options: CallOptions | undefined,
    wantsReply: boolean,
  ): Promise<Buffer | RpcReply> {
    return new Promise<Buffer | RpcReply>((resolve, reject) => {
      const signal = options?.signal;
      const call = new PendingCall(this, program >>> 0, version >>> 0, procedure >>> 0, signal, resolve, reject);
      call.wantsReply = wantsReply;
      if (this.closedError || this.closing) {
        reject(tag(new ConnectionClosedError(this.closing ? 'the connection is closing' : 'the connection is closed', this.closedError ?? undefined), call));
        return;
      }
      if (signal?.aborted) {
        reject(tag(new RpcAbortError(signal.reason), call));
        return;
      }
      const credentials = options?.auth === undefined ? this.defaultCredentials : encodeCredentials(validateOpaqueAuth(options.auth, 'options.auth'));
      call.xid = this.allocateXid();
      const parts = callRecordParts(call, credentials, args);
      call.record = frameRecord(parts, parts[0] as Buffer, this.maxFragmentSize);
      const timeout = options?.timeout ?? this.defaultTimeout;
      if (timeout === this.defaultTimeout) {
        if (timeout > 0) this.deadlines.add(call);
      } else {
        validateInteger(timeout, 'options.timeout', 0, 0x7fffffff);
        if (timeout > 0) call.timer = setTimeout(onCallTimeout, timeout, call, timeout);
      }
      signal?.addEventListener('abort', call, { once: true });
      this.pending.set(call.xid, call);
      if (this.canWrite()) {
        this.writeCall(call);
      } else if (this.queue.length - this.queueHead >= this.maxQueuedCalls) {
        this.failCall(call, new QueueFullError(this.maxQueuedCalls));
      } else {
        this.queue.push(call);
      }
    });
  }

  /** Calls a procedure through a typed reference: encodes `args`, decodes the result. */
  async request<A, R>(ref: ProcedureRef<A, R>, args: A, options?: CallOptions): Promise<R> {
    const w = new XdrWriter();
    ref.args.encode(w, args);
    const results = await this.call(ref.program, ref.version, ref.procedure, w.finish(), options);
    const reader = new XdrReader(results);
    try {
      const value = ref.result.decode(reader);
      reader.assertEnd();
      return value;
    } catch (error) {
      throw tag(new ResultDecodeError(error), { xid: 0, program: ref.program, version: ref.version, procedure: ref.procedure });
    }
  }

  private allocateXid(): number {
    let xid = this.nextXid;
    // After a wrap, skip XIDs still in use by long-running calls.
    while (this.pending.has(xid)) xid = (xid + 1) >>> 0;
    this.nextXid = (xid + 1) >>> 0;
    return xid;
  }

  /** Written calls are capped by maxPendingCalls; the rest wait so memory stays bounded. */
  private canWrite(): boolean {
    return this.stream !== null && !this.writeBlocked && this.queue.length === this.queueHead && this.pending.size - this.queuedCount() <= this.maxPendingCalls;
  }

  private queuedCount(): number {
    return this.queue.length - this.queueHead;
  }

  private writeCall(call: PendingCall): void {
    const record = call.record as Buffer[];
    call.record = null;
    this.stats.callsSent++;
    this.write(record);
  }

  /** One record out; records written in the same tick leave in one writev. */
  private write(record: Buffer[]): void {
    const stream = this.stream as Duplex;
    if (!this.corked) {
      this.corked = true;
      stream.cork();
      process.nextTick(this.uncork);
    }
    let ok = true;
    for (let i = 0; i < record.length; i++) ok = stream.write(record[i]);
    if (!ok) this.blockWrites();
  }

  private blockWrites(): void {
    this.writeBlocked = true;
    // A peer that does not read must not make us buffer its requests' replies without bound.
    this.pauseReading();
  }

  private drained(): void {
    this.writeBlocked = false;
    this.flushQueue();
    if (!this.writeBlocked && this.incoming < this.maxIncomingCalls) this.resumeReading();
  }

  private flushQueue(): void {
    while (this.queueHead < this.queue.length && this.stream && !this.writeBlocked && this.pending.size - this.queuedCount() < this.maxPendingCalls) {
      const call = this.queue[this.queueHead++] as PendingCall;
      if (!call.settled) this.writeCall(call);
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Settles a call with an error (timeout, abort, connection loss, or an error reply). */
  failCall(call: PendingCall, error: RpcError): void {
    if (call.settled) return;
    this.finish(call);
    call.reject(tag(error, call));
  }

  private finish(call: PendingCall): void {
    call.settled = true;
    call.record = null;
    this.pending.delete(call.xid);
    if (call.deadline !== 0) this.deadlines.remove(call);
    else if (call.timer) {
      clearTimeout(call.timer);
      call.timer = null;
    }
    call.signal?.removeEventListener('abort', call);
    if (this.queueHead < this.queue.length) this.flushQueue();
    if (this.closing) this.maybeFinishClose();
  }

  private receiveReply(reply: RpcReply): void {
    const call = this.pending.get(reply.xid);
    if (!call || call.record !== null) {
      // Unknown XID, or a reply to a call we have not even written yet: not ours to settle.
      this.stats.unmatchedReplies++;
      this.emit('unmatchedReply', reply.xid);
      return;
    }
    this.stats.repliesReceived++;
    if (call.wantsReply) {
      this.finish(call);
      call.resolve(reply);
      return;
    }
    if (reply.replyStat === ReplyStat.MSG_ACCEPTED) {
      if (reply.acceptStat === AcceptStat.SUCCESS) {
        this.finish(call);
        call.resolve(reply.results as Buffer);
        return;
      }
      this.failCall(call, acceptedError(reply.acceptStat as number, reply.low, reply.high));
      return;
    }
    if (reply.authStat !== undefined) this.failCall(call, authError(reply.authStat));
    else this.failCall(call, new RpcMismatchError(reply.low as number, reply.high as number));
  }

  // ---- incoming bytes and calls --------------------------------------------------------------

  private receive(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (this.idleTimeout > 0) this.touch();
    if (this.recordTimeout > 0) this.watchRecord();
    if (this.decoder.leftover > 0 && this.stream === null) {
      // Bytes arrived together with the record that handed the stream over (e.g. after an AUTH_TLS
      // probe): RFC 9289 forbids them, and they belong to no layer that could read them.
      const leftover = this.decoder.leftover;
      this.destroy(new RpcError('ERR_RPC_UNEXPECTED_BYTES', `${leftover} bytes arrived after the record that ended plaintext`));
    }
  }

  private receiveRecord(record: Buffer): void {
    this.recordsSinceArmed++;
    let message;
    try {
      message = decodeMessage(record);
    } catch (error) {
      if (error instanceof CallAuthTooLongError) {
        this.stats.callsReceived++;
        this.replyAuthError(error.call.xid, AuthStat.AUTH_BADCRED);
        return;
      }
      // Not an RPC message at all: the peer does not speak our protocol; stop talking to it.
      throw error;
    }
    if (message.type === MsgType.REPLY) this.receiveReply(message);
    else this.receiveCall(message);
  }

  private receiveCall(call: RpcCall): void {
    this.stats.callsReceived++;
    if (this.closedError) return;
    if (this.interceptCall !== undefined && this.interceptCall(call, this)) return;
    if (call.rpcvers !== RPC_VERSION) {
      const w = new XdrWriter(32);
      const slot = w.reserve4();
      writeRpcMismatch(w, call.xid, RPC_VERSION, RPC_VERSION);
      this.sendReply(w, slot);
      return;
    }
    let authSys: AuthSysParams | null = null;
    const flavor = call.cred.flavor;
    if (flavor === AuthFlavor.AUTH_SYS) {
      try {
        authSys = decodeAuthSys(call.cred.body);
      } catch {
        this.replyAuthError(call.xid, AuthStat.AUTH_BADCRED);
        return;
      }
    } else if (flavor !== AuthFlavor.AUTH_NONE && this.authenticate === undefined) {
      // Like libtirpc: a flavor this server does not know is rejected, not ignored.
      this.replyAuthError(call.xid, AuthStat.AUTH_REJECTEDCRED);
      return;
    }
    const context = new IncomingCall(this, call.xid, call.program, call.version, call.procedure, call.cred, call.verf, authSys);
    this.incoming++;
    if (this.incoming >= this.maxIncomingCalls) this.pauseReading();
    if (this.authenticate !== undefined) {
      let verdict;
      try {
        verdict = this.authenticate(context);
      } catch (error) {
        this.answerError(context, error);
        return;
      }
      if (verdict instanceof Promise) {
        void this.authenticateThenDispatch(context, call.args, verdict);
        return;
      }
      if (verdict !== undefined && verdict !== AuthStat.AUTH_OK) {
        this.answerError(context, authError(verdict));
        return;
      }
    }
    this.dispatch(context, call.args);
  }

  private async authenticateThenDispatch(context: IncomingCall, args: Buffer, verdict: Promise<number | void>): Promise<void> {
    let stat;
    try {
      stat = await verdict;
    } catch (error) {
      this.answerError(context, error);
      return;
    }
    if (stat !== undefined && stat !== AuthStat.AUTH_OK) this.answerError(context, authError(stat));
    else this.dispatch(context, args);
  }

  private dispatch(context: IncomingCall, args: Buffer): void {
    const found = this.programs.lookup(context.program, context.version, context.procedure);
    if (isLookupMiss(found)) {
      const w = new XdrWriter(48);
      const slot = w.reserve4();
      if (found.miss === 'prog-mismatch') writeProgMismatch(w, context.xid, AUTH_NONE, found.low, found.high);
      else writeAcceptedHeader(w, context.xid, AUTH_NONE, found.miss === 'prog-unavail' ? AcceptStat.PROG_UNAVAIL : AcceptStat.PROC_UNAVAIL);
      this.finishIncoming(w, slot);
      return;
    }
    let result;
    try {
      result = this.invoke(found, args, context);
    } catch (error) {
      this.answerError(context, error, found);
      return;
    }
    if (result instanceof Promise) void this.awaitResult(context, found, result);
    else this.answerSuccess(context, found, result);
  }

  private invoke(found: ProcedureDefinition, args: Buffer, context: IncomingCall): unknown {
    if (typeof found === 'function') return found(args, context);
    const reader = new XdrReader(args);
    let decoded;
    try {
      decoded = found.args.decode(reader);
      reader.assertEnd();
    } catch (error) {
      throw new GarbageArgs(error);
    }
    return found.handler(decoded, context);
  }

  private async awaitResult(context: IncomingCall, found: ProcedureDefinition, result: Promise<unknown>): Promise<void> {
    let value;
    try {
      value = await result;
    } catch (error) {
      this.answerError(context, error, found);
      return;
    }
    this.answerSuccess(context, found, value);
  }

  private answerSuccess(context: IncomingCall, found: ProcedureDefinition, value: unknown): void {
    const w = new XdrWriter(256);
    const slot = w.reserve4();
    writeAcceptedHeader(w, context.xid, AUTH_NONE, AcceptStat.SUCCESS);
    try {
      if (typeof found === 'function') {
        if (Buffer.isBuffer(value)) w.raw(value);
        else if (Array.isArray(value)) for (const part of value as Buffer[]) w.raw(part);
        else if (value !== undefined) throw new TypeError('a raw handler must return a Buffer, an array of Buffers, or nothing');
      } else {
        (found as TypedProcedure<unknown, unknown>).result.encode(w, value);
      }
    } catch (error) {
      // Our own result could not be encoded: a server fault, never the caller's arguments.
      this.emit('handlerError', error, context);
      this.answerError(context, new SystemErrError(), found, true);
      return;
    }
    this.finishIncoming(w, slot);
  }

  /**
   * Maps what a handler threw to the reply RFC 5531 has for it. An XdrError from a raw handler means it
   * could not decode its arguments (GARBAGE_ARGS); from a typed handler it is the handler's own fault.
   */
  private answerError(context: IncomingCall, error: unknown, found?: ProcedureDefinition, reported = false): void {
    const w = new XdrWriter(48);
    const slot = w.reserve4();
    if (error instanceof RpcAuthError) {
      writeAuthError(w, context.xid, error.authStat);
    } else if (error instanceof GarbageArgs || (error instanceof XdrError && typeof found === 'function')) {
      writeAcceptedHeader(w, context.xid, AUTH_NONE, AcceptStat.GARBAGE_ARGS);
    } else if (error instanceof RpcAcceptedError && error.acceptStat !== AcceptStat.PROG_MISMATCH) {
      writeAcceptedHeader(w, context.xid, AUTH_NONE, error.acceptStat);
    } else {
      if (!reported) this.emit('handlerError', error, context);
      writeAcceptedHeader(w, context.xid, AUTH_NONE, AcceptStat.SYSTEM_ERR);
    }
    this.finishIncoming(w, slot);
  }

  private finishIncoming(w: XdrWriter, slot: Buffer): void {
    this.incoming--;
    this.sendReply(w, slot);
    if (this.incoming < this.maxIncomingCalls && !this.writeBlocked) this.resumeReading();
    if (this.closing) this.maybeFinishClose();
  }

  /**
   * Answers a call with MSG_DENIED / AUTH_ERROR. Public for call interceptors (the TLS layer refuses
   * probes this way); counted like every other reply.
   */
  replyAuthError(xid: number, authStat: number): void {
    const w = new XdrWriter(32);
    const slot = w.reserve4();
    writeAuthError(w, xid, authStat);
    this.sendReply(w, slot);
  }

  private sendReply(w: XdrWriter, slot: Buffer): void {
    if (!this.stream || this.closedError) return;
    this.stats.repliesSent++;
    this.write(frameRecord(w.finish(), slot, this.maxFragmentSize));
  }

  // ---- read deadlines ----------------------------------------------------------------------------

  /**
   * Times the record under way while we are reading: started when one begins, restarted when a record
   * completed since (a busy stream often ends its chunks mid-record), stopped otherwise.
   */
  private watchRecord(): void {
    const wanted = this.decoder.inRecord && !this.readPaused && this.closedError === null;
    if (!wanted) {
      if (this.recordTimerArmed && this.recordTimer) clearTimeout(this.recordTimer);
      this.recordTimerArmed = false;
      return;
    }
    if (this.recordTimerArmed && this.recordsSinceArmed === 0) return;
    this.recordsSinceArmed = 0;
    if (this.recordTimerArmed && this.recordTimer) {
      this.recordTimer.refresh(); // still running: restart it without a new timer
    } else {
      this.recordTimer = setTimeout(this.onRecordTimeout, this.recordTimeout);
      this.recordTimer.unref();
    }
    this.recordTimerArmed = true;
  }

  private readonly onRecordTimeout = (): void => {
    this.recordTimerArmed = false;
    if (this.decoder.inRecord && !this.readPaused) this.destroy(new RecordTimeoutError(this.decoder.buffered, this.recordTimeout));
  };

  private touch(): void {
    this.lastActivity = performance.now();
    if (this.idleTimer === null) {
      this.idleTimer = setInterval(this.checkIdle, Math.max(10, Math.ceil(this.idleTimeout / 4)));
      this.idleTimer.unref();
    }
  }

  private readonly checkIdle = (): void => {
    if (this.closedError || this.closing) return;
    if (this.incoming > 0 || this.pending.size > 0 || this.decoder.inRecord) {
      this.lastActivity = performance.now();
      return;
    }
    if (performance.now() - this.lastActivity >= this.idleTimeout) {
      this.emit('idle');
      void this.close();
    }
  };

  private pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    // Also stop inside the chunk being parsed: calls after the cap wait there, not in handlers.
    this.decoder.pause();
    this.stream?.pause();
    if (this.recordTimeout > 0) this.watchRecord();
  }

  private resumeReading(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    this.decoder.unpause();
    // Held bytes go first (nextTick runs before the stream's own resume), outside any handler's stack.
    if (this.decoder.heldBytes > 0 && !this.feedScheduled) {
      this.feedScheduled = true;
      process.nextTick(this.feedHeld);
    }
    this.stream?.resume();
    if (this.recordTimeout > 0) this.watchRecord();
  }

  private feedScheduled = false;
  private readonly feedHeld = (): void => {
    this.feedScheduled = false;
    if (this.readPaused || this.closedError) return;
    const held = this.decoder.takeHeld();
    if (held !== null) this.receive(held);
  };

  // ---- closing -------------------------------------------------------------------------------

  private closeResolvers: (() => void)[] = [];

  /**
   * Graceful close: new calls are refused, calls in flight in both directions finish (or time out), then
   * the stream is ended. Resolves when the connection is closed.
   */
  close(): Promise<void> {
    if (this.closedError) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.closeResolvers.push(resolve);
      this.closing = true;
      this.maybeFinishClose();
    });
  }

  private maybeFinishClose(): void {
    if (this.pending.size > 0 || this.incoming > 0 || this.closedError) return;
    const stream = this.stream;
    if (!stream || !stream.writable) {
      this.destroy();
      return;
    }
    if (this.corked) {
      this.corked = false;
      stream.uncork();
    }
    stream.end();
    // The peer may keep its side open; once our data is flushed we are done with the connection.
    stream.once('finish', () => this.destroy());
  }

  /** Closes at once: every pending call fails with ERR_RPC_CONNECTION_CLOSED (`cause` = `error`). */
  destroy(error?: Error): void {
    if (this.closedError) return;
    this.closedError = error ?? new ConnectionClosedError('the connection closed');
    if (this.recordTimer) clearTimeout(this.recordTimer);
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.deadlines.stop();
    const stream = this.stream;
    this.stream = null;
    if (stream) {
      stream.off('data', this.onData);
      stream.off('end', this.onEnd);
      stream.off('drain', this.onDrain);
      // Keep an error listener: a late socket error must not become an uncaught exception.
      stream.on('error', noop);
      stream.destroy();
    }
    const failure = (): RpcError =>
      new ConnectionClosedError(error ? `the connection failed: ${error.message}` : 'the connection closed before a reply arrived', error);
    for (const call of [...this.pending.values()]) this.failCall(call, failure());
    this.queue.length = 0;
    this.queueHead = 0;
    const resolvers = this.closeResolvers;
    this.closeResolvers = [];
    for (const resolve of resolvers) resolve();
    this.emit('close', error);
  }
}

function noop(): void {}

/** Marks an argument-decoding failure inside a typed procedure (answered with GARBAGE_ARGS). */
class GarbageArgs extends Error {
  constructor(cause: unknown) {
    super('cannot decode arguments', { cause });
  }
}
