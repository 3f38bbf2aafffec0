// The CLI over UDP: `serve --udp`, `ping --udp`, and `rpcinfo` listing udp entries. Runs the built
// binary (dist/), as the other CLI tests do.
import test from 'ava';

import { AUTH_TLS } from '../../src/rpc/auth.js';
import { RpcClient } from '../../src/rpc/client.js';
import { AuthStat, ReplyStat } from '../../src/rpc/constants.js';
import { UdpClient } from '../../src/rpc/udp-client.js';
import { offersStartTls } from '../../src/rpc-tls/index.js';
import { json, killLeftoverServes, rpctls, serve } from '../cli/helpers.js';
import { ensureRpcbind } from '../helpers/rpcbind.js';

test.after.always(killLeftoverServes);

test('serve --udp answers ping --udp on the same port; ping --udp --tls is a usage error', async (t) => {
  const server = await serve(['--udp']);
  t.teardown(() => server.stop());
  t.regex(await server.waitFor(/^serving /), / udp( |$)/);
  const ping = await rpctls(['ping', `127.0.0.1:${server.port}`, '--udp', '--program', '0x20000001', '--version', '1', '--count', '20', '--inflight', '4', '--json']);
  t.is(ping.code, 0, ping.stderr);
  t.like(json(ping), { transport: 'udp', tls: null, calls: 20, errors: 0, exitCode: 0 });
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

test('serve --tls --udp: a probe over UDP is refused (AUTH_REJECTEDCRED, logged), a probe over TCP still gets STARTTLS', async (t) => {
  const server = await serve(['--tls', '--udp']);
  t.teardown(() => server.stop());
  const udp = new UdpClient({ port: server.port });
  const reply = await udp.callForReply(0x20000001, 1, 0, undefined, { auth: AUTH_TLS });
  await udp.close();
  t.like(reply, { replyStat: ReplyStat.MSG_DENIED, authStat: AuthStat.AUTH_REJECTEDCRED });
  t.regex(await server.waitFor(/^udp .* probe /), /^udp 127\.0\.0\.1:\d+ probe program=536870913 version=1 procedure=0 answer=AUTH_REJECTEDCRED$/);
  const tcp = new RpcClient({ port: server.port });
  const connection = await tcp.connect();
  t.true(offersStartTls(await connection.callForReply(0x20000001, 1, 0, undefined, { auth: AUTH_TLS })));
  tcp.destroy();
});
