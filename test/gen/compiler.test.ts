/** Parser, preprocessor and emitter behaviour, and the runtime behaviour of generated code. */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileXdr, compileXdrDetailed, XdrCompileError, type CompileOptions } from '../../src/gen/index.js';
import { runGen } from '../../src/gen/cli.js';
import { HandlerXdrError } from '../../src/runtime/stubs.js';
import { XdrError, XdrInvalidValueError, XdrLengthError, XdrReader, XdrShortInputError, XdrWriter, decode, xdr } from '../../src/xdr/index.js';
import { TEMP_IMPORTS, makeTempModuleDir, runTsc } from './helpers.js';

function compileError(source: string, options: CompileOptions = {}): XdrCompileError {
  try {
    compileXdr(source, { fileName: 'test.x', ...options });
  } catch (error) {
    if (error instanceof XdrCompileError) return error;
    throw error;
  }
  throw new Error('expected a compile error');
}

/** Compiles, type-checks under --strict, and imports a source. */
async function load(source: string, options: CompileOptions = {}): Promise<Record<string, any>> {
  const dir = makeTempModuleDir('rpctls-gen-unit-');
  try {
    writeFileSync(join(dir, 'm.ts'), compileXdr(source, { fileName: 'test.x', ...TEMP_IMPORTS, ...options }));
    const errors = runTsc(dir);
    if (errors !== '') throw new Error(`generated code does not type-check:\n${errors}`);
    return (await import(pathToFileURL(join(dir, 'm.ts')).href)) as Record<string, any>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bytes(encode: (w: XdrWriter) => void): Buffer {
  const w = new XdrWriter();
  encode(w);
  return w.toBuffer();
}

test('syntax errors carry file:line:column', (t) => {
  const e = compileError('const A = 1;\nstruct s {\n  int a\n  int b;\n};\n');
  t.is(e.line, 4);
  t.is(e.column, 3);
  t.regex(e.message, /^test\.x:4:3: expected ";", found "int"/);
  t.regex(compileError('typedef widget w;').message, /^test\.x:1:9: unknown type "widget"/);
  t.regex(compileError('typedef int x<MISSING>;').message, /^test\.x:1:15: unknown constant "MISSING"/);
  t.regex(compileError('struct s { quadruple q; };').message, /^test\.x:1:12: quadruple .* not supported/);
  t.regex(compileError('/* never closed').message, /^test\.x:1:1: unterminated comment/);
  t.regex(compileError('const A = 1;\nconst A = 2;').message, /^test\.x:2:1: "A" is already defined at test\.x:1:1/);
  t.regex(compileError('union u switch (int d) { case 1: int a; case 1: int b; };').message, /case 1 already appears/);
  t.regex(compileError('#ifdef X\nconst A = 1;\n').message, /unterminated #if/);
  t.regex(compileError('#include "nowhere.x"').message, /^test\.x:1:1: cannot find included file "nowhere.x"/);
  t.regex(compileError('const A = B;\nconst B = A;').message, /defined in terms of itself/);
  t.regex(compileError('struct s { string name; };').message, /strings need a bound/);
});

test('the rpcgen dialect: unsigned alone, C type names, struct refs, inline bodies, fallthrough cases, cpp lines', (t) => {
  const source = `
%#include <pass/through.h>
#define LIMIT 8
#ifdef NOT_DEFINED
this is not XDR and must be skipped
#else
const MAX = LIMIT;
#endif
#if defined(LIMIT) && !0
enum color { RED = 1, GREEN, BLUE = MAX };
#endif
// a line comment
struct node {
  unsigned count;
  u_int also;
  unsigned hyper big;
  hyper small;
  struct other *link;
  struct { int x; int y; } point;
  enum { ON = 1, OFF = 0 } state;
  string label<>;
  opaque blob<MAX>;
  color colors[2];
};
struct other { int v; };
union pick switch (color c) {
case RED:
case GREEN:
  int warm;
case BLUE:
  void;
};
program P { version V { pick GET(node, int) = 1; } = 2; } = 0x20000001;
`;
  const { model, code } = compileXdrDetailed(source, { fileName: 'dialect.x' });
  t.deepEqual(
    model.constants.filter((c) => c.origin === 'enum').map((c) => [c.name, c.value]),
    [['RED', 1], ['GREEN', 2], ['BLUE', 8], ['ON', 1], ['OFF', 0]],
  );
  const node = model.types.get('node');
  t.is(node?.kind, 'struct');
  t.deepEqual(model.types.get('node_point')?.kind, 'struct');
  t.regex(code, /export interface Node \{\n  count: number;\n  also: number;\n  big: bigint;\n  small: bigint;\n  link: Other \| null;\n  point: NodePoint;\n  state: NodeState;/);
  t.regex(code, /export type Pick =\n  \| \{ c: 1 \| 2; warm: number \}\n  \| \{ c: 8 \};/);
  t.regex(code, /async GET\(arg0: Node, arg1: number, options\?: O\): Promise<Pick>/);
  t.regex(code, /export const P = 536870913;/);
});

test('generated codecs: bounds, enums, unions with default arms, optional data, hypers', async (t) => {
  const m = await load(`
const NAMELEN = 4;
enum status { OK = 0, ENOENT = 2, EIO = 5 };
struct item { string name<NAMELEN>; unsigned hyper size; int *maybe; opaque tag[3]; bool flag; };
union result switch (status s) { case OK: item value; default: void; };
union numbered switch (int n) { case 1: case 2: int small; case -7: void; };
typedef item items<2>;
`);
  const item = { name: 'abcd', size: (1n << 64n) - 1n, maybe: -5, tag: Buffer.from([1, 2, 3]), flag: true };
  const encoded = bytes((w) => m.encodeResult(w, { s: 0, value: item }));
  t.is(encoded.toString('hex'), '00000000' + '00000004' + '61626364' + 'ffffffffffffffff' + '00000001' + 'fffffffb' + '01020300' + '00000001');
  t.deepEqual(m.decodeResult(new XdrReader(encoded)), { s: 0, value: item });
  // A default arm takes any other declared enum value; undeclared values are rejected both ways.
  t.deepEqual(m.decodeResult(new XdrReader(bytes((w) => w.int(5)))), { s: 5 });
  t.throws(() => m.decodeResult(new XdrReader(bytes((w) => w.int(3)))), { instanceOf: XdrInvalidValueError });
  t.throws(() => bytes((w) => m.encodeStatus(w, 3)), { instanceOf: XdrError });
  // Unions without a default reject other discriminants.
  t.deepEqual(m.decodeNumbered(new XdrReader(bytes((w) => w.int(-7)))), { n: -7 });
  t.deepEqual(m.decodeNumbered(new XdrReader(bytes((w) => w.int(2).int(9)))), { n: 2, small: 9 });
  t.throws(() => m.decodeNumbered(new XdrReader(bytes((w) => w.int(3)))), { instanceOf: XdrInvalidValueError });
  t.throws(() => bytes((w) => m.encodeNumbered(w, { n: 3 })), { instanceOf: XdrError });
  // Bounds from the .x are enforced on decode (string<4>, array<2>) and encode.
  t.throws(() => m.decodeItem(new XdrReader(bytes((w) => w.string('abcde')))), { instanceOf: XdrLengthError });
  t.throws(() => bytes((w) => m.encodeItem(w, { ...item, name: 'abcde' })), { instanceOf: XdrLengthError });
  t.throws(() => m.decodeItems(new XdrReader(bytes((w) => w.uint(3)))), { instanceOf: XdrLengthError });
  // A lying array length is refused before allocating.
  t.throws(() => m.decodeItems(new XdrReader(bytes((w) => w.uint(2)))), { instanceOf: XdrShortInputError });
  t.throws(() => bytes((w) => m.encodeItems(w, [item, item, item])), { instanceOf: XdrLengthError });
  t.deepEqual(m.decodeItem(new XdrReader(bytes((w) => m.ItemCodec.encode(w, { ...item, maybe: null })))), { ...item, maybe: null });
  t.true(m.StatusValues.has(5));
  t.is(m.EIO, 5);
});

test('linked lists decode and encode iteratively (no stack overflow) and are bounded', async (t) => {
  const m = await load('struct entry { int v; entry *next; };\ntypedef entry *list;\n', { maxListLength: 300_000 });
  const count = 200_000;
  const w = new XdrWriter();
  w.bool(true);
  for (let i = 0; i < count; i++) w.int(i).bool(i < count - 1);
  const encoded = w.toBuffer();
  const list = m.decodeList(new XdrReader(encoded));
  let length = 0;
  let inOrder = true;
  for (let node = list; node !== null; node = node.next) inOrder &&= node.v === length++;
  t.is(length, count);
  t.true(inOrder);
  t.true(bytes((ww) => m.encodeList(ww, list)).equals(encoded));

  const bounded = await load('struct entry { int v; entry *next; };\n', { maxListLength: 10 });
  const eleven = new XdrWriter();
  for (let i = 0; i < 11; i++) eleven.int(i).bool(i < 10);
  t.throws(() => bounded.decodeEntry(new XdrReader(eleven.toBuffer())), { instanceOf: XdrLengthError });
  // A cyclic list cannot make the encoder loop forever.
  const cyclic: { v: number; next: unknown } = { v: 1, next: null };
  cyclic.next = cyclic;
  t.throws(() => bytes((ww) => bounded.encodeEntry(ww, cyclic)), { instanceOf: XdrLengthError });
});

test('typed client calls through an RpcCaller and decodes the result', async (t) => {
  const mount = await import('../../src/generated/mount.js');
  const calls: unknown[][] = [];
  const caller = {
    async call(prog: number, vers: number, proc: number, args: Buffer[], options?: { timeout?: number }): Promise<Buffer> {
      calls.push([prog, vers, proc, Buffer.concat(args).toString('hex'), options]);
      return bytes((w) => w.int(0).opaque(Buffer.from('fh')).uint(1).int(390004));
    },
  };
  const client = new mount.MountClient_v3(caller);
  const res = await client.MOUNTPROC3_MNT('/x', { timeout: 5 });
  t.deepEqual(calls, [[100005, 3, 1, '000000022f780000', { timeout: 5 }]]);
  t.deepEqual(res, { fhs_status: mount.MNT3_OK, mountinfo: { fhandle: Buffer.from('fh'), auth_flavors: [390004] } });
  // Trailing garbage in a reply is an error, not silently ignored.
  const sloppy = new mount.MountClient_v3({ call: async () => Buffer.alloc(4) });
  await t.throwsAsync(sloppy.MOUNTPROC3_NULL(), { instanceOf: XdrError });
});

test('server adapter decodes args, encodes results, and separates bad args from handler faults', async (t) => {
  const mount = await import('../../src/generated/mount.js');
  const program = mount.mountProgram_v3<{ peer: string }>({
    MOUNTPROC3_NULL: () => undefined,
    MOUNTPROC3_MNT: (path, ctx) =>
      path === '/bad' || ctx.peer !== 'p' ? { fhs_status: 99 as never } : { fhs_status: mount.MNT3ERR_NOENT },
    MOUNTPROC3_DUMP: () => ({ ml_hostname: 'h', ml_directory: '/d', ml_next: null }),
    MOUNTPROC3_UMNT: () => undefined,
    MOUNTPROC3_UMNTALL: () => undefined,
    MOUNTPROC3_EXPORT: () => null,
  });
  t.is(program.program, 100005);
  t.is(program.version, 3);
  const mnt = program.procedures[1]!;
  const reply = Buffer.concat(await (mnt(bytes((w) => w.string('/x')), { peer: 'p' }) as Promise<Buffer[]>));
  t.is(reply.toString('hex'), '00000002');
  const dump = Buffer.concat(await (program.procedures[2]!(Buffer.alloc(0), { peer: 'p' }) as Promise<Buffer[]>));
  t.deepEqual(mount.decodeMountlist(new XdrReader(dump)), { ml_hostname: 'h', ml_directory: '/d', ml_next: null });
  // Undecodable arguments reject with an XdrError (the server answers GARBAGE_ARGS)...
  await t.throwsAsync(mnt(bytes((w) => w.uint(5000)), { peer: 'p' }), { instanceOf: XdrLengthError });
  await t.throwsAsync(program.procedures[0]!(Buffer.alloc(4), { peer: 'p' }), { instanceOf: XdrError });
  // ...while a result the implementation got wrong is a server fault, not an XdrError.
  const fault = await t.throwsAsync(mnt(bytes((w) => w.string('/bad')), { peer: 'p' }));
  t.true(fault instanceof HandlerXdrError);
  t.false(fault instanceof XdrError);
});

test('runGen says what it wrote, hints at --with for an unknown type, and reports an unwritable -o without a stack', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-gen-cli-'));
  try {
    writeFileSync(join(dir, 'ok.x'), 'struct point { int x; int y; };\n');
    writeFileSync(join(dir, 'uses.x'), 'struct line { point a; point b; };\n');
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) };
    t.is(runGen([join(dir, 'ok.x'), '-o', join(dir, 'ok.ts')], io), 0);
    t.regex(out.join(''), /^rpctls gen: wrote .*ok\.ts \(\d+ bytes\) from .*ok\.x\n$/);
    t.is(runGen([join(dir, 'uses.x'), '-o', join(dir, 'uses.ts')], io), 1);
    t.regex(err.join(''), /unknown type "point"\n  hint: a type from another \.x file\? pass it with --with <other\.x>/);
    t.is(runGen([join(dir, 'uses.x'), '--with', join(dir, 'ok.x'), '-o', join(dir, 'uses.ts')], io), 0);
    err.length = 0;
    t.is(runGen([join(dir, 'ok.x'), '-o', join(dir, 'no-such-dir', 'ok.ts')], io), 1);
    t.regex(err.join(''), /^rpctls gen: cannot write .*no-such-dir\/ok\.ts: ENOENT/);
    t.notRegex(err.join(''), /\n\s+at /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runGen compiles a file, follows #include, and reports errors with positions', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-gen-cli-'));
  try {
    writeFileSync(join(dir, 'common.x'), 'const SIZE = 16;\n');
    writeFileSync(join(dir, 'main.x'), '#include "common.x"\ntypedef opaque block[SIZE];\n');
    writeFileSync(join(dir, 'broken.x'), 'struct s {\n  int;\n};\n');
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (s: string) => void err.push(s) };
    t.is(runGen([join(dir, 'main.x'), '-o', join(dir, 'main.ts')], io), 0);
    const out = readFileSync(join(dir, 'main.ts'), 'utf8');
    t.regex(out, /export const SIZE = 16;/);
    t.regex(out, /from "rpctls";/);
    t.regex(out, /r\.fixedOpaque\(16\)/);
    t.is(runGen([join(dir, 'broken.x'), '-o', join(dir, 'broken.ts')], io), 1);
    t.regex(err.join(''), /broken\.x:2:6: expected a field name, found ";"/);
    t.is(runGen([join(dir, 'main.x')], io), 2);
    t.regex(err.join(''), /rpctls gen: no output file given: add -o <out\.ts>/);
    t.is(runGen([join(dir, 'main.x'), '-o', join(dir, 'x.ts'), '--bogus'], io), 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fields named __proto__, constructor, toString, hasOwnProperty decode as plain own fields (never the prototype)', async (t) => {
  const source = `
struct inner { int n; };
struct special {
  int __proto__;
  inner constructor;
  string toString<>;
  bool hasOwnProperty;
  inner *valueOf;
};
struct nested { inner __proto__; };
union choice switch (int __proto__) {
  case 1: inner __defineGetter__;
  default: void;
};
`;
  const code = compileXdr(source, { fileName: 'special.x', ...TEMP_IMPORTS });
  const dir = makeTempModuleDir('rpctls-gen-proto-');
  try {
    const file = join(dir, 'special.ts');
    writeFileSync(file, code);
    const m = (await import(pathToFileURL(file).href)) as Record<string, (...args: unknown[]) => unknown>;
    const roundTrip = (name: string, value: unknown): Record<string, unknown> => {
      const w = new XdrWriter();
      m[`encode${name}`]!(w, value);
      const r = new XdrReader(w.toBuffer());
      return m[`decode${name}`]!(r) as Record<string, unknown>;
    };
    const special = roundTrip('Special', {
      ['__proto__']: 7, constructor: { n: 1 }, toString: 'text', hasOwnProperty: true, valueOf: { n: 2 },
    });
    t.is(Object.getPrototypeOf(special), Object.prototype);
    t.deepEqual(Object.keys(special), ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']);
    t.is(Object.getOwnPropertyDescriptor(special, '__proto__')?.value, 7);
    t.deepEqual(special.constructor, { n: 1 });
    t.is(Object.getOwnPropertyDescriptor(special, 'toString')?.value, 'text');
    // A struct-typed __proto__ must not become the decoded object's prototype.
    const nested = roundTrip('Nested', { ['__proto__']: { n: 9 } });
    t.is(Object.getPrototypeOf(nested), Object.prototype);
    t.deepEqual(Object.getOwnPropertyDescriptor(nested, '__proto__')?.value, { n: 9 });
    t.is((nested as { n?: number }).n, undefined);
    const choice = roundTrip('Choice', { ['__proto__']: 1, __defineGetter__: { n: 3 } });
    t.is(Object.getPrototypeOf(choice), Object.prototype);
    t.is(Object.getOwnPropertyDescriptor(choice, '__proto__')?.value, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('xdr.struct decodes a __proto__ field as an own field', (t) => {
  const codec = xdr.struct<{ __proto__: number; n: number }>({ ['__proto__']: xdr.int, n: xdr.int } as never);
  const decoded = decode(codec, xdr.encode(codec, JSON.parse('{"__proto__": 5, "n": 6}') as never)) as object;
  t.is(Object.getPrototypeOf(decoded), Object.prototype);
  t.is(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value, 5);
});
