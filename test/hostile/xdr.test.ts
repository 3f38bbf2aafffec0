// Hostile catalogue, XDR lies in call arguments (H27-H35): typed procedures and a generated program
// (MOUNT v3 from src/generated/mount.ts) must answer GARBAGE_ARGS, allocate nothing from a lying length,
// keep the connection open, and never run the handler. Serial: `handlerRuns` is shared by the tests.
import test from 'ava';

import { mountProgram_v3 } from '../../src/generated/mount.js';
import { xdr } from '../../src/xdr/index.js';
import { arena, callRecord, raw, u32, xopaque } from './helpers.js';

const XPROG = 0x20000177;
let handlerRuns = 0;
const seen = <T>(v: T): T => {
  handlerRuns++;
  return v;
};

const TYPED = {
  program: XPROG,
  version: 1,
  procedures: {
    1: { args: xdr.array(xdr.uint, 100_000), result: xdr.uint, handler: (v: number[]) => seen(v.length) },
    2: { args: xdr.opaque(1024), result: xdr.uint, handler: (v: Buffer) => seen(v.length) },
    3: {
      args: xdr.union(xdr.int, new Map<number, xdr.Codec<unknown>>([[0, xdr.voidCodec as xdr.Codec<unknown>], [1, xdr.uint as xdr.Codec<unknown>]])),
      result: xdr.uint,
      handler: () => seen(0),
    },
    4: { args: xdr.bool, result: xdr.uint, handler: () => seen(0) },
    5: { args: xdr.string(8), result: xdr.uint, handler: (s: string) => seen(s.length) },
    6: { args: xdr.enumeration([1, 2, 3]), result: xdr.uint, handler: (e: number) => seen(e) },
    7: { args: xdr.uint, result: xdr.uint, handler: (n: number) => seen(n) },
  },
};

const mounted: string[] = [];
const MOUNT = mountProgram_v3({
  MOUNTPROC3_NULL: () => undefined,
  MOUNTPROC3_MNT: (path: string) => {
    mounted.push(path);
    return { fhs_status: 0, mountinfo: { fhandle: Buffer.alloc(8), auth_flavors: [1] } } as never;
  },
  MOUNTPROC3_DUMP: () => null,
  MOUNTPROC3_UMNT: () => undefined,
  MOUNTPROC3_UMNTALL: () => undefined,
  MOUNTPROC3_EXPORT: () => null,
});

async function garbage(t: import('ava').ExecutionContext, program: number, version: number, procedure: number, args: Buffer): Promise<void> {
  const a = await arena();
  a.server.addProgram(TYPED);
  a.server.addProgram(MOUNT);
  const r = await raw(a.port);
  try {
    const before = process.memoryUsage().arrayBuffers;
    const runs = handlerRuns;
    r.write(callRecord({ xid: 0x7d, program, version, procedure, args }));
    const [reply] = await r.waitMessages(1);
    t.like(reply, { xid: 0x7d, replyStat: 0, acceptStat: 4 }, 'GARBAGE_ARGS');
    t.is(handlerRuns, runs, 'the handler never ran');
    t.true(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024, 'nothing allocated from a claimed length');
    // Same connection, good arguments: answered.
    r.write(callRecord({ xid: 0x7e, program: XPROG, version: 1, procedure: 7, args: u32(5) }));
    const messages = await r.waitMessages(2);
    t.like(messages[1], { xid: 0x7e, acceptStat: 0 });
    t.false(r.isClosed());
    t.deepEqual(a.codes(), []);
    await a.bystanderServed();
  } finally {
    // A failed assertion must not leave servers behind: they would keep the ava worker alive.
    r.socket.destroy();
    await a.close();
  }
}

test.serial('H27 array length 0x40000000 with 8 bytes behind it: GARBAGE_ARGS before allocating; connection open', (t) =>
  garbage(t, XPROG, 1, 1, u32(0x40000000, 1)));

test.serial('H28 array length 100,001 over its declared max (100,000): GARBAGE_ARGS', (t) =>
  garbage(t, XPROG, 1, 1, u32(100_001)));

test.serial('H29 opaque length 1000 (<= max 1024) beyond the record (8 bytes follow): GARBAGE_ARGS', (t) =>
  garbage(t, XPROG, 1, 2, u32(1000, 0, 0)));

test.serial('H30 opaque with non-zero padding bytes: GARBAGE_ARGS', (t) =>
  garbage(t, XPROG, 1, 2, Buffer.concat([u32(1), Buffer.from([0x41, 0, 0, 1])])));

test.serial('H31 union discriminant 5 with arms only for 0 and 1: GARBAGE_ARGS', (t) =>
  garbage(t, XPROG, 1, 3, u32(5)));

test.serial('H32 bool encoded as 2: GARBAGE_ARGS', (t) =>
  garbage(t, XPROG, 1, 4, u32(2)));

test.serial('H33 string<8> of 9 bytes, and an enum value not declared: GARBAGE_ARGS both', async (t) => {
  await garbage(t, XPROG, 1, 5, xopaque(Buffer.from('ninebytes')));
  await garbage(t, XPROG, 1, 6, u32(4));
});

test.serial('H34 trailing bytes after complete arguments: GARBAGE_ARGS', (t) =>
  garbage(t, XPROG, 1, 7, u32(5, 6)));

test.serial('H35 generated MOUNT v3 MNT: dirpath over MNTPATHLEN (1025), and a dirpath length beyond the record: GARBAGE_ARGS, impl not called', async (t) => {
  await garbage(t, 100005, 3, 1, xopaque(Buffer.alloc(1025, 0x2f)));
  await garbage(t, 100005, 3, 1, u32(1024, 0x2f2f2f2f));
  t.deepEqual(mounted, []);
  // Control: a good MNT reaches the implementation.
  const a = await arena();
  a.server.addProgram(MOUNT);
  const r = await raw(a.port);
  r.write(callRecord({ xid: 9, program: 100005, version: 3, procedure: 1, args: xopaque(Buffer.from('/export')) }));
  const [reply] = await r.waitMessages(1);
  t.like(reply, { xid: 9, acceptStat: 0 });
  t.deepEqual(mounted, ['/export']);
  r.socket.destroy();
  await a.close();
});
