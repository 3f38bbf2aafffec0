import { RecordTooLargeError, TooManyFragmentsError, TruncatedRecordError } from './errors.js';

/**
 * Record marking (RFC 5531 section 11): turns a byte stream into records and records into framed bytes.
 * It knows nothing of what a record contains.
 */

const LAST_FRAGMENT = 0x80000000;
/** A fragment's length field is 31 bits. */
export const MAX_FRAGMENT_LENGTH = 0x7fffffff;

/**
 * Default cap on one record: NFS moves up to 1 MiB of data per READ/WRITE, plus headers (RPC, NFSv4
 * COMPOUND), so 1 MiB + 64 KiB fits the largest NFS I/O with room to spare while bounding memory.
 */
export const DEFAULT_MAX_RECORD_SIZE = 1024 * 1024 + 64 * 1024;
/** Default cap on fragments per record: real peers send one; thousands means a flood. */
export const DEFAULT_MAX_FRAGMENTS = 1024;

const EMPTY_RECORD = Buffer.alloc(0);
/** Bytes of a record too large that its error keeps (`head`). */
const HEAD_BYTES = 64;
/** Pieces at least this long that fill most of their memory are kept as views, not copied. */
const KEEP_VIEW_MIN = 16 * 1024;
/** Records at least this long are joined into memory from `allocateRecord`; shorter ones by Buffer.concat. */
const JOIN_OWN_MEMORY_MIN = 32 * 1024;
/** Smallest staging buffer for copied pieces: the constant in "memory <= 2x the bytes held + constant". */
const STAGE_MIN = 4096;

const enum DecoderState {
  LastFragment = 1,
  Halted = 2,
  Paused = 4,
  /** A record was delivered (a too-large first record is reported as such: likely no RPC peer). */
  Delivered = 8,
}

export interface RecordDecoderOptions {
  maxRecordSize?: number;
  maxFragments?: number;
}

/**
 * Incremental reassembler. `push` takes whatever the stream delivered and calls `onRecord` for each
 * complete record. A record that lies within one chunk is passed as a view of it (no copy); one spread
 * over chunks is copied once when complete. Sizes are checked against the caps as each fragment header
 * arrives, before any byte of the fragment is kept, and nothing is ever allocated from a claimed length.
 */
export class RecordDecoder {
  /**
   * The caps: the options object itself when it names both (a server's connections share one, so it is
   * kept, not copied: change it and every decoder made with it follows).
   */
  private readonly limits: Required<RecordDecoderOptions>;
  private readonly onRecord: (record: Buffer) => void;

  /** A header split over chunks, its bytes so far (a number: no buffer per connection). */
  private headerPart = 0;
  private headerFill = 0;
  /** Bytes of the current fragment still to come; -1 while reading a header. */
  private fragmentLeft = -1;
  private fragments = 0;
  private recordLength = 0;
  /** The record spread over chunks being reassembled; null while none is (an idle decoder holds none). */
  private partial: Reassembly | null = null;
  /** Bits of DecoderState: booleans packed in one small integer (8 bytes a field per connection). */
  private state = 0;
  /** Bytes of the chunk being pushed that were left unread because `halt()` was called. */
  leftover = 0;
  /** The unparsed rest of a chunk, kept by `pause()` (a view: at most one chunk, never copied). */
  private held: Buffer | null = null;

  constructor(onRecord: (record: Buffer) => void, options?: RecordDecoderOptions) {
    this.onRecord = onRecord;
    const maxRecordSize = options?.maxRecordSize;
    const maxFragments = options?.maxFragments;
    this.limits =
      maxRecordSize !== undefined && maxFragments !== undefined
        ? (options as Required<RecordDecoderOptions>)
        : { maxRecordSize: maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE, maxFragments: maxFragments ?? DEFAULT_MAX_FRAGMENTS };
  }

  get maxRecordSize(): number {
    return this.limits.maxRecordSize;
  }

  get maxFragments(): number {
    return this.limits.maxFragments;
  }

  /** The fragment being read is the record's last. */
  private get lastFragment(): boolean {
    return (this.state & DecoderState.LastFragment) !== 0;
  }
  private set lastFragment(on: boolean) {
    this.state = on ? this.state | DecoderState.LastFragment : this.state & ~DecoderState.LastFragment;
  }

  private get halted(): boolean {
    return (this.state & DecoderState.Halted) !== 0;
  }
  private set halted(on: boolean) {
    this.state = on ? this.state | DecoderState.Halted : this.state & ~DecoderState.Halted;
  }

  private get paused(): boolean {
    return (this.state & DecoderState.Paused) !== 0;
  }
  private set paused(on: boolean) {
    this.state = on ? this.state | DecoderState.Paused : this.state & ~DecoderState.Paused;
  }

  /** True when no partial record is buffered (a safe point to swap the byte stream underneath). */
  get idle(): boolean {
    return this.fragmentLeft === -1 && this.headerFill === 0 && this.fragments === 0 && this.held === null;
  }

  /** True while a record has begun but not completed (bytes held by `pause()` do not count). */
  get inRecord(): boolean {
    return this.fragmentLeft !== -1 || this.headerFill !== 0 || this.fragments !== 0;
  }

  /** Bytes kept unparsed by `pause()`. */
  get heldBytes(): number {
    return this.held?.length ?? 0;
  }

  /** Bytes of the current partial record received so far. */
  get buffered(): number {
    return this.recordLength - Math.max(this.fragmentLeft, 0) + this.headerFill;
  }

  /** Feeds bytes; throws RecordTooLargeError/TooManyFragmentsError (the stream must then be closed). */
  push(chunk: Buffer): void {
    if (this.held !== null) {
      // Bytes kept by pause() come first (rare: a stream that delivers more while paused).
      chunk = Buffer.concat([this.held, chunk]);
      this.held = null;
    }
    let at = 0;
    const end = chunk.length;
    while (at < end) {
      if (this.halted) {
        this.leftover += end - at;
        return;
      }
      if (this.paused) {
        this.held = chunk.subarray(at);
        return;
      }
      if (this.fragmentLeft === -1) {
        // Fast path: a whole header inside the chunk.
        let word: number;
        if (this.headerFill === 0 && end - at >= 4) {
          word = chunk.readUInt32BE(at);
          at += 4;
        } else {
          while (this.headerFill < 4 && at < end) {
            this.headerPart = this.headerPart * 256 + (chunk[at++] as number);
            this.headerFill++;
          }
          if (this.headerFill < 4) return;
          word = this.headerPart;
          this.headerFill = 0;
          this.headerPart = 0;
        }
        if (this.startFragment(word, chunk, at) === 0) this.endFragment();
        continue;
      }
      const take = Math.min(this.fragmentLeft, end - at);
      // Whole record in this chunk: delivered where it lies, never copied.
      if (this.lastFragment && this.partial === null && take === this.fragmentLeft) {
        const start = at;
        at += take;
        this.reset();
        this.state |= DecoderState.Delivered;
        this.deliver(chunk, start, at);
        continue;
      }
      this.keep(chunk.subarray(at, at + take));
      this.fragmentLeft -= take;
      at += take;
      if (this.fragmentLeft === 0) this.endFragment();
    }
  }

  /**
   * Stops reassembly after the record being delivered (called from `onRecord`): later bytes of the same
   * chunk are not parsed but counted in `leftover`. Used at STARTTLS, where nothing may follow the probe.
   */
  halt(): void {
    this.halted = true;
  }

  /**
   * Stops delivering records after the one being delivered (called from `onRecord`, e.g. when the
   * receiver hit its in-flight cap): the rest of the chunk is kept, not parsed, until `unpause()` and
   * `takeHeld()`. Unlike `halt()`, nothing is dropped. Pause the stream too, or chunks pile up here.
   */
  pause(): void {
    this.paused = true;
  }

  unpause(): void {
    this.paused = false;
  }

  /** The bytes kept by `pause()`, to push again (asynchronously: never from inside `onRecord`). */
  takeHeld(): Buffer | null {
    const held = this.held;
    this.held = null;
    return held;
  }

  /** Undoes `halt()` for the next stream (after an upgrade). */
  resume(): void {
    this.halted = false;
    this.leftover = 0;
  }

  /** Call when the stream ended: a partial record becomes a TruncatedRecordError (returned, not thrown). */
  end(): TruncatedRecordError | null {
    if (this.idle) return null;
    const received = this.buffered;
    this.reset();
    return new TruncatedRecordError(received);
  }

  /** Checks the caps and returns the fragment's length; `chunk` from `at` holds the bytes after the header. */
  private startFragment(word: number, chunk: Buffer, at: number): number {
    const length = word & MAX_FRAGMENT_LENGTH;
    this.lastFragment = (word & LAST_FRAGMENT) !== 0;
    const { maxFragments, maxRecordSize } = this.limits;
    if (++this.fragments > maxFragments) throw new TooManyFragmentsError(maxFragments);
    if (this.recordLength + length > maxRecordSize) {
      // What arrived, for diagnosis: text from a peer that is no RPC peer reads as a huge length.
      const header = Buffer.alloc(4);
      header.writeUInt32BE(word >>> 0);
      const head = Buffer.concat([header, chunk.subarray(at, at + HEAD_BYTES - 4)]);
      const firstRecord = this.fragments === 1 && (this.state & DecoderState.Delivered) === 0;
      throw new RecordTooLargeError(this.recordLength + length, maxRecordSize, { head, firstRecord });
    }
    this.recordLength += length;
    this.fragmentLeft = length;
    return length;
  }

  private endFragment(): void {
    this.fragmentLeft = -1;
    if (!this.lastFragment) return;
    const partial = this.partial;
    let record: Buffer = EMPTY_RECORD;
    if (partial !== null) {
      partial.sealStage();
      const { pieces } = partial;
      record = pieces.length === 1 ? (pieces[0] as Buffer) : this.join(pieces, this.recordLength);
    }
    this.reset();
    this.state |= DecoderState.Delivered;
    this.deliver(record, 0, record.length);
  }

  /**
   * Hands over one complete record: bytes `start` to `end` of `buffer`. Here as a Buffer of its own (a
   * view when the record is part of a chunk); a subclass that reads the record in place (the record
   * channel) overrides this and makes no view at all.
   */
  protected deliver(buffer: Buffer, start: number, end: number): void {
    this.onRecord(start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end));
  }

  /**
   * Memory for a large record being joined from its pieces (all `length` bytes are written before the
   * record is delivered). A subclass whose stream hands out memory of its own (the record channel over a
   * TLS stream) overrides this.
   */
  protected allocateRecord(length: number): Buffer {
    return Buffer.allocUnsafe(length);
  }

  private join(pieces: Buffer[], length: number): Buffer {
    if (length < JOIN_OWN_MEMORY_MIN) return Buffer.concat(pieces, length);
    const record = this.allocateRecord(length);
    let at = 0;
    for (let i = 0; i < pieces.length; i++) at += (pieces[i] as Buffer).copy(record, at);
    return record;
  }

  private reset(): void {
    this.fragmentLeft = -1;
    this.lastFragment = false;
    this.fragments = 0;
    this.recordLength = 0;
    // A record whole in one chunk never makes one.
    this.partial = null;
  }

  private keep(piece: Buffer): void {
    const partial = (this.partial ??= new Reassembly());
    partial.kept += piece.length;
    if (piece.length >= KEEP_VIEW_MIN && piece.length * 2 >= piece.buffer.byteLength) {
      partial.sealStage();
      partial.pieces.push(piece);
      return;
    }
    let at = 0;
    while (at < piece.length) {
      if (partial.stage === null || partial.stageUsed === partial.stage.length) {
        partial.sealStage();
        // Never more than the record still needs (its announced length is within the caps already).
        const needed = this.recordLength - (partial.kept - piece.length + at);
        partial.stage = Buffer.allocUnsafe(Math.min(needed, Math.max(STAGE_MIN, partial.kept)));
      }
      const n = piece.copy(partial.stage, partial.stageUsed, at);
      partial.stageUsed += n;
      at += n;
    }
  }
}

/** A record spread over chunks, while it is reassembled. */
class Reassembly {
  /** Views of large pieces and filled staging buffers, in order. */
  readonly pieces: Buffer[] = [];
  /** Bytes of the record held in `pieces` and `stage`. */
  kept = 0;
  /**
   * Small pieces are copied here instead of kept as views: a 1-byte read pins its whole allocation and
   * a Buffer object, hundreds of bytes per byte. Each new stage is as large as what is kept so far
   * (at least STAGE_MIN, at most what the record still needs), so a partial record costs at most about
   * twice its bytes plus a constant, however it was chunked.
   */
  stage: Buffer | null = null;
  stageUsed = 0;

  /** Moves the filled part of the stage to `pieces`. */
  sealStage(): void {
    if (this.stage === null) return;
    if (this.stageUsed > 0) this.pieces.push(this.stageUsed === this.stage.length ? this.stage : this.stage.subarray(0, this.stageUsed));
    this.stage = null;
    this.stageUsed = 0;
  }
}

/**
 * Frames a record given as a gather list whose first 4 bytes are a reserved slot (`headerSlot`) for the
 * record mark. With the default (no split) it only fills the slot: one fragment, nothing copied.
 */
export function frameRecord(
  parts: Buffer[],
  headerSlot: Buffer,
  maxFragmentSize: number,
): Buffer[] {
  let total = -4;
  for (let i = 0; i < parts.length; i++) total += (parts[i] as Buffer).length;
  if (total <= maxFragmentSize) {
    headerSlot.writeUInt32BE((LAST_FRAGMENT | total) >>> 0, 0);
    return parts;
  }
  return splitFragments(parts, total, maxFragmentSize);
}

/** Re-frames a record (after its 4-byte slot) into fragments of at most `maxFragmentSize` bytes. */
function splitFragments(parts: Buffer[], total: number, maxFragmentSize: number): Buffer[] {
  const out: Buffer[] = [];
  let partIndex = 0;
  let partOffset = 4; // skip the reserved slot at the start of the first part
  let left = total;
  while (partIndex < parts.length && partOffset >= (parts[partIndex] as Buffer).length) {
    partOffset -= (parts[partIndex] as Buffer).length;
    partIndex++;
  }
  while (left > 0) {
    const size = Math.min(left, maxFragmentSize);
    left -= size;
    const mark = Buffer.allocUnsafe(4);
    mark.writeUInt32BE(((left === 0 ? LAST_FRAGMENT : 0) | size) >>> 0, 0);
    out.push(mark);
    let need = size;
    while (need > 0) {
      const part = parts[partIndex] as Buffer;
      const take = Math.min(need, part.length - partOffset);
      out.push(part.subarray(partOffset, partOffset + take));
      partOffset += take;
      need -= take;
      if (partOffset === part.length) {
        partIndex++;
        partOffset = 0;
      }
    }
  }
  return out;
}
