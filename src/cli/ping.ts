/**
 * `rpctls ping <host>[:<port>]`: NULL calls, plain or over RPC-with-TLS, with latency percentiles,
 * calls/s and the offload state. Unlike probe, certificate verification is enforced (the handshake fails)
 * unless --insecure.
 */
import { performance } from 'node:perf_hooks';

import { RpcClient } from '../rpc/client.js';
import { UdpClient } from '../rpc/udp-client.js';
import { accessors, type FlagSpec, parseArgs, UsageError } from './args.js';
import { connectExit, counterDelta, Exit, kernelRekeyCounters, percentiles, onlyWithTls, printError, tlsFiles, tlsInfo, tlsSummary, type TlsSummary, type Trace, tracedTlsClient, usageExit } from './common.js';
import { errorJson, type ErrorJson, kernelRekeyText, ms, offloadText, round3, style } from './render.js';
import { formatHostPort, parseTarget } from './target.js';

export const PING_USAGE = `usage: rpctls ping <host>[:<port>] [options]

Makes NULL calls and reports latency (min/median/p99), calls/s and the TLS offload state.

  --program <n>        program (default 100003)
  --version <n>        version (default 4)
  --tls                RPC-with-TLS: probe, TLS 1.3 handshake, then the calls inside TLS
  --udp                over UDP (not with --tls): calls are resent until --timeout
  --ca <file>          CA certificates (PEM) (with --tls)
  --cert <file>        client certificate (PEM), for mutual TLS (with --tls)
  --key <file>         its private key (PEM)
  --servername <name>  name the server certificate must match (default: <host>)
  --insecure           do not verify the server certificate (with --tls)
  --count <n>          calls to make (default 100)
  --inflight <n>       calls outstanding at once (default 1)
  --timeout <ms>       per call and per connect step (default 5000)
  --rekey-every <n>    send a TLS 1.3 KeyUpdate (asking the server for its own) after every <n> calls
                       (with --tls; kernel TLS needs Linux >= 6.14, and the server must follow them:
                       the Linux kernel's nfsd does not)
  --json               one JSON object

The port defaults to 2049. Exit status: 0 every call succeeded; 1 some calls failed; 3 unreachable;
4 no STARTTLS (--tls); 5 handshake or verification failed (--tls); 2 usage.
`;

const FLAGS: Record<string, FlagSpec> = {
  program: { type: 'int', value: '<n>' },
  version: { type: 'int', value: '<n>' },
  tls: { type: 'boolean' },
  udp: { type: 'boolean' },
  ca: { type: 'string', value: '<file>' },
  cert: { type: 'string', value: '<file>' },
  key: { type: 'string', value: '<file>' },
  servername: { type: 'string', value: '<name>' },
  insecure: { type: 'boolean' },
  count: { type: 'int', min: 1, max: 100_000_000, value: '<n>' },
  inflight: { type: 'int', min: 1, max: 4096, value: '<n>' },
  timeout: { type: 'int', min: 1, max: 600_000, value: '<ms>' },
  'rekey-every': { type: 'int', min: 1, max: 100_000_000, value: '<n>' },
  json: { type: 'boolean' },
};

export interface PingResult {
  target: { host: string; port: number };
  program: number;
  version: number;
  /** The TLS session (as probe's `tls`); null without --tls, or when TLS did not come up. */
  tls: TlsSummary | null;
  transport: 'tcp' | 'udp';
  calls: number;
  errors: number;
  callsPerSec: number;
  /** null when no call succeeded: there is no latency to report. */
  latencyMs: { min: number; median: number; p99: number; max: number } | null;
  offload: { tx: boolean; rx: boolean; reason: string | null; rekey?: boolean };
  /** TLS 1.3 KeyUpdates this client sent and followed (null without --tls). */
  keyUpdates: { sent: number; received: number } | null;
  /** How the kernel's five rekey counters moved during the run (null where it has none: Linux < 6.14). */
  kernelRekey: Record<string, number> | null;
  /** The first error (connect failure, or the first failed call). */
  error: ErrorJson | null;
  exitCode: number;
}

interface PingOptions {
  host: string;
  port: number;
  program: number;
  version: number;
  tls: boolean;
  udp: boolean;
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  servername: string | undefined;
  insecure: boolean;
  count: number;
  inflight: number;
  timeout: number;
  rekeyEvery: number | undefined;
  json: boolean;
}

export async function runPing(argv: readonly string[]): Promise<number> {
  let o: PingOptions;
  try {
    const parsed = parseArgs('ping', argv, FLAGS, { max: 1 });
    if (parsed.help) {
      process.stdout.write(PING_USAGE);
      return Exit.OK;
    }
    const a = accessors(parsed);
    const target = parseTarget('ping', parsed.positionals[0], 2049);
    onlyWithTls('ping', parsed, ['ca', 'cert', 'key', 'servername', 'insecure', 'rekey-every']);
    if (parsed.flags.udp && parsed.flags.tls) throw new UsageError('rpctls ping: --udp and --tls exclude each other (RPC-with-TLS over UDP needs DTLS)');
    o = {
      ...target,
      program: a.num('program', 100003),
      version: a.num('version', 4),
      tls: a.bool('tls'),
      udp: a.bool('udp'),
      ...tlsFiles('ping', parsed),
      servername: a.str('servername'),
      insecure: a.bool('insecure'),
      count: a.num('count', 100),
      inflight: a.num('inflight', 1),
      timeout: a.num('timeout', 5000),
      rekeyEvery: parsed.flags['rekey-every'] as number | undefined,
      json: a.bool('json'),
    };
  } catch (error) {
    return usageExit(error);
  }
  const result: PingResult = {
    target: { host: o.host, port: o.port },
    program: o.program,
    version: o.version,
    tls: null,
    transport: o.udp ? 'udp' : 'tcp',
    calls: 0,
    errors: 0,
    callsPerSec: 0,
    latencyMs: null,
    offload: { tx: false, rx: false, reason: o.tls ? 'no TLS session' : 'plain RPC (no --tls)' },
    keyUpdates: null,
    kernelRekey: null,
    error: null,
    exitCode: Exit.OK,
  };
  let client: RpcClient | UdpClient;
  let trace: Trace | null = null;
  if (o.tls) {
    const tls: Parameters<typeof tracedTlsClient>[0]['tls'] = { probeTimeout: o.timeout, handshakeTimeout: o.timeout };
    if (o.ca !== undefined) tls.ca = o.ca;
    if (o.cert !== undefined) tls.cert = o.cert;
    if (o.key !== undefined) tls.key = o.key;
    if (o.servername !== undefined) tls.servername = o.servername;
    if (o.insecure) tls.rejectUnauthorized = false;
    const traced = tracedTlsClient({ host: o.host, port: o.port, program: o.program, version: o.version, tls, connectTimeout: o.timeout, timeout: o.timeout });
    client = traced.client;
    trace = traced.trace;
  } else if (o.udp) {
    client = new UdpClient({ host: o.host, port: o.port, timeout: o.timeout });
  } else {
    client = new RpcClient({ host: o.host, port: o.port, connectTimeout: o.timeout, timeout: o.timeout });
  }
  try {
    await client.connect();
  } catch (error) {
    result.error = errorJson(error);
    // Plain RPC has no probe or handshake: anything failing in connect() is the TCP connect.
    result.exitCode = connectExit(error, trace?.stage ?? 'connect');
    client.destroy();
    return report(result, o);
  }
  const info = client instanceof RpcClient ? tlsInfo(client) : null;
  if (info) {
    result.tls = tlsSummary(info, trace);
    result.offload = { ...info.offload };
  }

  const samples: number[] = [];
  let started = 0;
  const kernelBefore = kernelRekeyCounters();
  const begin = performance.now();
  const worker = async (): Promise<void> => {
    while (started < o.count) {
      started++;
      const t = performance.now();
      try {
        if (o.rekeyEvery !== undefined && started > 1 && (started - 1) % o.rekeyEvery === 0) {
          if (client instanceof RpcClient) await client.connection?.updateKeys({ requestPeerUpdate: true });
        }
        await client.call(o.program, o.version, 0);
        samples.push(performance.now() - t);
      } catch (error) {
        result.errors++;
        result.error ??= errorJson(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.inflight, o.count) }, worker));
  const elapsed = (performance.now() - begin) / 1000;
  if (info) result.keyUpdates = { ...info.keyUpdates };
  if (o.tls) result.kernelRekey = counterDelta(kernelBefore, kernelRekeyCounters());
  await client.close().catch(() => client.destroy());
  result.calls = samples.length + result.errors;
  result.callsPerSec = Math.round(samples.length / elapsed);
  if (samples.length > 0) {
    const p = percentiles(samples);
    result.latencyMs = { min: round3(p.min), median: round3(p.median), p99: round3(p.p99), max: round3(p.max) };
  } else {
    result.latencyMs = null;
  }
  if (result.errors > 0) result.exitCode = Exit.FAILURE;
  return report(result, o);
}

function report(r: PingResult, o: { host: string; port: number; json: boolean; tls: boolean }): number {
  if (o.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return r.exitCode;
  }
  const s = style(process.stdout);
  if (r.calls > 0) {
    const ok = r.calls - r.errors;
    process.stdout.write(
      `${s.bold(`rpctls ping ${formatHostPort(o.host, o.port)}`)}  program ${r.program} version ${r.version}  ${o.tls ? 'RPC-with-TLS' : r.transport === 'udp' ? 'plain UDP' : 'plain'}\n` +
        `  calls      ${ok} ok, ${r.errors ? s.bad(`${r.errors} failed`) : '0 failed'}  (${r.callsPerSec} calls/s)\n` +
        (r.latencyMs
          ? `  latency    min ${ms(r.latencyMs.min)}  median ${ms(r.latencyMs.median)}  p99 ${ms(r.latencyMs.p99)}  max ${ms(r.latencyMs.max)}\n`
          : '  latency    none (no call succeeded)\n') +
        (r.tls ? `  TLS        ${r.tls.version}  ${r.tls.cipher}  ALPN ${r.tls.alpn ?? 'none'}  ${r.tls.authMode}  handshake ${ms(r.tls.handshakeMs)}\n` : '') +
        `  offload    ${o.tls ? offloadText(r.offload) : 'n/a (plain RPC)'}\n` +
        (r.keyUpdates ? `  rekey      ${r.keyUpdates.sent} KeyUpdates sent, ${r.keyUpdates.received} followed\n` : '') +
        (r.kernelRekey ? `  kernel     ${kernelRekeyText(r.kernelRekey)}\n` : ''),
    );
  }
  if (r.error) printError(Object.assign(new Error(r.error.message), r.error));
  return r.exitCode;
}
