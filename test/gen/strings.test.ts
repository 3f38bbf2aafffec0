/**
 * String modes of generated code (`strings` / `stringsByName`, `rpctls gen --strings`): 'buffer' keeps
 * bytes that are not UTF-8 exactly, 'utf8-strict' refuses them, 'utf8' (the default, and what the
 * checked-in src/generated/ files use) replaces them; the generated types follow the mode.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { InvalidOptionError } from '../../src/errors.js';
import { compileXdr, type CompileOptions } from '../../src/gen/index.js';
import { runGen } from '../../src/gen/cli.js';
import { RpcClient, RpcServer } from '../../src/index.js';
import { XdrEncodeError, XdrError, XdrInvalidUtf8Error, XdrLengthError, XdrReader, XdrWriter } from '../../src/xdr/index.js';
import { REPO_ROOT, TEMP_IMPORTS, makeTempModuleDir, runTsc } from './helpers.js';

/** Strings under each mode (test/types/gen-strings.ts checks the types its checked-in compilation has). */
const SOURCE = readFileSync(join(REPO_ROOT, 'test/types/generated/strings.x'), 'utf8');

/** "a", 0xff, 0xfe: not UTF-8 (0xff and 0xfe never occur in it). */
const NOT_UTF8 = Buffer.from([0x61, 0xff, 0xfe]);

function encoded(encode: (w: XdrWriter) => void): Buffer {
  const w = new XdrWriter();
  encode(w);
  return w.toBuffer();
}

/** Compiles SOURCE with `options`, type-checks it under --strict, and imports it. */
async function load(options: CompileOptions): Promise<Record<string, any>> {
  const dir = makeTempModuleDir('rpctls-gen-strings-');
  try {
    writeFileSync(join(dir, 'm.ts'), compileXdr(SOURCE, { fileName: 'str.x', ...TEMP_IMPORTS, ...options }));
    const errors = runTsc(dir);
    if (errors !== '') throw new Error(`generated code does not type-check:\n${errors}`);
    return (await import(pathToFileURL(join(dir, 'm.ts')).href)) as Record<string, any>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the default is 'utf8' and leaves generated code as it was; the modes pick the reader's and writer's methods", (t) => {
  const plain = compileXdr(SOURCE, { fileName: 'str.x' });
  t.is(compileXdr(SOURCE, { fileName: 'str.x', strings: 'utf8' }), plain);
  t.regex(plain, /export type Filename = string;/);
  t.regex(plain, /r\.string\(8\)/);
  t.notRegex(plain, /stringBytes|stringStrict/);
  const buffer = compileXdr(SOURCE, { fileName: 'str.x', strings: 'buffer' });
  t.regex(buffer, /export type Filename = Buffer;/);
  t.regex(buffer, /  label: Buffer;\n  note: Buffer;/);
  t.regex(buffer, /r\.stringBytes\(8\)/);
  t.regex(buffer, /w\.string\(v, 8\);/, 'the writer takes the Buffer as it is');
  t.regex(buffer, /async NOTE\(arg: Buffer, options\?: O\): Promise<Buffer>/);
  const strict = compileXdr(SOURCE, { fileName: 'str.x', strings: 'utf8-strict' });
  t.regex(strict, /export type Filename = string;/);
  t.regex(strict, /r\.stringStrict\(8\)/);
  t.regex(strict, /w\.stringStrict\(v, 8\);/);
});

test("'buffer': bytes that are not UTF-8 round-trip exactly, as a view of the input; bounds count bytes", async (t) => {
  const m = await load({ strings: 'buffer' });
  const value = { name: NOT_UTF8, label: Buffer.from([0xc3, 0x28]), note: Buffer.alloc(0) };
  const bytes = encoded((w) => m.encodeEntry(w, value));
  t.is(bytes.subarray(0, 8).toString('hex'), '0000000361fffe00');
  const back = m.decodeEntry(new XdrReader(bytes));
  t.deepEqual(back, value);
  t.true(Buffer.isBuffer(back.name));
  t.is(back.name.buffer, bytes.buffer, 'a view of the received bytes, no copy');
  t.true(encoded((w) => m.encodeEntry(w, back)).equals(bytes));
  // A JS string is still accepted by the encoder (written as UTF-8).
  t.true(encoded((w) => m.encodeFilename(w, 'a\u00e9')).equals(encoded((w) => w.string(Buffer.from('a\u00e9')))));
  // string<8> bounds bytes both ways.
  t.throws(() => encoded((w) => m.encodeFilename(w, Buffer.alloc(9))), { instanceOf: XdrLengthError, message: /string length 9 exceeds its maximum 8/ });
  t.throws(() => m.decodeFilename(new XdrReader(encoded((w) => w.string(Buffer.alloc(9))))), { instanceOf: XdrLengthError });
  const arm = m.decodeLookupRes(new XdrReader(encoded((w) => m.encodeLookupRes(w, { status: 0, found: NOT_UTF8 }))));
  t.deepEqual(arm, { status: 0, found: NOT_UTF8 });
});

test("'utf8' replaces invalid UTF-8 with U+FFFD; 'utf8-strict' refuses it with ERR_XDR_INVALID_UTF8 and refuses to send a lone surrogate", async (t) => {
  const wire = encoded((w) => w.string(NOT_UTF8));
  const lossy = await load({});
  t.is(lossy.decodeFilename(new XdrReader(wire)), 'a\ufffd\ufffd');
  const strict = await load({ strings: 'utf8-strict' });
  const error = t.throws(() => strict.decodeFilename(new XdrReader(wire)), { instanceOf: XdrInvalidUtf8Error });
  t.is(error?.code, 'ERR_XDR_INVALID_UTF8');
  t.is(strict.decodeFilename(new XdrReader(encoded((w) => w.string('h\u00e9')))), 'h\u00e9');
  t.throws(() => encoded((w) => strict.encodeFilename(w, 'a\ud800')), { instanceOf: XdrEncodeError });
  // On a server, arguments that are not UTF-8 are undecodable arguments (an XdrError: GARBAGE_ARGS).
  const program = strict.strProgram_v1({ ECHO: (e: unknown) => e, LOOKUP: () => ({ status: 1, why: '' }), NOTE: (s: string) => s });
  await t.throwsAsync(program.procedures[3](wire, {}), { instanceOf: XdrError });
});

test('stringsByName: a typedef, a type.member and a procedure each get their own mode (types: test/types/gen-strings.ts)', async (t) => {
  // The checked-in compilation (test/gen/regenerate.ts): filename and NOTE 'buffer', entry.note 'utf8-strict'.
  const m = (await import('../types/generated/strings.js')) as Record<string, any>;
  const wire = Buffer.concat([encoded((w) => w.string(NOT_UTF8)), encoded((w) => w.string(NOT_UTF8)), encoded((w) => w.string('ok'))]);
  t.deepEqual(m.decodeEntry(new XdrReader(wire)), { name: NOT_UTF8, label: 'a\ufffd\ufffd', note: 'ok' });
  const badNote = Buffer.concat([encoded((w) => w.string('n')), encoded((w) => w.string('l')), encoded((w) => w.string(NOT_UTF8))]);
  t.throws(() => m.decodeEntry(new XdrReader(badNote)), { instanceOf: XdrInvalidUtf8Error });
  // The union's own string arm keeps the default.
  t.deepEqual(m.decodeLookupRes(new XdrReader(encoded((w) => w.int(1).string(NOT_UTF8)))), { status: 1, why: 'a\ufffd\ufffd' });
});

test('the generated client and server keep non-UTF-8 names exactly, over a real connection', async (t) => {
  const m = await load({ stringsByName: { filename: 'buffer' } });
  const seen: Buffer[] = [];
  const server = new RpcServer();
  server.addProgram(
    m.strProgram_v1({
      ECHO: (e: { name: Buffer }) => (seen.push(e.name), e),
      LOOKUP: (f: Buffer) => (seen.push(f), { status: 0, found: Buffer.concat([f, Buffer.from([0x80])]) }),
      NOTE: (s: string) => s,
    }),
  );
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = new RpcClient({ host: '127.0.0.1', port, timeout: 5000 });
  t.teardown(async () => {
    await client.close();
    await server.close();
  });
  const stub = new m.StrClient_v1(client);
  const entry = { name: NOT_UTF8, label: 'l\u00e9', note: '' };
  t.deepEqual(await stub.ECHO(entry), entry);
  const res = await stub.LOOKUP(Buffer.from([0xfe, 0xff]));
  t.deepEqual(res, { status: 0, found: Buffer.from([0xfe, 0xff, 0x80]) });
  t.deepEqual(seen, [NOT_UTF8, Buffer.from([0xfe, 0xff])]);
});

test('bad modes, names that select no string and misspelt options are rejected with the nearest valid name', (t) => {
  const bad = (options: CompileOptions): string => t.throws(() => compileXdr(SOURCE, options), { instanceOf: InvalidOptionError })?.message ?? '';
  t.regex(bad({ strings: 'bytes' as never }), /^strings must be 'utf8', 'utf8-strict' or 'buffer'; received "bytes"/);
  t.regex(bad({ stringsByName: { filename: 'latin1' as never } }), /^stringsByName\.filename must be 'utf8', 'utf8-strict' or 'buffer'/);
  t.regex(bad({ stringsByName: { filenme: 'buffer' } }), /^a stringsByName key must be the name of a string typedef, .*\(did you mean filename\?\); received "filenme"$/);
  // entry.name is declared `filename name;`: the typedef is what selects it.
  t.regex(bad({ stringsByName: { 'entry.name': 'buffer' } }), /\(did you mean filename\?\); received "entry\.name"/);
  t.regex(bad({ stringsByName: { 'entry.lable': 'buffer' } }), /\(did you mean entry\.label\?\)/);
  t.regex(bad({ string: 'buffer' } as CompileOptions), /^string must be a known option \(did you mean strings\?\)/);
  // Modes are checked before the source is compiled: a broken source does not hide them.
  t.throws(() => compileXdr('struct {', { strings: 'bytes' as never }), { instanceOf: InvalidOptionError });
});

test('rpctls gen --strings: global and per name, --name=value form, bad values exit 2', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-gen-strings-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'str.x'), SOURCE);
  const err: string[] = [];
  const io = { stdout: () => undefined, stderr: (s: string) => void err.push(s) };
  const out = join(dir, 'str.ts');
  t.is(runGen([join(dir, 'str.x'), '-o', out, '--strings', 'buffer', '--strings=entry.label=utf8'], io), 0, err.join(''));
  const code = readFileSync(out, 'utf8');
  t.regex(code, /export type Filename = Buffer;/);
  t.regex(code, /  label: string;\n  note: Buffer;/);
  t.is(runGen([join(dir, 'str.x'), '-o', out, '--strings', 'latin1'], io), 2);
  t.regex(err.join(''), /--strings takes utf8, utf8-strict, buffer or NAME=<one of them>; got "latin1"/);
  err.length = 0;
  t.is(runGen([join(dir, 'str.x'), '-o', out, '--strings', 'filenme=buffer'], io), 2);
  t.regex(err.join(''), /^rpctls gen: --strings NAME must be the name of a string typedef, .*\(did you mean filename\?\); received "filenme"\n$/);
  const help: string[] = [];
  t.is(runGen(['--help'], { stdout: (s) => void help.push(s), stderr: () => undefined }), 0);
  t.regex(help.join(''), /--strings \[NAME=\]MODE/);
});
