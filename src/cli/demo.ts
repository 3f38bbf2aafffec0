/**
 * `rpctls demo`: the whole story with nothing to configure. Throwaway CA and certificates in memory, a
 * local server requiring TLS (and asking for a client certificate), then probe -> STARTTLS -> TLS 1.3
 * -> offload (or why not) -> calls -> a short bench. The server runs in this process to stay quick
 * (the bench's CPU column is then client and server together).
 */
import { performance } from 'node:perf_hooks';

import { RpcClient } from '../rpc/client.js';
import { createTlsServer } from '../rpc-tls/index.js';
import { parseArgs, accessors } from './args.js';
import { benchMode, type BenchRow, benchTable } from './bench.js';
import { createDemoPki } from './certs.js';
import { Exit, printError, TEST_PROGRAM, TEST_PROGRAM_DEFINITION, TEST_VERSION, TestProc, tlsInfo, tracedTlsClient, usageExit } from './common.js';
import { errorJson, ms, round3, style, summarizeReply } from './render.js';

export const DEMO_USAGE = `usage: rpctls demo [--json]

Makes a throwaway CA, server and client certificates in memory, starts a local server of the test
program that requires TLS, connects with mutual TLS and tells each step: the AUTH_TLS probe, STARTTLS,
the TLS 1.3 handshake, kernel offload (or why not), a few calls, and a short bench (plain vs TLS).
Takes a few seconds. Exit status: 0 every step worked; 1 a step failed; 2 usage.
`;

const BENCH_MS = 500;

export async function runDemo(argv: readonly string[]): Promise<number> {
  let json: boolean;
  try {
    const parsed = parseArgs('demo', argv, { json: { type: 'boolean' } }, { max: 0 });
    if (parsed.help) {
      process.stdout.write(DEMO_USAGE);
      return Exit.OK;
    }
    json = accessors(parsed).bool('json');
  } catch (error) {
    return usageExit(error);
  }
  const s = style(process.stdout);
  const say = (step: string, text: string): void => {
    if (!json) process.stdout.write(`  ${s.bold(step.padEnd(13))} ${text}\n`);
  };
  // `error` is always there: null on success, the coded error otherwise.
  const out: Record<string, unknown> = { ok: false, error: null };
  if (!json) process.stdout.write(`${s.bold('rpctls demo')}: ONC-RPC with RPC-with-TLS (RFC 9289) on this machine\n\n`);

  const t0 = performance.now();
  const pki = createDemoPki();
  const san = pki.server.x509.subjectAltName ?? '';
  out.certificates = { ms: round3(performance.now() - t0), ca: pki.ca.x509.subject.replace(/\n/g, ', '), server: { subject: pki.server.x509.subject, subjectAltName: san }, client: pki.client.x509.subject };
  say('certificates', `throwaway CA, server (${san}) and client certificates, EC P-256, made in memory in ${ms(performance.now() - t0)}`);

  const server = createTlsServer({ tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, requireTls: true } });
  server.addProgram(TEST_PROGRAM_DEFINITION);
  let serverAuthMode: string | null = null;
  server.on('secureConnection', (_connection, info: { authMode: string }) => (serverAuthMode = info.authMode));
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  out.server = { address: `127.0.0.1:${port}`, program: TEST_PROGRAM, version: TEST_VERSION, requireTls: true };
  say('server', `127.0.0.1:${port}, program 0x${TEST_PROGRAM.toString(16)} version ${TEST_VERSION}, TLS required, client certificates requested`);

  const { client, trace } = tracedTlsClient({
    host: '127.0.0.1', port, program: TEST_PROGRAM, version: TEST_VERSION,
    tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, servername: 'localhost' },
  });
  let status: number = Exit.OK;
  try {
    // A plaintext call first, to show what requireTls does to it.
    const plain = new RpcClient({ host: '127.0.0.1', port, timeout: 5000 });
    try {
      await plain.call(TEST_PROGRAM, TEST_VERSION, TestProc.ECHO, Buffer.from([0, 0, 0, 0]));
      throw new Error('the plaintext ECHO was answered although the server requires TLS');
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_RPC_AUTH_TOOWEAK') throw error;
      out.plaintext = { refused: (error as { code: string }).code };
      say('plaintext', `ECHO without TLS -> MSG_DENIED AUTH_ERROR AUTH_TOOWEAK, as the server requires TLS`);
    } finally {
      await plain.close().catch(() => plain.destroy());
    }

    await client.connect();
    const info = tlsInfo(client);
    if (!info || !trace.probeReply) throw new Error('no TLS session after connect');
    const reply = summarizeReply(trace.probeReply);
    out.tcp = { ms: round3(trace.tcpMs ?? 0) };
    out.probe = { starttls: true, reply: reply.text, ms: round3(trace.probeMs ?? 0) };
    say('TCP', `connected in ${ms(trace.tcpMs)}`);
    say('probe', `NULL with AUTH_TLS -> ${reply.text} in ${ms(trace.probeMs)}`);
    say('STARTTLS', 'the server offers TLS: the same TCP connection goes on with a ClientHello');
    const peer = info.peerX509?.subject.replace(/\n/g, ', ') ?? '(none)';
    out.tls = { version: info.version, cipher: info.cipher, alpn: info.alpn, authMode: info.authMode, peerVerified: info.peerVerified, peer, handshakeMs: round3(trace.handshakeMs ?? 0) };
    say('handshake', `${info.version} ${info.cipher}, ALPN ${info.alpn ?? 'none'}, in ${ms(trace.handshakeMs)}`);
    say('certificates', `server ${peer} ${info.peerVerified ? 'verified against the demo CA for "localhost"' : `NOT verified: ${info.verifyError}`}; client certificate sent: authMode ${info.authMode}`);
    out.offload = { ...info.offload };
    say('offload', info.offload.tx && info.offload.rx
      ? 'kernel TLS: the kernel (tls.ko) encrypts on send and decrypts on recv; the addon only reads control records'
      : `userspace: ${info.offload.reason ?? 'kernel TLS not used'}; OpenSSL in the addon does the records on the same session, just as secure (same TLS 1.3 session and keys; only where the records are encrypted differs); modprobe tls, where it exists, gives kernel mode`);
    if (!json) say('', 'confirm kernel mode from outside: `ss -tni` shows tcp-ulp-tls on the connection, /proc/net/tls_stat counts TlsCurrTxSw/TlsCurrRxSw');

    const hello = Buffer.from('hello over RPC-with-TLS');
    const echoArgs = Buffer.alloc(4 + Math.ceil(hello.length / 4) * 4);
    echoArgs.writeUInt32BE(hello.length, 0);
    hello.copy(echoArgs, 4);
    const echoed = await client.call(TEST_PROGRAM, TEST_VERSION, TestProc.ECHO, echoArgs);
    if (!echoed.equals(echoArgs)) throw new Error('ECHO came back different');
    const n0 = performance.now();
    await client.call(TEST_PROGRAM, TEST_VERSION, TestProc.NULL);
    const nullMs = performance.now() - n0;
    out.calls = { echo: hello.toString(), nullRttMs: round3(nullMs), serverAuthMode };
    say('calls', `ECHO ${JSON.stringify(hello.toString())} came back intact; NULL round trip ${ms(nullMs)}; the server saw authMode ${serverAuthMode ?? '?'}`);
    await client.close();

    if (!json) process.stdout.write(`\n  ${s.bold('bench')} SINK 64 KiB, 8 in flight, ${BENCH_MS} ms per mode, server in this process:\n`);
    const rows: BenchRow[] = [];
    for (const mode of ['plain', 'tls'] as const) {
      rows.push(await benchMode({ mode, size: 65536, inflight: 8, durationMs: BENCH_MS, server: 'in-process', pki }));
    }
    out.bench = rows;
    if (!json) process.stdout.write(`${benchTable(rows).replace(/^/gm, '    ')}\n`);
    out.ok = true;
  } catch (error) {
    out.error = errorJson(error);
    if (!json) printError(error);
    status = Exit.FAILURE;
  } finally {
    client.destroy();
    await server.close();
  }
  if (json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else process.stdout.write(`\n${status === Exit.OK ? s.ok('demo done') : s.bad('demo failed')} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return status;
}
