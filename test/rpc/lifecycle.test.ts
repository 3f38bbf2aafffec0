// A client's or server's life: unref() lets the process exit, `await using` closes, connect() takes a
// signal and aborts with ERR_RPC_ABORTED.
import test from 'ava';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { RpctlsError } from '../../src/errors.js';
import { RpcClient } from '../../src/rpc/client.js';
import { RpcAbortError } from '../../src/rpc/errors.js';
import { RpcServer } from '../../src/rpc/server.js';
import { UdpClient } from '../../src/rpc/udp-client.js';
import { PROG, Proc, SERVER_PROGRAM, VERS, makeCerts, startTlsServer } from '../tls/helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A child that calls the parent's servers over TCP, UDP and TLS, then (with UNREF) unrefs its clients and leaves them open. */
const CLIENTS = `
import { RpcClient, UdpClient, createTlsClient } from './src/index.ts';
import { PROBE, PROG, VERS, Proc } from './test/tls/helpers.ts';
const tcp = new RpcClient({ port: Number(process.env.PLAIN_PORT) });
const udp = new UdpClient({ port: Number(process.env.PLAIN_PORT) });
const tls = createTlsClient({ host: '127.0.0.1', port: Number(process.env.TLS_PORT), probe: PROBE, tls: { ca: process.env.CA, servername: 'localhost' } });
for (const client of [tcp, udp, tls]) await client.call(PROG, VERS, Proc.ECHO, Buffer.from('x'));
if (process.env.UNREF) for (const client of [tcp, udp, tls]) client.unref();
console.log('called');
// Fires only if something else holds the process that long.
setTimeout(() => { console.log('held'); process.exit(0); }, 1500).unref();
`;

/** Runs `script` in a child (killed past `ms`); resolves with what it printed. */
function runChild(script: string, env: Record<string, string>, ms: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: { ...process.env, ...env }, timeout: ms }, (_error, stdout, stderr) => {
      resolve({ stdout, stderr });
    });
  });
}

test('unref(): idle TCP, UDP and TLS clients let the process exit; without it they hold it', async (t) => {
  const plain = new RpcServer().addProgram(SERVER_PROGRAM);
  const { port: plainPort } = await plain.listen({ host: '127.0.0.1', udp: true });
  const { server: tls, port: tlsPort } = await startTlsServer();
  try {
    const env = { PLAIN_PORT: String(plainPort), TLS_PORT: String(tlsPort), CA: makeCerts().ca };
    const unrefed = await runChild(CLIENTS, { ...env, UNREF: '1' }, 30_000);
    t.is(unrefed.stdout, 'called\n', unrefed.stderr);
    const held = await runChild(CLIENTS, env, 30_000);
    t.is(held.stdout, 'called\nheld\n', 'open clients that are not unref()ed keep the process alive');
  } finally {
    await plain.close();
    await tls.close();
  }
});

test('server.unref(): a listening server (TCP and UDP) lets the process exit', async (t) => {
  const script = `
import { RpcServer } from './src/index.ts';
const server = new RpcServer();
await server.listen({ host: '127.0.0.1', udp: true });
if (process.env.UNREF) server.unref();
console.log('listening');
setTimeout(() => { console.log('held'); process.exit(0); }, 1500).unref();
`;
  const unrefed = await runChild(script, { UNREF: '1' }, 30_000);
  t.is(unrefed.stdout, 'listening\n', unrefed.stderr);
  const held = await runChild(script, {}, 30_000);
  t.is(held.stdout, 'listening\nheld\n');
});

test('`await using` closes clients and servers at the end of the block', async (t) => {
  let server: RpcServer;
  let client: RpcClient;
  let udp: UdpClient;
  {
    await using s = new RpcServer().addProgram(SERVER_PROGRAM);
    const { port } = await s.listen({ host: '127.0.0.1', udp: true });
    await using c = new RpcClient({ port });
    await using u = new UdpClient({ port });
    t.deepEqual(await c.call(PROG, VERS, Proc.ECHO, Buffer.from('a')), Buffer.from('a'));
    t.deepEqual(await u.call(PROG, VERS, Proc.ECHO, Buffer.from('b')), Buffer.from('b'));
    [server, client, udp] = [s, c, u];
    t.false(c.connection!.closed);
  }
  t.throws(() => server.address(), { code: 'ERR_RPC_INVALID_OPTION' }, 'the server no longer listens');
  await t.throwsAsync(client.call(PROG, VERS, Proc.ECHO), { code: 'ERR_RPC_CONNECTION_CLOSED' });
  await t.throwsAsync(udp.call(PROG, VERS, Proc.ECHO), { code: 'ERR_RPC_CONNECTION_CLOSED' });
});

test('connect({ signal }) and calls with an already-aborted signal reject with ERR_RPC_ABORTED, not a DOMException', async (t) => {
  const client = new RpcClient({ port: 1 });
  const signal = AbortSignal.abort(new Error('because'));
  for (const attempt of [client.connect({ signal }), client.call(PROG, VERS, 0, undefined, { signal })]) {
    const error = await t.throwsAsync(attempt, { instanceOf: RpcAbortError, code: 'ERR_RPC_ABORTED' });
    t.true(error instanceof RpctlsError);
    t.is(error!.name, 'RpcAbortError');
    t.is((error!.cause as Error).message, 'because');
  }
  await t.throwsAsync(client.connect({ signal: 'soon' as unknown as AbortSignal }), { code: 'ERR_RPC_INVALID_OPTION', message: /^signal must be an AbortSignal/ });
  await client.close();
});

test('connect({ signal }) abandons a connect that hangs (here in its upgrade step)', async (t) => {
  const server = new RpcServer();
  const { port } = await server.listen({ host: '127.0.0.1' });
  const client = new RpcClient({ port, upgrade: () => new Promise<void>(() => undefined) });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const started = Date.now();
  await t.throwsAsync(client.connect({ signal: controller.signal }), { instanceOf: RpcAbortError, code: 'ERR_RPC_ABORTED' });
  t.true(Date.now() - started < 5000, `${Date.now() - started} ms`);
  client.destroy();
  await server.close();
});
