// The external-tool gate: under CI a missing tool fails the test; elsewhere it passes, logged as skipped.
import test, { type ExecutionContext } from 'ava';

import { haveCommand, toolsPresent } from './tools.js';

function fakeContext(): { t: ExecutionContext; calls: string[] } {
  const calls: string[] = [];
  const t = { fail: (m: string) => calls.push(`fail: ${m}`), log: (m: string) => calls.push(`log: ${m}`), pass: () => calls.push('pass') };
  return { t: t as unknown as ExecutionContext, calls };
}

test.serial('a missing tool fails under CI and is a logged skip elsewhere; a present one lets the test run', (t) => {
  const saved = process.env.CI;
  try {
    process.env.CI = 'true';
    const ci = fakeContext();
    t.false(toolsPresent(ci.t, 'frobnicate is not installed'));
    t.deepEqual(ci.calls, ['fail: frobnicate is not installed (CI installs it: see .ci/run)']);
    delete process.env.CI;
    const dev = fakeContext();
    t.false(toolsPresent(dev.t, 'frobnicate is not installed'));
    t.deepEqual(dev.calls, ['log: SKIPPED: frobnicate is not installed', 'pass']);
    t.true(toolsPresent(dev.t, null));
  } finally {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
});

test('haveCommand finds sh and not a made-up name', (t) => {
  t.true(haveCommand('sh'));
  t.false(haveCommand('rpctls-no-such-command'));
});
