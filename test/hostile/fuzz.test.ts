// Property-based fuzzing (fast-check) of every decoder that sees peer bytes: the record-marking
// reassembler, the RPC message decoder, AUTH_SYS, the generated XDR decoders, and a whole RpcConnection.
// CI runs FUZZ_RUNS (default 200) cases per property; `npm run hardening` sets FUZZ_SECONDS for a
// time-budgeted run per property. A failure prints fast-check's seed and counterexample: add it below as
// a regression case.
import { Duplex } from 'node:stream';

import test from 'ava';
import fc from 'fast-check';

import * as mount from '../../src/generated/mount.js';
import * as rpcbind from '../../src/generated/rpcbind.js';
import { authSys, decodeAuthSys } from '../../src/rpc/auth.js';
import { RpcConnection } from '../../src/rpc/connection.js';
import { RpctlsError } from '../../src/errors.js';
import { AuthBadCredError, MalformedMessageError } from '../../src/rpc/errors.js';
import { RecordTooLargeError, TooManyFragmentsError } from '../../src/transport/errors.js';
import { decodeMessage, writeCallHeader } from '../../src/rpc/message.js';
import { RecordDecoder } from '../../src/transport/record-marking.js';
import { XdrError, XdrReader, XdrWriter } from '../../src/xdr/index.js';
import { frame, record } from '../helpers/records.js';
import { HOSTILE_PROGRAM } from './helpers.js';

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 0);
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const params = (): fc.Parameters<unknown> =>
  SECONDS > 0
    ? { numRuns: 1e9, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false }
    : { numRuns: RUNS };
/** Totals per property, printed for `npm run hardening` (FUZZ_REPORT=1). */
function report(name: string, runs: number): void {
  if (process.env.FUZZ_REPORT === '1') console.log(`FUZZ ${name}: ${runs} cases`);
}
function check<T>(t: import('ava').ExecutionContext, name: string, arb: fc.Arbitrary<T>, predicate: (v: T) => void): void {
  let runs = 0;
  const out = fc.check(
    fc.property(arb, (v) => {
      runs++;
      predicate(v);
    }),
    params() as fc.Parameters<[T]>,
  );
  report(name, runs);
  if (out.failed) t.fail(fc.defaultReportMessage(out) ?? 'property failed');
  else t.true(runs > 0, `${runs} cases`);
}

async function checkAsync<T>(t: import('ava').ExecutionContext, name: string, arb: fc.Arbitrary<T>, predicate: (v: T) => Promise<void>): Promise<void> {
  let runs = 0;
  const out = await fc.check(
    fc.asyncProperty(arb, async (v) => {
      runs++;
      await predicate(v);
    }),
    params() as fc.Parameters<[T]>,
  );
  report(name, runs);
  if (out.failed) t.fail(fc.defaultReportMessage(out) ?? 'property failed');
  else t.true(runs > 0, `${runs} cases`);
}

/** Splits `bytes` into chunks at the given cut points. */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  out.push(bytes.subarray(at));
  return out;
}

/** Words biased towards small values (lengths, bools, discriminants), so decoders get past their first field. */
const words = (max: number): fc.Arbitrary<Buffer> =>
  fc
    .tuple(
      fc.array(fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 16, 400, 0x80000000, 0xffffffff), fc.nat(64), fc.integer({ min: 0, max: 0xffffffff })), { maxLength: max }),
      fc.uint8Array({ maxLength: 7 }),
    )
    .map(([ws, tail]) => {
      const b = Buffer.alloc(ws.length * 4);
      ws.forEach((w, i) => b.writeUInt32BE(w >>> 0, i * 4));
      return Buffer.concat([b, Buffer.from(tail)]);
    });

// ---- record marking ---------------------------------------------------------------------------------

test('F1 RecordDecoder: any records, any fragment size, any chunking: exactly the same records out', (t) => {
  check(
    t,
    'record-marking roundtrip',
    fc.tuple(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), fc.integer({ min: 1, max: 64 }), fc.array(fc.nat(), { maxLength: 20 })),
    ([records, fragmentSize, cuts]) => {
      const wire = Buffer.concat(records.map((r) => frame(Buffer.from(r), fragmentSize)));
      const out: Buffer[] = [];
      const decoder = new RecordDecoder((r) => out.push(Buffer.from(r)), { maxFragments: 1000 });
      for (const piece of chunk(wire, cuts)) decoder.push(piece);
      if (out.length !== records.length || out.some((r, i) => !r.equals(Buffer.from(records[i]!)))) throw new Error('records differ');
      if (!decoder.idle || decoder.end() !== null) throw new Error('decoder not idle after whole records');
    },
  );
});

test('F2 RecordDecoder: arbitrary bytes, any chunking: records within caps or a coded framing error, the same whatever the chunking', (t) => {
  const maxRecordSize = 2048;
  const maxFragments = 8;
  const run = (pieces: Buffer[]): { records: string[]; code: string | null; buffered: number } => {
    const records: string[] = [];
    const decoder = new RecordDecoder(
      (r) => {
        if (r.length > maxRecordSize) throw new Error(`record of ${r.length} over the cap`);
        records.push(r.toString('hex'));
      },
      { maxRecordSize, maxFragments },
    );
    let code: string | null = null;
    let peak = 0;
    try {
      for (const p of pieces) {
        decoder.push(p);
        peak = Math.max(peak, decoder.buffered);
      }
    } catch (error) {
      if (!(error instanceof RecordTooLargeError || error instanceof TooManyFragmentsError)) throw error;
      code = error.code;
    }
    if (peak > maxRecordSize + 4) throw new Error(`buffered ${peak} bytes, over the cap`);
    return { records, code, buffered: peak };
  };
  // Headers drawn so that small lengths, the last-fragment bit and huge lengths all occur.
  const header = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }).map((n) => (0x80000000 | n) >>> 0), fc.integer({ min: 0, max: 0xffffffff }));
  const stream = fc.array(fc.tuple(header, fc.uint8Array({ maxLength: 40 })), { maxLength: 30 }).map((parts) =>
    Buffer.concat(parts.flatMap(([h, body]) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(h >>> 0);
      return [b, Buffer.from(body)];
    })),
  );
  check(t, 'record-marking arbitrary bytes', fc.tuple(stream, fc.array(fc.nat(), { maxLength: 30 })), ([bytes, cuts]) => {
    const whole = run([bytes]);
    const split = run(chunk(bytes, cuts));
    if (JSON.stringify(whole.records) !== JSON.stringify(split.records) || whole.code !== split.code) {
      throw new Error('chunking changed the outcome');
    }
  });
});

// ---- RPC messages -----------------------------------------------------------------------------------

function decodeOrMalformed(bytes: Buffer): void {
  try {
    const m = decodeMessage(bytes);
    if (m.type === 0 && (m.cred.body.length > 400 || m.verf.body.length > 400)) throw new Error('auth over 400 accepted');
  } catch (error) {
    if (!(error instanceof MalformedMessageError)) throw error;
  }
}

test('F3 decodeMessage: random bytes give a message or ERR_RPC_MALFORMED_MESSAGE, nothing else', (t) => {
  check(t, 'decodeMessage random', words(40), decodeOrMalformed);
});

const callFields = fc.record({
  xid: fc.integer({ min: 0, max: 0xffffffff }),
  program: fc.integer({ min: 0, max: 0xffffffff }),
  version: fc.integer({ min: 0, max: 0xffffffff }),
  procedure: fc.integer({ min: 0, max: 0xffffffff }),
  credFlavor: fc.integer({ min: 0, max: 0xffffffff }),
  cred: fc.uint8Array({ maxLength: 400 }),
  verf: fc.uint8Array({ maxLength: 400 }),
  args: fc.uint8Array({ maxLength: 64 }),
});

test('F4 CALL header: encode then decode gives the same fields; every truncation and byte flip is a message or MALFORMED', (t) => {
  check(t, 'call header roundtrip+mutation', fc.tuple(callFields, fc.nat(), fc.nat(255)), ([f, at, value]) => {
    const w = new XdrWriter();
    writeCallHeader(w, f.xid, f.program, f.version, f.procedure, { flavor: f.credFlavor, body: Buffer.from(f.cred) }, { flavor: 0, body: Buffer.from(f.verf) });
    w.raw(Buffer.from(f.args));
    const bytes = w.toBuffer();
    const m = decodeMessage(bytes);
    if (m.type !== 0 || m.xid !== f.xid || m.program !== f.program || m.procedure !== f.procedure || !m.cred.body.equals(Buffer.from(f.cred)) || !m.args.equals(Buffer.from(f.args))) {
      throw new Error('roundtrip differs');
    }
    decodeOrMalformed(bytes.subarray(0, at % (bytes.length + 1)));
    const flipped = Buffer.from(bytes);
    flipped[at % bytes.length] = value;
    decodeOrMalformed(flipped);
  });
});

test('F5 decodeAuthSys: random bodies give params within the limits or ERR_RPC_AUTH_BADCRED; valid ones roundtrip', (t) => {
  const valid = fc.record({
    stamp: fc.integer({ min: 0, max: 0xffffffff }),
    machinename: fc.string({ maxLength: 255 }).filter((s) => Buffer.byteLength(s) <= 255),
    uid: fc.integer({ min: 0, max: 0xffffffff }),
    gid: fc.integer({ min: 0, max: 0xffffffff }),
    gids: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 16 }),
  });
  check(t, 'AUTH_SYS', fc.tuple(words(24), valid), ([bytes, params]) => {
    try {
      const p = decodeAuthSys(bytes);
      if (p.gids.length > 16 || Buffer.byteLength(p.machinename) > 255 * 3) throw new Error('limits exceeded');
    } catch (error) {
      if (!(error instanceof AuthBadCredError)) throw error;
    }
    const decoded = decodeAuthSys(authSys(params).body);
    if (JSON.stringify(decoded) !== JSON.stringify(params)) throw new Error('AUTH_SYS roundtrip differs');
  });
});

// ---- generated decoders ---------------------------------------------------------------------------------

type Pair = { name: string; decode: (r: XdrReader) => unknown; encode: (w: XdrWriter, v: unknown) => void };
const pairs: Pair[] = [];
for (const [mod, label] of [[mount, 'mount'], [rpcbind, 'rpcbind']] as const) {
  const m = mod as unknown as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    const base = key.slice('decode'.length);
    if (key.startsWith('decode') && typeof m[key] === 'function' && typeof m[`encode${base}`] === 'function') {
      pairs.push({ name: `${label}.${base}`, decode: m[key] as Pair['decode'], encode: m[`encode${base}`] as Pair['encode'] });
    }
  }
}

const hasReplacementChar = (v: unknown): boolean => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x)).includes('\\ufffd') || JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x)).includes('\ufffd');

test(`F6 generated XDR decoders (${pairs.length} types in src/generated): random bytes give a coded XdrError, or a value that re-encodes to the bytes it consumed`, (t) => {
  t.true(pairs.length >= 30, 'every generated type is fuzzed');
  let decodedValues = 0;
  check(t, 'generated decoders', fc.tuple(fc.nat(pairs.length - 1), words(48)), ([index, bytes]) => {
    const pair = pairs[index]!;
    const reader = new XdrReader(bytes);
    let value: unknown;
    try {
      value = pair.decode(reader);
    } catch (error) {
      if (error instanceof XdrError) return;
      throw new Error(`${pair.name}: non-XdrError ${String(error)}`);
    }
    decodedValues++;
    const w = new XdrWriter();
    pair.encode(w, value);
    const again = w.toBuffer();
    // Invalid UTF-8 in a string decodes to U+FFFD and cannot re-encode to the same bytes.
    if (!again.equals(bytes.subarray(0, reader.offset)) && !hasReplacementChar(value)) {
      throw new Error(`${pair.name}: re-encoding differs from the consumed ${reader.offset} bytes`);
    }
  });
  t.log(`${decodedValues} inputs decoded to values`);
});

// ---- a whole connection ---------------------------------------------------------------------------------

test('F7 RpcConnection fed arbitrary records: it answers or closes with a coded error; it never throws out of the stream', async (t) => {
  // Call-shaped records (valid header prefix, then noise), plus plain noise.
  const callish = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 2, 10, 11, 13, 14), words(20)).map(([xid, proc, rest]) => {
    const head = Buffer.alloc(24);
    [xid, 0, 2, 0x20000099, 1, proc].forEach((w, i) => head.writeUInt32BE(w >>> 0, i * 4));
    return record(Buffer.concat([head, rest]));
  });
  const input = fc.array(fc.oneof(callish, words(16).map(record), words(8)), { minLength: 1, maxLength: 6 });
  let answered = 0;
  let closed = 0;
  await checkAsync(t, 'RpcConnection', input, async (records) => {
    const written: Buffer[] = [];
    const stream = new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        written.push(chunk as Buffer);
        cb();
      },
    });
    const connection = new RpcConnection(stream, { timeout: 0 });
    connection.addProgram({ ...HOSTILE_PROGRAM, procedures: { ...HOSTILE_PROGRAM.procedures, 11: () => Buffer.alloc(0) } });
    let closeError: unknown = null;
    connection.on('close', (e?: Error) => (closeError = e ?? null));
    connection.on('handlerError', () => undefined);
    for (const r of records) stream.push(r);
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    if (closeError !== null && !(closeError instanceof RpctlsError)) throw new Error(`closed with a non-coded error: ${String(closeError)}`);
    if (written.length > 0) answered++;
    if (closeError !== null) closed++;
    connection.destroy();
  });
  t.log(`${answered} inputs answered, ${closed} closed the connection with a coded error`);
  t.true(answered > 0 && closed > 0, 'both outcomes were exercised');
});
