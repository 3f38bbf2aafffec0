// The CLI over UDP: `serve --udp`, `ping --udp`, and `rpcinfo` listing udp entries. Runs the built
// binary (dist/), as the other CLI tests do.
import test from 'ava';

import { json, killLeftoverServes, rpctls, serve } from '../cli/helpers.js';
import { ensureRpcbind } from '../helpers/rpcbind.js';

test.after.always(killLeftoverServes);

test('serve --udp answers ping --udp on the same port; ping --udp --tls is a usage error', async (t) => {
  const server = await serve(['--udp']);
  t.teardown(() => server.stop());
  t.regex(await server.waitFor(/^serving /), / udp( |$)/);
  const ping = await rpctls(['ping', `127.0.0.1:${server.port}`, '--udp', '--program', '0x20000001', '--version', '1', '--count', '20', '--inflight', '4', '--json']);
  t.is(ping.code, 0, ping.stderr);
  t.like(json(ping), { transport: 'udp', tls: false, calls: 20, errors: 0, exitCode: 0 });
  const tcp = await rpctls(['ping', `127.0.0.1:${server.port}`, '--program', '0x20000001', '--version', '1', '--count', '3', '--json']);
  t.like(json(tcp), { transport: 'tcp', calls: 3, errors: 0 });
  const both = await rpctls(['ping', `127.0.0.1:${server.port}`, '--udp', '--tls']);
  t.is(both.code, 2);
  t.regex(both.stderr, /--udp and --tls exclude each other/);
});

test('serve --udp --verbose logs UDP calls with the client address; without --udp nothing answers over UDP', async (t) => {
  const server = await serve(['--udp', '--verbose']);
  t.teardown(() => server.stop());
  const ping = await rpctls(['ping', `127.0.0.1:${server.port}`, '--udp', '--program', '0x20000001', '--version', '1', '--count', '1']);
  t.is(ping.code, 0, ping.stderr);
  t.regex(ping.stdout, /plain UDP/);
  t.regex(await server.waitFor(/^udp /), /^udp 127\.0\.0\.1:\d+ call program=536870913 version=1 procedure=0 tls=no$/);
  const tcpOnly = await serve([]);
  t.teardown(() => tcpOnly.stop());
  const silent = await rpctls(['ping', `127.0.0.1:${tcpOnly.port}`, '--udp', '--program', '0x20000001', '--version', '1', '--count', '1', '--timeout', '300', '--json']);
  t.is(silent.code, 1);
  t.like(json(silent), { errors: 1, error: { code: 'ERR_RPC_TIMEOUT' } });
});

test.serial('rpcinfo lists the udp entries of serve --udp --register (STARTTLS n/a over UDP)', async (t) => {
  await ensureRpcbind();
  const server = await serve(['--udp', '--register', '--program', '0x2000077a:1']);
  t.teardown(() => server.stop());
  await server.waitFor(/^serving .* registered/);
  const listed = await rpctls(['rpcinfo', '--json']);
  const rows = json<{ program: number; netid: string; port: number; starttls: boolean | null }[]>(listed).filter((r) => r.program === 0x2000077a);
  t.deepEqual(rows.map((r) => `${r.netid} ${r.port} ${r.starttls}`).sort(), [`tcp ${server.port} false`, `udp ${server.port} null`]);
  const text = await rpctls(['rpcinfo']);
  t.regex(text.stdout, new RegExp(`${0x2000077a}\\s+1 udp\\s+${server.port}  n/a`));
});
