import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RpcServer } from '../../src/rpc/server.js';
import { ensureRpcbind } from '../helpers/rpcbind.js';

// Runs the built binary, as a user would after `npm install` (which builds dist/).
const run = promisify(execFile);
const BIN = new URL('../../bin/rpctls.js', import.meta.url).pathname;

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
