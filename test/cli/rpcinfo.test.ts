import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import net from 'node:net';
import { RpcServer } from '../../src/rpc/server.js';
import { toUniversalAddress } from '../../src/rpc/rpcbind.js';
import { type Rpcb, type RpcblistPtr, encodeRpcblistPtr } from '../../src/generated/rpcbind.js';
import { XdrWriter } from '../../src/xdr/writer.js';
import { ensureRpcbind } from '../helpers/rpcbind.js';

// Runs the built binary, as a user would after `npm install` (which builds dist/).
const run = promisify(execFile);
const BIN = new URL('../../bin/rpctls.js', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;

test.before(ensureRpcbind);

test('rpctls rpcinfo --json lists registered programs with their ports and probe answers', async (t) => {
  const server = new RpcServer();
  server.addProgram({ program: 0x20000777, version: 1, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1' });
  await server.register();
  try {
    const { stdout } = await run(process.execPath, [BIN, 'rpcinfo', '127.0.0.1', '--json']);
    const rows = JSON.parse(stdout) as { program: number; version: number; netid: string; port: number; starttls: boolean | null }[];
    t.true(rows.some((r) => r.program === 100000 && r.version === 4 && r.netid === 'tcp' && r.port === 111));
    const ours = rows.find((r) => r.program === 0x20000777);
    t.like(ours, { version: 1, netid: 'tcp', port, starttls: false });
  } finally {
    await server.close();
  }
});

test('rpctls with no command prints usage and exits 2; unknown commands are refused', async (t) => {
  const none = await t.throwsAsync(run(process.execPath, [BIN]));
  t.is((none as { code?: number }).code, 2);
  t.regex((none as unknown as { stdout: string }).stdout, /usage: rpctls <command>/);
  const bad = await t.throwsAsync(run(process.execPath, [BIN, 'frobnicate']));
  t.regex((bad as unknown as { stderr: string }).stderr, /unknown command 'frobnicate'/);
  // One line, not the whole usage; a near miss names the command meant.
  const typo = await t.throwsAsync(run(process.execPath, [BIN, 'pnig']));
  const stderr = (typo as unknown as { stderr: string }).stderr;
  t.is((typo as { code?: number }).code, 2);
  t.regex(stderr, /^rpctls: unknown command 'pnig' \(did you mean 'ping'\?\); commands: .*probe.*; rpctls --help for more\n$/);
});

test('rpctls --version prints the package version', async (t) => {
  const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
  for (const flag of ['--version', '-v']) {
    const { stdout } = await run(process.execPath, [BIN, flag]);
    t.regex(stdout, new RegExp(`^rpctls ${version.replace(/\./g, '\\.')} \\(Node \\d+`));
  }
});

test('rpctls rpcinfo: unknown flags exit 2; an unreachable rpcbind exits 3 with the error rendered', async (t) => {
  const bad = await t.throwsAsync(run(process.execPath, [BIN, 'rpcinfo', '--bogus']));
  t.is((bad as { code?: number }).code, 2);
  t.regex((bad as unknown as { stderr: string }).stderr, /unknown flag --bogus/);
  // .invalid never resolves (RFC 6761): an unreachable rpcbind on any machine.
  const down = await t.throwsAsync(run(process.execPath, [BIN, 'rpcinfo', 'no-such-host.invalid']));
  t.is((down as { code?: number }).code, 3);
  t.regex((down as unknown as { stderr: string }).stderr, /cannot query rpcbind on no-such-host.invalid:111[\s\S]*ERR_RPC_CONNECT/);
});

test('every command has --help (exit 0) and the top-level usage lists them', async (t) => {
  for (const command of ['probe', 'ping', 'serve', 'bench', 'demo', 'rpcinfo', 'gen']) {
    const { stdout } = await run(process.execPath, [BIN, command, '--help']);
    t.regex(stdout, new RegExp(`usage: rpctls ${command}`), command);
  }
  const { stdout } = await run(process.execPath, [BIN, '--help']);
  for (const command of ['demo', 'probe', 'ping', 'serve', 'bench', 'rpcinfo', 'gen']) t.regex(stdout, new RegExp(`^  ${command}`, 'm'));
});

test('H72 a hostile rpcbind: its strings are printed escaped, and probing a long list of silent ports is bounded', async (t) => {
  // Accepts connections and never answers: each probe can only end by its timeout.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as net.AddressInfo).port;
  const hostile: Rpcb[] = [
    { r_prog: 100000, r_vers: 4, r_netid: 'tcp\x1b[2J\x1b]0;pwned\x07', r_addr: '127.0.0.1.0.111', r_owner: 'evil\r   100003    4 tcp       2049  yes       forged' },
    ...Array.from({ length: 24 }, (_, i) => ({ r_prog: 0x20000000 + i, r_vers: 1, r_netid: 'tcp', r_addr: toUniversalAddress('127.0.0.1', silentPort), r_owner: 'superuser' })),
  ];
  let list: RpcblistPtr = null;
  for (const entry of [...hostile].reverse()) list = { rpcb_map: entry, rpcb_next: list };
  const fake = new RpcServer();
  fake.addProgram({
    program: 100000,
    version: 4,
    procedures: {
      4: () => {
        const w = new XdrWriter();
        encodeRpcblistPtr(w, list);
        return w.finish();
      },
    },
  });
  const { port } = await fake.listen({ host: '127.0.0.1' });
  try {
    const started = Date.now();
    const { stdout } = await run(process.execPath, [BIN, 'rpcinfo', `127.0.0.1:${port}`], { timeout: 60_000 });
    const seconds = (Date.now() - started) / 1000;
    t.log(`24 silent programs probed in ${seconds.toFixed(1)} s`);
    t.false(/[\x00-\x08\x0b-\x1f\x7f]/.test(stdout), 'no control character reaches the terminal');
    t.true(stdout.includes('tcp\\x1b[2J\\x1b]0;pwned\\x07'));
    t.true(stdout.includes('evil\\x0d   100003'), 'the forged row stays inside the owner column');
    t.is(stdout.trim().split('\n').length, 1 + hostile.length, 'one line per entry, none forged');
    t.true(seconds < 15, 'probes run in parallel under one deadline (one at a time took 3 s each)');
  } finally {
    await fake.close();
    silent.close();
  }
});
