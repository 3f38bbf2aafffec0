import { isUtf8 } from 'node:buffer';

import { InvalidOptionError } from '../errors.js';
import {
  XdrInvalidUtf8Error,
  XdrInvalidValueError,
  XdrLengthError,
  XdrPaddingError,
  XdrShortInputError,
  XdrTrailingBytesError,
} from './errors.js';

const UINT32_MAX = 0xffffffff;
const EMPTY = Buffer.alloc(0);

/**
 * XDR decoder over one received record. Every length is checked against both the declared maximum and
 * the bytes that remain before anything is allocated. Opaques come back as views into the record unless
 * the reader was created with `copy: true` (then the caller may keep them after the record is reused).
 */
export class XdrReader {
  readonly buffer: Buffer;
  offset: number;
  readonly end: number;
  private readonly copy: boolean;

  constructor(buffer: Buffer, options?: { offset?: number; end?: number; copy?: boolean }) {
    this.buffer = buffer;
    const offset = options?.offset ?? 0;
    const end = options?.end ?? buffer.length;
    // A range past the buffer would read `undefined` as zero bytes instead of failing (`% 1` also
    // refuses NaN and fractions).
    if (!(offset >= 0 && offset <= end && end <= buffer.length && offset % 1 === 0 && end % 1 === 0)) {
      throw new InvalidOptionError('XdrReader range', `integers with 0 <= offset <= end <= ${buffer.length} (the buffer's length)`, { offset, end });
    }
    this.offset = offset;
    this.end = end;
    this.copy = options?.copy ?? false;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number): number {
    const at = this.offset;
    if (n > this.end - at) throw new XdrShortInputError(n, this.end - at, at);
    this.offset = at + n;
    return at;
  }

  // Byte by byte: Buffer#readUInt32BE re-validates its offset on every call, and `need` already did.
  int(): number {
    const at = this.need(4);
    const b = this.buffer;
    return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
  }

  uint(): number {
    const at = this.need(4);
    const b = this.buffer;
    return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  }

  hyper(): bigint {
    return this.buffer.readBigInt64BE(this.need(8));
  }

  uhyper(): bigint {
    return this.buffer.readBigUInt64BE(this.need(8));
  }

  bool(): boolean {
    const at = this.offset;
    const value = this.uint();
    if (value === 0) return false;
    if (value === 1) return true;
    throw new XdrInvalidValueError('bool', value, at);
  }

  /** An enum; `valid` (when given) is the set of declared values. */
  enum(valid?: ReadonlySet<number>): number {
    const at = this.offset;
    const value = this.int();
    if (valid !== undefined && !valid.has(value)) throw new XdrInvalidValueError('enum', value, at);
    return value;
  }

  float(): number {
    return this.buffer.readFloatBE(this.need(4));
  }

  double(): number {
    return this.buffer.readDoubleBE(this.need(8));
  }

  fixedOpaque(length: number): Buffer {
    const padded = (length + 3) & ~3;
    const at = this.need(padded);
    this.checkPadding(at + length, padded - length);
    return this.view(at, length);
  }

  opaque(max = UINT32_MAX): Buffer {
    const length = this.length('opaque', max, 1);
    return this.fixedOpaque(length);
  }

  /** string<max> decoded as UTF-8. */
  string(max = UINT32_MAX): string {
    const length = this.length('string', max, 1);
    const padded = (length + 3) & ~3;
    const at = this.need(padded);
    this.checkPadding(at + length, padded - length);
    return this.buffer.toString('utf8', at, at + length);
  }

  /** string<max> decoded as UTF-8, refusing invalid UTF-8 (XdrInvalidUtf8Error) instead of replacing it. */
  stringStrict(max = UINT32_MAX): string {
    const length = this.length('string', max, 1);
    const padded = (length + 3) & ~3;
    const at = this.need(padded);
    this.checkPadding(at + length, padded - length);
    const bytes = this.buffer.subarray(at, at + length);
    if (!isUtf8(bytes)) throw new XdrInvalidUtf8Error(length, at);
    return bytes.toString('utf8');
  }

  /** string<max> as raw bytes (for names that need not be UTF-8, like NFS file names). */
  stringBytes(max = UINT32_MAX): Buffer {
    return this.fixedOpaque(this.length('string', max, 1));
  }

  /**
   * Reads an array length and checks it against `max` and against what the remaining bytes could hold
   * (`minItemSize` bytes each, at least 4 for any non-void XDR item), so a lying length never makes us
   * allocate.
   */
  length(what: string, max: number, minItemSize: number): number {
    const at = this.offset;
    const length = this.uint();
    if (length > max) throw new XdrLengthError(what, length, max, at);
    if (minItemSize > 0 && length * minItemSize > this.end - this.offset) {
      throw new XdrShortInputError(length * minItemSize, this.end - this.offset, this.offset);
    }
    return length;
  }

  array<T>(max: number, each: (reader: this) => T, minItemSize = 4): T[] {
    const length = this.length('array', max, minItemSize);
    const out = new Array<T>(length);
    for (let i = 0; i < length; i++) out[i] = each(this);
    return out;
  }

  fixedArray<T>(length: number, each: (reader: this) => T, minItemSize = 4): T[] {
    if (length * minItemSize > this.remaining) {
      throw new XdrShortInputError(length * minItemSize, this.remaining, this.offset);
    }
    const out = new Array<T>(length);
    for (let i = 0; i < length; i++) out[i] = each(this);
    return out;
  }

  optional<T>(each: (reader: this) => T): T | null {
    return this.bool() ? each(this) : null;
  }

  /** The rest of the input, as a view (or copy), consuming it. */
  rest(): Buffer {
    const at = this.offset;
    this.offset = this.end;
    return this.view(at, this.end - at);
  }

  /** Throws unless every byte was consumed. */
  assertEnd(): void {
    if (this.offset !== this.end) throw new XdrTrailingBytesError(this.end - this.offset, this.offset);
  }

  private checkPadding(at: number, count: number): void {
    for (let i = 0; i < count; i++) {
      if (this.buffer[at + i] !== 0) throw new XdrPaddingError(at + i);
    }
  }

  private view(at: number, length: number): Buffer {
    // Empty opaques (AUTH_NONE bodies, void results) are common: one shared empty Buffer, no view.
    if (length === 0) return EMPTY;
    const slice = this.buffer.subarray(at, at + length);
    return this.copy ? Buffer.from(slice) : slice;
  }
}
