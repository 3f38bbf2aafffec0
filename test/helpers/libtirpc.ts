// A real libtirpc server (rpcgen + gcc + libtirpc) that tests and benchmarks start as a peer: program
// BULK (test/helpers/libtirpc/bulk.x) over TCP and UDP on 127.0.0.1, ports chosen by the kernel, never
// registered with rpcbind. The binary is built once per source hash under os.tmpdir().
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { awaitReadyLine } from './child-server.js';
import { haveCommand } from './tools.js';

/** Program, version and procedure numbers of bulk.x. */
export const BULK = { program: 0x20000777, version: 1, NULL: 0, ECHO: 1, WRITE: 2, READ: 3 } as const;

const SOURCE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'libtirpc');

let missingChecked: string | null | undefined;

/** What is missing to build the server (rpcgen, gcc, libtirpc headers or library), or null. */
export function libtirpcMissing(): string | null {
  if (missingChecked !== undefined) return missingChecked;
  const missing: string[] = [];
  if (!haveCommand('rpcgen')) missing.push('rpcgen (apt-get install rpcsvc-proto)');
  if (!haveCommand('gcc')) missing.push('gcc (apt-get install gcc)');
  else {
    const lib = spawnSync('gcc', ['-print-file-name=libtirpc.so'], { encoding: 'utf8' }).stdout?.trim() ?? '';
    if (!lib.startsWith('/')) missing.push('libtirpc.so (apt-get install libtirpc-dev)');
  }
  if (!existsSync('/usr/include/tirpc/rpc/rpc.h')) missing.push('libtirpc headers /usr/include/tirpc (apt-get install libtirpc-dev)');
  missingChecked = missing.length === 0 ? null : `the libtirpc test server needs ${missing.join(', ')}`;
  return missingChecked;
}

/** Hash of every file under test/helpers/libtirpc (names and contents): the build cache key. */
function sourceHash(): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(SOURCE_DIR).sort()) {
    hash.update(name).update('\0').update(readFileSync(join(SOURCE_DIR, name))).update('\0');
  }
  hash.update(`${process.platform}-${process.arch}`);
  return hash.digest('hex').slice(0, 16);
}

let built: string | undefined;

/**
 * Path of the server binary, building it when this source hash has not been built yet. Builds in a
 * private temp dir and renames it into place, so concurrent test processes never see a partial build:
 * the one whose rename loses just uses the winner's.
 */
export function libtirpcServerBinary(): string {
  if (built !== undefined) return built;
  const missing = libtirpcMissing();
  if (missing !== null) throw new Error(missing);
  const dir = join(tmpdir(), `rpctls-libtirpc-${sourceHash()}`);
  const binary = join(dir, 'bulk_server');
  if (!existsSync(binary)) {
    const work = mkdtempSync(`${dir}.tmp-`);
    try {
      const r = spawnSync('sh', [join(SOURCE_DIR, 'build.sh'), SOURCE_DIR, work], { encoding: 'utf8' });
      if (r.status !== 0) {
        throw new Error(`building the libtirpc server failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}${r.stderr}`);
      }
      try {
        renameSync(work, dir);
      } catch (err) {
        // Another process renamed its build into place first (ENOTEMPTY/EEXIST): use that one.
        if (!existsSync(binary)) throw err;
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  built = binary;
  return binary;
}

export interface LibtirpcServer {
  tcpPort: number;
  udpPort: number;
  /** The server process's id (e.g. to read its CPU time from /proc). */
  pid: number;
  /** Stops the server (SIGTERM) and resolves once it has exited. */
  close(): Promise<void>;
}

/**
 * Builds (if needed) and spawns the libtirpc BULK server; resolves once it prints its ready line.
 * The server also exits when this process goes away (its stdin, a pipe from here, reaches EOF).
 */
export async function startLibtirpcServer(): Promise<LibtirpcServer> {
  const binary = libtirpcServerBinary();
  const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {}); // EPIPE when the server is already gone
  const ready = await awaitReadyLine(child, /^ready tcp=(\d+) udp=(\d+)$/m, `libtirpc server ${binary}`, () => child.stdin.destroy());
  return { tcpPort: Number(ready.match[1]), udpPort: Number(ready.match[2]), pid: ready.pid, close: ready.close };
}

/** Path of the libtirpc UDP client (udp_client.c), built next to the server. */
export function libtirpcUdpClientBinary(): string {
  return join(dirname(libtirpcServerBinary()), 'bulk_udp_client');
}

/** Path of the libtirpc TCP client (tcp_client.c: timed NULL/ECHO calls, N threads), built next to the server. */
export function libtirpcTcpClientBinary(): string {
  return join(dirname(libtirpcServerBinary()), 'bulk_tcp_client');
}
