// Fixtures for the RPC-with-TLS tests: an echo program, TLS servers and clients with throwaway certs.
import { readdirSync } from 'node:fs';

import type { ExecutionContext } from 'ava';

import type { TlsInfo } from '../../src/tls/index.js';

import type { RpcClient } from '../../src/rpc/client.js';
import type { CallContext, ProgramDefinition } from '../../src/rpc/program.js';
import type { RpcServer } from '../../src/rpc/server.js';
import {
  type RpcTlsClientOptions,
  type RpcTlsServerOptions,
  type TlsServerOptions,
  createTlsClient,
  createTlsServer,
  tlsInfoOf,
} from '../../src/rpc-tls/index.js';
import { KERNEL_OFFLOAD, expectKtls, makeCerts } from '../native/helpers.js';

export { KERNEL_OFFLOAD, expectKtls, kernelCanRekey, makeCerts, readTlsStat, sha256 } from '../native/helpers.js';

/**
 * The session runs on kernel TLS both ways inside the UML runner, and says why not (ENOENT: no tls.ko)
 * on the host. With `suite`, also checks the negotiated TLS 1.3 suite.
 */
export function assertOffload(t: ExecutionContext, info: TlsInfo | null, side: string, suite?: string): void {
  t.truthy(info, side);
  if (suite !== undefined) {
    t.is(info!.cipher, suite, `${side} negotiated cipher`);
    t.is(info!.version, 'TLSv1.3', side);
  }
  if (expectKtls) {
    t.deepEqual(info!.offload, KERNEL_OFFLOAD, `${side} on kernel TLS`);
  } else {
    t.false(info!.offload.tx, side);
    t.false(info!.offload.rx, side);
    t.regex(info!.offload.reason ?? '', /ENOENT/, `${side} says why there is no offload`);
  }
}

/** UML runs ~10x slower than the host: bulk sizes and connection counts shrink there. */
export const scale = (host: number, uml: number): number => (expectKtls ? uml : host);

export const PROG = 0x20000099;
export const VERS = 1;
export const PROBE = { program: PROG, version: VERS } as const;

export const Proc = {
  ECHO: 1,
  /** Returns the session the handler sees as JSON: authMode, peer subject, offload. */
  SECURITY: 2,
  /** Calls the client's CALLBACK program over the same connection and returns its answer. */
  CALL_BACK: 3,
} as const;

export const CB_PROG = 0x40000099;
export const CB_VERS = 1;

export function securityJson(context: CallContext): Buffer {
  const info = tlsInfoOf(context.connection);
  return Buffer.from(
    JSON.stringify(
      info === null
        ? null
        : { authMode: info.authMode, peer: info.peerX509?.subject ?? null, offload: info.offload, version: info.version },
    ),
  );
}

export const SERVER_PROGRAM: ProgramDefinition = {
  program: PROG,
  version: VERS,
  procedures: {
    [Proc.ECHO]: (args: Buffer) => args,
    [Proc.SECURITY]: (_args: Buffer, context: CallContext) => securityJson(context),
    [Proc.CALL_BACK]: (args: Buffer, context: CallContext) => context.connection.call(CB_PROG, CB_VERS, 1, args),
  },
};

/** What the client serves back to the server: an echo that prefixes "cb:" and tells whether it ran inside TLS. */
export const CALLBACK_PROGRAM: ProgramDefinition = {
  program: CB_PROG,
  version: CB_VERS,
  procedures: {
    1: (args: Buffer, context: CallContext) =>
      Buffer.concat([Buffer.from(context.connection.security ? 'cb-tls:' : 'cb-plain:'), args]),
  },
};

export function serverTls(extra: Partial<RpcTlsServerOptions> = {}): RpcTlsServerOptions {
  const c = makeCerts();
  return { cert: c.serverCert, key: c.serverKey, ca: c.ca, ...extra };
}

export function clientTls(extra: Partial<RpcTlsClientOptions> = {}): RpcTlsClientOptions {
  const c = makeCerts();
  return { ca: c.ca, servername: 'localhost', ...extra };
}

export async function startTlsServer(
  tls: Partial<RpcTlsServerOptions> = {},
  options: Omit<TlsServerOptions, 'tls'> = {},
): Promise<{ server: RpcServer; port: number }> {
  const server = createTlsServer({ ...options, tls: serverTls(tls) });
  server.addProgram(SERVER_PROGRAM);
  const { port } = await server.listen({ host: '127.0.0.1' });
  return { server, port };
}

export function tlsClient(port: number, tls: Partial<RpcTlsClientOptions> = {}, extra: { timeout?: number } = {}): RpcClient {
  const client = createTlsClient({ port, host: '127.0.0.1', probe: PROBE, tls: clientTls(tls), ...extra });
  client.addProgram(CALLBACK_PROGRAM);
  return client;
}

/** Open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The probe a client sends, byte for byte, except the xid (bytes 4..7), per the reference capture. */
export const PROBE_BYTES_TEMPLATE = (program: number, version: number): Buffer => {
  const b = Buffer.alloc(44);
  b.writeUInt32BE(0x80000028, 0);
  // xid at 4 left 0
  b.writeUInt32BE(0, 8); // CALL
  b.writeUInt32BE(2, 12); // rpcvers
  b.writeUInt32BE(program, 16);
  b.writeUInt32BE(version, 20);
  b.writeUInt32BE(0, 24); // NULL
  b.writeUInt32BE(7, 28); // AUTH_TLS
  b.writeUInt32BE(0, 32); // empty body
  b.writeUInt32BE(0, 36); // verf AUTH_NONE
  b.writeUInt32BE(0, 40); // empty body
  return b;
};

/** A probe with a chosen xid, procedure, cred body and verifier flavor, for a raw socket. */
export function probeRecord(xid: number, options: { procedure?: number; credBody?: Buffer; verfFlavor?: number } = {}): Buffer {
  const credBody = options.credBody ?? Buffer.alloc(0);
  const padded = Buffer.alloc(Math.ceil(credBody.length / 4) * 4);
  credBody.copy(padded);
  const body = Buffer.alloc(40 + padded.length);
  let at = 0;
  for (const word of [xid, 0, 2, PROG, VERS, options.procedure ?? 0, 7, credBody.length]) at = body.writeUInt32BE(word >>> 0, at);
  padded.copy(body, at);
  at += padded.length;
  body.writeUInt32BE(options.verfFlavor ?? 0, at);
  body.writeUInt32BE(0, at + 4);
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE((0x80000000 | body.length) >>> 0);
  return Buffer.concat([mark, body]);
}

/** Expected reply records (with record mark) for a given xid. */
export function startTlsReplyBytes(xid: number, acceptStat = 0): Buffer {
  const b = Buffer.alloc(36);
  b.writeUInt32BE(0x80000020, 0);
  b.writeUInt32BE(xid, 4);
  b.writeUInt32BE(1, 8);
  b.writeUInt32BE(0, 12);
  b.writeUInt32BE(0, 16);
  b.writeUInt32BE(8, 20);
  b.write('STARTTLS', 24, 'latin1');
  b.writeUInt32BE(acceptStat, 32);
  return b;
}

export function authErrorBytes(xid: number, authStat: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32BE(0x80000014, 0);
  b.writeUInt32BE(xid, 4);
  b.writeUInt32BE(1, 8);
  b.writeUInt32BE(1, 12);
  b.writeUInt32BE(1, 16);
  b.writeUInt32BE(authStat, 20);
  return b;
}
