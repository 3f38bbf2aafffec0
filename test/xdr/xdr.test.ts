import test from 'ava';
import fc from 'fast-check';
import jsxdrModule from '@stellar/js-xdr';
const jsxdr = jsxdrModule as any;
import {
  XdrReader,
  XdrWriter,
  decode,
  xdr,
  XdrLengthError,
  XdrPaddingError,
  XdrShortInputError,
  XdrInvalidValueError,
  XdrEncodeError,
  XdrInvalidUtf8Error,
  GATHER_THRESHOLD,
} from '../../src/xdr/index.js';

function bytes(w: XdrWriter): string {
  return w.toBuffer().toString('hex');
}

test('every RFC 4506 primitive encodes to the exact wire bytes and decodes back', (t) => {
  const w = new XdrWriter(8);
  w.int(-2).uint(0xfffffffe).hyper(-3n).uhyper(0xfffffffffffffffen).bool(true).float(1.5).double(-0.25);
  w.fixedOpaque(Buffer.from('abc'), 3).opaque(Buffer.from('hello')).string('héllo');
  const hex = bytes(w);
  t.is(
    hex,
    'fffffffe' + 'fffffffe' + 'fffffffffffffffd' + 'fffffffffffffffe' + '00000001' + '3fc00000' + 'bfd0000000000000' +
      '61626300' + '00000005' + '68656c6c6f000000' + '00000006' + '68c3a96c6c6f0000',
  );
  const r = new XdrReader(Buffer.from(hex, 'hex'));
  t.is(r.int(), -2);
  t.is(r.uint(), 0xfffffffe);
  t.is(r.hyper(), -3n);
  t.is(r.uhyper(), 0xfffffffffffffffen);
  t.true(r.bool());
  t.is(r.float(), 1.5);
  t.is(r.double(), -0.25);
  t.is(r.fixedOpaque(3).toString(), 'abc');
  t.is(r.opaque(5).toString(), 'hello');
  t.is(r.string(6), 'héllo');
  t.notThrows(() => r.assertEnd());
});

test('composite combinators round-trip: arrays, optional, struct, enum, union with default and void arms', (t) => {
  const Color = xdr.enumeration([0, 1, 5] as const);
  const Point = xdr.struct({ x: xdr.int, y: xdr.int });
  const Shape = xdr.struct({
    color: Color,
    points: xdr.array(Point, 4),
    corners: xdr.fixedArray(xdr.uint, 2),
    label: xdr.optional(xdr.string(16)),
    id: xdr.fixedOpaque(6),
    big: xdr.uhyper,
  });
  const Result = xdr.union(xdr.int, new Map<number, xdr.Codec<unknown>>([[0, Shape], [1, xdr.voidCodec]]), xdr.string(8));
  const values = [
    { tag: 0, value: { color: 5, points: [{ x: 1, y: -1 }], corners: [1, 2], label: null, id: Buffer.from('abcdef'), big: 7n } },
    { tag: 0, value: { color: 0, points: [], corners: [0, 0], label: 'hi', id: Buffer.alloc(6), big: 0n } },
    { tag: 1, value: undefined },
    { tag: 99, value: 'other' },
  ];
  for (const v of values) t.deepEqual(decode(Result, xdr.encode(Result, v)), v);
  t.throws(() => decode(Color, Buffer.from('00000002', 'hex')), { instanceOf: XdrInvalidValueError });
  t.throws(() => xdr.encode(Color, 3 as 0), { instanceOf: XdrEncodeError });
  const noDefault = xdr.union(xdr.bool, new Map([[true, xdr.int]]));
  t.throws(() => decode(noDefault, Buffer.from('00000000', 'hex')), { instanceOf: XdrInvalidValueError });
});

test('decoding a 1 MiB opaque returns a view of the same memory, or a copy when asked', (t) => {
  const payload = Buffer.alloc(1024 * 1024, 7);
  const record = xdr.encode(xdr.opaque(), payload);
  const view = new XdrReader(record).opaque();
  t.is(view.buffer, record.buffer);
  t.is(view.byteOffset, record.byteOffset + 4);
  t.is(view.length, payload.length);
  const copy = new XdrReader(record, { copy: true }).opaque();
  t.not(copy.buffer, record.buffer);
  t.true(copy.equals(payload));
});

test('large payloads are gathered, not copied, by the writer', (t) => {
  const payload = Buffer.alloc(GATHER_THRESHOLD * 8, 1);
  const w = new XdrWriter();
  w.uint(1).opaque(payload).uint(2);
  const list = w.finish();
  t.true(list.includes(payload), 'the payload Buffer itself is in the gather list');
  t.is(Buffer.concat(list).length, 4 + 4 + payload.length + 4);
});

test('lengths are checked against the maximum and the remaining bytes before allocating', (t) => {
  const huge = Buffer.from('7fffffff', 'hex');
  t.throws(() => new XdrReader(huge).opaque(1000), { instanceOf: XdrLengthError });
  t.throws(() => new XdrReader(huge).opaque(), { instanceOf: XdrShortInputError });
  t.throws(() => new XdrReader(huge).array(0xffffffff, (r) => r.int()), { instanceOf: XdrShortInputError });
  t.throws(() => new XdrReader(huge).string(), { instanceOf: XdrShortInputError });
  t.throws(() => new XdrReader(Buffer.from('0000000361626300', 'hex')).string(2), { instanceOf: XdrLengthError });
  t.throws(() => new XdrWriter().opaque(Buffer.alloc(5), 4), { instanceOf: XdrLengthError });
  t.throws(() => new XdrWriter().array([1, 2, 3], 2, (w, v) => w.int(v)), { instanceOf: XdrLengthError });
});

test('non-zero padding, bad bools, out-of-range integers and truncation are rejected', (t) => {
  t.throws(() => new XdrReader(Buffer.from('0000000161000100', 'hex')).opaque(), { instanceOf: XdrPaddingError });
  t.throws(() => new XdrReader(Buffer.from('00000002', 'hex')).bool(), { instanceOf: XdrInvalidValueError });
  t.throws(() => new XdrReader(Buffer.from('000000', 'hex')).uint(), { instanceOf: XdrShortInputError });
  t.throws(() => new XdrWriter().int(2 ** 31), { instanceOf: XdrEncodeError });
  t.throws(() => new XdrWriter().uint(-1), { instanceOf: XdrEncodeError });
  t.throws(() => new XdrWriter().uhyper(-1n), { instanceOf: XdrEncodeError });
  t.throws(() => new XdrWriter().hyper(1n << 63n), { instanceOf: XdrEncodeError });
  const err = t.throws(() => decode(xdr.uint, Buffer.from('0000000100', 'hex')));
  t.is((err as { code?: string }).code, 'ERR_XDR_TRAILING_BYTES');
});

test('strings: invalid UTF-8 is replaced by string(), refused by stringStrict(), kept exactly by stringBytes()', (t) => {
  // "a", 0xff, 0xfe, "b": 0xff and 0xfe never occur in UTF-8.
  const wire = Buffer.from('0000000461fffe62', 'hex');
  t.is(new XdrReader(wire).string(), 'a\ufffd\ufffdb');
  const err = t.throws(() => new XdrReader(Buffer.concat([Buffer.alloc(4), wire]), { offset: 4 }).stringStrict(), { instanceOf: XdrInvalidUtf8Error });
  t.is(err?.code, 'ERR_XDR_INVALID_UTF8');
  t.is(err?.offset, 8, "the string's first byte");
  t.is(err?.length, 4);
  const valid = new XdrWriter().string('h\u00e9llo').toBuffer();
  t.is(new XdrReader(valid).stringStrict(), 'h\u00e9llo');
  const raw = new XdrReader(wire).stringBytes();
  t.is(raw.toString('hex'), '61fffe62');
  t.is(raw.buffer, wire.buffer, 'a view of the received bytes, not a copy');
  // Written back as bytes, unchanged; the bound counts bytes and says "string".
  t.is(bytes(new XdrWriter().string(raw, 4)), '0000000461fffe62');
  const long = t.throws(() => new XdrWriter().string(raw, 3), { instanceOf: XdrLengthError });
  t.regex(long?.message ?? '', /^string length 4 exceeds its maximum 3/);
  // The strict writer refuses what has no UTF-8 form instead of sending U+FFFD.
  t.is(bytes(new XdrWriter().string('\ud800')), '00000003efbfbd00');
  t.throws(() => new XdrWriter().stringStrict('a\ud800'), { instanceOf: XdrEncodeError, message: /lone surrogate/ });
  t.throws(() => new XdrWriter().stringStrict(raw), { instanceOf: XdrEncodeError, message: /not valid UTF-8/ });
  t.is(bytes(new XdrWriter().stringStrict('\ud83d\ude00')), '00000004f09f9880');
});

// ---- differential test against @stellar/js-xdr -------------------------------------------------

const oracle = jsxdr.config((x: any) => {
  x.enum('Color', { red: 0, green: 1, blue: 5 });
  x.struct('Point', [['x', x.int()], ['y', x.int()]]);
  x.struct('Rec', [
    ['a', x.int()],
    ['b', x.uint()],
    ['h', x.hyper()],
    ['uh', x.uhyper()],
    ['f', x.bool()],
    ['d', x.double()],
    ['o', x.varOpaque(64)],
    ['fo', x.opaque(5)],
    ['s', x.string(32)],
    ['arr', x.varArray(x.int(), 8)],
    ['fixed', x.array(x.lookup('Point'), 2)],
    ['opt', x.option(x.lookup('Point'))],
    ['c', x.lookup('Color')],
  ]);
}) as any;

const Point = xdr.struct({ x: xdr.int, y: xdr.int });
const Rec = xdr.struct({
  a: xdr.int,
  b: xdr.uint,
  h: xdr.hyper,
  uh: xdr.uhyper,
  f: xdr.bool,
  d: xdr.double,
  o: xdr.opaque(64),
  fo: xdr.fixedOpaque(5),
  s: xdr.string(32),
  arr: xdr.array(xdr.int, 8),
  fixed: xdr.fixedArray(Point, 2),
  opt: xdr.optional(Point),
  c: xdr.enumeration([0, 1, 5]),
});

const point = fc.record({ x: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), y: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) });
const rec = fc.record({
  a: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  b: fc.nat({ max: 0xffffffff }),
  h: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  uh: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  f: fc.boolean(),
  d: fc.double({ noNaN: true }),
  o: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fo: fc.uint8Array({ minLength: 5, maxLength: 5 }).map((a) => Buffer.from(a)),
  s: fc.string({ maxLength: 32, unit: 'grapheme-ascii' }),
  arr: fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 8 }),
  fixed: fc.tuple(point, point),
  opt: fc.option(point, { nil: null }),
  c: fc.constantFrom(0, 1, 5),
});

function toOracle(v: any): any {
  const P = oracle.Point;
  const colors: Record<number, string> = { 0: 'red', 1: 'green', 5: 'blue' };
  return new oracle.Rec({
    a: v.a,
    b: v.b,
    h: jsxdr.Hyper.fromString(v.h.toString()),
    uh: jsxdr.UnsignedHyper.fromString(v.uh.toString()),
    f: v.f,
    d: v.d,
    o: v.o,
    fo: v.fo,
    s: v.s,
    arr: v.arr,
    fixed: v.fixed.map((p: any) => new P(p)),
    opt: v.opt === null ? null : new P(v.opt),
    c: oracle.Color[colors[v.c] as string](),
  });
}

test('differential: random composite values encode to the same bytes as @stellar/js-xdr, and decode back', (t) => {
  let checked = 0;
  fc.assert(
    fc.property(rec, (v) => {
      const ours = xdr.encode(Rec, v);
      const theirs: Buffer = toOracle(v).toXDR();
      if (!ours.equals(theirs)) return false;
      const back = decode(Rec, ours);
      checked++;
      return Object.is(back.d, v.d) && back.h === v.h && back.uh === v.uh && back.s === v.s && back.o.equals(v.o) &&
        JSON.stringify(back.arr) === JSON.stringify(v.arr) && JSON.stringify(back.opt) === JSON.stringify(v.opt);
    }),
    { numRuns: 300 },
  );
  t.is(checked, 300);
});
