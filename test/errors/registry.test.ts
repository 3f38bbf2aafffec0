// The error registry (src/error-registry.ts) is the one catalogue of codes: README's table is generated
// from it, every exported error class is in it, every class in it is an RpctlsError, every code is
// registered once, every code the sources spell out is registered, and every entry's class and fields
// are what an actual error of that code has.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { README_PATH, readmeWithErrorTable } from '../../scripts/errors-table.js';
import { AgentConfigError, parseAgentConfig } from '../../src/agent/config.js';
import { decodeDatagram } from '../../src/agent/netlink.js';
import { ERROR_BASES, ERROR_CODES, type ErrorBaseEntry, type ErrorClass, type ErrorCodeEntry } from '../../src/error-registry.js';
import { RpctlsError, validateUint32 } from '../../src/errors.js';
import { compileXdr } from '../../src/gen/index.js';
import { handlerFailure } from '../../src/runtime/stubs.js';
import { UsageError } from '../../src/errors.js';
import { AcceptStat, AuthStat, MsgType, RejectStat, ReplyStat } from '../../src/rpc/constants.js';
import {
  ConnectError,
  ConnectionClosedError,
  MalformedMessageError,
  QueueFullError,
  ResultDecodeError,
  RpcAbortError,
  RpcMismatchError,
  RpcTimeoutError,
  acceptedError,
  authError,
} from '../../src/rpc/errors.js';
import { CallAuthTooLongError } from '../../src/rpc/message.js';
import { StartTlsRefusedError } from '../../src/rpc-tls/errors.js';
import { TlsCertificateParseError, TlsNativeMissingError, TlsTakeoverError, tlsErrorFromNative } from '../../src/tls/errors.js';
import { RecordTimeoutError, RecordTooLargeError, TooManyFragmentsError, TruncatedRecordError } from '../../src/transport/errors.js';
import { XdrEncodeError, XdrInvalidUtf8Error, XdrInvalidValueError, XdrLengthError, XdrPaddingError, XdrReader, XdrShortInputError, XdrTrailingBytesError } from '../../src/xdr/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Classes in src/ allowed to extend Error directly, and why. */
const PLAIN_ERROR_CLASSES: Record<string, string> = {
  RpctlsError: 'the root of the catalogue',
  GarbageArgs: 'a private marker inside the dispatcher, caught there and answered GARBAGE_ARGS; it never escapes',
};

/** ERR_* string literals in the sources that are not codes of errors rpctls makes. */
const NOT_CODES: Record<string, string> = {
  ERR_UNKNOWN: 'what the CLI prints for a thrown value that is not an Error',
  ERR_TLS: "what `rpctls serve` logs for a 'tlsError' event without a code",
};

function isErrorClass(value: unknown): value is ErrorClass {
  return typeof value === 'function' && (value === Error || value.prototype instanceof Error);
}

function isRpctlsClass(Class: ErrorClass): boolean {
  return Class === RpctlsError || Class.prototype instanceof RpctlsError;
}

/** What is wrong with a registry, given the error classes the modules export (empty when nothing). */
function registryProblems(codes: readonly ErrorCodeEntry[], bases: readonly ErrorBaseEntry[], exported: ReadonlyMap<string, ErrorClass>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const { code } of codes) {
    if (seen.has(code)) problems.push(`${code} is registered twice`);
    seen.add(code);
    if (!/^ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/.test(code)) problems.push(`${code} is not an ERR_UPPER_SNAKE code`);
  }
  const registered = new Set<ErrorClass>([...codes.flatMap((e) => [e.class, ...(e.subclasses ?? [])]), ...bases.map((b) => b.class)]);
  for (const Class of registered) {
    if (!isRpctlsClass(Class)) problems.push(`${Class.name} is registered but does not extend RpctlsError`);
  }
  for (const [name, Class] of exported) {
    if (!registered.has(Class)) problems.push(`${name} is exported but not in the registry`);
  }
  return problems;
}

/** The error classes every module of src/ exports (the package's entry and each layer's included). */
async function exportedErrorClasses(): Promise<Map<string, ErrorClass>> {
  const out = new Map<string, ErrorClass>();
  for (const path of sourceFiles('src', /\.ts$/)) {
    const module = (await import(path)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(module)) {
      if (isErrorClass(value) && ![...out.values()].includes(value)) out.set(`${name} (${path.slice(ROOT.length)})`, value);
    }
  }
  return out;
}

function sourceFiles(dir: string, pattern: RegExp): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && pattern.test(d.name))
    .map((d) => join(d.parentPath, d.name))
    .filter((path) => !path.includes('/src/generated/'));
}

const SOURCES = [...sourceFiles('src', /\.ts$/), ...sourceFiles('native/src', /\.(cc|h)$/)].map((path) => ({
  path: path.slice(ROOT.length),
  text: readFileSync(path, 'utf8'),
}));

/** Every complete ERR_* string literal in src/ and native/src/ (prefixes like 'ERR_TLS_' excluded). */
function codeLiterals(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { path, text } of SOURCES) {
    for (const match of text.matchAll(/(['"`])(ERR_[A-Z0-9_]*[A-Z0-9])\1/g)) {
      const code = match[2] as string;
      out.set(code, [...(out.get(code) ?? []), path]);
    }
  }
  return out;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const reply = { type: MsgType.REPLY, xid: 7, replyStat: ReplyStat.MSG_DENIED, rejectStat: RejectStat.AUTH_ERROR, authStat: AuthStat.AUTH_TOOWEAK } as const;

/** An actual error for each code whose class makes it (the rest must appear as literals in the sources). */
const EXAMPLES: Record<string, () => unknown> = {
  ERR_RPC_INVALID_OPTION: () => thrown(() => validateUint32(-1, 'timeout')),
  ERR_XDR_SHORT_INPUT: () => thrown(() => new XdrReader(Buffer.alloc(2)).uint()),
  ERR_XDR_LENGTH_EXCEEDS_MAX: () => new XdrLengthError('opaque', 9, 8, 0),
  ERR_XDR_NONZERO_PADDING: () => new XdrPaddingError(4),
  ERR_XDR_INVALID_VALUE: () => new XdrInvalidValueError('bool', 2, 0),
  ERR_XDR_INVALID_UTF8: () => new XdrInvalidUtf8Error(2, 4),
  ERR_XDR_TRAILING_BYTES: () => new XdrTrailingBytesError(3, 4),
  ERR_XDR_ENCODE: () => new XdrEncodeError('uint out of range'),
  ERR_RPC_RECORD_TOO_LARGE: () => new RecordTooLargeError(10, 5),
  ERR_RPC_TOO_MANY_FRAGMENTS: () => new TooManyFragmentsError(4),
  ERR_RPC_TRUNCATED_RECORD: () => new TruncatedRecordError(3),
  ERR_RPC_RECORD_TIMEOUT: () => new RecordTimeoutError(3, 100),
  ERR_RPC_PROG_UNAVAIL: () => acceptedError(AcceptStat.PROG_UNAVAIL),
  ERR_RPC_PROG_MISMATCH: () => acceptedError(AcceptStat.PROG_MISMATCH, 2, 3),
  ERR_RPC_PROC_UNAVAIL: () => acceptedError(AcceptStat.PROC_UNAVAIL),
  ERR_RPC_GARBAGE_ARGS: () => acceptedError(AcceptStat.GARBAGE_ARGS),
  ERR_RPC_SYSTEM_ERR: () => acceptedError(AcceptStat.SYSTEM_ERR),
  ERR_RPC_UNKNOWN_ACCEPT_STAT: () => acceptedError(99),
  ERR_RPC_MISMATCH: () => new RpcMismatchError(2, 2),
  ERR_RPC_AUTH_BADCRED: () => authError(AuthStat.AUTH_BADCRED),
  ERR_RPC_AUTH_REJECTEDCRED: () => authError(AuthStat.AUTH_REJECTEDCRED),
  ERR_RPC_AUTH_BADVERF: () => authError(AuthStat.AUTH_BADVERF),
  ERR_RPC_AUTH_REJECTEDVERF: () => authError(AuthStat.AUTH_REJECTEDVERF),
  ERR_RPC_AUTH_TOOWEAK: () => authError(AuthStat.AUTH_TOOWEAK),
  ERR_RPC_AUTH_INVALIDRESP: () => authError(AuthStat.AUTH_INVALIDRESP),
  ERR_RPC_AUTH_FAILED: () => authError(AuthStat.AUTH_FAILED),
  ERR_RPC_RPCSEC_GSS_CREDPROBLEM: () => authError(AuthStat.RPCSEC_GSS_CREDPROBLEM),
  ERR_RPC_RPCSEC_GSS_CTXPROBLEM: () => authError(AuthStat.RPCSEC_GSS_CTXPROBLEM),
  ERR_RPC_AUTH_ERROR: () => authError(AuthStat.AUTH_KERB_GENERIC),
  ERR_RPC_TIMEOUT: () => new RpcTimeoutError(100),
  ERR_RPC_ABORTED: () => new RpcAbortError('stop'),
  ERR_RPC_CONNECTION_CLOSED: () => new ConnectionClosedError(),
  ERR_RPC_CONNECT: () => new ConnectError('127.0.0.1', 1, Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })),
  ERR_RPC_QUEUE_FULL: () => new QueueFullError(16),
  ERR_RPC_MALFORMED_MESSAGE: () => new MalformedMessageError('record of 3 bytes'),
  ERR_RPC_RESULT_DECODE: () => new ResultDecodeError(new XdrShortInputError(4, 0, 0)),
  ERR_RPC_TLS_NOT_OFFERED: () => new StartTlsRefusedError(reply),
  ERR_TLS_HANDSHAKE_TIMEOUT: () => tlsErrorFromNative({ code: 'ERR_TLS_HANDSHAKE_TIMEOUT', message: 'TLS handshake timed out after 5 ms', timeoutMs: 5 }),
  ERR_TLS_HANDSHAKE: () => tlsErrorFromNative({ code: 'ERR_TLS_HANDSHAKE', message: 'TLS handshake failed: x', reason: 'x' }),
  ERR_TLS_CERT_VERIFY: () => tlsErrorFromNative({ code: 'ERR_TLS_CERT_VERIFY', message: 'm', verifyCode: 62, reason: 'hostname mismatch' }),
  ERR_TLS_CERT_REQUIRED: () => tlsErrorFromNative({ code: 'ERR_TLS_CERT_REQUIRED', message: 'm' }),
  ERR_TLS_ALERT: () => tlsErrorFromNative({ code: 'ERR_TLS_ALERT', message: 'received TLS alert bad certificate', level: 2, description: 42, received: true }),
  ERR_TLS_KEY_UPDATE: () => tlsErrorFromNative({ code: 'ERR_TLS_KEY_UPDATE', message: 'm' }),
  ERR_TLS_ALPN_REQUIRED: () => tlsErrorFromNative({ code: 'ERR_TLS_ALPN_REQUIRED', message: 'm' }),
  ERR_TLS_KTLS: () => tlsErrorFromNative({ code: 'ERR_TLS_KTLS', message: 'm', errno: 22, errnoName: 'EINVAL', step: 'TLS_RX' }),
  ERR_TLS_BAD_RECORD: () => tlsErrorFromNative({ code: 'ERR_TLS_BAD_RECORD', message: 'm', errno: 74, errnoName: 'EBADMSG' }),
  ERR_TLS_PROTOCOL: () => tlsErrorFromNative({ code: 'ERR_TLS_PROTOCOL', message: 'm' }),
  ERR_TLS_SYSCALL: () => tlsErrorFromNative({ code: 'ERR_TLS_SYSCALL', message: 'm', syscall: 'read', errno: 104, errnoName: 'ECONNRESET' }),
  ERR_TLS_CERTIFICATE_PARSE: () => new TlsCertificateParseError('truncated'),
  ERR_TLS_TAKEOVER: () => new TlsTakeoverError('socket has no file descriptor'),
  ERR_TLS_NATIVE_MISSING: () => new TlsNativeMissingError('is not built or prebuilt for linux-x64 (no native/build/Release/rpctls_native.node; no prebuilds/linux-x64/rpctls_native.node)'),
  ERR_TLS_INVALID_STATE: () => tlsErrorFromNative({ code: 'ERR_TLS_INVALID_STATE', message: 'write while not open or with a write pending' }),
  ERR_AGENT_CONFIG: () => thrown(() => parseAgentConfig('not a key file\n', 'my.conf')),
  ERR_NETLINK_MALFORMED: () => thrown(() => decodeDatagram(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))),
  ERR_XDRGEN: () => thrown(() => compileXdr('struct {', { fileName: 'bad.x' })),
  ERR_RPC_HANDLER_XDR: () => handlerFailure(new XdrEncodeError('uint out of range')),
  ERR_USAGE: () => new UsageError('rpctls ping: --count must be an integer'),
};

/** Subclass examples: narrower classes registered under an entry's code. */
const SUBCLASS_EXAMPLES: Record<string, () => unknown> = {
  CallAuthTooLongError: () => new CallAuthTooLongError({ type: MsgType.CALL, xid: 1, rpcvers: 2, program: 1, version: 1, procedure: 0 }, 401),
};

test("README's error table is the one generated from the registry (npm run errors:table)", (t) => {
  const readme = readFileSync(README_PATH, 'utf8');
  t.is(readme, readmeWithErrorTable(readme), 'README.md differs from src/error-registry.ts: run npm run errors:table');
});

test('a README edited by hand, or a registry changed without regenerating, is caught', (t) => {
  const readme = readFileSync(README_PATH, 'utf8');
  const edited = readme.replace('| `ERR_RPC_TIMEOUT` |', '| `ERR_RPC_TIME_OUT` |');
  t.not(edited, readme);
  t.not(readmeWithErrorTable(edited), edited);
  t.throws(() => readmeWithErrorTable('# no markers'), { message: /no .*errors:start/ });
});

test('every code is registered once, every registered class is an RpctlsError, every exported error class is registered', async (t) => {
  t.deepEqual(registryProblems(ERROR_CODES, ERROR_BASES, await exportedErrorClasses()), []);
});

test('the checks above fail on a duplicated code, a class outside RpctlsError and an unregistered export', (t) => {
  class Stray extends RpctlsError {}
  class Outsider extends Error {}
  const entry = ERROR_CODES[0] as ErrorCodeEntry;
  const codes = [entry, { ...entry, class: Outsider as unknown as ErrorClass }, { ...entry, code: 'ERR_lower' }];
  t.deepEqual(registryProblems(codes, [], new Map<string, ErrorClass>([['Stray', Stray]])), [
    `${entry.code} is registered twice`,
    'ERR_lower is not an ERR_UPPER_SNAKE code',
    'Outsider is registered but does not extend RpctlsError',
    'Stray is exported but not in the registry',
  ]);
});

test('no class in src/ extends Error directly except RpctlsError (so every error is under it)', (t) => {
  const offenders = SOURCES.flatMap(({ path, text }) =>
    [...text.matchAll(/class\s+(\w+)\s+extends\s+Error\b/g)].map((m) => m[1] as string).filter((name) => !(name in PLAIN_ERROR_CLASSES)).map((name) => `${path}: ${name}`),
  );
  t.deepEqual(offenders, []);
});

test('every ERR_* code spelled in src/ and native/src/ is registered', (t) => {
  const unregistered = [...codeLiterals()].filter(([code]) => !ERROR_CODES.some((e) => e.code === code) && !(code in NOT_CODES)).map(([code, paths]) => `${code} (${[...new Set(paths)].join(', ')})`);
  t.deepEqual(unregistered, []);
});

test('every registered code is made somewhere: by its example below, or spelled in the sources', (t) => {
  const literals = codeLiterals();
  const unmade = ERROR_CODES.filter((e) => !(e.code in EXAMPLES) && !literals.has(e.code)).map((e) => e.code);
  t.deepEqual(unmade, []);
  t.deepEqual(Object.keys(EXAMPLES).filter((code) => !ERROR_CODES.some((e) => e.code === code)), [], 'examples of unregistered codes');
});

/** Properties of an error that are not data (or are documented with a base). */
const STANDARD = new Set(['code', 'name', 'message', 'stack', 'cause']);

function baseFields(error: object): Set<string> {
  return new Set(ERROR_BASES.filter((b) => error instanceof b.class).flatMap((b) => b.fields));
}

for (const entry of ERROR_CODES) {
  if (!(entry.code in EXAMPLES)) continue;
  test(`${entry.code}: an actual error is exactly a ${entry.class.name}, with that code and the registered fields`, (t) => {
    const error = EXAMPLES[entry.code]!() as RpctlsError;
    t.is(error.code, entry.code);
    t.is(error.constructor, entry.class);
    t.true(error instanceof RpctlsError, `${entry.class.name} is not an RpctlsError`);
    for (const field of entry.fields) t.true(field in error, `no property ${field}`);
    const documented = new Set([...entry.fields, ...baseFields(error), ...STANDARD]);
    t.deepEqual(Object.keys(error).filter((key) => !documented.has(key)), [], 'properties missing from the registry');
  });
}

for (const entry of ERROR_CODES) {
  for (const Sub of entry.subclasses ?? []) {
    test(`${entry.code}: its subclass ${Sub.name} carries the same code and the entry's fields`, (t) => {
      const make = SUBCLASS_EXAMPLES[Sub.name];
      if (make === undefined) return t.fail(`no example for ${Sub.name}`);
      const error = make() as RpctlsError;
      t.is(error.constructor, Sub);
      t.true(error instanceof entry.class);
      t.is(error.code, entry.code);
      for (const field of entry.fields) t.true(field in error, `no property ${field}`);
    });
  }
}

test('the CLI, agent and netlink errors are RpctlsErrors with their codes (they used to extend Error)', (t) => {
  const usage = new UsageError('bad flag');
  t.true(usage instanceof RpctlsError);
  t.is(usage.code, 'ERR_USAGE');
  t.is(usage.message, 'bad flag');
  const config = thrown(() => parseAgentConfig('not a key file\n', 'my.conf')) as AgentConfigError;
  t.true(config instanceof RpctlsError);
  t.like(config, { code: 'ERR_AGENT_CONFIG', file: 'my.conf', line: 1 });
  const netlink = EXAMPLES.ERR_NETLINK_MALFORMED!() as RpctlsError;
  t.true(netlink instanceof RpctlsError);
  // Node keeps `name` clean (the code is in `code`), and so does rpctls.
  t.is(netlink.name, 'NetlinkError');
  t.is(new RpcAbortError().name, 'RpcAbortError');
  t.is(String(new RpcAbortError()), 'RpcAbortError: the call was aborted');
});
