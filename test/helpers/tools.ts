// External tools some tests drive (openssl, tshark, rpcgen, gcc). .ci/run installs them, so in CI a
// missing tool is a failure, never a silent pass; on a developer's machine the test says it was skipped.
import type { ExecutionContext } from 'ava';

/** True when the test can run. `missing` describes what is absent (null: nothing). */
export function toolsPresent(t: ExecutionContext, missing: string | null): boolean {
  if (missing === null) return true;
  if (process.env.CI) t.fail(`${missing} (CI installs it: see .ci/run)`);
  else {
    t.log(`SKIPPED: ${missing}`);
    t.pass();
  }
  return false;
}
