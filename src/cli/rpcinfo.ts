/** `rpctls rpcinfo [host]`: rpcbind's registrations, and whether each TCP program answers the AUTH_TLS probe. */
import { AUTH_TLS } from '../rpc/auth.js';
import { RpcClient } from '../rpc/client.js';
import { RpcbindClient, fromUniversalAddress } from '../rpc/rpcbind.js';
import { offersStartTls } from '../rpc-tls/index.js';
import { accessors, parseArgs } from './args.js';
import { Exit, printError, usageExit } from './common.js';

export const RPCINFO_USAGE = `usage: rpctls rpcinfo [host] [--json]

Lists the programs registered with rpcbind on host (default 127.0.0.1), and for each TCP one whether
it answers the RPC-with-TLS probe with STARTTLS (yes / no / - when it did not answer).
Exit status: 0 listed; 3 rpcbind unreachable; 2 usage.
`;

export async function runRpcinfo(argv: readonly string[]): Promise<number> {
  let host: string;
  let json: boolean;
  try {
    const parsed = parseArgs('rpcinfo', argv, { json: { type: 'boolean' } }, { max: 1 });
    if (parsed.help) {
      process.stdout.write(RPCINFO_USAGE);
      return Exit.OK;
    }
    host = parsed.positionals[0] ?? '127.0.0.1';
    json = accessors(parsed).bool('json');
  } catch (error) {
    return usageExit(error);
  }
  const rpcb = RpcbindClient.create({ host });
  let entries;
  try {
    entries = await rpcb.dump(4);
  } catch (error) {
    process.stderr.write(`rpctls rpcinfo: cannot query rpcbind on ${host}:111\n`);
    printError(error);
    return Exit.UNREACHABLE;
  } finally {
    await rpcb.close().catch(() => undefined);
  }
  const rows = [];
  for (const e of entries) {
    let starttls: boolean | null = null;
    const where = fromUniversalAddress(e.address);
    if ((e.netid === 'tcp' || e.netid === 'tcp6') && where) {
      // A fresh connection per program: a STARTTLS answer commits that connection to TLS.
      const client = new RpcClient({ host, port: where.port, timeout: 3000, connectTimeout: 3000 });
      try {
        const connection = await client.connect();
        starttls = offersStartTls(await connection.callForReply(e.program, e.version, 0, undefined, { auth: AUTH_TLS }));
      } catch {
        starttls = null;
      } finally {
        client.destroy();
      }
    }
    rows.push({ program: e.program, version: e.version, netid: e.netid, address: e.address, port: where?.port ?? null, owner: e.owner, starttls });
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return Exit.OK;
  }
  process.stdout.write('   program vers netid     port  starttls  owner\n');
  for (const r of rows) {
    const tls = r.starttls === null ? '-' : r.starttls ? 'yes' : 'no';
    process.stdout.write(`${String(r.program).padStart(10)} ${String(r.version).padStart(4)} ${r.netid.padEnd(9)} ${String(r.port ?? '-').padStart(5)}  ${tls.padEnd(8)}  ${r.owner}\n`);
  }
  return Exit.OK;
}
