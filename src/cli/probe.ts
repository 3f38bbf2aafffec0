/**
 * `rpctls probe <host>[:<port>]`: one connection, every step reported: TCP connect, the AUTH_TLS probe's
 * exact reply, the TLS session (version, cipher, ALPN, certificate, authMode, kernel offload) and a NULL
 * call inside TLS.
 *
 * Verification: the handshake runs with rejectUnauthorized false so the certificate can be shown even
 * when it does not verify; the verdict comes from TlsInfo.peerVerified / verifyError and still decides
 * the exit status (5) unless --insecure was given. Only a NULL call (no data) is sent in that case.
 */
import { performance } from 'node:perf_hooks';

import { offersStartTls } from '../rpc-tls/index.js';
import { accessors, type FlagSpec, parseArgs } from './args.js';
import { connectExit, Exit, kernelRekeyCounters, printError, tlsFiles, tlsInfo, tlsSummary, type TlsSummary, type Trace, tracedTlsClient, usageExit } from './common.js';
import { errorJson, type ErrorJson, kernelRekeyText, ms, offloadText, round3, style, summarizeReply, terminalSafe } from './render.js';
import { formatHostPort, parseTarget } from './target.js';

export const PROBE_USAGE = `usage: rpctls probe <host>[:<port>] [options]

Connects, sends the RPC-with-TLS probe (NULL with AUTH_TLS), upgrades to TLS and makes a NULL call
inside TLS, reporting every step.

  --program <n>        program of the probe and the NULL call (default 100003, NFS)
  --version <n>        its version (default 4)
  --ca <file>          CA certificates (PEM) to verify the server with (default: the system store)
  --cert <file>        client certificate (PEM), for mutual TLS
  --key <file>         its private key (PEM)
  --servername <name>  name the server certificate must match (default: <host>)
  --insecure           report a certificate that fails verification but do not fail for it
  --timeout <ms>       limit for the connect, the probe, the handshake and the call (default 5000)
  --json               one JSON object instead of the screen

The port defaults to 2049. Exit status: 0 TLS came up, the certificate verified (or --insecure) and the
NULL call inside TLS succeeded; 3 unreachable; 4 no STARTTLS; 5 handshake or verification failed;
1 other failures (e.g. the NULL call failed); 2 usage.
`;

const FLAGS: Record<string, FlagSpec> = {
  program: { type: 'int', value: '<n>' },
  version: { type: 'int', value: '<n>' },
  ca: { type: 'string', value: '<file>' },
  cert: { type: 'string', value: '<file>' },
  key: { type: 'string', value: '<file>' },
  servername: { type: 'string', value: '<name>' },
  insecure: { type: 'boolean' },
  timeout: { type: 'int', min: 1, max: 600_000, value: '<ms>' },
  json: { type: 'boolean' },
};

export interface CertificateSummary {
  subject: string;
  subjectAltName: string | null;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
  verified: boolean;
  /** OpenSSL's reason when not verified, e.g. "hostname mismatch". */
  verifyError: string | null;
  /** Why it verified or not, in words. */
  why: string;
}

export interface ProbeResult {
  target: { host: string; port: number; address: string | null };
  program: number;
  version: number;
  tcp: { connected: boolean; ms: number | null };
  starttls: boolean;
  probeMs: number | null;
  probeReply: ReturnType<typeof summarizeReply> | null;
  tls: TlsSummary | null;
  certificate: CertificateSummary | null;
  offload: { tx: boolean; rx: boolean; reason: string | null; rekey?: boolean };
  nullRttMs: number | null;
  /** The NULL call inside TLS: null when it was not made (TLS did not come up). */
  nullCall: { ok: boolean; ms: number | null; error: ErrorJson | null } | null;
  error: ErrorJson | null;
  exitCode: number;
}

export async function runProbe(argv: readonly string[]): Promise<number> {
  let opts: ProbeOptions & { json: boolean; insecure: boolean };
  try {
    const parsed = parseArgs('probe', argv, FLAGS, { max: 1 });
    if (parsed.help) {
      process.stdout.write(PROBE_USAGE);
      return Exit.OK;
    }
    const a = accessors(parsed);
    const target = parseTarget('probe', parsed.positionals[0], 2049);
    opts = {
      ...target,
      program: a.num('program', 100003),
      version: a.num('version', 4),
      ...tlsFiles('probe', parsed),
      servername: a.str('servername'),
      insecure: a.bool('insecure'),
      timeout: a.num('timeout', 5000),
      json: a.bool('json'),
    };
  } catch (error) {
    return usageExit(error);
  }
  const result = await probe(opts);
  if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else printScreen(result, opts);
  return result.exitCode;
}

export interface ProbeOptions {
  host: string;
  port: number;
  program: number;
  version: number;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  servername?: string | undefined;
  insecure?: boolean;
  timeout?: number;
}

/** Runs the whole probe and never throws: failures land in `error` and `exitCode`. */
export async function probe(o: ProbeOptions): Promise<ProbeResult> {
  const timeout = o.timeout ?? 5000;
  const tlsOptions: Parameters<typeof tracedTlsClient>[0]['tls'] = {
    rejectUnauthorized: false,
    probeTimeout: timeout,
    handshakeTimeout: timeout,
  };
  if (o.ca !== undefined) tlsOptions.ca = o.ca;
  if (o.cert !== undefined) tlsOptions.cert = o.cert;
  if (o.key !== undefined) tlsOptions.key = o.key;
  if (o.servername !== undefined) tlsOptions.servername = o.servername;
  const { client, trace } = tracedTlsClient({
    host: o.host, port: o.port, program: o.program, version: o.version, tls: tlsOptions, connectTimeout: timeout, timeout,
  });
  const result: ProbeResult = {
    target: { host: o.host, port: o.port, address: null },
    program: o.program,
    version: o.version,
    tcp: { connected: false, ms: null },
    starttls: false,
    probeMs: null,
    probeReply: null,
    tls: null,
    certificate: null,
    offload: { tx: false, rx: false, reason: 'no TLS session' },
    nullRttMs: null,
    nullCall: null,
    error: null,
    exitCode: Exit.OK,
  };
  const fill = (t: Trace): void => {
    result.target.address = t.remoteAddress;
    result.tcp = { connected: t.tcpMs !== null, ms: t.tcpMs === null ? null : round3(t.tcpMs) };
    result.probeReply = t.probeReply && summarizeReply(t.probeReply);
    result.probeMs = t.probeMs === null ? null : round3(t.probeMs);
    result.starttls = t.probeReply !== null && offersStartTls(t.probeReply);
  };
  try {
    await client.connect();
  } catch (error) {
    fill(trace);
    result.error = errorJson(error);
    result.exitCode = connectExit(error, trace.stage);
    client.destroy();
    return result;
  }
  fill(trace);
  const info = tlsInfo(client);
  if (info) {
    result.tls = tlsSummary(info, trace);
    result.offload = { ...info.offload };
    const x = info.peerX509;
    const servername = o.servername ?? o.host;
    if (x) {
      result.certificate = {
        subject: x.subject.replace(/\n/g, ', '),
        subjectAltName: x.subjectAltName ?? null,
        issuer: x.issuer.replace(/\n/g, ', '),
        validFrom: new Date(x.validFrom).toISOString(),
        validTo: new Date(x.validTo).toISOString(),
        fingerprint256: x.fingerprint256,
        verified: info.peerVerified,
        verifyError: info.verifyError ?? null,
        why: info.peerVerified
          ? `chains to a trusted CA (${o.ca !== undefined ? '--ca' : 'system store'}) and matches ${JSON.stringify(servername)}`
          : `${info.verifyError ?? 'not verified'} (checked against ${o.ca !== undefined ? '--ca' : 'the system store'}, name ${JSON.stringify(servername)})`,
      };
    }
  }
  try {
    const start = performance.now();
    await client.call(o.program, o.version, 0);
    result.nullRttMs = round3(performance.now() - start);
    result.nullCall = { ok: true, ms: result.nullRttMs, error: null };
  } catch (error) {
    // In TLS 1.3 the server judges our certificate after our handshake completed: its refusal (an alert
    // such as unknown_ca or certificate_required) ends the connection under the first call. That is a
    // TLS failure, and the alert itself is what the user must see.
    const cause = (error as { cause?: unknown }).cause;
    const tlsCause = [error, cause].find((e) => String((e as { code?: unknown } | undefined)?.code ?? '').startsWith('ERR_TLS_'));
    result.error = errorJson(tlsCause ?? error);
    result.nullCall = { ok: false, ms: null, error: result.error };
    result.exitCode = tlsCause === undefined ? Exit.FAILURE : Exit.TLS_FAILED;
  }
  await client.close().catch(() => client.destroy());
  // A certificate that did not verify is the earlier failure: it decides the exit status and `error`
  // even when the NULL call failed too (nullCall keeps that error).
  if (result.certificate && !result.certificate.verified && !o.insecure) {
    result.error = {
      code: 'ERR_TLS_CERT_VERIFY',
      message: `server certificate verification failed: ${result.certificate.verifyError ?? 'not verified'}`,
      reason: result.certificate.verifyError,
    };
    result.exitCode = Exit.TLS_FAILED;
  }
  return result;
}

function printScreen(r: ProbeResult, o: { host: string; port: number; insecure: boolean }): void {
  const s = style(process.stdout);
  const lines: string[] = [];
  const row = (label: string, text: string): void => {
    lines.push(`  ${label.padEnd(15)} ${text}`);
  };
  const yes = (b: boolean, t: string, f: string): string => (b ? s.ok(t) : s.bad(f));
  lines.push(s.bold(`rpctls probe ${formatHostPort(o.host, o.port)}  program ${r.program} version ${r.version}`));
  row('TCP connect', r.tcp.connected ? `${s.ok('ok')}  ${r.target.address === null ? '' : formatHostPort(r.target.address, r.target.port)} in ${ms(r.tcp.ms)}` : s.bad('failed'));
  if (r.tcp.connected) {
    row('AUTH_TLS probe', r.probeReply
      ? `${yes(r.starttls, 'STARTTLS', 'no STARTTLS')}  (${r.probeReply.text}) in ${ms(r.probeMs)}`
      : r.error?.notOncRpc === true
        ? `${s.bad('no RPC reply')}  the peer does not appear to speak ONC-RPC; it sent "${String(r.error.peerSent)}"`
        : s.bad('no reply'));
  }
  if (r.tls) {
    row('TLS', `${r.tls.version}  ${r.tls.cipher}  handshake ${ms(r.tls.handshakeMs)}`);
    row('ALPN', `offered ${r.tls.alpnOffered.join(',')}, selected ${r.tls.alpn ?? 'none'}`);
    const c = r.certificate;
    if (c) {
      // The peer wrote these: escaped, so a certificate cannot drive the terminal.
      row('certificate', `subject ${terminalSafe(c.subject)}`);
      row('', `SANs    ${terminalSafe(c.subjectAltName ?? '(none)')}`);
      row('', `issuer  ${terminalSafe(c.issuer)}`);
      row('', `valid   ${c.validFrom} .. ${c.validTo}`);
      row('', `verify  ${c.verified ? s.ok('ok') : o.insecure ? s.warn('FAILED (ignored: --insecure)') : s.bad('FAILED')}: ${c.why}`);
    } else {
      row('certificate', s.bad('none presented'));
    }
    row('auth mode', r.tls.authMode);
    row('kernel offload', offloadText(r.offload));
    const rekey = kernelRekeyText(kernelRekeyCounters());
    if (r.offload.tx && rekey) row('kernel rekey', rekey);
  }
  if (r.nullCall?.ok) row('NULL in TLS', `${s.ok('ok')}  ${ms(r.nullCall.ms)}`);
  else if (r.nullCall?.error) {
    // The message may carry what the peer sent (an alert, a verifier): escaped.
    row('NULL in TLS', `${s.bad('FAILED')}  ${terminalSafe(r.nullCall.error.message)} [${terminalSafe(r.nullCall.error.code)}]`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (r.error) printError(Object.assign(new Error(r.error.message), r.error));
  process.stdout.write(`${r.exitCode === Exit.OK ? s.ok('result: TLS ok') : s.bad(`result: failed (exit ${r.exitCode})`)}\n`);
}
