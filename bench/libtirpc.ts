// The libtirpc C TCP client (test/helpers/libtirpc/tcp_client.c) as a benchmark driver, and the two servers
// it is pointed at, each in its own process: the libtirpc BULK server (program 0x20000777 v1) and the CLI's
// `rpctls serve` (test program 0x20000001 v1). Both answer NULL (procedure 0) and ECHO (procedure 1,
// opaque<> -> the same opaque). A module, not a script: bench scripts and tests import it.
//
//   const server = await startRpctlsServe();
//   const r = await cClientRun({ port: server.port, program: 0x20000001, version: 1, mode: 'echo', threads: 4,
//     ms: 1000, bytes: 65536, serverPid: server.pid });
//   await server.close();
import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { awaitReadyLine } from '../test/helpers/child-server.js';
import { libtirpcTcpClientBinary, startLibtirpcServer } from '../test/helpers/libtirpc.js';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

export interface CClientOptions {
  port: number;
  program: number;
  version: number;
  mode: 'null' | 'echo';
  /** Threads, each with its own TCP connection, each making one call at a time. */
  threads: number;
  /** How long the calls run. */
  ms: number;
  /** ECHO payload size (mode 'echo'; default 0). */
  bytes?: number;
  /** The server's process id: its CPU time (/proc/<pid>/stat) is read before and after the run. */
  serverPid?: number;
}

export interface CClientResult {
  callsPerSecond: number;
  /** ECHO argument bytes sent per second, in MiB (0 for NULL; the replies carry as many back). */
  mibPerSecond: number;
  /**
   * Server CPU time (user + system, all its threads) per call, in microseconds; with serverPid only. Read
   * around the whole client process, so it includes accepting the connections (small beside 1 s of calls).
   */
  serverCpuMicrosPerCall?: number;
  /**
   * Server minor page faults per call (/proc/<pid>/stat), with serverPid only: memory the server touched
   * for the first time, or again after its allocator gave it back to the kernel.
   */
  serverMinorFaultsPerCall?: number;
  /** The client's own figures: calls made, seconds they took, ECHO argument bytes sent. */
  calls: number;
  seconds: number;
  bytes: number;
}

let clockTicks: Promise<number> | undefined;

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`, read once; normally 100). */
function clkTck(): Promise<number> {
  clockTicks ??= run('getconf', ['CLK_TCK']).then(({ stdout }) => {
    const n = Number(stdout.trim());
    if (!(n > 0)) throw new Error(`getconf CLK_TCK printed ${JSON.stringify(stdout)}`);
    return n;
  });
  return clockTicks;
}

/** CPU time (user + system) a process has used so far, in microseconds (10 ms steps at CLK_TCK 100). */
export async function processCpuMicros(pid: number): Promise<number> {
  const [ticks, tck] = await Promise.all([cpuTicks(pid), clkTck()]);
  return (ticks / tck) * 1e6;
}

/** utime + stime of a process, in clock ticks. */
async function cpuTicks(pid: number): Promise<number> {
  return (await processTimes(pid)).ticks;
}

/** A process's CPU time (utime + stime, in clock ticks) and minor page faults so far. */
async function processTimes(pid: number): Promise<{ ticks: number; minorFaults: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may itself hold spaces or ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); minflt is field 10, utime and stime are fields 14 and 15.
  return { ticks: Number(fields[11]) + Number(fields[12]), minorFaults: Number(fields[7]) };
}

/**
 * Runs the C client once and parses its `calls=<n> seconds=<s> bytes=<b>` line. Rejects when the client
 * exits nonzero (any RPC failure), with its clnt_sperror text in the message and `exitCode`/`stderr` set.
 */
export async function cClientRun(opts: CClientOptions): Promise<CClientResult> {
  const args = [String(opts.port), String(opts.program), String(opts.version), opts.mode, String(opts.threads), String(opts.ms)];
  if (opts.mode === 'echo') args.push(String(opts.bytes ?? 0));
  const tck = opts.serverPid === undefined ? 0 : await clkTck();
  const before = opts.serverPid === undefined ? null : await processTimes(opts.serverPid);
  let stdout: string;
  try {
    ({ stdout } = await run(libtirpcTcpClientBinary(), args, { timeout: opts.ms + 60_000 }));
  } catch (error) {
    const e = error as Error & { code?: number | string; signal?: string | null; stderr?: string };
    const why = typeof e.code === 'number' ? `exit ${e.code}` : e.signal ? `signal ${e.signal}` : e.message;
    const failure = new Error(`bulk_tcp_client ${args.join(' ')} failed (${why}): ${(e.stderr ?? '').trim()}`) as Error & {
      exitCode?: number;
      stderr: string;
    };
    if (typeof e.code === 'number') failure.exitCode = e.code;
    failure.stderr = e.stderr ?? '';
    throw failure;
  }
  const after = opts.serverPid === undefined ? null : await processTimes(opts.serverPid);
  const m = /^calls=(\d+) seconds=([\d.]+) bytes=(\d+)$/m.exec(stdout);
  if (!m) throw new Error(`unexpected output from bulk_tcp_client: ${JSON.stringify(stdout)}`);
  const calls = Number(m[1]);
  const seconds = Number(m[2]);
  const bytes = Number(m[3]);
  const result: CClientResult = { callsPerSecond: calls / seconds, mibPerSecond: bytes / seconds / MiB, calls, seconds, bytes };
  if (before !== null && after !== null && calls > 0) {
    result.serverCpuMicrosPerCall = (((after.ticks - before.ticks) / tck) * 1e6) / calls;
    result.serverMinorFaultsPerCall = (after.minorFaults - before.minorFaults) / calls;
  }
  return result;
}

export interface BenchServer {
  port: number;
  pid: number;
  /** Stops the server (SIGTERM; SIGKILL after 5 s) and resolves once it has exited. */
  close(): Promise<void>;
}

/** The libtirpc BULK server (single-threaded, svc_run style) on 127.0.0.1; only its TCP port is used. */
export async function startLibtirpcTcpServer(): Promise<BenchServer> {
  const server = await startLibtirpcServer();
  return { port: server.tcpPort, pid: server.pid, close: () => server.close() };
}

/**
 * `rpctls serve` in plain mode on 127.0.0.1, port chosen by the kernel, as users run it: bin/rpctls.js on
 * the built package (dist/, made by `npm install` / `npm run build`). The pid is the Node process serving.
 * nodeArgs go before the script (e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']: serve exits normally on
 * SIGTERM, so the profile is written).
 */
export async function startRpctlsServe(nodeBinary = process.execPath, nodeArgs: readonly string[] = []): Promise<BenchServer> {
  const child = spawn(nodeBinary, [...nodeArgs, join(REPO, 'bin/rpctls.js'), 'serve', '--host', '127.0.0.1', '--port', '0'], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = await awaitReadyLine(child, /^listening (?:\[[^\]]*\]|[^\s:]+):(\d+)$/m, 'rpctls serve');
  return { port: Number(ready.match[1]), pid: ready.pid, close: ready.close };
}
