/**
 * The `rpctls` command line. Each command is a function of argv returning an exit code (one file per
 * command in this folder); this file only routes.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, sep } from 'node:path';

import { runGen } from '../gen/cli.js';
import { RpctlsError, nearestName } from '../errors.js';
import { loadNative, nativeAddonPath } from '../tls/native.js';
import { printError } from './common.js';
import { terminalSafe } from './render.js';
import { runAgent } from './agent.js';
import { runBench } from './bench.js';
import { runDemo } from './demo.js';
import { runPing } from './ping.js';
import { runProbe } from './probe.js';
import { runRpcinfo } from './rpcinfo.js';
import { runServe } from './serve.js';

const USAGE = `usage: rpctls <command> [options]

commands:
  demo                       the whole story on this machine: throwaway certificates, a server, the
                             AUTH_TLS probe, the TLS 1.3 handshake, kernel offload, a short bench
  probe <host>[:<port>]      one RPC-with-TLS connection, every step reported (exit status says which failed)
  ping <host>[:<port>]       NULL calls, plain or --tls: latency, calls/s, offload
  serve                      a test server (program 0x20000001), plain or --tls, logging each connection
  bench                      plain vs RPC-with-TLS on loopback: calls/s, MB/s, CPU s/GB, offload
  rpcinfo [host]             programs registered with rpcbind on host (default 127.0.0.1),
                             and whether each answers the RPC-with-TLS (AUTH_TLS) probe
  agent [--config <file>]    the kernel's TLS handshake agent (tlshd's role) for NFS with xprtsec=tls
  gen <file.x> -o <out.ts>   compile an XDR/RPC language file into TypeScript

rpctls <command> --help shows a command's flags and exit statuses; rpctls --version the version.
`;

/** Which TLS addon this install runs on: the first thing to know when TLS fails on one machine only. */
function addonSummary(): string {
  try {
    const addon = loadNative();
    const path = nativeAddonPath() ?? '';
    const kind = path.includes(`${sep}prebuilds${sep}`) ? `prebuilt ${basename(dirname(path))}` : process.env.RPCTLS_NATIVE_PATH ? path : 'built from source';
    return `${kind}, ${addon.opensslVersion}`;
  } catch (error) {
    return error instanceof RpctlsError && error.code === 'ERR_TLS_NATIVE_MISSING' ? 'missing (TLS unavailable; plain RPC works)' : `does not load (${(error as Error).message})`;
  }
}

/** The package's version, read from its package.json (two levels up from dist/cli or src/cli). */
function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

const COMMANDS: Record<string, (argv: readonly string[]) => number | Promise<number>> = {
  gen: runGen,
  rpcinfo: runRpcinfo,
  probe: runProbe,
  ping: runPing,
  serve: runServe,
  bench: runBench,
  demo: runDemo,
  agent: runAgent,
};

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`rpctls ${version()} (Node ${process.versions.node}, TLS addon: ${addonSummary()})\n`);
    return 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    const known = Object.keys(COMMANDS);
    const near = nearestName(command, known);
    process.stderr.write(`rpctls: unknown command '${terminalSafe(command)}'${near ? ` (did you mean '${near}'?)` : ''}; commands: ${known.join(', ')}; rpctls --help for more\n`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (error) {
    // A coded error no command handled (e.g. ERR_TLS_NATIVE_MISSING where the addon was not built): one
    // rendered message with its hint, not a stack.
    if (!(error instanceof RpctlsError)) throw error;
    printError(error);
    return 1;
  }
}
