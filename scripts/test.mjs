#!/usr/bin/env node
// The whole test suite, as `npm test` runs it: typecheck, every ava test on this host (TLS in userspace
// when the host kernel has none), then the TLS suites again in kernel mode, inside two user-mode-linux
// kernels that have TLS: Linux 6.1 (no rekey) and Linux 7.2 (follows TLS 1.3 KeyUpdates), or directly
// when this host's kernel has TLS. Ends with one line "N passed, N failed" summed over all stages.
// RPCTLS_UML_KERNELS (default "6.1,7.2") picks the UML kernels. RPCTLS_SKIP_BUILD=1 skips the typecheck
// and the dist/ build (.ci/run's later Node versions reuse the first one's). Another Node (first on PATH)
// with its own addon (RPCTLS_NATIVE_PATH) is carried into the guests too.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

// Plus the hostile entries whose outcome differs under kernel TLS (forged records, probe, key material).
const KERNEL_SUITES = ['test/native/', 'test/tls/', 'test/agent/', 'test/hostile/tls-records.test.ts', 'test/hostile/key-update.test.ts', 'test/hostile/trickle.test.ts', 'test/hostile/probe.test.ts', 'test/hostile/security.test.ts', 'test/hostile/churn.test.ts'].filter((dir) => existsSync(dir));

/**
 * Runs one stage. A stage silent for `quietMs` (a hung test, or a worker kept alive by a handle a failed
 * test left open) is killed with its whole process group and counts as failed, so CI never hangs.
 */
function run(label, command, args, env = {}, quietMs = 5 * 60_000) {
  return new Promise((resolve) => {
    process.stderr.write(`\n=== ${label}: ${command} ${args.join(' ')}\n`);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env }, detached: true });
    let out = '';
    let silent = false;
    const watchdog = setTimeout(() => {
      silent = true;
      process.stderr.write(`\n=== ${label}: no output for ${quietMs / 1000} s; killing it (last line: ${JSON.stringify(out.trim().split('\n').pop() ?? '')})\n`);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, quietMs);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      process.stdout.write(chunk);
      watchdog.refresh();
    });
    child.on('close', (code) => {
      clearTimeout(watchdog);
      resolve({ code: silent ? 1 : code ?? 1, out });
    });
  });
}

/** Counts from ava's TAP summary (`# pass N`, `# fail N`); a stage that died without one counts as a failure. */
function counts(label, { code, out }) {
  const pass = Number(/^# pass (\d+)/m.exec(out)?.[1] ?? NaN);
  const fail = Number(/^# fail (\d+)/m.exec(out)?.[1] ?? NaN);
  if (Number.isNaN(pass) || Number.isNaN(fail)) return { label, passed: 0, failed: 1 };
  return { label, passed: pass, failed: fail + (code !== 0 && fail === 0 ? 1 : 0) };
}

const results = [];
if (process.env.RPCTLS_SKIP_BUILD !== '1') {
  const typecheck = await run('typecheck', 'npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
  results.push({ label: 'typecheck', passed: typecheck.code === 0 ? 1 : 0, failed: typecheck.code === 0 ? 0 : 1 });
  // The CLI tests run bin/rpctls.js, which imports dist/: rebuild it so they test this source.
  const build = await run('build dist/', 'npx', ['tsc', '-p', 'tsconfig.build.json']);
  results.push({ label: 'build', passed: build.code === 0 ? 1 : 0, failed: build.code === 0 ? 0 : 1 });
}
// A guest starts with a fixed PATH and no environment of ours: the node and addon under test go in by hand.
const guestEnv = process.env.RPCTLS_NATIVE_PATH ? ['env', `PATH=${process.env.PATH}`, `RPCTLS_NATIVE_PATH=${process.env.RPCTLS_NATIVE_PATH}`] : [];

results.push(counts('host', await run('host (userspace TLS)', 'npx', ['ava', '--tap'])));

if (process.env.RPCTLS_SKIP_KERNEL === '1') {
  process.stderr.write('\n=== kernel mode: SKIPPED because RPCTLS_SKIP_KERNEL=1 (KTLS not verified in this run)\n');
} else if (existsSync('/proc/net/tls_stat')) {
  results.push(counts('kernel (host)', await run('kernel mode on this host', 'npx', ['ava', '--tap', '--concurrency=1', ...KERNEL_SUITES], { RPCTLS_EXPECT_KTLS: '1' })));
} else {
  // The guest's output comes back at its end; run.sh has its own timeout (UML_TIMEOUT, 1500 s here). Linux 7.2
  // runs chrooted in a small sid rootfs, built once (about a minute) and cached in /var/cache/rpctls-uml.
  for (const kernel of (process.env.RPCTLS_UML_KERNELS ?? '6.1,7.2').split(',').filter(Boolean)) {
    results.push(counts(`kernel (UML ${kernel})`, await run(`kernel mode inside user-mode-linux ${kernel}`, 'test/uml/run.sh', [...guestEnv, 'npx', 'ava', '--tap', '--concurrency=1', ...KERNEL_SUITES], { UML_KERNEL: kernel, UML_TIMEOUT: process.env.UML_TIMEOUT ?? '1500' }, 30 * 60_000)));
  }
}

let passed = 0;
let failed = 0;
for (const r of results) {
  process.stderr.write(`${r.label}: ${r.passed} passed, ${r.failed} failed\n`);
  passed += r.passed;
  failed += r.failed;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
