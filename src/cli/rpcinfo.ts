/** `rpctls rpcinfo [host[:port]]`: rpcbind's registrations, and whether each TCP program answers the AUTH_TLS probe. */
import { AUTH_TLS } from '../rpc/auth.js';
import { RpcClient } from '../rpc/client.js';
import { RPCBIND_PORT, RpcbindClient, type RpcbEntry, fromUniversalAddress } from '../rpc/rpcbind.js';
import { offersStartTls } from '../rpc-tls/index.js';
import { accessors, parseArgs } from './args.js';
import { Exit, printError, usageExit } from './common.js';
import { terminalSafe } from './render.js';
import { formatHostPort, parseTarget } from './target.js';

/** Probes at once, each with its own timeout, and the deadline for all of them together. */
const PROBES_AT_ONCE = 8;
const PROBE_TIMEOUT_MS = 3000;
const ALL_PROBES_MS = 15_000;

export const RPCINFO_USAGE = `usage: rpctls rpcinfo [host[:port]] [--json]

Lists the programs registered with rpcbind on host (default 127.0.0.1, port 111), TCP and UDP, and for
each TCP one whether it answers the RPC-with-TLS probe with STARTTLS (yes / no / - when it did not
answer; n/a for UDP and local entries, which have no TLS). Probes
run ${PROBES_AT_ONCE} at a time, ${PROBE_TIMEOUT_MS / 1000} s each, ${ALL_PROBES_MS / 1000} s for all; strings rpcbind sent are shown escaped.
Exit status: 0 listed; 3 rpcbind unreachable; 2 usage.
`;

interface Row {
  program: number;
  version: number;
  netid: string;
  address: string;
  port: number | null;
  owner: string;
  starttls: boolean | null;
}

async function probe(host: string, e: RpcbEntry, port: number, signal: AbortSignal): Promise<boolean | null> {
  // A fresh connection per program: a STARTTLS answer commits that connection to TLS.
  const client = new RpcClient({ host, port, timeout: PROBE_TIMEOUT_MS, connectTimeout: PROBE_TIMEOUT_MS });
  const abort = (): void => client.destroy();
  signal.addEventListener('abort', abort, { once: true });
  try {
    const connection = await client.connect();
    return offersStartTls(await connection.callForReply(e.program, e.version, 0, undefined, { auth: AUTH_TLS, signal }));
  } catch {
    return null;
  } finally {
    signal.removeEventListener('abort', abort);
    client.destroy();
  }
}

const isTcp = (netid: string): boolean => netid === 'tcp' || netid === 'tcp6';

/** Probes every TCP entry, a few at a time, all within one deadline; rows in rpcbind's order. */
async function probeAll(host: string, entries: readonly RpcbEntry[]): Promise<Row[]> {
  const rows: Row[] = entries.map((e) => {
    const where = fromUniversalAddress(e.address);
    return { program: e.program, version: e.version, netid: e.netid, address: e.address, port: where?.port ?? null, owner: e.owner, starttls: null };
  });
  const todo = rows.map((r, i) => i).filter((i) => isTcp(rows[i]!.netid) && rows[i]!.port !== null);
  const deadline = AbortSignal.timeout(ALL_PROBES_MS);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length && !deadline.aborted) {
      const i = todo[next++] as number;
      const row = rows[i] as Row;
      row.starttls = await probe(host, entries[i] as RpcbEntry, row.port as number, deadline);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBES_AT_ONCE, todo.length) }, worker));
  return rows;
}

export async function runRpcinfo(argv: readonly string[]): Promise<number> {
  let host: string;
  let port: number;
  let json: boolean;
  try {
    const parsed = parseArgs('rpcinfo', argv, { json: { type: 'boolean' } }, { max: 1 });
    if (parsed.help) {
      process.stdout.write(RPCINFO_USAGE);
      return Exit.OK;
    }
    ({ host, port } = parseTarget('rpcinfo', parsed.positionals[0] ?? '127.0.0.1', RPCBIND_PORT));
    json = accessors(parsed).bool('json');
  } catch (error) {
    return usageExit(error);
  }
  const rpcb = RpcbindClient.create({ host, port });
  let entries;
  try {
    entries = await rpcb.dump(4);
  } catch (error) {
    process.stderr.write(`rpctls rpcinfo: cannot query rpcbind on ${formatHostPort(host, port)}\n`);
    printError(error);
    return Exit.UNREACHABLE;
  } finally {
    await rpcb.close().catch(() => undefined);
  }
  const rows = await probeAll(host, entries);
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return Exit.OK;
  }
  process.stdout.write('   program vers netid     port  starttls  owner\n');
  for (const r of rows) {
    const tls = !isTcp(r.netid) ? 'n/a' : r.starttls === null ? '-' : r.starttls ? 'yes' : 'no';
    process.stdout.write(`${String(r.program).padStart(10)} ${String(r.version).padStart(4)} ${terminalSafe(r.netid).padEnd(9)} ${String(r.port ?? '-').padStart(5)}  ${tls.padEnd(8)}  ${terminalSafe(r.owner)}\n`);
  }
  return Exit.OK;
}
