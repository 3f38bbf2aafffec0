// Fixtures for the hostile-input catalogue (docs/hardening.md): a server under attack plus a well-behaved
// "bystander" client on the same server, raw sockets that speak exact bytes, and a reader that turns what
// a raw socket received back into decoded RPC replies.
import net from 'node:net';

import { RpcClient } from '../../src/rpc/client.js';
import type { RpcConnection } from '../../src/rpc/connection.js';
import { type RpcMessage, decodeMessage } from '../../src/rpc/message.js';
import type { ProgramDefinition } from '../../src/rpc/program.js';
import type { RpcServer, ServerOptions } from '../../src/rpc/server.js';
import type { RpcTlsServerOptions } from '../../src/rpc-tls/index.js';
import { RecordDecoder } from '../../src/transport/record-marking.js';
import { startServer, until } from '../helpers/net.js';
import { record } from '../helpers/records.js';
import type { TlsStream } from '../../src/tls/tls-stream.js';
import { ForgeRelay } from '../helpers/tls-forge.js';
import { PROG, Proc, SERVER_PROGRAM, VERS, startTlsServer, tlsClient } from '../tls/helpers.js';

export { PROG, VERS, Proc, until };

/** Procedures beyond SERVER_PROGRAM's (echo etc.) for fault entries. */
export const HostileProc = {
  THROWS: 10,
  NEVER: 11,
  THROWS_STRING: 12,
  BAD_RESULT: 13,
  SLOW_ECHO: 14,
} as const;

export const HOSTILE_PROGRAM: ProgramDefinition = {
  program: PROG,
  version: VERS,
  procedures: {
    ...SERVER_PROGRAM.procedures,
    [HostileProc.THROWS]: () => {
      throw new Error('handler bug');
    },
    [HostileProc.NEVER]: () => new Promise<Buffer>(() => undefined),
    [HostileProc.THROWS_STRING]: () => Promise.reject('not an Error'),
    [HostileProc.BAD_RESULT]: () => 42 as unknown as Buffer,
    [HostileProc.SLOW_ECHO]: async (args: Buffer) => {
      await new Promise((r) => setTimeout(r, 50));
      return args;
    },
  },
};

export interface Arena {
  server: RpcServer;
  port: number;
  /** 'connectionError' events: how the server closed offending connections. */
  errors: Error[];
  handlerErrors: unknown[];
  tlsErrors: Error[];
  /** A well-behaved client on the same server (plaintext, or TLS when the arena is TLS). */
  bystander: RpcClient;
  /** Throws unless the bystander still gets a correct echo. */
  bystanderServed(): Promise<void>;
  codes(): string[];
  close(): Promise<void>;
}

/** A server (plain or TLS) with the hostile program and a bystander that already made one call. */
export async function arena(options: { tls?: Partial<RpcTlsServerOptions>; server?: ServerOptions } = {}): Promise<Arena> {
  const { server, port } = options.tls
    ? await startTlsServer(options.tls, options.server)
    : await startServer([], options.server);
  // A superset of SERVER_PROGRAM (which startTlsServer registered): add() replaces that version.
  server.addProgram(HOSTILE_PROGRAM);
  const errors: Error[] = [];
  const handlerErrors: unknown[] = [];
  const tlsErrors: Error[] = [];
  server.on('connectionError', (e: Error) => errors.push(e));
  server.on('handlerError', (e: unknown) => handlerErrors.push(e));
  server.on('tlsClientError', (e: Error) => tlsErrors.push(e));
  const bystander = options.tls ? tlsClient(port, {}, { timeout: 5000 }) : new RpcClient({ port, timeout: 5000 });
  let n = 0;
  const bystanderServed = async (): Promise<void> => {
    const payload = Buffer.from(`bystander ${n++} ${Math.random()}`);
    const reply = await bystander.call(PROG, VERS, Proc.ECHO, payload);
    if (!reply.equals(payload)) throw new Error('bystander got a wrong reply');
  };
  await bystanderServed();
  return {
    server,
    port,
    errors,
    handlerErrors,
    tlsErrors,
    bystander,
    bystanderServed,
    codes: () => [...errors, ...tlsErrors].map((e) => (e as { code?: string }).code ?? e.message),
    close: async () => {
      bystander.destroy();
      await server.close();
    },
  };
}

export interface Raw {
  socket: net.Socket;
  received(): Buffer;
  /** Replies (and calls) decoded from what arrived so far. */
  messages(): RpcMessage[];
  closed: Promise<void>;
  isClosed(): boolean;
  write(...parts: Buffer[]): void;
  /** Waits until `count` messages have arrived. */
  waitMessages(count: number, ms?: number): Promise<RpcMessage[]>;
}

export async function raw(port: number): Promise<Raw> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  const closedP = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const messages = (): RpcMessage[] => {
    const out: RpcMessage[] = [];
    const decoder = new RecordDecoder((r) => out.push(decodeMessage(Buffer.from(r))));
    decoder.push(Buffer.concat(chunks));
    return out;
  };
  return {
    socket,
    received: () => Buffer.concat(chunks),
    messages,
    closed: closedP,
    isClosed: () => closed,
    write: (...parts: Buffer[]) => {
      socket.write(Buffer.concat(parts));
    },
    waitMessages: async (count: number, ms = 3000) => {
      await until(() => messages().length >= count, ms);
      return messages();
    },
  };
}

// ---- byte builders ---------------------------------------------------------------------------------

export const u32 = (...words: number[]): Buffer => {
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32BE(w >>> 0, i * 4));
  return b;
};

export const pad4 = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);

/** XDR opaque<> with its length word (length may lie when `length` is given). */
export const xopaque = (body: Buffer, length = body.length): Buffer => Buffer.concat([u32(length), pad4(body)]);

export { record };

export interface CallFields {
  xid?: number;
  msgType?: number;
  rpcvers?: number;
  program?: number;
  version?: number;
  procedure?: number;
  credFlavor?: number;
  /** Raw bytes of the cred after its flavor: length word and body (default: empty AUTH_NONE body). */
  credRaw?: Buffer;
  verfFlavor?: number;
  verfRaw?: Buffer;
  args?: Buffer;
}

/** A CALL's body (no record mark) with every field overridable, lengths included. */
export function callBody(f: CallFields = {}): Buffer {
  return Buffer.concat([
    u32(f.xid ?? 1, f.msgType ?? 0, f.rpcvers ?? 2, f.program ?? PROG, f.version ?? VERS, f.procedure ?? Proc.ECHO),
    u32(f.credFlavor ?? 0),
    f.credRaw ?? u32(0),
    u32(f.verfFlavor ?? 0),
    f.verfRaw ?? u32(0),
    f.args ?? Buffer.alloc(0),
  ]);
}

export const callRecord = (f: CallFields = {}): Buffer => record(callBody(f));

/** AUTH_SYS body: stamp, machinename, uid, gid, gids (counts and lengths may lie). */
export function authSysBody(o: { machinename?: Buffer; gids?: number[]; gidCount?: number; trailing?: Buffer } = {}): Buffer {
  const gids = o.gids ?? [];
  return Buffer.concat([
    u32(0),
    xopaque(o.machinename ?? Buffer.from('host')),
    u32(1000, 1000, o.gidCount ?? gids.length, ...gids),
    o.trailing ?? Buffer.alloc(0),
  ]);
}

/** Server-side view of the connection a raw socket made (the only one besides the bystander's). */
export function connectionOf(server: RpcServer, not: RpcConnection | null | undefined): RpcConnection | undefined {
  return [...server.connections].find((c) => c !== not);
}

export const codeOf = (e: unknown): string | undefined => (e as { code?: string } | undefined)?.code;

/**
 * A bare TCP server playing a (mis)behaving RPC peer: every record it receives goes, copied, with its
 * socket to `onRecord`, which writes whatever the test wants.
 */
export async function recordServer(onRecord: (record: Buffer, socket: net.Socket) => void): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const decoder = new RecordDecoder((record) => onRecord(Buffer.from(record), socket));
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A TCP relay in front of `port`; `reset()` sends RST to both ends of every relayed connection. */
export async function relay(port: number): Promise<{ port: number; reset(): void; close(): void; pairs: number }> {
  const pairs: [net.Socket, net.Socket][] = [];
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ host: '127.0.0.1', port });
    inbound.on('error', () => undefined);
    outbound.on('error', () => undefined);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    pairs.push([inbound, outbound]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get pairs() {
      return pairs.length;
    },
    reset() {
      for (const [a, b] of pairs) {
        if (!a.destroyed) a.resetAndDestroy();
        if (!b.destroyed) b.resetAndDestroy();
      }
    },
    close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      server.close();
    },
  };
}

/** A TLS arena whose client goes through a ForgeRelay fed its key log: the forged-record entries' fixture. */
export interface Forged {
  a: Arena;
  relay: ForgeRelay;
  client: RpcClient;
  /** The client's TLS stream. */
  stream: TlsStream;
  close(): Promise<void>;
}

/** `prepare` runs on the arena before the client connects (extra programs, say). */
export async function forgedSession(prepare: (a: Arena) => void = () => {}): Promise<Forged> {
  const a = await arena({ tls: {} });
  prepare(a);
  const relay = await ForgeRelay.start(a.port);
  const client = tlsClient(relay.port, { keylog: relay.keylog }, { timeout: 10_000 });
  const connection = await client.connect();
  await client.call(PROG, VERS, Proc.ECHO, Buffer.from('warm'));
  return {
    a,
    relay,
    client,
    stream: connection.transport as TlsStream,
    async close() {
      client.destroy();
      await relay.close();
      await a.close();
    },
  };
}
