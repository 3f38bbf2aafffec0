/**
 * The `rpctls` command line. Each command is a function of argv returning an exit code; this file only
 * routes. Commands here: gen, rpcinfo. (probe, ping, serve, bench, demo and agent come with their issues.)
 */
import { runGen } from '../gen/cli.js';
import { AUTH_TLS } from '../rpc/auth.js';
import { RpcClient } from '../rpc/client.js';
import { RpcbindClient, fromUniversalAddress } from '../rpc/rpcbind.js';
import { offersStartTls } from '../tls/rpc-tls.js';

const USAGE = `usage: rpctls <command> [options]

commands:
  gen <file.x> -o <out.ts>   compile an XDR/RPC language file into TypeScript (rpctls gen --help)
  rpcinfo [host]             programs registered with rpcbind on host (default 127.0.0.1),
                             and whether each answers the RPC-with-TLS (AUTH_TLS) probe
`;

async function rpcinfo(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write('usage: rpctls rpcinfo [host] [--json]\n');
    return 0;
  }
  const json = argv.includes('--json');
  const host = argv.find((a) => !a.startsWith('-')) ?? '127.0.0.1';
  const rpcb = RpcbindClient.create({ host });
  let entries;
  try {
    entries = await rpcb.dump(4);
  } catch (error) {
    process.stderr.write(`rpctls rpcinfo: cannot query rpcbind on ${host}:111: ${(error as Error).message}\n`);
    return 3;
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
    return 0;
  }
  process.stdout.write('   program vers netid     port  starttls  owner\n');
  for (const r of rows) {
    const tls = r.starttls === null ? '-' : r.starttls ? 'yes' : 'no';
    process.stdout.write(`${String(r.program).padStart(10)} ${String(r.version).padStart(4)} ${r.netid.padEnd(9)} ${String(r.port ?? '-').padStart(5)}  ${tls.padEnd(8)}  ${r.owner}\n`);
  }
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'gen':
      return runGen(rest);
    case 'rpcinfo':
      return rpcinfo(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`rpctls: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}
