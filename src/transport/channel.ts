import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { RecordTimeoutError, UnexpectedBytesError, UpgradeError, WriteTimeoutError } from './errors.js';
import { type RecordDecoderOptions, MAX_FRAGMENT_LENGTH, RecordDecoder, frameRecord } from './record-marking.js';
import { flushed, stopReadingHandle, unsentBytes } from './stream-io.js';

/**
 * The one owner of a connection's byte stream. It reads records out of the stream (record marking),
 * writes framed records into it (a tick's records leave in one stream write), applies
 * backpressure both ways, keeps the read deadlines (a record started must finish; an idle peer is let
 * go), and swaps the stream for another at a record boundary (`upgrade`, for STARTTLS). The layer above
 * sees records only, never a socket.
 */

/** What the layer above the channel hears. One object, not events: no listener lookups per record. */
export interface RecordSink {
  /**
   * A complete record: bytes `start` to `end` of `buffer` (the chunk it arrived in, or its reassembly).
   * No view is made for it: the sink makes views of the parts it keeps (a call's arguments, a reply's
   * results), which stay valid after it returns.
   */
  onRecord(buffer: Buffer, start: number, end: number): void;
  /** Writes may go on: a blocked stream drained, or an upgrade finished. */
  onWritable(): void;
  /** The channel closed; `error` says why when it was not a clean end. Called once. */
  onClose(error: Error | undefined): void;
  /** Whether anything is in flight above (calls either way); an idle timeout never cuts them off. */
  busy(): boolean;
  /** The idle timeout expired; the sink decides how to close. */
  onIdle(): void;
}

/**
 * A stream that hands out memory for the large records read from it (TlsStream: native memory that goes
 * back to a pool when the GC frees the record, not back to malloc). The channel joins such records there.
 */
export interface RecordMemorySource {
  recordBuffer(length: number): Buffer;
}

export interface ChannelOptions extends RecordDecoderOptions {
  /** Outgoing records are split into fragments of at most this many bytes (default: one fragment). */
  maxFragmentSize?: number;
  /** Milliseconds a peer may take to finish a record it started, counted while reading (0: no limit). */
  recordTimeout?: number;
  /** Milliseconds with nothing received and nothing in flight before `onIdle` (0: never). */
  idleTimeout?: number;
  /** Milliseconds a new stream may take to deliver its first byte before `onIdle` (0: only idleTimeout). */
  firstByteTimeout?: number;
  /**
   * Milliseconds written records may sit unsent with no progress (the peer does not read) before the
   * channel is destroyed with ERR_RPC_WRITE_TIMEOUT (0: no limit).
   */
  writeTimeout?: number;
}

/**
 * Replaces the stream during an upgrade: gets the old stream (reading stopped, the last plaintext
 * record flushed) and resolves with the new one. Rejecting destroys the channel with that error. The
 * signal aborts when the channel is destroyed meanwhile: the upgrader should then give up at once.
 */
export type StreamUpgrader = (stream: Duplex, signal: AbortSignal) => Promise<Duplex>;

const enum Upgrade {
  None,
  /** Reading stops after the next record (the client waits for the STARTTLS reply). */
  StopAfterRecord,
  /** Reading stopped at a record boundary; the swap runs from the next tick. */
  Pending,
  /** The upgrader has the old stream. */
  Running,
}

/** Bits of `RecordChannel.state`; the upgrade state (0-3) takes the two bits at UPGRADE_SHIFT (256, 512). */
const enum State {
  FlushScheduled = 1,
  WriteBlocked = 2,
  ReadPaused = 4,
  Closing = 8,
  Closed = 16,
  RecordTimerArmed = 32,
  ReceivedAny = 64,
  FeedScheduled = 128,
  /** A record completed since the record timer was last (re)started. */
  RecordSinceArmed = 1024,
  /** A record completed in the chunk being pushed. */
  RecordInChunk = 2048,
  /** A record completed since the record timer last fired. */
  RecordSinceTimeout = 4096,
  /** The channel is in its idle check's list. */
  InIdleList = 8192,
}
const UPGRADE_SHIFT = 8;
const UPGRADE_MASK = 3 << UPGRADE_SHIFT;
const RECORD_DELIVERED = State.RecordSinceArmed | State.RecordInChunk | State.RecordSinceTimeout;

/**
 * What few channels ever need, kept out of the channel so that an idle connection carries none of it:
 * the deadline of a blocked write, the linger of a graceful close, an upgrade's abort, a close's reason.
 */
class RareState {
  /** Why the channel closed; undefined for a clean close. */
  closeReason: Error | undefined = undefined;
  writeTimer: NodeJS.Timeout | null = null;
  /** Bytes the stream still had to send when the write timer was (re)armed: less later is progress. */
  unsentAtArm = 0;
  lingerTimer: NodeJS.Timeout | null = null;
  /** Aborted if the channel is destroyed while an upgrader runs. */
  upgradeAbort: AbortController | null = null;
}

type ChannelLimits = Required<Pick<ChannelOptions, 'maxFragmentSize' | 'recordTimeout' | 'idleTimeout' | 'firstByteTimeout' | 'writeTimeout'>>;

/**
 * The channel's limits: `options` itself when it has them all (a server resolves its options once, and its
 * channels share them), else a copy with the defaults filled in.
 */
function channelLimits(options: ChannelOptions): ChannelLimits {
  const { maxFragmentSize, recordTimeout, idleTimeout, firstByteTimeout, writeTimeout } = options;
  if (maxFragmentSize !== undefined && recordTimeout !== undefined && idleTimeout !== undefined && firstByteTimeout !== undefined && writeTimeout !== undefined) {
    return options as ChannelLimits;
  }
  return {
    maxFragmentSize: maxFragmentSize ?? MAX_FRAGMENT_LENGTH,
    recordTimeout: recordTimeout ?? 0,
    idleTimeout: idleTimeout ?? 0,
    firstByteTimeout: firstByteTimeout ?? 0,
    writeTimeout: writeTimeout ?? 0,
  };
}

/**
 * performance.now() rounded up to whole milliseconds, for the times a channel keeps: a small integer is
 * stored in the object itself, where a fraction takes a 16-byte heap number per field per channel. Rounded
 * up, an idle check counts less time than has passed, never more.
 */
function clockMs(): number {
  return Math.ceil(performance.now());
}

export class RecordChannel {
  private stream: Duplex | null = null;
  private readonly decoder: InstanceType<typeof RecordChannel.Decoder>;
  /** The limits, one object shared by every channel of a server (see channelLimits). */
  private readonly limits: ChannelLimits;
  private readonly sink: RecordSink;

  /** This tick's writes, all of which go to the stream once, at the end of the tick; null while none. */
  private tick: TickWrites | null = null;
  /**
   * The channel's booleans and its upgrade state, packed in one small integer (read through the
   * accessors below): as fields they took 8 bytes each of every idle connection, thirteen of them 104.
   */
  private state = 0;

  /** Created on first use and refreshed: no timer per chunk. */
  private recordTimer: NodeJS.Timeout | null = null;
  /** Our place in the list of the idle check shared by every channel with this idleTimeout. */
  private idlePrev: RecordChannel | null = null;
  private idleNext: RecordChannel | null = null;
  /** clockMs() of the last chunk received (or of the stream's start). */
  private lastReceived = 0;
  /** clockMs() of the last complete record received (or of the stream's start). */
  private lastRecordAt = 0;
  private firstByteTimer: NodeJS.Timeout | null = null;
  /** What few channels need (see RareState), made at first use. */
  private rareState: RareState | null = null;

  constructor(stream: Duplex | null, sink: RecordSink, options: ChannelOptions = {}) {
    this.sink = sink;
    this.limits = channelLimits(options);
    this.decoder = new RecordChannel.Decoder(this, options);
    if (stream) this.attach(stream);
  }

  // ---- the packed state ----------------------------------------------------------------------------

  private get rare(): RareState {
    return (this.rareState ??= new RareState());
  }

  /** Why the channel closed; undefined for a clean close (and while open). */
  get closeReason(): Error | undefined {
    return this.rareState?.closeReason;
  }

  private flag(bit: State): boolean {
    return (this.state & bit) !== 0;
  }

  private setFlag(bit: State, on: boolean): void {
    this.state = on ? this.state | bit : this.state & ~bit;
  }

  /** A flush of the tick's writes is scheduled. */
  private get flushScheduled(): boolean {
    return this.flag(State.FlushScheduled);
  }
  private set flushScheduled(on: boolean) {
    this.setFlag(State.FlushScheduled, on);
  }

  private get writeBlocked(): boolean {
    return this.flag(State.WriteBlocked);
  }
  private set writeBlocked(on: boolean) {
    this.setFlag(State.WriteBlocked, on);
  }

  private get readPaused(): boolean {
    return this.flag(State.ReadPaused);
  }
  private set readPaused(on: boolean) {
    this.setFlag(State.ReadPaused, on);
  }

  private get closing(): boolean {
    return this.flag(State.Closing);
  }
  private set closing(on: boolean) {
    this.setFlag(State.Closing, on);
  }

  private get isClosed(): boolean {
    return this.flag(State.Closed);
  }
  private set isClosed(on: boolean) {
    this.setFlag(State.Closed, on);
  }

  private get recordTimerArmed(): boolean {
    return this.flag(State.RecordTimerArmed);
  }
  private set recordTimerArmed(on: boolean) {
    this.setFlag(State.RecordTimerArmed, on);
  }

  private get receivedAny(): boolean {
    return this.flag(State.ReceivedAny);
  }
  private set receivedAny(on: boolean) {
    this.setFlag(State.ReceivedAny, on);
  }

  /** Held bytes are to be pushed again on the next tick. */
  private get feedScheduled(): boolean {
    return this.flag(State.FeedScheduled);
  }
  private set feedScheduled(on: boolean) {
    this.setFlag(State.FeedScheduled, on);
  }

  private get upgradeState(): Upgrade {
    return ((this.state & UPGRADE_MASK) >>> UPGRADE_SHIFT) as Upgrade;
  }
  private set upgradeState(upgrade: Upgrade) {
    this.state = (this.state & ~UPGRADE_MASK) | (upgrade << UPGRADE_SHIFT);
  }

  /** The stream underneath (for diagnostics): null once closed, and while an upgrade holds it. */
  get transport(): Duplex | null {
    return this.upgradeState === Upgrade.Running ? null : this.stream;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** True while a record may be written at once (no backpressure, no upgrade prepared or under way). */
  get writable(): boolean {
    return this.stream !== null && !this.writeBlocked && this.upgradeState === Upgrade.None && !this.isClosed;
  }

  /** True between an upgrade's start and the new stream's attachment. */
  get upgrading(): boolean {
    return this.upgradeState >= Upgrade.Pending;
  }

  // ---- writing -----------------------------------------------------------------------------------

  /**
   * Writes one record given as a gather list whose first 4 bytes are left for the record mark. Records
   * written in the same tick leave in one stream write: small parts are copied into one buffer (a tick of
   * NULL replies is one buffer, not a writev of hundreds), large parts are referenced, never copied.
   * Returns false when the stream wants no more for now (the sink hears `onWritable` when it does); the
   * record itself is always taken.
   */
  write(parts: Buffer[]): boolean {
    const stream = this.stream;
    if (stream === null || this.isClosed) return false;
    const framed = frameRecord(parts, parts[0] as Buffer, this.limits.maxFragmentSize);
    const tick = (this.tick ??= spareTicks.pop() ?? new TickWrites());
    for (let i = 0; i < framed.length; i++) {
      const part = framed[i] as Buffer;
      if (part.length <= COPY_LIMIT) tick.copyOut(part);
      else tick.refer(part);
      tick.bytes += part.length;
    }
    return this.afterWrite(stream, tick);
  }

  /** Where the body of the record the last `reserve()` (of any channel) made room for starts. */
  get reservedAt(): number {
    return reservedAt;
  }

  /**
   * Room for one small record written in place, with no gather list and no copy: returns the output pool,
   * the record mark already in, and the body (`bodyLength` bytes) to be written at `reservedAt` before
   * anything else is written. Null when the record must go through `write()` (too large, no stream, or
   * closed). The record is taken; `writable` says whether more may follow now.
   */
  reserve(bodyLength: number): Buffer | null {
    const stream = this.stream;
    const length = bodyLength + 4;
    if (stream === null || this.isClosed || length > COPY_LIMIT || bodyLength > this.limits.maxFragmentSize) return null;
    const tick = (this.tick ??= spareTicks.pop() ?? new TickWrites());
    const at = tick.take(length);
    const out = pool;
    const mark = (LAST_FRAGMENT_BIT | bodyLength) >>> 0;
    out[at] = mark >>> 24;
    out[at + 1] = mark >>> 16;
    out[at + 2] = mark >>> 8;
    out[at + 3] = mark;
    reservedAt = at + 4;
    tick.bytes += length;
    this.afterWrite(stream, tick);
    return out;
  }

  /** Schedules the tick's flush; counts what waits against the stream's mark (false: blocked). */
  private afterWrite(stream: Duplex, tick: TickWrites): boolean {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(RecordChannel.flushOnTick, this);
    }
    if (this.writeBlocked) return false;
    if (stream.writableLength + tick.bytes < stream.writableHighWaterMark) return true;
    this.writeBlocked = true;
    if (this.limits.writeTimeout > 0 && (this.rareState === null || this.rareState.writeTimer === null)) this.armWriteTimer(stream);
    return false;
  }

  /** Hands the tick's bytes to the stream: one write, or a corked run of them when large parts are referenced. */
  private flushOutgoing(): void {
    const tick = this.tick;
    if (tick === null) return;
    this.tick = null;
    // A list exists only once a tick wrote a large part; the common tick (small records only) is one
    // region, written as it is.
    const listed = tick.list !== null && tick.list.length > 0 ? tick.list : null;
    let single: Buffer | null = null;
    if (listed !== null) {
      tick.closeRegion();
      if (listed.length === 1) single = listed[0] as Buffer;
    } else if (tick.regionEnd !== tick.regionStart) {
      single = tick.regionPool.subarray(tick.regionStart, tick.regionEnd);
    }
    const stream = this.stream;
    let ok = true;
    const wrote = stream !== null && (single !== null || listed !== null);
    if (stream !== null && single !== null) ok = stream.write(single);
    else if (stream !== null && listed !== null) {
      stream.cork();
      for (const chunk of listed) ok = stream.write(chunk);
      stream.uncork();
    }
    tick.release();
    if (!wrote) return;
    // Blocked by our own count, but the stream took it all below its mark: it will never emit 'drain'.
    if (ok && this.writeBlocked) process.nextTick(RecordChannel.drained, this);
  }

  /**
   * performance.now() of the last complete record received, or of the stream's start, rounded up to the
   * millisecond: a peer dribbling a record it never finishes is not active, however recent its last byte.
   */
  get lastActivity(): number {
    return this.lastRecordAt;
  }

  private armWriteTimer(stream: Duplex): void {
    const rare = this.rare;
    rare.unsentAtArm = unsentBytes(stream);
    rare.writeTimer = setTimeout(RecordChannel.onWriteTimeout, this.limits.writeTimeout, this);
    rare.writeTimer.unref();
  }

  // Timer callbacks are static and get the channel as their argument: no closure per connection.
  private static onWriteTimeout(channel: RecordChannel): void {
    channel.rare.writeTimer = null;
    // Judged once the loop has run its I/O (see confirmSilent): a stalled process wrote nothing meanwhile,
    // however much the peer read.
    setImmediate(RecordChannel.confirmWriteTimeout, channel);
  }

  private static confirmWriteTimeout(channel: RecordChannel): void {
    const stream = channel.stream;
    const rare = channel.rare;
    if (stream === null || channel.isClosed || !channel.writeBlocked || rare.writeTimer !== null) return;
    // Progress (the peer read some) restarts the deadline; none in writeTimeout ms ends the connection.
    if (unsentBytes(stream) < rare.unsentAtArm) channel.armWriteTimer(stream);
    else channel.destroy(new WriteTimeoutError(stream.writableLength, channel.limits.writeTimeout));
  }

  // ---- reading -----------------------------------------------------------------------------------

  /** Stops delivering records (the rest of a chunk is held, not parsed) and reading the stream. */
  pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.decoder.pause();
    this.stream?.pause();
    if (this.limits.recordTimeout > 0) this.watchRecord();
  }

  resumeReading(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    this.decoder.unpause();
    // Held bytes go first (nextTick runs before the stream's own resume), outside the sink's stack.
    if (this.decoder.heldBytes > 0 && !this.feedScheduled) {
      this.feedScheduled = true;
      process.nextTick(RecordChannel.feedHeld, this);
    }
    if (this.upgradeState === Upgrade.None) this.stream?.resume();
    if (this.limits.recordTimeout > 0) this.watchRecord();
  }

  private static feedHeld(channel: RecordChannel): void {
    channel.feedScheduled = false;
    if (channel.readPaused || channel.isClosed) return;
    const held = channel.decoder.takeHeld();
    if (held !== null) channel.receive(held);
  }

  private receive(chunk: Buffer): void {
    this.state &= ~State.RecordInChunk;
    try {
      this.decoder.push(chunk);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    // One clock read per chunk, not per record.
    this.lastReceived = clockMs();
    if (this.flag(State.RecordInChunk)) this.lastRecordAt = this.lastReceived;
    if (!this.receivedAny) {
      this.receivedAny = true;
      if (this.firstByteTimer !== null) clearTimeout(this.firstByteTimer);
      this.firstByteTimer = null;
    }
    if (this.limits.recordTimeout > 0) this.watchRecord();
  }

  /** The record decoder of a channel: hands each record to its channel where it lies, with no view. */
  private static readonly Decoder = class ChannelDecoder extends RecordDecoder {
    constructor(
      private readonly channel: RecordChannel,
      options: RecordDecoderOptions,
    ) {
      super(noop, options);
    }

    protected override deliver(buffer: Buffer, start: number, end: number): void {
      this.channel.deliver(buffer, start, end);
    }

    protected override allocateRecord(length: number): Buffer {
      const source = this.channel.stream as Partial<RecordMemorySource> | null;
      return typeof source?.recordBuffer === 'function' ? source.recordBuffer(length) : Buffer.allocUnsafe(length);
    }
  };

  private deliver(buffer: Buffer, start: number, end: number): void {
    this.state |= RECORD_DELIVERED;
    if (this.upgradeState === Upgrade.StopAfterRecord) this.stopAtBoundary();
    this.sink.onRecord(buffer, start, end);
  }

  // ---- upgrade (STARTTLS) -------------------------------------------------------------------------

  /**
   * Makes the next record received the last one read from this stream, and holds writes (`writable` is
   * false) until the upgrade: a client calls this right after writing its probe, whose reply is the last
   * plaintext record, then `upgrade()` once it has judged the reply.
   */
  stopAfterNextRecord(): void {
    if (this.upgradeState === Upgrade.None) this.upgradeState = Upgrade.StopAfterRecord;
  }

  /**
   * Swaps the stream at a record boundary. Called from `onRecord` (the record just delivered is the last
   * one of the old stream), or after `stopAfterNextRecord()` once that record arrived. Bytes the peer
   * sent after that record belong to no layer that could read them (RFC 9289 forbids them): the channel
   * is then destroyed with ERR_RPC_UNEXPECTED_BYTES and nothing more is written. Otherwise `lastRecord`
   * (a gather list with a 4-byte mark slot, e.g. the STARTTLS reply) is written in clear and flushed,
   * the upgrader gets the old stream and the channel resumes on the stream it returns. Records written
   * meanwhile wait above (`writable` is false) and the sink hears `onWritable` when they may go.
   */
  upgrade(lastRecord: Buffer[] | null, upgrader: StreamUpgrader): Promise<void> {
    if (this.isClosed) return Promise.reject(new UpgradeError('cannot upgrade a closed connection', this.closeReason));
    if (this.upgradeState >= Upgrade.Pending || this.stream === null) {
      return Promise.reject(new UpgradeError('an upgrade is already under way'));
    }
    if (this.decoder.inRecord) return Promise.reject(new UpgradeError('cannot upgrade inside a record'));
    this.stopAtBoundary();
    this.upgradeState = Upgrade.Pending;
    return new Promise<void>((resolve, reject) => {
      // Next tick: bytes after the boundary in the chunk being parsed are counted by then.
      process.nextTick(() => {
        this.runUpgrade(lastRecord, upgrader).then(resolve, (error: Error) => {
          this.destroy(error);
          reject(error);
        });
      });
    });
  }

  /** Stops parsing after the current record and stops the stream from reading more. */
  private stopAtBoundary(): void {
    this.decoder.halt();
    const stream = this.stream;
    if (stream === null) return;
    stream.pause();
    stopReadingHandle(stream);
  }

  private async runUpgrade(lastRecord: Buffer[] | null, upgrader: StreamUpgrader): Promise<void> {
    if (this.isClosed) throw new UpgradeError('the connection closed before the upgrade', this.closeReason);
    const leftover = this.decoder.leftover + this.decoder.heldBytes;
    if (leftover > 0) throw new UnexpectedBytesError(leftover);
    const old = this.stream as Duplex;
    if (lastRecord !== null) this.write(lastRecord);
    // Everything written before the boundary leaves on the old stream, in the clear.
    this.flushOutgoing();
    await flushed(old);
    if (this.isClosed) throw new UpgradeError('the connection closed before the upgrade', this.closeReason);
    this.detach(old);
    this.upgradeState = Upgrade.Running;
    const abort = new AbortController();
    this.rare.upgradeAbort = abort;
    let next: Duplex;
    try {
      next = await upgrader(old, abort.signal);
    } catch (error) {
      old.destroy();
      throw error;
    } finally {
      this.rare.upgradeAbort = null;
    }
    if (this.isClosed) {
      next.destroy();
      throw new UpgradeError('the connection closed during the upgrade', this.closeReason);
    }
    this.upgradeState = Upgrade.None;
    this.decoder.resume();
    this.attach(next);
    this.sink.onWritable();
  }

  private attach(stream: Duplex): void {
    this.stream = stream;
    this.writeBlocked = false;
    (stream as OwnedStream)[kChannel] = this;
    stream.on('data', RecordChannel.onStreamData);
    stream.on('end', RecordChannel.onStreamEnd);
    stream.on('error', RecordChannel.onStreamError);
    stream.on('close', RecordChannel.onStreamClose);
    stream.on('drain', RecordChannel.onStreamDrain);
    if (this.readPaused) stream.pause();
    this.lastReceived = this.lastRecordAt = clockMs();
    // A peer that never sends a byte is idle too.
    if (this.limits.idleTimeout > 0 && !this.flag(State.InIdleList)) RecordChannel.IdleSweep.join(this, this.limits.idleTimeout);
    if (this.limits.firstByteTimeout > 0 && !this.receivedAny && this.firstByteTimer === null) {
      this.firstByteTimer = setTimeout(RecordChannel.onFirstByteTimeout, this.limits.firstByteTimeout, this);
      this.firstByteTimer.unref();
    }
  }

  // Stream listeners are shared: they run with the stream as `this` and find their channel on it (a
  // closure per listener per connection cost about 700 bytes of heap for every idle connection).
  private static onStreamData(this: OwnedStream, chunk: Buffer): void {
    this[kChannel]?.receive(chunk);
  }

  private static onStreamEnd(this: OwnedStream): void {
    const channel = this[kChannel];
    if (channel) channel.destroy(channel.decoder.end() ?? undefined);
  }

  private static onStreamError(this: OwnedStream, error: Error): void {
    this[kChannel]?.destroy(error);
  }

  private static onStreamClose(this: OwnedStream): void {
    this[kChannel]?.destroy();
  }

  private static onStreamDrain(this: OwnedStream): void {
    const channel = this[kChannel];
    if (channel) RecordChannel.drained(channel);
  }

  private static drained(channel: RecordChannel): void {
    channel.writeBlocked = false;
    const rare = channel.rareState;
    if (rare !== null && rare.writeTimer !== null) {
      clearTimeout(rare.writeTimer);
      rare.writeTimer = null;
    }
    channel.sink.onWritable();
  }

  private static flushOnTick(channel: RecordChannel): void {
    channel.flushScheduled = false;
    channel.flushOutgoing();
  }

  /**
   * The idle check of every channel with the same idleTimeout, on one timer: a timer per connection cost
   * about 150 bytes of heap for each idle one. Channels are linked through their own fields (no Set), and
   * the list is walked every idleTimeout / 4, as each channel's own timer did.
   */
  private static readonly IdleSweep = class IdleSweep {
    static readonly sweeps = new Map<number, IdleSweep>();
    private head: RecordChannel | null = null;
    /** The next channel the walk under way will check (moved on when that one leaves). */
    private cursor: RecordChannel | null = null;
    private readonly timer: NodeJS.Timeout;

    constructor(private readonly timeoutMs: number) {
      this.timer = setInterval(IdleSweep.walk, Math.max(10, Math.ceil(timeoutMs / 4)), this);
      this.timer.unref();
    }

    static join(channel: RecordChannel, timeoutMs: number): void {
      let sweep = IdleSweep.sweeps.get(timeoutMs);
      if (sweep === undefined) {
        sweep = new IdleSweep(timeoutMs);
        IdleSweep.sweeps.set(timeoutMs, sweep);
      }
      channel.idleNext = sweep.head;
      if (sweep.head !== null) sweep.head.idlePrev = channel;
      sweep.head = channel;
      channel.setFlag(State.InIdleList, true);
    }

    leave(channel: RecordChannel): void {
      const { idlePrev: prev, idleNext: next } = channel;
      if (this.cursor === channel) this.cursor = next;
      if (prev !== null) prev.idleNext = next;
      else this.head = next;
      if (next !== null) next.idlePrev = prev;
      channel.idlePrev = channel.idleNext = null;
      channel.setFlag(State.InIdleList, false);
      if (this.head === null) {
        clearInterval(this.timer);
        IdleSweep.sweeps.delete(this.timeoutMs);
      }
    }

    private static walk(sweep: IdleSweep): void {
      sweep.cursor = sweep.head;
      while (sweep.cursor !== null) {
        const channel = sweep.cursor;
        sweep.cursor = channel.idleNext;
        RecordChannel.checkIdle(channel);
      }
    }
  };

  private static onFirstByteTimeout(channel: RecordChannel): void {
    channel.firstByteTimer = null;
    if (!channel.receivedAny && !channel.isClosed && !channel.closing) setImmediate(RecordChannel.confirmSilent, channel);
  }

  // Timers run before the event loop reads and writes the sockets: after a stall (a loaded machine, a long
  // handler) bytes that came in time may still wait unread, and bytes the peer made room for unwritten. So
  // a channel a timer finds quiet (or stuck) is judged again once the loop has run its I/O (setImmediate
  // runs after that), and only then closed.

  private static confirmSilent(channel: RecordChannel): void {
    if (!channel.receivedAny && !channel.isClosed && !channel.closing) channel.sink.onIdle();
  }

  private static confirmIdle(channel: RecordChannel, lastReceived: number): void {
    if (channel.isClosed || channel.closing || channel.lastReceived !== lastReceived) return;
    if (channel.sink.busy() || channel.decoder.inRecord || channel.upgradeState !== Upgrade.None) return;
    channel.sink.onIdle();
  }

  private detach(stream: Duplex): void {
    stream.off('data', RecordChannel.onStreamData);
    stream.off('end', RecordChannel.onStreamEnd);
    stream.off('error', RecordChannel.onStreamError);
    stream.off('close', RecordChannel.onStreamClose);
    stream.off('drain', RecordChannel.onStreamDrain);
    (stream as OwnedStream)[kChannel] = null;
    // A late error on a stream we no longer own must not become an uncaught exception.
    stream.on('error', noop);
  }

  // ---- read deadlines ------------------------------------------------------------------------------

  /**
   * Times the record under way while we are reading: started when one begins, restarted when a record
   * completed since (a busy stream often ends its chunks mid-record), stopped otherwise.
   */
  private watchRecord(): void {
    const wanted = this.decoder.inRecord && !this.readPaused && !this.isClosed;
    if (!wanted) {
      if (this.recordTimerArmed && this.recordTimer) clearTimeout(this.recordTimer);
      this.recordTimerArmed = false;
      return;
    }
    if (this.recordTimerArmed && !this.flag(State.RecordSinceArmed)) return;
    this.setFlag(State.RecordSinceArmed, false);
    if (this.recordTimerArmed && this.recordTimer) {
      this.recordTimer.refresh(); // still running: restart it without a new timer
    } else {
      this.recordTimer = setTimeout(RecordChannel.onRecordTimeout, this.limits.recordTimeout, this);
      this.recordTimer.unref();
    }
    this.recordTimerArmed = true;
  }

  private static onRecordTimeout(channel: RecordChannel): void {
    channel.recordTimerArmed = false;
    channel.setFlag(State.RecordSinceTimeout, false);
    // Judged again once the loop has read what arrived (see confirmSilent).
    if (channel.decoder.inRecord && !channel.readPaused) setImmediate(RecordChannel.confirmRecordTimeout, channel);
  }

  private static confirmRecordTimeout(channel: RecordChannel): void {
    if (channel.isClosed || channel.recordTimerArmed || channel.flag(State.RecordSinceTimeout)) return;
    if (channel.decoder.inRecord && !channel.readPaused) channel.destroy(new RecordTimeoutError(channel.decoder.buffered, channel.limits.recordTimeout));
  }

  private static checkIdle(channel: RecordChannel): void {
    if (channel.isClosed || channel.closing) return;
    if (channel.sink.busy() || channel.decoder.inRecord || channel.upgradeState !== Upgrade.None) {
      channel.lastReceived = clockMs();
      return;
    }
    if (performance.now() - channel.lastReceived >= channel.limits.idleTimeout) setImmediate(RecordChannel.confirmIdle, channel, channel.lastReceived);
  }

  // ---- closing -------------------------------------------------------------------------------------

  /** Ends the stream after every written record; the channel closes once they are flushed. */
  end(): void {
    if (this.isClosed || this.closing) return;
    this.closing = true;
    const stream = this.stream;
    if (stream === null || !stream.writable || this.upgradeState >= Upgrade.Pending) {
      this.destroy();
      return;
    }
    this.flushOutgoing();
    stream.end();
    // Once our data is flushed, the peer's end (in TLS: its close_notify answering ours) closes the
    // channel; a peer that keeps its side open is cut off after CLOSE_LINGER_MS.
    stream.once('finish', () => {
      if (this.isClosed) return;
      if (stream.readableEnded || !stream.readable) {
        this.destroy();
        return;
      }
      const linger = setTimeout(() => this.destroy(), CLOSE_LINGER_MS);
      linger.unref();
      this.rare.lingerTimer = linger;
    });
  }

  /** Closes at once; the sink hears `onClose(error)`. */
  destroy(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (error !== undefined) this.rare.closeReason = error;
    const rare = this.rareState;
    if (rare !== null) {
      rare.upgradeAbort?.abort(error);
      if (rare.writeTimer) clearTimeout(rare.writeTimer);
      if (rare.lingerTimer) clearTimeout(rare.lingerTimer);
    }
    if (this.recordTimer) clearTimeout(this.recordTimer);
    if (this.flag(State.InIdleList)) RecordChannel.IdleSweep.sweeps.get(this.limits.idleTimeout)?.leave(this);
    if (this.firstByteTimer) clearTimeout(this.firstByteTimer);
    const stream = this.stream;
    this.stream = null;
    if (stream) {
      this.detach(stream);
      stream.destroy();
    }
    this.sink.onClose(error);
  }
}

function noop(): void {}

const kChannel = Symbol('rpctls.channel');
/** A stream a channel reads: the channel it belongs to, for the shared listeners below. */
type OwnedStream = Duplex & { [kChannel]?: RecordChannel | null };


/** Parts up to this size are copied into the output pool; larger ones are referenced. */
const COPY_LIMIT = 2048;
const LAST_FRAGMENT_BIT = 0x80000000;
/**
 * One output pool for every channel in the process, as Buffer.allocUnsafe pools small buffers: an idle
 * connection holds none of it, and a busy one takes only what it writes.
 */
const POOL_SIZE = 64 * 1024;
const EMPTY_POOL = Buffer.alloc(0);
let pool = EMPTY_POOL;
let poolUsed = 0;
/** Where the body of the record the last `reserve()` made room for starts (read at once by its caller). */
let reservedAt = 0;

/**
 * One channel's writes during one tick: small parts copied into the output pool (one region per run of
 * small parts), large parts referenced, never copied. Taken at the tick's first write and given back once
 * the bytes went to the stream, so an idle channel holds none of this.
 */
class TickWrites {
  /** Closed regions and large parts, in order; made at the first large part (a tick of small records is one region). */
  list: Buffer[] | null = null;
  /** Bytes written this tick. */
  bytes = 0;
  /** The pool the open region is in. */
  regionPool: Buffer = EMPTY_POOL;
  /** The open region: copied into, not yet queued in `list`. */
  regionStart = 0;
  regionEnd = 0;

  /** Room for `length` bytes at the end of the open region (a new region where it cannot grow); returns where it is in `pool`. */
  take(length: number): number {
    // The region grows while nothing else took pool bytes after it; otherwise a new region starts.
    if (this.regionPool !== pool || this.regionEnd !== poolUsed || pool.length - poolUsed < length) this.openRegion(length);
    const at = poolUsed;
    poolUsed += length;
    this.regionEnd = poolUsed;
    return at;
  }

  copyOut(part: Buffer): void {
    // take() first: it may start a fresh pool. TypedArray#set: Buffer#copy's argument handling costs
    // more than copying a small part.
    const at = this.take(part.length);
    pool.set(part, at);
  }

  /** Queues a large part after what was copied so far. */
  refer(part: Buffer): void {
    this.closeRegion();
    (this.list ??= []).push(part);
  }

  /** Queues the region copied since the last one, so what follows keeps its place behind it. */
  closeRegion(): void {
    if (this.regionEnd === this.regionStart) return;
    (this.list ??= []).push(this.regionPool.subarray(this.regionStart, this.regionEnd));
    this.regionStart = this.regionEnd;
  }

  /** Forgets this tick's bytes (the stream has them, or the channel closed) and goes back to the spares. */
  release(): void {
    if (this.list !== null) this.list.length = 0;
    this.bytes = 0;
    // A spare must not pin a pool the process has moved past.
    this.regionPool = EMPTY_POOL;
    this.regionStart = this.regionEnd = 0;
    if (spareTicks.length < MAX_SPARE_TICKS) spareTicks.push(this);
  }

  /** Starts a new region at the pool's end, in a fresh pool when `length` does not fit. */
  private openRegion(length: number): void {
    this.closeRegion();
    if (pool.length - poolUsed < length) {
      // Regions handed to a stream stay untouched until it is done with them: a full pool is left to
      // the streams (and the GC), never reused.
      pool = Buffer.allocUnsafeSlow(POOL_SIZE);
      poolUsed = 0;
    }
    this.regionPool = pool;
    this.regionStart = this.regionEnd = poolUsed;
  }
}

/** Ticks' writes given back, for the next channel that writes (as many as channels write in one tick, at most this). */
const spareTicks: TickWrites[] = [];
const MAX_SPARE_TICKS = 1024;

/** How long a graceful end() waits, after our data is flushed, for the peer to end its side. */
const CLOSE_LINGER_MS = 500;
