// diagnostics_channel: calls, connections and TLS are published on rpctls:* channels; NODE_DEBUG=rpctls logs.
import test from 'ava';
import { execFile } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { channels } from '../../src/diagnostics.js';
import { RpcClient } from '../../src/rpc/client.js';
import { RpcServer } from '../../src/rpc/server.js';
import { PROG, Proc, SERVER_PROGRAM, VERS, startTlsServer, tlsClient } from '../tls/helpers.js';

function record(names: string[]): { seen: [string, Record<string, unknown>][]; stop: () => void } {
  const seen: [string, Record<string, unknown>][] = [];
  const subscriptions = names.map((name) => {
    const listener = (message: unknown): void => void seen.push([name, message as Record<string, unknown>]);
    diagnosticsChannel.subscribe(name, listener);
    return () => diagnosticsChannel.unsubscribe(name, listener);
  });
  return { seen, stop: () => subscriptions.forEach((unsubscribe) => unsubscribe()) };
}

test.serial('calls and connections: start, end and error with the same call object; open and close', async (t) => {
  const { seen, stop } = record(['rpctls:call:start', 'rpctls:call:end', 'rpctls:call:error', 'rpctls:connection:open', 'rpctls:connection:close']);
  const server = new RpcServer().addProgram(SERVER_PROGRAM);
  const { port } = await server.listen({ host: '127.0.0.1' });
  const client = new RpcClient({ port });
  try {
    await client.call(PROG, VERS, Proc.ECHO, Buffer.from('x'));
    await t.throwsAsync(client.call(PROG, VERS, 999), { code: 'ERR_RPC_PROC_UNAVAIL' });
  } finally {
    await client.close();
    await server.close();
    stop();
  }
  const calls = seen.filter(([name]) => name.startsWith('rpctls:call:'));
  t.deepEqual(calls.map(([name]) => name), ['rpctls:call:start', 'rpctls:call:end', 'rpctls:call:start', 'rpctls:call:error']);
  const [, first] = calls[0]!;
  t.like(first.call as object, { program: PROG, version: VERS, procedure: Proc.ECHO });
  t.is(calls[1]![1].call, first.call, 'end carries the object start published');
  t.is((first.call as { connection: unknown }).connection, client.connection ?? (first.call as { connection: unknown }).connection);
  t.is((calls[3]![1].error as { code: string }).code, 'ERR_RPC_PROC_UNAVAIL');
  const opens = seen.filter(([name]) => name === 'rpctls:connection:open');
  const closes = seen.filter(([name]) => name === 'rpctls:connection:close');
  t.is(opens.length, 2, 'client side and server side');
  t.is(closes.length, 2);
});

test.serial('TLS: the probe, the handshake (secure, with its offload) on both sides', async (t) => {
  const { seen, stop } = record(['rpctls:tls:probe', 'rpctls:tls:secure']);
  const { server, port } = await startTlsServer();
  const client = tlsClient(port);
  try {
    await client.call(PROG, VERS, Proc.ECHO, Buffer.from('x'));
  } finally {
    await client.close();
    await server.close();
    stop();
  }
  const probes = seen.filter(([name]) => name === 'rpctls:tls:probe').map(([, m]) => [m.side, m.answer]);
  t.deepEqual(probes.sort(), [['client', 'STARTTLS'], ['server', 'STARTTLS']]);
  const secure = seen.filter(([name]) => name === 'rpctls:tls:secure');
  t.deepEqual(secure.map(([, m]) => m.side).sort(), ['client', 'server']);
  for (const [, m] of secure) t.is(typeof (m.security as { offload: { tx: boolean } }).offload.tx, 'boolean');
});

test('no message object is built while nobody subscribes', (t) => {
  for (const channel of Object.values(channels)) t.false(channel.hasSubscribers);
});

test('NODE_DEBUG=rpctls logs connections and the TLS handshake (kernel or userspace)', async (t) => {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const script = `
import { PROG, VERS, Proc, startTlsServer, tlsClient } from './test/tls/helpers.ts';
const { server, port } = await startTlsServer();
const client = tlsClient(port);
await client.call(PROG, VERS, Proc.ECHO, Buffer.from('x'));
await client.close(); await server.close();
`;
  const { stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, NODE_DEBUG: 'rpctls' },
  });
  t.regex(stderr, /RPCTLS \d+: connection open 127\.0\.0\.1:\d+ <-> 127\.0\.0\.1:\d+/);
  t.regex(stderr, /RPCTLS \d+: probe from 127\.0\.0\.1:\d+ answered STARTTLS/);
  t.regex(stderr, /RPCTLS \d+: TLS up with 127\.0\.0\.1:\d+: TLSv1\.3 \S+, (kernel TLS|userspace records)/);
});
