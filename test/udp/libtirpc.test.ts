// Acceptance 1 and 2 of issue 17: rpctls over UDP against libtirpc. Our UDP client calls the libtirpc
// BULK server; libtirpc's UDP client (udp_client.c, rpcgen stubs) and rpcinfo call our UDP server;
// register() puts udp entries in the real rpcbind, and our GETPORT/GETADDR over UDP read them back.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import test from 'ava';

import { RpcClient } from '../../src/rpc/client.js';
import { IPPROTO_UDP, RpcbindClient, fromUniversalAddress, toUniversalAddress } from '../../src/rpc/rpcbind.js';
import { RpcServer } from '../../src/rpc/server.js';
import { UdpClient } from '../../src/rpc/udp-client.js';
import { XdrReader } from '../../src/xdr/reader.js';
import { XdrWriter } from '../../src/xdr/writer.js';
import { BULK, libtirpcMissing, libtirpcUdpClientBinary, startLibtirpcServer } from '../helpers/libtirpc.js';
import { ensureRpcbind } from '../helpers/rpcbind.js';
import { toolsPresent } from '../helpers/tools.js';

const run = promisify(execFile);
/** Registered with the real rpcbind by this file only (other files register other numbers). */
const REGISTERED = 0x20000779;

const opaque = (data: Buffer): Buffer => new XdrWriter().opaque(data).toBuffer();
const uint = (n: number): Buffer => new XdrWriter().uint(n).toBuffer();
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = i & 0xff;
  return b;
}

/** BULK (bulk.x) in TypeScript, raw handlers: the same bytes libtirpc's server sends. */
function bulkServer(): RpcServer {
  const server = new RpcServer();
  server.addProgram({
    program: BULK.program,
    version: BULK.version,
    procedures: {
      [BULK.ECHO]: (args: Buffer) => args,
      [BULK.WRITE]: (args: Buffer) => uint(new XdrReader(args).opaque().length),
      [BULK.READ]: (args: Buffer) => opaque(pattern(new XdrReader(args).uint())),
    },
  });
  return server;
}

test('our UDP client against the libtirpc UDP server: NULL, ECHO, WRITE, READ byte-exact (same bytes as over TCP)', async (t) => {
  if (!toolsPresent(t, libtirpcMissing())) return;
  const peer = await startLibtirpcServer();
  t.teardown(() => peer.close());
  const udp = new UdpClient({ port: peer.udpPort, timeout: 5000 });
  const tcp = new RpcClient({ port: peer.tcpPort, timeout: 5000 });
  t.teardown(async () => {
    await udp.close();
    await tcp.close();
  });
  t.is((await udp.call(BULK.program, BULK.version, BULK.NULL)).length, 0);
  for (const size of [0, 1, 3, 1000, 8000]) {
    const args = opaque(pattern(size));
    const viaUdp = await udp.call(BULK.program, BULK.version, BULK.ECHO, args);
    t.deepEqual(viaUdp, args, `ECHO ${size}`);
    t.deepEqual(viaUdp, await tcp.call(BULK.program, BULK.version, BULK.ECHO, args));
    t.deepEqual(await udp.call(BULK.program, BULK.version, BULK.WRITE, args), uint(size), `WRITE ${size}`);
    t.deepEqual(await udp.call(BULK.program, BULK.version, BULK.READ, uint(size)), opaque(pattern(size)), `READ ${size}`);
  }
  // Past our 8800-byte default the call is refused here, not sent.
  await t.throwsAsync(udp.call(BULK.program, BULK.version, BULK.ECHO, opaque(pattern(9000))), { code: 'ERR_RPC_DATAGRAM_TOO_LARGE' });
  t.is(udp.stats.retransmits, 0);
});

test('the libtirpc UDP client (rpcgen stubs) against our UDP server: ECHO, WRITE, READ byte-exact', async (t) => {
  if (!toolsPresent(t, libtirpcMissing())) return;
  const server = bulkServer();
  const { port } = await server.listen({ host: '127.0.0.1', udp: true });
  t.teardown(() => server.close());
  const client = libtirpcUdpClientBinary();
  for (const size of [0, 1, 5, 4000]) {
    const hex = pattern(size).toString('hex');
    t.is((await run(client, [String(port), 'echo', hex])).stdout.trim(), hex, `ECHO ${size}`);
    t.is((await run(client, [String(port), 'write', hex])).stdout.trim(), String(size), `WRITE ${size}`);
    t.is((await run(client, [String(port), 'read', String(size)])).stdout.trim(), hex, `READ ${size}`);
  }
  t.is(server.udpStats?.malformedDatagrams, 0);
  t.is(server.udpStats?.callsReceived, 12);
});

test.serial('rpcbind: register() adds udp entries; rpcinfo -p lists them, rpcinfo -u reaches us, our GETPORT/GETADDR over UDP agree', async (t) => {
  await ensureRpcbind();
  const server = new RpcServer();
  server.addProgram({ program: REGISTERED, version: 1, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1', udp: true });
  await server.register();
  t.teardown(() => server.close());

  const { stdout } = await run('rpcinfo', ['-p', '127.0.0.1']);
  const rows = stdout
    .split('\n')
    .filter((l) => l.trim().startsWith(String(REGISTERED)))
    .map((l) => l.trim().split(/\s+/).slice(0, 4).join(' '))
    .sort();
  t.deepEqual(rows, [`${REGISTERED} 1 tcp ${port}`, `${REGISTERED} 1 udp ${port}`]);

  // libtirpc's rpcinfo looks the program up in rpcbind and calls NULL over UDP.
  const ready = await run('rpcinfo', ['-u', '127.0.0.1', String(REGISTERED), '1']);
  t.regex(ready.stdout, new RegExp(`program ${REGISTERED} version 1 ready and waiting`));
  t.is(server.udpStats?.callsReceived, 1);

  const rpcb = RpcbindClient.create({ udp: true });
  t.teardown(() => rpcb.close());
  t.is(await rpcb.getPort(100000, 2, IPPROTO_UDP), 111, 'rpcbind over UDP maps itself');
  t.is(await rpcb.getPort(REGISTERED, 1, IPPROTO_UDP), port);
  t.is(await rpcb.getAddr(REGISTERED, 1, 'udp'), toUniversalAddress('127.0.0.1', port));
  t.true((await rpcb.dump(4)).some((e) => e.program === REGISTERED && e.netid === 'udp'));

  await server.close();
  t.is(await rpcb.getPort(REGISTERED, 1, IPPROTO_UDP), 0, 'closing the server unregistered udp too');
});

test.serial('rpcbind: a dual-stack server (::) registers tcp, tcp6, udp and udp6; GETADDR over UDP finds udp6; rpcinfo -u reaches it', async (t) => {
  await ensureRpcbind();
  const server = new RpcServer();
  server.addProgram({ program: REGISTERED, version: 2, procedures: {} });
  const { port } = await server.listen({ host: '::', udp: true });
  await server.register();
  t.teardown(() => server.close());
  const rpcb = RpcbindClient.create({ udp: true });
  t.teardown(() => rpcb.close());
  const netids = (await rpcb.dump(4)).filter((e) => e.program === REGISTERED && e.version === 2).map((e) => e.netid).sort();
  t.deepEqual(netids, ['tcp', 'tcp6', 'udp', 'udp6']);
  // rpcbind merges a wildcard registration with the address the query came to: only the port is ours.
  t.is(fromUniversalAddress(await rpcb.getAddr(REGISTERED, 2, 'udp6'))?.port, port);
  const ready = await run('rpcinfo', ['-u', '127.0.0.1', String(REGISTERED), '2']);
  t.regex(ready.stdout, /ready and waiting/);
});
