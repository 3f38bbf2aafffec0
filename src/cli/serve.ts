/**
 * `rpctls serve`: a ready server of the documented test program (0x20000001 v1: NULL, ECHO, SINK,
 * SOURCE), plus NULL-only programs from --program, plain or with RPC-with-TLS. It logs to stdout, one
 * `key=value` line per event, so scripts and the interop harness can assert on them:
 *
 *   listening <addr>:<port>                      always the first line
 *   conn <n> <peer> open
 *   conn <n> <peer> probe program=<p> version=<v> procedure=<n> answer=STARTTLS|AUTH_BADCRED|...
 *   conn <n> <peer> tls version=.. cipher=.. alpn=.. authMode=tls|mtls peer=".." offload.tx=.. offload.rx=.. offload.reason=..
 *   conn <n> <peer> tls-failed code=ERR_TLS_.. message=".."
 *   conn <n> <peer> call program=<p> version=<v> procedure=<n> tls=yes|no [answer=AUTH_TOOWEAK]
 *                                                (for --program programs, and every call with --verbose)
 *   udp <peer> probe ... / udp <peer> call ...   the same for calls over UDP (--udp)
 *   conn <n> <peer> closed probe=.. tls=..|failed|probe-only|none authMode=.. offload.tx=.. offload.rx=.. calls=<n> [error=CODE]
 *                                                (probe-only: STARTTLS, then the client left without a
 *                                                handshake, as rpcinfo does: no failure)
 *   stopping signal=SIGINT|SIGTERM / stopped
 */
import { renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import net from 'node:net';

import { AuthFlavor, AuthStat, nameOf } from '../rpc/constants.js';
import type { CallInterceptor, RpcConnection, RpcPeer } from '../rpc/connection.js';
import { DEFAULT_IDLE_TIMEOUT_MS, RpcServer } from '../rpc/server.js';
import { udpPeerOf } from '../rpc/udp-server.js';
import { InvalidOptionError } from '../errors.js';
import { type RpcTlsServerOptions, rpcTlsInterceptor } from '../rpc-tls/index.js';
import type { TlsInfo } from '../tls/tls-stream.js';
import { accessors, type FlagSpec, parseArgs, parseInteger, UsageError } from './args.js';
import { createDemoPki } from './certs.js';
import { Exit, onlyWithTls, printError, SOURCE_MAX, TEST_PROGRAM, TEST_PROGRAM_DEFINITION, TEST_VERSION, tlsFiles, usageExit } from './common.js';
import { formatHostPort } from './target.js';

export const SERVE_USAGE = `usage: rpctls serve [options]

Serves the test program 0x20000001 version 1 (NULL=0; ECHO=1 opaque<> -> the same opaque;
SINK=2 opaque<> -> uint byte count; SOURCE=3 uint n -> opaque<min(n, ${SOURCE_MAX})>) and NULL for every
--program, until SIGINT or SIGTERM. Prints "listening <addr>:<port>" first, then one line per event.

  --host <addr>            address to bind (default 0.0.0.0)
  --port <n>               port (default 2049; 0 picks a free one, see the listening line)
  --tls                    answer the AUTH_TLS probe with STARTTLS and do TLS 1.3
  --cert <file> --key <file>   server certificate and key (PEM)
  --self-signed            a throwaway CA and server certificate made in memory (the default with
                           --tls and no --cert): localhost, 127.0.0.1, ::1, this host's name
  --write-ca <file>        with --self-signed: write the throwaway CA (PEM) there once listening
  --ca <file>              CA for client certificates; clients are asked for one (mutual TLS)
  --request-cert           ask clients for a certificate (verified against --ca, else the system store)
  --require-client-cert    refuse clients without a verified certificate (mutual TLS only; needs --ca)
  --require-tls            plaintext calls other than NULL get AUTH_ERROR / AUTH_TOOWEAK
  --udp                    also serve over UDP on the same port (default: TCP only: UDP has no TLS, and
                           its source addresses can be forged); TLS probes over UDP are refused
  --register               register every program/version with the local rpcbind (unregistered on exit)
  --program <prog>:<vers>  also answer NULL (and the probe) for this program; repeatable,
                           e.g. --program 100003:4 for an NFS client's probe and handshake
  --idle-timeout <ms>      close a connection with nothing received and nothing in flight for this
                           long (default 120000; 0: never); silent new connections go after 10000
  --verbose                log every call, not only those to --program programs

Exit status: 0 stopped by a signal; 1 could not start (address in use, rpcbind refused); 2 usage.
`;

const FLAGS: Record<string, FlagSpec> = {
  host: { type: 'string', value: '<addr>' },
  port: { type: 'int', min: 0, max: 65535, value: '<n>' },
  tls: { type: 'boolean' },
  cert: { type: 'string', value: '<file>' },
  key: { type: 'string', value: '<file>' },
  'self-signed': { type: 'boolean' },
  'write-ca': { type: 'string', value: '<file>' },
  ca: { type: 'string', value: '<file>' },
  'request-cert': { type: 'boolean' },
  'require-client-cert': { type: 'boolean' },
  'require-tls': { type: 'boolean' },
  register: { type: 'boolean' },
  udp: { type: 'boolean' },
  program: { type: 'string', multiple: true, value: '<prog>:<vers>' },
  'idle-timeout': { type: 'int', min: 0, max: 0x7fffffff, value: '<ms>' },
  verbose: { type: 'boolean' },
};

interface ConnState {
  id: number;
  peer: string;
  probe: string | null;
  tls: TlsInfo | null;
  tlsError: string | null;
  calls: number;
}

/** JSON-quoted, with DEL, C1 and bidi controls escaped too: log lines carry what peers sent. */
const quote = (s: string): string =>
  JSON.stringify(s).replace(/[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function offloadFields(info: TlsInfo): string {
  const o = info.offload;
  return `offload.tx=${o.tx} offload.rx=${o.rx} offload.reason=${o.reason === null ? 'null' : quote(o.reason)}`;
}

function parsePrograms(list: readonly string[]): { program: number; version: number }[] {
  const out: { program: number; version: number }[] = [];
  const seen = new Set([`${TEST_PROGRAM}:${TEST_VERSION}`]);
  for (const item of list) {
    const m = /^([^:]+):([^:]+)$/.exec(item);
    const program = m ? parseInteger(m[1] as string) : Number.NaN;
    const version = m ? parseInteger(m[2] as string) : Number.NaN;
    if (!(program >= 0 && program <= 0xffffffff && version >= 0 && version <= 0xffffffff)) {
      throw new UsageError(`rpctls serve: --program must be <prog>:<vers> with integers (decimal or 0x hex); got ${quote(item)}`);
    }
    if (seen.has(`${program}:${version}`)) throw new UsageError(`rpctls serve: --program ${item} given twice (or is the test program)`);
    seen.add(`${program}:${version}`);
    out.push({ program, version });
  }
  return out;
}

export async function runServe(argv: readonly string[]): Promise<number> {
  let o;
  try {
    const parsed = parseArgs('serve', argv, FLAGS, { max: 0 });
    if (parsed.help) {
      process.stdout.write(SERVE_USAGE);
      return Exit.OK;
    }
    const a = accessors(parsed);
    const tls = a.bool('tls');
    onlyWithTls('serve', parsed, ['cert', 'key', 'self-signed', 'write-ca', 'ca', 'request-cert', 'require-client-cert', 'require-tls']);
    if (a.bool('require-client-cert') && a.str('ca') === undefined) {
      throw new UsageError('rpctls serve: --require-client-cert needs --ca <file> (the CA client certificates are verified against)');
    }
    if (a.str('cert') !== undefined && a.bool('self-signed')) throw new UsageError('rpctls serve: --self-signed and --cert exclude each other');
    if (a.str('write-ca') !== undefined && a.str('cert') !== undefined) throw new UsageError('rpctls serve: --write-ca writes the --self-signed CA; it does not go with --cert');
    const host = a.str('host') ?? '0.0.0.0';
    if (net.isIP(host) === 0 && host !== 'localhost') throw new UsageError(`rpctls serve: --host must be an IP address; got ${quote(host)}`);
    const files = tlsFiles('serve', parsed); // after the flag checks: files are read only for a valid command line
    o = {
      host,
      port: a.num('port', 2049),
      tls,
      ...files,
      writeCa: a.str('write-ca'),
      requestCert: a.bool('request-cert'),
      requireClientCert: a.bool('require-client-cert'),
      requireTls: a.bool('require-tls'),
      register: a.bool('register'),
      udp: a.bool('udp'),
      programs: parsePrograms(a.list('program')),
      verbose: a.bool('verbose'),
      idleTimeout: a.num('idle-timeout', DEFAULT_IDLE_TIMEOUT_MS),
    };
  } catch (error) {
    return usageExit(error);
  }

  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  let caPem: string | null = null;
  let tlsOptions: RpcTlsServerOptions | null = null;
  if (o.tls) {
    let cert = o.cert;
    let key = o.key;
    if (cert === undefined) {
      const extraIps = net.isIP(o.host) && o.host !== '0.0.0.0' && o.host !== '::' ? [o.host] : [];
      const pki = createDemoPki({ dns: [hostname()], ips: extraIps });
      cert = pki.server.cert;
      key = pki.server.key;
      caPem = pki.ca.cert;
    }
    tlsOptions = { cert, key: key as string };
    if (o.ca !== undefined) tlsOptions.ca = o.ca;
    if (o.requestCert) tlsOptions.requestCert = true;
    if (o.requireClientCert) tlsOptions.requireClientCert = true;
    if (o.requireTls) tlsOptions.requireTls = true;
  }

  const states = new WeakMap<RpcPeer, ConnState>();
  // program -> versions whose calls are logged; looked up per call without building a string.
  const logged = new Map<number, Set<number>>();
  for (const p of o.programs) logged.set(p.program, (logged.get(p.program) ?? new Set()).add(p.version));
  // The probe's answer comes from the TLS layer itself (onProbe), so the log never restates its rules.
  let probeAnswer: string | null = null;
  let tlsIntercept: CallInterceptor | null = null;
  try {
    // The certificate and key are checked here, before listening: a bad pair is a usage error (exit 2),
    // not a server that fails every handshake.
    tlsIntercept = tlsOptions
      ? rpcTlsInterceptor({
          ...tlsOptions,
          onProbe: (_call, answer) => {
            probeAnswer = answer;
          },
        })
      : null;
  } catch (error) {
    if (!(error instanceof InvalidOptionError)) throw error;
    // Named as the flags the user gave: tls.key -> --key.
    process.stderr.write(`rpctls serve: ${error.message.replace(/\btls\.(\w+)/g, (_m, name: string) => `--${name}`)}\n`);
    return Exit.USAGE;
  }
  // A log line's connection prefix, built only for a line that is logged: most calls log nothing.
  const linePrefix = (st: ConnState | undefined, connection: Parameters<CallInterceptor>[1]): string => {
    const udp = st ? null : udpPeerOf(connection);
    return st ? `conn ${st.id} ${st.peer}` : udp ? `udp ${formatHostPort(udp.address, udp.port)}` : 'conn ? ?';
  };
  const interceptCall: CallInterceptor = (call, connection) => {
    const st = states.get(connection);
    if (call.cred.flavor === AuthFlavor.AUTH_TLS) {
      probeAnswer = null;
      const handled = tlsIntercept !== null && tlsIntercept(call, connection);
      // Without TLS configured the probe falls through to the dispatcher, which refuses the flavor.
      const answer = probeAnswer ?? 'AUTH_REJECTEDCRED';
      if (st) st.probe ??= answer;
      log(`${linePrefix(st, connection)} probe program=${call.program} version=${call.version} procedure=${call.procedure} answer=${answer}`);
      return handled;
    }
    if (st) st.calls++;
    const handled = tlsIntercept !== null && tlsIntercept(call, connection);
    if (o.verbose || logged.get(call.program)?.has(call.version) === true) {
      const denied = handled ? ` answer=${nameOf(AuthStat, AuthStat.AUTH_TOOWEAK)}` : '';
      log(`${linePrefix(st, connection)} call program=${call.program} version=${call.version} procedure=${call.procedure} tls=${connection.security ? 'yes' : 'no'}${denied}`);
    }
    return handled;
  };

  const server = new RpcServer({ interceptCall, idleTimeout: o.idleTimeout });
  server.addProgram(TEST_PROGRAM_DEFINITION);
  for (const p of o.programs) server.addProgram({ program: p.program, version: p.version, procedures: {} });
  let nextId = 1;
  server.on('connection', (connection: RpcConnection, socket: net.Socket) => {
    const st: ConnState = {
      id: nextId++,
      peer: formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0),
      probe: null,
      tls: null,
      tlsError: null,
      calls: 0,
    };
    states.set(connection, st);
    const prefix = `conn ${st.id} ${st.peer}`;
    log(`${prefix} open`);
    connection.on('secure', (info: TlsInfo) => {
      st.tls = info;
      const peer = info.peerX509 ? ` peer=${quote(info.peerX509.subject.replace(/\n/g, ', '))}` : '';
      log(`${prefix} tls version=${info.version} cipher=${info.cipher} alpn=${info.alpn ?? 'none'} authMode=${info.authMode}${peer} ${offloadFields(info)}`);
    });
    connection.on('tlsError', (error: Error & { code?: string }) => {
      st.tlsError = error.code ?? 'ERR_TLS';
      log(`${prefix} tls-failed code=${st.tlsError} message=${quote(error.message)}`);
    });
    connection.on('close', (error?: Error & { code?: string }) => {
      const probeOnly = error?.code === 'ERR_TLS_NO_HANDSHAKE';
      const tls = st.tls
        ? `tls=${st.tls.version} authMode=${st.tls.authMode} ${offloadFields(st.tls)}`
        : `tls=${st.tlsError ? 'failed' : probeOnly ? 'probe-only' : 'none'}`;
      const err = error && error.code !== undefined && !probeOnly ? ` error=${error.code}` : '';
      log(`${prefix} closed probe=${st.probe ?? 'none'} ${tls} calls=${st.calls}${err}`);
    });
  });
  server.on('error', (error: Error) => printError(error));

  try {
    const address = await server.listen({ host: o.host, port: o.port, udp: o.udp });
    if (o.register) await server.register();
    if (o.writeCa !== undefined && caPem !== null) {
      // Before any line is printed (a script may read the file on "listening"), written whole and
      // renamed, so one waiting for the file never reads half of it.
      writeFileSync(`${o.writeCa}.tmp`, caPem);
      renameSync(`${o.writeCa}.tmp`, o.writeCa);
    }
    log(`listening ${formatHostPort(address.address, address.port)}`);
    const programs = [`${TEST_PROGRAM}:${TEST_VERSION}`, ...o.programs.map((p) => `${p.program}:${p.version}`)];
    log(`serving programs=${programs.join(',')} tls=${o.tls ? 'on' : 'off'}${o.requireTls ? ' require-tls' : ''}${o.udp ? ' udp' : ''}${o.register ? ' registered' : ''}` +
      (o.tls ? ` cert=${caPem ? 'self-signed' : 'file'} client-certs=${o.requireClientCert ? 'required' : tlsOptions?.ca !== undefined || o.requestCert ? 'requested' : 'no'}` : ''));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE') {
      process.stderr.write(`rpctls serve: ${formatHostPort(o.host, o.port)} is already in use (EADDRINUSE); hint: pick another --port (0 picks a free one) or stop the other server\n`);
    } else if (code === 'EACCES' && o.port < 1024) {
      process.stderr.write(`rpctls serve: binding port ${o.port} needs privileges (EACCES); hint: run as root or pick --port 1024 or above\n`);
    } else {
      printError(error);
    }
    await server.close().catch(() => undefined);
    return Exit.FAILURE;
  }

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  log(`stopping signal=${signal}`);
  await server.close();
  log('stopped');
  return Exit.OK;
}
