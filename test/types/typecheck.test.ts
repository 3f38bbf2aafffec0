/**
 * The type-level tests in this folder compile (each `@ts-expect-error` there must meet an error, so a
 * check that stops failing fails this test).
 */
import test from 'ava';
import { join } from 'node:path';

import { ROOT, typecheck } from './compile.js';

test('server handlers are checked against their codecs; inline handler arguments are typed (handlers.ts)', (t) => {
  t.deepEqual(typecheck([join(ROOT, 'test/types/handlers.ts')]), []);
});

test('the events of RpcClient, RpcServer and RpcConnection and connection.security are typed (events.ts)', (t) => {
  t.deepEqual(typecheck([join(ROOT, 'test/types/events.ts')]), []);
});

test('generated code types each string by its mode: Buffer for buffer, string for utf8 and utf8-strict (gen-strings.ts)', (t) => {
  t.deepEqual(typecheck([join(ROOT, 'test/types/gen-strings.ts')]), []);
});
