import { performance } from 'node:perf_hooks';
import { channels } from '../diagnostics.js';
import { validateInteger } from '../errors.js';
import { XdrReader } from '../xdr/reader.js';
import { XdrWriter, GATHER_THRESHOLD } from '../xdr/writer.js';
import { AUTH_NONE, type OpaqueAuth, validateOpaqueAuth } from './auth.js';
import { AcceptStat, MsgType, RPC_VERSION, ReplyStat } from './constants.js';
import {
  ConnectionClosedError,
  QueueFullError,
  RpcAbortError,
  RpcMismatchError,
  ResultDecodeError,
  RpcTimeoutError,
  type CallTarget,
  acceptedError,
  authError,
} from './errors.js';
import { type RpcReply, writeAuth } from './message.js';
import type { CallOptions, ConnectionStats, ProcedureRef } from './peer.js';

/**
 * The outgoing half of a connection: XIDs, the table of calls awaiting replies, the queue of calls
 * waiting for a slot or for the stream, deadlines, aborts, and settling each call exactly once.
 */

/** Where the call table writes records; the connection passes its record channel through. */
export interface CallWriter {
  /** Whether a record may be written now. */
  readonly writable: boolean;
  /**
   * Writes one record (gather list, first 4 bytes left for the mark); false: wait for `flush()`. A
   * record it can never send (a datagram past its size) throws a coded error the call fails with.
   */
  writeRecord(parts: Buffer[]): boolean;
  /** Sends a written call again, unchanged (same XID); only writers over a lossy transport (UDP). */
  resendRecord?(parts: Buffer[]): void;
  /**
   * Room for a small record written in place (the record channel's `reserve`): the buffer to write the
   * body into at `reservedAt`, or null when the record must go through `writeRecord`.
   */
  reserveRecord?(bodyLength: number): Buffer | null;
  readonly reservedAt?: number;
}

/**
 * Retransmission: resend after `initial` ms, doubling up to `max` (UDP); with `retries`, a call resent that
 * many times fails with ERR_RPC_TIMEOUT when its next interval passes unanswered (TCP, nfs(5) retrans).
 */
export interface RetransmitOptions {
  initial: number;
  max: number;
  retries?: number;
}

export interface CallTableOptions {
  timeout?: number;
  auth?: OpaqueAuth;
  maxPendingCalls?: number;
  maxQueuedCalls?: number;
  /** Resend calls until they are answered or time out (the writer must have `resendRecord`). */
  retransmit?: RetransmitOptions;
}

/** CallTableOptions checked once, the default credential encoded: shared by every table made with them. */
export interface ResolvedCallOptions {
  readonly maxPendingCalls: number;
  readonly maxQueuedCalls: number;
  readonly timeout: number;
  readonly retransmit: RetransmitOptions | undefined;
  /** cred + verf of the default credential. */
  readonly credentials: Buffer;
}

/** Validates call options (precise messages) once, for every call table that will use them. */
export function resolveCallOptions(options: { [K in keyof CallTableOptions]: CallTableOptions[K] | undefined }): ResolvedCallOptions {
  return {
    maxPendingCalls: validateInteger(options.maxPendingCalls ?? 1024, 'maxPendingCalls', 1, 0x7fffffff),
    maxQueuedCalls: validateInteger(options.maxQueuedCalls ?? 16384, 'maxQueuedCalls', 0, 0x7fffffff),
    timeout: validateInteger(options.timeout ?? DEFAULT_TIMEOUT, 'timeout', 0, 0x7fffffff),
    retransmit: options.retransmit,
    credentials: options.auth === undefined ? noneCredentials() : encodeCredentials(validateOpaqueAuth(options.auth, 'auth')),
  };
}

const DEFAULT_TIMEOUT = 30_000;
/** The results of every call that returns nothing (a zero-length view has nothing to share). */
const EMPTY_RESULTS = Buffer.alloc(0);

/** What rpctls:call:* channels carry for one call. */
export interface CallDiagnostic {
  xid: number;
  program: number;
  version: number;
  procedure: number;
  /** The RpcConnection or UdpClient that made the call. */
  connection: object | null;
}

/** An outgoing call from the moment it is made until it settles. */
class PendingCall {
  xid = 0;
  /** Own timer, only for a timeout other than the table's default (see CallDeadlines). */
  timer: NodeJS.Timeout | null = null;
  /**
   * performance.now() when a default-timeout call expires; 0 when not in the deadline list, UNSTAMPED
   * until the tick it was made in has ended (see CallDeadlines).
   */
  deadline = 0;
  prevDeadline: PendingCall | null = null;
  nextDeadline: PendingCall | null = null;
  /** The encoded call while it waits in the queue; null once written. */
  record: Buffer[] | null = null;
  settled = false;
  /** Resolve with the whole reply, whatever its status (the STARTTLS probe needs the verifier). */
  wantsReply = false;
  /** The call as written, kept for retransmission (UDP); null otherwise. */
  sent: Buffer[] | null = null;
  /** performance.now() of the next retransmission; 0 when none is scheduled. */
  resendAt = 0;
  /** Copies resent so far. */
  resends = 0;
  /** Which backoff round the call waits in (its interval is initial * 2^round, at most max). */
  resendRound = 0;
  prevResend: PendingCall | null = null;
  /** The message published on rpctls:call:start, when someone listened then; null otherwise. */
  diagnostic: CallDiagnostic | null = null;
  nextResend: PendingCall | null = null;

  constructor(
    readonly table: CallTable,
    readonly program: number,
    readonly version: number,
    readonly procedure: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (results: Buffer | RpcReply) => void,
    readonly reject: (error: Error) => void,
  ) {}

  /** AbortSignal listener (an object listener, so no closure per call). */
  handleEvent(): void {
    this.table.fail(this, new RpcAbortError(this.signal?.reason));
  }
}

let settleResolve: (results: Buffer | RpcReply) => void = () => {};
let settleReject: (error: Error) => void = () => {};

function captureSettlers(resolve: (results: Buffer | RpcReply) => void, reject: (error: Error) => void): void {
  settleResolve = resolve;
  settleReject = reject;
}

function onCallTimeout(call: PendingCall, timeout: number): void {
  call.timer = null;
  call.table.fail(call, new RpcTimeoutError(timeout));
}

/** Sets where a failed call was going on its error. */
export function tag<E extends Error>(error: E, call: { xid: number; program: number; version: number; procedure: number }): E {
  const target = error as E & CallTarget;
  target.xid = call.xid;
  target.program = call.program;
  target.version = call.version;
  target.procedure = call.procedure;
  return error;
}

/** Calls a procedure through a typed reference on any caller (a connection, a UDP client): encodes, decodes. */
export async function typedRequest<A, R>(
  caller: { call(program: number, version: number, procedure: number, args: Buffer[], options?: CallOptions): Promise<Buffer> },
  ref: ProcedureRef<A, R>,
  args: A,
  options: CallOptions | undefined,
): Promise<R> {
  const w = new XdrWriter();
  ref.args.encode(w, args);
  const results = await caller.call(ref.program, ref.version, ref.procedure, w.finish(), options);
  const reader = new XdrReader(results);
  try {
    const value = ref.result.decode(reader);
    reader.assertEnd();
    return value;
  } catch (error) {
    throw tag(new ResultDecodeError(error), { xid: 0, program: ref.program, version: ref.version, procedure: ref.procedure });
  }
}

/** The cred and verifier (AUTH_NONE) of a call, encoded. */
function encodeCredentials(auth: OpaqueAuth): Buffer {
  const w = new XdrWriter(64);
  writeAuth(w, auth);
  writeAuth(w, AUTH_NONE);
  return Buffer.concat(w.finish());
}

let noneCredentialsBytes: Buffer | null = null;

/** AUTH_NONE cred + verf, encoded once per process: calls only read it (copied into or referenced by records). */
function noneCredentials(): Buffer {
  noneCredentialsBytes ??= encodeCredentials(AUTH_NONE);
  return noneCredentialsBytes;
}

function put32(b: Buffer, at: number, value: number): void {
  b[at] = value >>> 24;
  b[at + 1] = value >>> 16;
  b[at + 2] = value >>> 8;
  b[at + 3] = value;
}

/** Arguments up to this size are written with the call header in one piece (beyond, referenced). */
const INLINE_ARGS = GATHER_THRESHOLD;

/** Bytes of `args` when they are few enough to write inline, else -1. */
function inlineLength(args: Buffer | readonly Buffer[]): number {
  if (Buffer.isBuffer(args)) return args.length <= INLINE_ARGS ? args.length : -1;
  let total = 0;
  for (let i = 0; i < args.length; i++) total += (args[i] as Buffer).length;
  return total <= INLINE_ARGS ? total : -1;
}

/** Writes the call header, credentials and inline arguments at `at` (the body of a record). */
function writeCallBody(b: Buffer, at: number, call: PendingCall, credentials: Buffer, args: Buffer | readonly Buffer[]): void {
  put32(b, at, call.xid);
  put32(b, at + 4, MsgType.CALL);
  put32(b, at + 8, RPC_VERSION);
  put32(b, at + 12, call.program);
  put32(b, at + 16, call.version);
  put32(b, at + 20, call.procedure);
  b.set(credentials, at + 24);
  at += 24 + credentials.length;
  if (Buffer.isBuffer(args)) {
    if (args.length > 0) b.set(args, at);
    return;
  }
  for (let i = 0; i < args.length; i++) {
    const part = args[i] as Buffer;
    b.set(part, at);
    at += part.length;
  }
}

/**
 * A call record as a gather list, its first 4 bytes left for the record mark: one buffer holds mark,
 * header, the pre-encoded credentials and small arguments; large arguments are referenced, not copied.
 */
function callRecordParts(call: PendingCall, credentials: Buffer, args: Buffer | readonly Buffer[]): Buffer[] {
  const single = Buffer.isBuffer(args);
  const inline = single && args.length < GATHER_THRESHOLD ? args.length : 0;
  const head = Buffer.allocUnsafe(28 + credentials.length + inline);
  put32(head, 4, call.xid);
  put32(head, 8, MsgType.CALL);
  put32(head, 12, RPC_VERSION);
  put32(head, 16, call.program);
  put32(head, 20, call.version);
  put32(head, 24, call.procedure);
  head.set(credentials, 28);
  if (single) {
    if (inline > 0) head.set(args as Buffer, 28 + credentials.length);
    return inline > 0 || args.length === 0 ? [head] : [head, args as Buffer];
  }
  const parts: Buffer[] = [head];
  for (let i = 0; i < args.length; i++) if ((args[i] as Buffer).length > 0) parts.push(args[i] as Buffer);
  return parts;
}

/**
 * The calls awaiting replies, found by XID without hashing or allocation: a call lives in slot
 * `xid & mask`, and XIDs are chosen so their slot is free (see `CallTable.allocateXid`). The array only
 * grows (doubling keeps distinct slots distinct: two XIDs that differ in their low k bits differ in
 * their low k+1 bits). A Map here churned its hash tables per call, and dead tables promoted to the
 * old generation kept young calls alive through scavenges, promoting them too.
 */
class CallSlots {
  // Small at first: most connections (an idle server's) hold a call or two at a time.
  private slots: (PendingCall | null)[] = [null, null, null, null];
  private mask = 3;
  size = 0;

  get(xid: number): PendingCall | undefined {
    const call = this.slots[xid & this.mask];
    return call !== null && call !== undefined && call.xid === xid ? call : undefined;
  }

  /** Whether a call with this XID could be added now. */
  isFree(xid: number): boolean {
    return this.slots[xid & this.mask] === null;
  }

  /** Keeps at least half of the slots free, so that a free XID is always near. */
  makeRoom(): void {
    if (this.size * 2 < this.slots.length) return;
    const grown = new Array<PendingCall | null>(this.slots.length * 2).fill(null);
    const mask = grown.length - 1;
    for (const call of this.slots) if (call !== null) grown[call.xid & mask] = call;
    this.slots = grown;
    this.mask = mask;
  }

  add(call: PendingCall): void {
    this.slots[call.xid & this.mask] = call;
    this.size++;
  }

  delete(call: PendingCall): void {
    const at = call.xid & this.mask;
    if (this.slots[at] !== call) return;
    this.slots[at] = null;
    this.size--;
  }

  values(): PendingCall[] {
    return this.slots.filter((call): call is PendingCall => call !== null);
  }
}

/** A deadline not yet stamped: the call's tick has not ended. */
const UNSTAMPED = -1;

function stampDeadlines(deadlines: CallDeadlines): void {
  deadlines.stamp();
}

/**
 * Deadlines of the calls that use the default timeout, without a timer per call: they expire in the
 * order they were made, so they sit in a list linked through the calls themselves (O(1) to add and to
 * remove, memory only for live calls) and one timer waits for the oldest. Calls with their own timeout
 * keep their own timer.
 */
class CallDeadlines {
  private head: PendingCall | null = null;
  private tail: PendingCall | null = null;
  private timer: NodeJS.Timeout | null = null;
  /**
   * The first call whose deadline is not stamped yet; the rest of the list after it is unstamped too.
   * Calls are stamped once their tick has ended, with one clock read for all the calls of that tick (a
   * pipelining caller makes dozens per tick, and the read costs as much as a tenth of a call's CPU). The
   * read comes after each of them was made, so no deadline is early; each is late by at most the tick.
   */
  private unstamped: PendingCall | null = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly expire: (call: PendingCall) => void,
  ) {}

  add(call: PendingCall): void {
    call.deadline = UNSTAMPED;
    if (this.unstamped === null) {
      this.unstamped = call;
      process.nextTick(stampDeadlines, this);
    }
    call.prevDeadline = this.tail;
    if (this.tail) this.tail.nextDeadline = call;
    else {
      this.head = call;
      this.timer?.ref();
    }
    this.tail = call;
    if (this.timer === null) this.arm(this.timeoutMs);
  }

  /** Gives the calls made since the last stamp their deadline, from one clock read. */
  stamp(): void {
    const deadline = performance.now() + this.timeoutMs;
    for (let call = this.unstamped; call !== null; call = call.nextDeadline) call.deadline = deadline;
    this.unstamped = null;
  }

  remove(call: PendingCall): void {
    if (call.deadline === 0) return;
    if (call === this.unstamped) this.unstamped = call.nextDeadline;
    call.deadline = 0;
    const { prevDeadline: prev, nextDeadline: next } = call;
    if (prev) prev.nextDeadline = next;
    else this.head = next;
    if (next) next.prevDeadline = prev;
    else this.tail = prev;
    call.prevDeadline = call.nextDeadline = null;
    // An armed timer for a call that left early just fires once and re-arms for the new head; with no
    // call left it must not hold the process meanwhile (an idle client lets it exit).
    if (this.head === null) this.timer?.unref();
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
    // Ticks end before timers run, so every call is stamped by now; this only guards the invariant.
    if (this.unstamped !== null) this.stamp();
    const now = performance.now();
    while (this.head && this.head.deadline <= now) {
      const call = this.head;
      this.remove(call);
      this.expire(call);
    }
    if (this.head) this.arm(this.head.deadline - now);
  };
}

/**
 * Retransmission without a timer per call: calls of one backoff round were sent in order and wait the
 * same interval, so each round is a FIFO list linked through the calls (O(1) to add and remove), and one
 * timer waits for the earliest head. A resent call moves to the next round, whose interval is doubled,
 * up to `max`, where it stays until its deadline settles it.
 */
class Retransmissions {
  private readonly heads: (PendingCall | null)[] = [];
  private readonly tails: (PendingCall | null)[] = [];
  private readonly intervals: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;

  constructor(
    options: RetransmitOptions,
    private readonly resend: (call: PendingCall) => void,
  ) {
    for (let interval = options.initial; ; interval *= 2) {
      this.intervals.push(Math.min(interval, options.max));
      this.heads.push(null);
      this.tails.push(null);
      if (interval >= options.max) break;
    }
  }

  add(call: PendingCall, round: number, now: number): void {
    call.resendRound = round;
    call.resendAt = now + (this.intervals[round] as number);
    call.prevResend = this.tails[round] as PendingCall | null;
    call.nextResend = null;
    if (call.prevResend) call.prevResend.nextResend = call;
    else this.heads[round] = call;
    this.tails[round] = call;
    if (this.timer === null || call.resendAt < this.timerAt) this.arm(call.resendAt, now);
  }

  remove(call: PendingCall): void {
    if (call.resendAt === 0) return;
    call.resendAt = 0;
    const round = call.resendRound;
    const { prevResend: prev, nextResend: next } = call;
    if (prev) prev.nextResend = next;
    else this.heads[round] = next;
    if (next) next.prevResend = prev;
    else this.tails[round] = prev;
    call.prevResend = call.nextResend = null;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(at: number, now: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    // Unref'd: the call's deadline (or its absence, timeout 0) decides how long the process waits.
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(at - now)));
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    const now = performance.now();
    const last = this.intervals.length - 1;
    let earliest = Infinity;
    for (let round = last; round >= 0; round--) {
      // Rounds are walked from the last so a call moved on is not resent twice in one pass.
      for (let call = this.heads[round] as PendingCall | null; call !== null && call.resendAt <= now; call = this.heads[round] as PendingCall | null) {
        this.remove(call);
        this.resend(call);
        if (call.sent !== null) this.add(call, Math.min(round + 1, last), now);
      }
    }
    for (let round = 0; round <= last; round++) {
      const head = this.heads[round] as PendingCall | null;
      if (head !== null && head.resendAt < earliest) earliest = head.resendAt;
    }
    if (earliest !== Infinity) this.arm(earliest, now);
  };
}

export class CallTable {
  /** Who makes these calls (an RpcConnection or a UdpClient), named in diagnostics messages. */
  owner: object | null = null;
  private readonly writer: CallWriter;
  private readonly stats: ConnectionStats;
  private readonly maxPendingCalls: number;
  private readonly maxQueuedCalls: number;
  private readonly defaultTimeout: number;
  private readonly deadlines: CallDeadlines;
  private readonly retransmissions: Retransmissions | null;
  /** cred + verf of the default credential, encoded once: per call only four words change (as libtirpc). */
  private readonly defaultCredentials: Buffer;
  private readonly pending = new CallSlots();
  /** Calls encoded but not yet written: waiting for a slot, for drain, or for the stream (an upgrade). */
  private readonly queue: PendingCall[] = [];
  private queueHead = 0;
  private nextXid = (Math.random() * 0x100000000) >>> 0;
  /** Set when new calls are refused (closing, or closed with this error). */
  private refusal: { closing: boolean; cause: Error | undefined } | null = null;
  /** Called after a call settles (the connection finishes a graceful close when none are left). */
  onSettled: (() => void) | null = null;

  constructor(writer: CallWriter, stats: ConnectionStats, options: ResolvedCallOptions) {
    this.writer = writer;
    this.stats = stats;
    this.maxPendingCalls = options.maxPendingCalls;
    this.maxQueuedCalls = options.maxQueuedCalls;
    this.defaultTimeout = options.timeout;
    this.deadlines = new CallDeadlines(this.defaultTimeout, (call) => this.fail(call, new RpcTimeoutError(this.defaultTimeout)));
    const r = options.retransmit;
    if (r !== undefined && writer.resendRecord === undefined) throw new TypeError('retransmit needs a writer with resendRecord');
    this.retransmissions = r === undefined ? null : new Retransmissions(r, (call) => this.resend(call, r));
    this.defaultCredentials = options.credentials;
  }

  /** Calls awaiting a reply (written or queued). */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Makes a call; resolves with a view of the result bytes, or with the whole reply when `wantsReply`.
   * Rejects with a coded error on any failure (an RpcError; over UDP also ERR_RPC_DATAGRAM_TOO_LARGE).
   */
  send(
    program: number,
    version: number,
    procedure: number,
    args: Buffer | readonly Buffer[],
    options: CallOptions | undefined,
    wantsReply: boolean,
  ): Promise<Buffer | RpcReply> {
    // A shared executor hands over the settle functions: no closure per call.
    const promise = new Promise<Buffer | RpcReply>(captureSettlers);
    const call = new PendingCall(this, program >>> 0, version >>> 0, procedure >>> 0, options?.signal, settleResolve, settleReject);
    call.wantsReply = wantsReply;
    try {
      this.start(call, args, options);
    } catch (error) {
      // What the executor would have done with a throw (a bad option): the call rejects.
      this.fail(call, error as Error);
    }
    return promise;
  }

  private start(call: PendingCall, args: Buffer | readonly Buffer[], options: CallOptions | undefined): void {
    const signal = call.signal;
    if (this.refusal !== null) {
      const { closing, cause } = this.refusal;
      call.settled = true;
      call.reject(tag(new ConnectionClosedError(closing ? 'the connection is closing' : 'the connection is closed', cause), call));
      return;
    }
    if (signal?.aborted) {
      call.settled = true;
      call.reject(tag(new RpcAbortError(signal.reason), call));
      return;
    }
    const credentials = options?.auth === undefined ? this.defaultCredentials : encodeCredentials(validateOpaqueAuth(options.auth, 'options.auth'));
    const timeout = options?.timeout ?? this.defaultTimeout;
    if (timeout !== this.defaultTimeout) validateInteger(timeout, 'options.timeout', 0, 0x7fffffff);
    call.xid = this.allocateXid();
    if (channels.callStart.hasSubscribers) this.publishStart(call);
    const now = this.queue.length === this.queueHead && this.writer.writable && this.pending.size < this.maxPendingCalls;
    // The common call (small arguments, a stream that takes it now) is written in place: no gather list.
    let written = false;
    if (now && this.retransmissions === null && this.writer.reserveRecord !== undefined) {
      const inline = inlineLength(args);
      if (inline >= 0) {
        const out = this.writer.reserveRecord(24 + credentials.length + inline);
        if (out !== null) {
          writeCallBody(out, this.writer.reservedAt as number, call, credentials, args);
          this.stats.callsSent++;
          written = true;
        }
      }
    }
    const record = written ? null : callRecordParts(call, credentials, args);
    if (timeout === this.defaultTimeout) {
      if (timeout > 0) this.deadlines.add(call);
    } else if (timeout > 0) call.timer = setTimeout(onCallTimeout, timeout, call, timeout);
    signal?.addEventListener('abort', call, { once: true });
    this.pending.add(call);
    if (record === null) return;
    if (now) this.write(call, record);
    else if (this.queue.length - this.queueHead >= this.maxQueuedCalls) this.fail(call, new QueueFullError(this.maxQueuedCalls));
    else {
      call.record = record;
      this.queue.push(call);
    }
  }

  /** Settles the call a reply is for; a reply for no call (or for one not written yet) is counted. */
  receiveReply(reply: RpcReply): boolean {
    const call = this.pending.get(reply.xid);
    if (!call || call.record !== null) {
      this.stats.unmatchedReplies++;
      return false;
    }
    this.stats.repliesReceived++;
    if (call.wantsReply) {
      this.finish(call);
      call.resolve(reply);
    } else if (reply.replyStat === ReplyStat.MSG_ACCEPTED) {
      if (reply.acceptStat === AcceptStat.SUCCESS) {
        this.finish(call);
        if (call.diagnostic !== null && channels.callEnd.hasSubscribers) channels.callEnd.publish({ call: call.diagnostic });
        call.resolve(reply.results as Buffer);
      } else {
        this.fail(call, acceptedError(reply.acceptStat as number, reply.low, reply.high));
      }
    } else if (reply.authStat !== undefined) {
      this.fail(call, authError(reply.authStat));
    } else {
      this.fail(call, new RpcMismatchError(reply.low as number, reply.high as number));
    }
    return true;
  }

  /**
   * Settles the call a SUCCESS reply is for with its results, bytes `resultsAt` to `end` of `buffer`;
   * false (nothing counted) when no written call has this XID or the call wants the whole reply: decode
   * it fully then.
   */
  receiveResults(xid: number, buffer: Buffer, resultsAt: number, end: number): boolean {
    const call = this.pending.get(xid);
    if (call === undefined || call.record !== null || call.wantsReply) return false;
    this.stats.repliesReceived++;
    this.finish(call);
    if (call.diagnostic !== null && channels.callEnd.hasSubscribers) channels.callEnd.publish({ call: call.diagnostic });
    call.resolve(end === resultsAt ? EMPTY_RESULTS : buffer.subarray(resultsAt, end));
    return true;
  }

  /** Fails the written call with this XID, if there is one (a reply that cannot be read, e.g. too large). */
  failXid(xid: number, error: Error): boolean {
    const call = this.pending.get(xid);
    if (call === undefined || call.record !== null) return false;
    this.fail(call, error);
    return true;
  }

  /** Writes queued calls while the writer takes them and slots are free. */
  flush(): void {
    while (this.queueHead < this.queue.length && this.writer.writable && this.pending.size - this.queuedCount() < this.maxPendingCalls) {
      const call = this.queue[this.queueHead++] as PendingCall;
      if (call.settled) continue;
      const record = call.record as Buffer[];
      call.record = null;
      this.write(call, record);
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Settles a call with an error (timeout, abort, connection loss, an error reply, or a refused write). */
  fail(call: PendingCall, error: Error): void {
    if (call.settled) return;
    this.finish(call);
    tag(error, call);
    if (call.diagnostic !== null && channels.callError.hasSubscribers) channels.callError.publish({ call: call.diagnostic, error });
    call.reject(error);
  }

  private publishStart(call: PendingCall): void {
    const { xid, program, version, procedure } = call;
    call.diagnostic = { xid, program, version, procedure, connection: this.owner };
    channels.callStart.publish({ call: call.diagnostic });
  }

  /** New calls are refused from now on (a graceful close); calls in flight go on. */
  refuseNew(): void {
    this.refusal ??= { closing: true, cause: undefined };
  }

  /** Fails every call (the connection is gone); new calls are refused with `cause`. */
  failAll(cause: Error | undefined): void {
    this.refusal = { closing: false, cause };
    this.deadlines.stop();
    this.retransmissions?.stop();
    const message = cause ? `the connection failed: ${cause.message}` : 'the connection closed before a reply arrived';
    for (const call of this.pending.values()) this.fail(call, new ConnectionClosedError(message, cause));
    this.queue.length = 0;
    this.queueHead = 0;
  }

  private write(call: PendingCall, record: Buffer[]): void {
    try {
      this.writer.writeRecord(record);
    } catch (error) {
      this.fail(call, error as Error);
      return;
    }
    this.stats.callsSent++;
    if (this.retransmissions !== null) {
      call.sent = record;
      this.retransmissions.add(call, 0, performance.now());
    }
  }

  private resend(call: PendingCall, options: RetransmitOptions): void {
    if (options.retries !== undefined && call.resends >= options.retries) {
      this.fail(call, new RpcTimeoutError(options.initial * (options.retries + 1)));
      return;
    }
    call.resends++;
    (this.writer.resendRecord as (parts: Buffer[]) => void)(call.sent as Buffer[]);
  }

  private queuedCount(): number {
    return this.queue.length - this.queueHead;
  }

  private allocateXid(): number {
    this.pending.makeRoom();
    let xid = this.nextXid;
    // Skip XIDs whose slot a long-running call holds (at most half the slots are taken).
    while (!this.pending.isFree(xid)) xid = (xid + 1) >>> 0;
    this.nextXid = (xid + 1) >>> 0;
    return xid;
  }

  private finish(call: PendingCall): void {
    call.settled = true;
    call.record = null;
    if (call.sent !== null) {
      call.sent = null;
      this.retransmissions?.remove(call);
    }
    this.pending.delete(call);
    if (call.deadline !== 0) this.deadlines.remove(call);
    else if (call.timer) {
      clearTimeout(call.timer);
      call.timer = null;
    }
    call.signal?.removeEventListener('abort', call);
    if (this.queueHead < this.queue.length) this.flush();
    this.onSettled?.();
  }
}
