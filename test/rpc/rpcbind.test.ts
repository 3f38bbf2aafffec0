import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RpcbindClient, IPPROTO_TCP, fromUniversalAddress, toUniversalAddress } from '../../src/rpc/rpcbind.js';
import { RpcServer } from '../../src/rpc/server.js';
import { ensureRpcbind } from '../helpers/rpcbind.js';

const run = promisify(execFile);
const PROG = 0x20000123;

test.before(ensureRpcbind);

test.serial('our client against the real rpcbind: NULL, GETPORT, DUMP (v2), GETADDR and DUMP (v4)', async (t) => {
  const rpcb = RpcbindClient.create();
  await t.notThrowsAsync(rpcb.null(2));
  await t.notThrowsAsync(rpcb.null(4));
  t.is(await rpcb.getPort(100000, 2, IPPROTO_TCP), 111, 'rpcbind maps itself to 111');
  t.is(await rpcb.getPort(0x3fffffff, 1), 0, 'an unregistered program has port 0');
  const dump = await rpcb.pmapDump();
  t.true(dump.some((m) => m.program === 100000 && m.version === 2 && m.protocol === IPPROTO_TCP && m.port === 111));
  const addr = await rpcb.getAddr(100000, 4, 'tcp');
  t.is(fromUniversalAddress(addr)?.port, 111, `GETADDR answered ${addr}`);
  t.is(await rpcb.getAddr(0x3fffffff, 1, 'tcp'), '');
  const v4 = await rpcb.dump(4);
  t.true(v4.some((e) => e.program === 100000 && e.netid === 'tcp' && fromUniversalAddress(e.address)?.port === 111));
  // Cross-check with libtirpc's own rpcinfo.
  const { stdout } = await run('rpcinfo', ['-p', '127.0.0.1']);
  const lines = stdout.split('\n').filter((l) => /^\s+100000\s+2\s+tcp\s+111/.test(l));
  t.is(lines.length, 1);
  await rpcb.close();
});

test.serial('our server registers itself: rpcinfo -p lists it, rpcinfo -t reaches it, close unregisters', async (t) => {
  const server = new RpcServer();
  server.addProgram({ program: PROG, version: 1, procedures: {} });
  server.addProgram({ program: PROG, version: 2, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1' });
  await server.register();

  const { stdout } = await run('rpcinfo', ['-p', '127.0.0.1']);
  const ours = stdout.split('\n').filter((l) => l.trim().startsWith(String(PROG)));
  const rows = ours.map((l) => l.trim().split(/\s+/).slice(0, 4).join(' ')).sort();
  t.deepEqual(rows, [`${PROG} 1 tcp ${port}`, `${PROG} 2 tcp ${port}`]);
  t.is(ours.length, 2, stdout);
  for (const line of ours) t.is(line.trim().split(/\s+/)[3], String(port));

  // libtirpc's C client looks us up through rpcbind and calls our NULL procedure over TCP.
  const ready = await run('rpcinfo', ['-t', '127.0.0.1', String(PROG), '2']);
  t.regex(ready.stdout, new RegExp(`program ${PROG} version 2 ready and waiting`));

  const rpcb = RpcbindClient.create();
  t.is(await rpcb.getAddr(PROG, 1, 'tcp'), toUniversalAddress('127.0.0.1', port));
  t.is(await rpcb.getPort(PROG, 2), port);

  await server.close();
  t.is(await rpcb.getPort(PROG, 1), 0, 'closing the server unregistered it');
  const after = await run('rpcinfo', ['-p', '127.0.0.1']);
  t.false(after.stdout.includes(String(PROG)));
  await rpcb.close();
});

test('universal addresses round-trip for IPv4 and IPv6', (t) => {
  t.is(toUniversalAddress('127.0.0.1', 2049), '127.0.0.1.8.1');
  t.deepEqual(fromUniversalAddress('::1.8.1'), { host: '::1', port: 2049 });
  t.is(fromUniversalAddress('127.0.0.1.300.1'), null);
  t.is(fromUniversalAddress('nonsense'), null);
});
