// External tools some tests drive (openssl, tshark, rpcgen, gcc). .ci/run installs them, so in CI a
// missing tool is a failure, never a silent pass; on a developer's machine the test says it was skipped.
import { spawnSync } from 'node:child_process';

import type { ExecutionContext } from 'ava';

/** True when `name` is a command on PATH. */
export function haveCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * The one gate for tests that need an external tool: true when the test can run. `missing` describes what
 * is absent (null: nothing); under CI a missing tool fails the test, elsewhere the test passes as skipped.
 */
export function toolsPresent(t: ExecutionContext, missing: string | null): boolean {
  if (missing === null) return true;
  if (process.env.CI) t.fail(`${missing} (CI installs it: see .ci/run)`);
  else {
    t.log(`SKIPPED: ${missing}`);
    t.pass();
  }
  return false;
}
