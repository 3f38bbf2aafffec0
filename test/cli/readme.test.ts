// Runs the README's CLI commands verbatim: every ```sh block right after a `<!-- cli-test -->` marker,
// with bash -e in a fresh directory where `rpctls` and `npx rpctls` are this checkout's built binary.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BIN, ROOT } from './helpers.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const blocks = [...README.matchAll(/<!-- cli-test -->\n```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);

function runBlock(script: string): Promise<{ code: number | null; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-readme-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'rpctls'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(bin, 'rpctls'), 0o755);
  // `npx rpctls` finds the local project's bin; npm_config_offline makes sure it never fetches one.
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(BIN, join(dir, 'node_modules', '.bin', 'rpctls'));
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', '-c', script], {
      cwd: dir,
      detached: true, // its own process group, so a server it left behind can be killed with it
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, npm_config_offline: 'true' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // the group is already gone
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, output });
    });
  });
}

test('the README marks the demo line and the CLI examples for this test', (t) => {
  t.true(blocks.length >= 2);
  t.true(blocks.some((b) => b.trim() === 'npx rpctls demo'));
  t.true(blocks.some((b) => /rpctls serve .*&/.test(b) && /rpctls probe/.test(b) && /rpctls ping/.test(b)));
});

for (const [i, block] of blocks.entries()) {
  test.serial(`README block ${i + 1} runs and exits 0: ${block.split('\n')[0]}`, async (t) => {
    t.timeout(120_000);
    const { code, output } = await runBlock(block);
    t.is(code, 0, output);
    if (/rpctls demo/.test(block)) t.regex(output, /demo done/);
    if (/rpctls probe/.test(block)) t.regex(output, /result: TLS ok/);
    if (/rpctls ping/.test(block)) t.regex(output, /calls\s+1000 ok, 0 failed/);
    if (/rpctls bench/.test(block)) t.regex(output, /^tls\s+\d+/m);
  });
}
