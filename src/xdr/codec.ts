import { XdrEncodeError, XdrInvalidValueError } from './errors.js';
import type { XdrReader } from './reader.js';
import { XdrWriter } from './writer.js';

/** A pair of functions that write and read one XDR type. */
export interface Codec<T> {
  encode(writer: XdrWriter, value: T): void;
  decode(reader: XdrReader): T;
  /** Smallest encoded size in bytes, used to bound array lengths against remaining input. */
  readonly minSize: number;
}

const UINT32_MAX = 0xffffffff;

function codec<T>(minSize: number, encode: Codec<T>['encode'], decode: Codec<T>['decode']): Codec<T> {
  return { encode, decode, minSize };
}

export const int: Codec<number> = codec(4, (w, v) => w.int(v), (r) => r.int());
export const uint: Codec<number> = codec(4, (w, v) => w.uint(v), (r) => r.uint());
export const hyper: Codec<bigint> = codec(8, (w, v) => w.hyper(v), (r) => r.hyper());
export const uhyper: Codec<bigint> = codec(8, (w, v) => w.uhyper(v), (r) => r.uhyper());
export const bool: Codec<boolean> = codec(4, (w, v) => w.bool(v), (r) => r.bool());
export const float: Codec<number> = codec(4, (w, v) => w.float(v), (r) => r.float());
export const double: Codec<number> = codec(8, (w, v) => w.double(v), (r) => r.double());
export const voidCodec: Codec<void> = codec(0, () => undefined, () => undefined);

export function enumeration<T extends number>(values: readonly T[]): Codec<T> {
  const valid = new Set<number>(values);
  return codec(
    4,
    (w, v) => {
      if (!valid.has(v)) throw new XdrEncodeError(`enum value ${v} is not declared`);
      w.int(v);
    },
    (r) => r.enum(valid) as T,
  );
}

export function opaque(max = UINT32_MAX): Codec<Buffer> {
  return codec(4, (w, v) => w.opaque(v, max), (r) => r.opaque(max));
}

export function fixedOpaque(length: number): Codec<Buffer> {
  return codec((length + 3) & ~3, (w, v) => w.fixedOpaque(v, length), (r) => r.fixedOpaque(length));
}

export function string(max = UINT32_MAX): Codec<string> {
  return codec(4, (w, v) => w.string(v, max), (r) => r.string(max));
}

export function array<T>(item: Codec<T>, max = UINT32_MAX): Codec<T[]> {
  const minItem = Math.max(item.minSize, 1);
  return codec(
    4,
    (w, v) => w.array(v, max, (ww, x) => item.encode(ww, x)),
    (r) => r.array(max, (rr) => item.decode(rr), minItem),
  );
}

export function fixedArray<T>(item: Codec<T>, length: number): Codec<T[]> {
  return codec(
    item.minSize * length,
    (w, v) => w.fixedArray(v, length, (ww, x) => item.encode(ww, x)),
    (r) => r.fixedArray(length, (rr) => item.decode(rr), Math.max(item.minSize, 0)),
  );
}

export function optional<T>(item: Codec<T>): Codec<T | null> {
  return codec(
    4,
    (w, v) => w.optional(v, (ww, x) => item.encode(ww, x)),
    (r) => r.optional((rr) => item.decode(rr)),
  );
}

type StructFields<T> = { [K in keyof T]: Codec<T[K]> };

/** A struct: fields are written in the order they are listed. */
export function struct<T extends object>(fields: StructFields<T>): Codec<T> {
  const entries = Object.entries(fields) as [keyof T & string, Codec<unknown>][];
  let minSize = 0;
  for (const [, field] of entries) minSize += field.minSize;
  return codec(
    minSize,
    (w, v) => {
      for (const [name, field] of entries) field.encode(w, v[name]);
    },
    (r) => {
      const out: Record<string, unknown> = {};
      for (const [name, field] of entries) {
        // Assigning `__proto__` would set the prototype (the peer's data!) instead of a field.
        if (name === '__proto__') Object.defineProperty(out, name, { value: field.decode(r), writable: true, enumerable: true, configurable: true });
        else out[name] = field.decode(r);
      }
      return out as T;
    },
  );
}

/** A discriminated union value: the discriminant and the arm's value (undefined for void arms). */
export interface UnionValue<D extends number | boolean = number, V = unknown> {
  tag: D;
  value: V;
}

/**
 * A discriminated union. `arms` maps discriminant values to arm codecs; `defaultArm` (if given) takes
 * any other discriminant, else an undeclared discriminant is an error both ways.
 */
export function union<D extends number | boolean>(
  discriminant: Codec<D>,
  arms: ReadonlyMap<D, Codec<unknown>>,
  defaultArm?: Codec<unknown>,
): Codec<UnionValue<D>> {
  const armFor = (tag: D, at: number): Codec<unknown> => {
    const arm = arms.get(tag) ?? defaultArm;
    if (arm === undefined) {
      if (at < 0) throw new XdrEncodeError(`union has no arm for discriminant ${String(tag)}`);
      throw new XdrInvalidValueError('union discriminant', Number(tag), at);
    }
    return arm;
  };
  return codec(
    discriminant.minSize,
    (w, v) => {
      const arm = armFor(v.tag, -1);
      discriminant.encode(w, v.tag);
      arm.encode(w, v.value);
    },
    (r) => {
      const at = r.offset;
      const tag = discriminant.decode(r);
      return { tag, value: armFor(tag, at).decode(r) };
    },
  );
}

/** Encodes one value to a single Buffer. */
export function encode<T>(type: Codec<T>, value: T): Buffer {
  const writer = new XdrWriter();
  type.encode(writer, value);
  return writer.toBuffer();
}
