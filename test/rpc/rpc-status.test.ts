import test from 'ava';
import { RpcClient } from '../../src/rpc/client.js';
import type { ProgramDefinition } from '../../src/rpc/program.js';
import { xdr } from '../../src/xdr/index.js';
import { authSys, AUTH_NONE } from '../../src/rpc/auth.js';
import { AuthStat, AuthFlavor } from '../../src/rpc/constants.js';
import * as E from '../../src/rpc/errors.js';
import { rawConnect, startServer, hex, until } from '../helpers/net.js';
import { record } from '../helpers/records.js';

const PROG = 0x20000001;
const programs: ProgramDefinition[] = [
  {
    program: PROG,
    version: 1,
    procedures: {
      1: (args: Buffer) => args,
      2: { args: xdr.uint, result: xdr.uint, handler: (n: number) => n + 1 },
      3: () => {
        throw new Error('handler bug');
      },
      4: async () => {
        throw new E.AuthTooWeakError();
      },
    },
  },
  { program: PROG, version: 3, procedures: {} },
];

/** Authentication hook: uid N asks for auth_stat N, so every auth_stat can be produced. */
function authenticate(ctx: { authSys: { uid: number } | null }): number | void {
  if (ctx.authSys && ctx.authSys.uid >= 1 && ctx.authSys.uid <= 14 && ctx.authSys.uid !== 8) return ctx.authSys.uid;
}

function call(xid: string, prog: string, vers: string, proc: string, rest = '00000000 00000000 00000000 00000000', rpcvers = '00000002'): Buffer {
  return record(hex(`${xid} 00000000 ${rpcvers} ${prog} ${vers} ${proc} ${rest}`));
}

const ACCEPTED = (xid: string) => `${xid} 00000001 00000000 00000000 00000000`;

const cases: { name: string; request: Buffer; reply: string }[] = [
  { name: 'SUCCESS', request: call('00000001', '20000001', '00000001', '00000002', '00000000 00000000 00000000 00000000 00000029'), reply: `8000001c ${ACCEPTED('00000001')} 00000000 0000002a` },
  { name: 'NULL answered automatically', request: call('00000002', '20000001', '00000003', '00000000'), reply: `80000018 ${ACCEPTED('00000002')} 00000000` },
  { name: 'PROG_UNAVAIL', request: call('00000003', '20000002', '00000001', '00000000'), reply: `80000018 ${ACCEPTED('00000003')} 00000001` },
  { name: 'PROG_MISMATCH', request: call('00000004', '20000001', '00000002', '00000000'), reply: `80000020 ${ACCEPTED('00000004')} 00000002 00000001 00000003` },
  { name: 'PROC_UNAVAIL', request: call('00000005', '20000001', '00000001', '00000063'), reply: `80000018 ${ACCEPTED('00000005')} 00000003` },
  { name: 'GARBAGE_ARGS', request: call('00000006', '20000001', '00000001', '00000002', '00000000 00000000 00000000 00000000 0001'), reply: `80000018 ${ACCEPTED('00000006')} 00000004` },
  { name: 'SYSTEM_ERR', request: call('00000007', '20000001', '00000001', '00000003'), reply: `80000018 ${ACCEPTED('00000007')} 00000005` },
  { name: 'RPC_MISMATCH', request: call('00000008', '20000001', '00000001', '00000000', undefined, '00000003'), reply: '80000018 00000008 00000001 00000001 00000000 00000002 00000002' },
  { name: 'AUTH_ERROR/AUTH_BADCRED (malformed AUTH_SYS)', request: call('00000009', '20000001', '00000001', '00000000', '00000001 00000004 00000000 00000000 00000000'), reply: '80000014 00000009 00000001 00000001 00000001 00000001' },
  { name: 'AUTH_ERROR/AUTH_BADCRED (auth body > 400 bytes)', request: call('0000000a', '20000001', '00000001', '00000000', '00000000 00000191'), reply: '80000014 0000000a 00000001 00000001 00000001 00000001' },
  { name: 'AUTH_ERROR/AUTH_TOOWEAK (thrown by handler)', request: call('0000000b', '20000001', '00000001', '00000004'), reply: '80000014 0000000b 00000001 00000001 00000001 00000005' },
];

for (const c of cases) {
  test(`server produces ${c.name} with the exact wire bytes`, async (t) => {
    const { server, port } = await startServer(programs, { authenticate });
    const raw = await rawConnect(port);
    raw.socket.write(c.request);
    const expected = hex(c.reply);
    await until(() => raw.received().length >= expected.length);
    t.is(raw.received().toString('hex'), expected.toString('hex'));
    raw.socket.destroy();
    await server.close();
  });
}

test('client decodes every accept_stat into its coded error with the wire values', async (t) => {
  const { server, port } = await startServer(programs, { authenticate });
  server.on('handlerError', () => undefined);
  const client = new RpcClient({ port });
  t.is((await client.call(PROG, 1, 2, hex('00000029'))).toString('hex'), '0000002a');
  const unavail = await t.throwsAsync(client.call(0x20000002, 1, 0), { instanceOf: E.ProgUnavailError });
  t.like(unavail, { code: 'ERR_RPC_PROG_UNAVAIL', acceptStat: 1, program: 0x20000002, version: 1, procedure: 0 });
  t.like(await t.throwsAsync(client.call(PROG, 2, 0), { instanceOf: E.ProgMismatchError }), { code: 'ERR_RPC_PROG_MISMATCH', acceptStat: 2, low: 1, high: 3 });
  t.like(await t.throwsAsync(client.call(PROG, 1, 99), { instanceOf: E.ProcUnavailError }), { code: 'ERR_RPC_PROC_UNAVAIL', acceptStat: 3 });
  t.like(await t.throwsAsync(client.call(PROG, 1, 2, hex('0001')), { instanceOf: E.GarbageArgsError }), { code: 'ERR_RPC_GARBAGE_ARGS', acceptStat: 4 });
  t.like(await t.throwsAsync(client.call(PROG, 1, 3), { instanceOf: E.SystemErrError }), { code: 'ERR_RPC_SYSTEM_ERR', acceptStat: 5 });
  await client.close();
  await server.close();
});

test('client decodes RPC_MISMATCH and every auth_stat into its coded error', async (t) => {
  const { server, port } = await startServer(programs, { authenticate });
  const client = new RpcClient({ port });
  const expected: Record<number, [Function, string]> = {
    [AuthStat.AUTH_BADCRED]: [E.AuthBadCredError, 'ERR_RPC_AUTH_BADCRED'],
    [AuthStat.AUTH_REJECTEDCRED]: [E.AuthRejectedCredError, 'ERR_RPC_AUTH_REJECTEDCRED'],
    [AuthStat.AUTH_BADVERF]: [E.AuthBadVerfError, 'ERR_RPC_AUTH_BADVERF'],
    [AuthStat.AUTH_REJECTEDVERF]: [E.AuthRejectedVerfError, 'ERR_RPC_AUTH_REJECTEDVERF'],
    [AuthStat.AUTH_TOOWEAK]: [E.AuthTooWeakError, 'ERR_RPC_AUTH_TOOWEAK'],
    [AuthStat.AUTH_INVALIDRESP]: [E.AuthInvalidRespError, 'ERR_RPC_AUTH_INVALIDRESP'],
    [AuthStat.AUTH_FAILED]: [E.AuthFailedError, 'ERR_RPC_AUTH_FAILED'],
    [AuthStat.RPCSEC_GSS_CREDPROBLEM]: [E.AuthGssCredProblemError, 'ERR_RPC_RPCSEC_GSS_CREDPROBLEM'],
    [AuthStat.RPCSEC_GSS_CTXPROBLEM]: [E.AuthGssCtxProblemError, 'ERR_RPC_RPCSEC_GSS_CTXPROBLEM'],
    [AuthStat.AUTH_DECODE]: [E.RpcAuthError, 'ERR_RPC_AUTH_ERROR'],
  };
  for (const [stat, [Class, code]] of Object.entries(expected)) {
    const err = await t.throwsAsync(client.call(PROG, 1, 0, undefined, { auth: authSys({ uid: Number(stat), gid: 0 }) }));
    t.true(err instanceof Class, `auth_stat ${stat} -> ${Class.name}`);
    t.like(err, { code, rejectStat: 1, authStat: Number(stat) });
  }
  // AUTH_SYS with uid 0 is accepted and reaches the handler.
  t.deepEqual(await client.call(PROG, 1, 1, hex('01020304'), { auth: authSys({ uid: 0, gid: 0, gids: [1, 2] }) }), hex('01020304'));
  t.deepEqual(await client.call(PROG, 1, 1, hex('01020304'), { auth: AUTH_NONE }), hex('01020304'));
  await client.close();
  await server.close();

  // RPC_MISMATCH: a peer that answers rpcvers 2 with MSG_DENIED/RPC_MISMATCH 3..4.
  const net = await import('node:net');
  const fake = net.createServer((s) => s.once('data', (d) => s.write(Buffer.concat([hex('80000018'), d.subarray(4, 8), hex('00000001 00000001 00000000 00000003 00000004')]))));
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  const c2 = new RpcClient({ port: (fake.address() as { port: number }).port });
  t.like(await t.throwsAsync(c2.call(1, 1, 0), { instanceOf: E.RpcMismatchError }), { code: 'ERR_RPC_MISMATCH', rejectStat: 0, low: 3, high: 4 });
  c2.destroy();
  fake.close();
});

test('AUTH_SYS limits: 17 gids or a 256-byte machinename are refused locally and, raw, answered AUTH_BADCRED', async (t) => {
  t.like(t.throws(() => authSys({ uid: 1, gid: 1, gids: new Array(17).fill(1) })), { code: 'ERR_RPC_INVALID_OPTION' });
  t.like(t.throws(() => authSys({ uid: 1, gid: 1, machinename: 'x'.repeat(256) })), { code: 'ERR_RPC_INVALID_OPTION' });
  const { server, port } = await startServer(programs);
  const client = new RpcClient({ port });
  const body17 = Buffer.concat([hex('00000000 00000001 61000000 00000001 00000001 00000011'), Buffer.alloc(17 * 4)]);
  t.like(await t.throwsAsync(client.call(PROG, 1, 0, undefined, { auth: { flavor: 1, body: body17 } })), { code: 'ERR_RPC_AUTH_BADCRED' });
  const name256 = Buffer.concat([hex('00000000 00000100'), Buffer.alloc(256, 0x61), hex('00000001 00000001 00000000')]);
  t.like(await t.throwsAsync(client.call(PROG, 1, 0, undefined, { auth: { flavor: 1, body: name256 } })), { code: 'ERR_RPC_AUTH_BADCRED' });
  // Without an authenticate hook, a flavor the server does not know is rejected, as libtirpc does.
  const err = await t.throwsAsync(client.call(PROG, 1, 0, undefined, { auth: { flavor: AuthFlavor.AUTH_DH, body: Buffer.alloc(0) } }));
  t.like(err, { code: 'ERR_RPC_AUTH_REJECTEDCRED', authStat: AuthStat.AUTH_REJECTEDCRED });
  await client.close();
  await server.close();
});
