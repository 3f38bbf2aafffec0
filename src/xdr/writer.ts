import { isUtf8 } from 'node:buffer';

import { XdrEncodeError, XdrLengthError } from './errors.js';

/** Opaques at least this long are referenced in the gather list instead of being copied. */
export const GATHER_THRESHOLD = 512;

// With the u flag a surrogate pair is one astral code point, so only unpaired surrogates match.
const LONE_SURROGATE = /\p{Cs}/u;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * XDR encoder that produces a gather list: small items are packed into a scratch buffer, large opaques
 * are referenced as-is (no copy), and growing never copies what was already written. `reserve()` leaves
 * room for a value known only later (the record mark).
 */
export class XdrWriter {
  private chunks: Buffer[] = [];
  private buf: Buffer;
  private start = 0;
  private pos = 0;
  private chunkBytes = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.chunkBytes + this.pos - this.start;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flushScratch();
    this.buf = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2, 256));
    this.start = 0;
    this.pos = 0;
  }

  private flushScratch(): void {
    if (this.pos > this.start) {
      const piece = this.buf.subarray(this.start, this.pos);
      this.chunks.push(piece);
      this.chunkBytes += piece.length;
      this.start = this.pos;
    }
  }

  int(value: number): this {
    if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
      throw new XdrEncodeError(`int out of range: ${value}`);
    }
    this.ensure(4);
    this.put32(value);
    return this;
  }

  uint(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
      throw new XdrEncodeError(`unsigned int out of range: ${value}`);
    }
    this.ensure(4);
    this.put32(value);
    return this;
  }

  /** Big-endian 32 bits at pos, room checked: byte stores beat Buffer#writeUInt32BE's re-validation. */
  private put32(value: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = value >>> 24;
    b[p + 1] = value >>> 16;
    b[p + 2] = value >>> 8;
    b[p + 3] = value;
    this.pos = p + 4;
  }

  hyper(value: bigint): this {
    if (typeof value !== 'bigint' || value < INT64_MIN || value > INT64_MAX) {
      throw new XdrEncodeError(`hyper out of range: ${String(value)}`);
    }
    this.ensure(8);
    this.buf.writeBigInt64BE(value, this.pos);
    this.pos += 8;
    return this;
  }

  uhyper(value: bigint): this {
    if (typeof value !== 'bigint' || value < 0n || value > UINT64_MAX) {
      throw new XdrEncodeError(`unsigned hyper out of range: ${String(value)}`);
    }
    this.ensure(8);
    this.buf.writeBigUInt64BE(value, this.pos);
    this.pos += 8;
    return this;
  }

  bool(value: boolean): this {
    this.ensure(4);
    this.put32(value ? 1 : 0);
    return this;
  }

  float(value: number): this {
    this.ensure(4);
    this.buf.writeFloatBE(value, this.pos);
    this.pos += 4;
    return this;
  }

  double(value: number): this {
    this.ensure(8);
    this.buf.writeDoubleBE(value, this.pos);
    this.pos += 8;
    return this;
  }

  /** Fixed-length opaque[n]: exactly `length` bytes plus padding. */
  fixedOpaque(data: Uint8Array, length: number): this {
    if (data.length !== length) throw new XdrEncodeError(`fixed opaque needs ${length} bytes, got ${data.length}`);
    this.raw(data);
    return this.pad(length);
  }

  /** Variable-length opaque<max>. */
  opaque(data: Uint8Array, max = UINT32_MAX): this {
    if (data.length > max) throw new XdrLengthError('opaque', data.length, max, this.length);
    this.uint(data.length);
    this.raw(data);
    return this.pad(data.length);
  }

  /** string<max>; a JS string is written as UTF-8 (a lone surrogate as U+FFFD), a Buffer as-is. */
  string(value: string | Uint8Array, max = UINT32_MAX): this {
    if (typeof value !== 'string') {
      if (value.length > max) throw new XdrLengthError('string', value.length, max, this.length);
      this.uint(value.length);
      this.raw(value);
      return this.pad(value.length);
    }
    const byteLength = Buffer.byteLength(value, 'utf8');
    if (byteLength > max) throw new XdrLengthError('string', byteLength, max, this.length);
    this.uint(byteLength);
    this.ensure(byteLength);
    this.buf.write(value, this.pos, byteLength, 'utf8');
    this.pos += byteLength;
    return this.pad(byteLength);
  }

  /**
   * string<max> that must be valid UTF-8 on the wire: a JS string with a lone surrogate (which has no
   * UTF-8 form) or bytes that are not UTF-8 throw XdrEncodeError instead of being sent.
   */
  stringStrict(value: string | Uint8Array, max = UINT32_MAX): this {
    if (typeof value === 'string' ? LONE_SURROGATE.test(value) : !isUtf8(value)) {
      throw new XdrEncodeError(typeof value === 'string' ? 'string has a lone surrogate: it has no UTF-8 form' : 'string bytes are not valid UTF-8');
    }
    return this.string(value, max);
  }

  /** Appends bytes without a length prefix or padding; large ones join the gather list uncopied. */
  raw(data: Uint8Array): this {
    if (data.length >= GATHER_THRESHOLD) {
      this.flushScratch();
      const piece = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
      this.chunks.push(piece);
      this.chunkBytes += piece.length;
    } else {
      this.ensure(data.length);
      this.buf.set(data, this.pos);
      this.pos += data.length;
    }
    return this;
  }

  private pad(length: number): this {
    const padding = (4 - (length & 3)) & 3;
    if (padding !== 0) {
      this.ensure(padding);
      const buf = this.buf;
      for (let i = 0; i < padding; i++) buf[this.pos++] = 0;
    }
    return this;
  }

  /** Variable-length array<max> of items written by `each`. */
  array<T>(items: readonly T[], max: number, each: (writer: this, item: T) => void): this {
    if (items.length > max) throw new XdrLengthError('array', items.length, max, this.length);
    this.uint(items.length);
    for (let i = 0; i < items.length; i++) each(this, items[i] as T);
    return this;
  }

  /** Fixed-length array[n]. */
  fixedArray<T>(items: readonly T[], length: number, each: (writer: this, item: T) => void): this {
    if (items.length !== length) throw new XdrEncodeError(`fixed array needs ${length} items, got ${items.length}`);
    for (let i = 0; i < items.length; i++) each(this, items[i] as T);
    return this;
  }

  /** optional-data (`*type`): a bool, then the value when present. */
  optional<T>(value: T | null | undefined, each: (writer: this, item: T) => void): this {
    if (value === null || value === undefined) return this.bool(false);
    this.bool(true);
    each(this, value);
    return this;
  }

  /**
   * Reserves 4 bytes for a value known only later (a record mark's length) and returns a view of them;
   * write the value into the view with `writeUInt32BE` before sending.
   */
  reserve4(): Buffer {
    this.ensure(4);
    const slot = this.buf.subarray(this.pos, this.pos + 4);
    this.pos += 4;
    return slot;
  }

  /**
   * The encoded bytes as a gather list. The writer starts over empty; the returned buffers stay valid
   * (the scratch buffer is not reused for later writes).
   */
  finish(): Buffer[] {
    this.flushScratch();
    const out = this.chunks;
    this.chunks = [];
    this.chunkBytes = 0;
    // The scratch tail after `pos` may be reused; what was handed out is never written again.
    this.start = this.pos;
    return out;
  }

  /** The encoded bytes as one Buffer (copies only when the gather list has several pieces). */
  toBuffer(): Buffer {
    const list = this.finish();
    if (list.length === 1) return list[0] as Buffer;
    return Buffer.concat(list);
  }
}
