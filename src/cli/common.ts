/**
 * What several commands share: exit statuses, reading PEM files named by flags, the documented test
 * program, and a traced RPC-with-TLS connect that records each step (TCP, probe reply, handshake) so
 * probe/ping/demo can say exactly where a connection stopped.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type net from 'node:net';

import { RpcClient } from '../rpc/client.js';
import type { RpcConnection } from '../rpc/connection.js';
import type { RpcReply } from '../rpc/message.js';
import type { ProgramDefinition } from '../rpc/program.js';
import * as xdr from '../xdr/codec.js';
import { type RpcTlsClientOptions, rpcTlsUpgrade, tlsInfoOf } from '../rpc-tls/index.js';
import type { TlsInfo } from '../tls/tls-stream.js';
import { type Parsed, UsageError, accessors } from './args.js';
import { formatError, round3, style } from './render.js';

/** Exit statuses; documented in the README's CLI reference. */
export const Exit = {
  OK: 0,
  /** Anything else: a call failed, a server could not start, an internal error. */
  FAILURE: 1,
  USAGE: 2,
  /** TCP connect failed (refused, timed out, name not resolved). */
  UNREACHABLE: 3,
  /** The AUTH_TLS probe was not answered with STARTTLS (refused, or no answer at all). */
  NO_STARTTLS: 4,
  /** The TLS handshake failed, or the server certificate did not verify. */
  TLS_FAILED: 5,
} as const;

/** Prints a usage error and returns 2; anything else is rethrown. */
export function usageExit(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n`);
    return Exit.USAGE;
  }
  throw error;
}

/** Throws a usage error for any of `flags` given without --tls. */
export function onlyWithTls(command: string, parsed: Parsed, flags: readonly string[]): void {
  if (parsed.flags.tls === true) return;
  for (const f of flags) if (parsed.flags[f] !== undefined) throw new UsageError(`rpctls ${command}: --${f} needs --tls`);
}

/** --ca, --cert and --key as PEM text (files read now); --cert and --key only together. */
export function tlsFiles(command: string, parsed: Parsed): { ca: string | undefined; cert: string | undefined; key: string | undefined } {
  const a = accessors(parsed);
  if ((a.str('cert') === undefined) !== (a.str('key') === undefined)) throw new UsageError(`rpctls ${command}: --cert and --key go together`);
  return { ca: readPem(command, 'ca', a.str('ca')), cert: readPem(command, 'cert', a.str('cert')), key: readPem(command, 'key', a.str('key')) };
}

export function readPem(command: string, flag: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`rpctls ${command}: cannot read --${flag} ${path}: ${(error as Error).message}`);
  }
  // Caught here, before connecting, rather than as a TLS failure after it.
  if (!text.includes('-----BEGIN ')) throw new UsageError(`rpctls ${command}: --${flag} ${path} is not PEM (no "-----BEGIN" line)`);
  return text;
}

// ---- the test program (served by `rpctls serve`, used by bench and demo) ------------------------------

export const TEST_PROGRAM = 0x20000001;
export const TEST_VERSION = 1;
export const TestProc = { NULL: 0, ECHO: 1, SINK: 2, SOURCE: 3 } as const;
/** SOURCE returns at most this many bytes, whatever n asks for (1 MiB: fits the default record limit). */
export const SOURCE_MAX = 1 << 20;

const zeros = Buffer.alloc(SOURCE_MAX);

export const TEST_PROGRAM_DEFINITION: ProgramDefinition = {
  program: TEST_PROGRAM,
  version: TEST_VERSION,
  procedures: {
    [TestProc.ECHO]: { args: xdr.opaque(), result: xdr.opaque(), handler: (data: Buffer) => data },
    [TestProc.SINK]: { args: xdr.opaque(), result: xdr.uint, handler: (data: Buffer) => data.length },
    // A view of one shared zero buffer: no allocation per call.
    [TestProc.SOURCE]: { args: xdr.uint, result: xdr.opaque(), handler: (n: number) => zeros.subarray(0, Math.min(n, SOURCE_MAX)) },
  },
};

// ---- traced TLS connect ------------------------------------------------------------------------------

export type Stage = 'connect' | 'probe' | 'handshake' | 'rpc';

export interface Trace {
  /** Where the connect got to; on failure, the step that failed. */
  stage: Stage;
  tcpMs: number | null;
  probeMs: number | null;
  handshakeMs: number | null;
  remoteAddress: string | null;
  /** The AUTH_TLS probe's reply, copied (the library reads it from a reused buffer). */
  probeReply: RpcReply | null;
}

export interface TracedTlsOptions {
  host: string;
  port: number;
  program: number;
  version: number;
  tls: RpcTlsClientOptions;
  connectTimeout?: number;
  timeout?: number;
}

/**
 * An RpcClient whose connection upgrade is the library's own rpcTlsUpgrade, wrapped to time each step
 * and to keep a copy of the probe's reply (the upgrade consumes it; the CLI wants to show it).
 * Servername defaults to the host, as createTlsClient does.
 */
export function tracedTlsClient(options: TracedTlsOptions): { client: RpcClient; trace: Trace } {
  const trace: Trace = { stage: 'connect', tcpMs: null, probeMs: null, handshakeMs: null, remoteAddress: null, probeReply: null };
  let probeStart = 0;
  const tls = {
    ...options.tls,
    servername: options.tls.servername ?? options.host,
    onProbeReply: (reply: RpcReply) => {
      trace.probeMs = performance.now() - probeStart;
      trace.probeReply = { ...reply, verf: reply.verf && { flavor: reply.verf.flavor, body: Buffer.from(reply.verf.body) } };
      trace.stage = 'handshake';
    },
  };
  const upgrade = rpcTlsUpgrade(tls, { program: options.program, version: options.version });
  const start = performance.now();
  const traced = async (connection: RpcConnection): Promise<void> => {
    trace.tcpMs = performance.now() - start;
    trace.remoteAddress = (connection.transport as net.Socket | null)?.remoteAddress ?? null;
    trace.stage = 'probe';
    probeStart = performance.now();
    await upgrade(connection);
    trace.handshakeMs = performance.now() - probeStart - (trace.probeMs ?? 0);
    trace.stage = 'rpc';
  };
  const client = new RpcClient({
    host: options.host,
    port: options.port,
    connectTimeout: options.connectTimeout ?? 5000,
    timeout: options.timeout ?? 10_000,
    upgrade: traced,
  });
  return { client, trace };
}

/** The exit status for an error from a (traced) connect, by the step it failed in. */
export function connectExit(error: unknown, stage: Stage): number {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'ERR_RPC_CONNECT' || stage === 'connect') return Exit.UNREACHABLE;
  if (code === 'ERR_RPC_TLS_NOT_OFFERED' || stage === 'probe') return Exit.NO_STARTTLS;
  if (code.startsWith('ERR_TLS_') || stage === 'handshake') return Exit.TLS_FAILED;
  return Exit.FAILURE;
}

export function tlsInfo(client: RpcClient): TlsInfo | null {
  return client.connection ? tlsInfoOf(client.connection) : null;
}

/** The TLS session as probe and ping report it (their `tls` key in --json). */
export interface TlsSummary {
  version: string;
  cipher: string;
  /** Selected ALPN protocol, null when the server selected none (Linux never does). */
  alpn: string | null;
  alpnOffered: string[];
  authMode: 'tls' | 'mtls';
  handshakeMs: number | null;
}

export function tlsSummary(info: TlsInfo, trace: Trace | null): TlsSummary {
  const handshakeMs = trace?.handshakeMs ?? null;
  return {
    version: info.version,
    cipher: info.cipher,
    alpn: info.alpn,
    alpnOffered: ['sunrpc'],
    authMode: info.authMode,
    handshakeMs: handshakeMs === null ? null : round3(handshakeMs),
  };
}

export function printError(error: unknown): void {
  process.stderr.write(`${formatError(error, style(process.stderr))}\n`);
}

/** Latency percentiles over a sorted copy (nearest-rank). */
const KERNEL_REKEY_COUNTERS = ['TlsTxRekeyOk', 'TlsRxRekeyOk', 'TlsRxRekeyReceived', 'TlsTxRekeyError', 'TlsRxRekeyError'] as const;

/**
 * The kernel's TLS rekey counters from /proc/net/tls_stat (this network namespace, every socket), or
 * null where the kernel has no TLS or no rekey (Linux < 6.14).
 */
export function kernelRekeyCounters(): Record<string, number> | null {
  let text: string;
  try {
    text = readFileSync('/proc/net/tls_stat', 'utf8');
  } catch {
    return null;
  }
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if ((KERNEL_REKEY_COUNTERS as readonly string[]).includes(name ?? '')) out[name!] = Number(value);
  }
  return Object.keys(out).length === KERNEL_REKEY_COUNTERS.length ? out : null;
}

/** What moved between two kernelRekeyCounters() readings (null when either is). */
export function counterDelta(before: Record<string, number> | null, after: Record<string, number> | null): Record<string, number> | null {
  if (!before || !after) return null;
  return Object.fromEntries(Object.entries(after).map(([name, value]) => [name, value - (before[name] ?? 0)]));
}

export function percentiles(samples: readonly number[]): { min: number; median: number; p99: number; max: number } {
  if (samples.length === 0) return { min: 0, median: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  return { min: sorted[0] as number, median: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] as number };
}
