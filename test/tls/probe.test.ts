// The RFC 9289 probe on the wire: exact bytes, the server's answers to bad probes, and what happens to
// connections that break the rules between the probe and the handshake.
import { randomBytes } from 'node:crypto';
import net from 'node:net';

import test from 'ava';

import { AUTH_TLS } from '../../src/rpc/auth.js';
import { RpcClient } from '../../src/rpc/client.js';
import type { RpcConnection } from '../../src/rpc/connection.js';
import { RpcServer } from '../../src/rpc/server.js';
import { StartTlsRefusedError, tlsInfoOf } from '../../src/rpc-tls/index.js';
import { type TlsInfo, connectTlsStream, stopReading } from '../../src/tls/index.js';
import { rawConnect, until } from '../helpers/net.js';
import { serverOptions } from '../native/helpers.js';
import {
  PROBE,
  PROBE_BYTES_TEMPLATE,
  PROG,
  Proc,
  SERVER_PROGRAM,
  VERS,
  authErrorBytes,
  probeRecord,
  startTlsReplyBytes,
  startTlsServer,
  tlsClient,
} from './helpers.js';

/** A raw TCP server that answers the first record with `answer(xid)` and records every byte it got. */
async function rawServer(
  answer: (xid: number, socket: net.Socket) => void,
): Promise<{ port: number; received: () => Buffer; closed: Promise<void>; close: () => void }> {
  const chunks: Buffer[] = [];
  let closedResolve!: () => void;
  const closed = new Promise<void>((resolve) => (closedResolve = resolve));
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('close', () => closedResolve());
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      if (!answered && all.length >= 44) {
        answered = true;
        answer(all.readUInt32BE(4), socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, received: () => Buffer.concat(chunks), closed, close: () => server.close() };
}

test('the probe is byte for byte the reference capture; STARTTLS with accept_stat PROG_UNAVAIL still upgrades', async (t) => {
  let probe: Buffer | undefined;
  const server = net.createServer((socket) => {
    socket.once('data', (chunk: Buffer) => {
      // Stop libuv reading before the reply goes out: the ClientHello is TLS's to read.
      stopReading(socket);
      probe = chunk;
      const xid = chunk.readUInt32BE(4);
      socket.write(startTlsReplyBytes(xid, 1), () =>
        connectTlsStream(socket, serverOptions()).then(
          (stream) => stream.on('error', () => undefined),
          () => undefined,
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = tlsClient(port);
  try {
    const connection = await client.connect();
    t.truthy(probe);
    const expected = PROBE_BYTES_TEMPLATE(PROBE.program, PROBE.version);
    probe!.copy(expected, 4, 4, 8);
    t.is(probe!.toString('hex'), expected.toString('hex'));
    const info = tlsInfoOf(connection);
    t.is(info?.version, 'TLSv1.3');
    t.is(info?.authMode, 'tls');
  } finally {
    client.destroy();
    server.close();
  }
});

test('a server without TLS (plain RpcServer): ERR_RPC_TLS_NOT_OFFERED with the wire values', async (t) => {
  const server = new RpcServer();
  server.addProgram(SERVER_PROGRAM);
  const { port } = await server.listen({ host: '127.0.0.1' });
  const client = tlsClient(port);
  try {
    const error = await t.throwsAsync(client.call(PROG, VERS, Proc.ECHO, Buffer.from('x')), { instanceOf: StartTlsRefusedError });
    t.is(error?.code, 'ERR_RPC_TLS_NOT_OFFERED');
    t.is(error?.replyStat, 1);
    t.is(error?.rejectStat, 1);
    t.is(error?.authStat, 2); // AUTH_REJECTEDCRED: the flavor is unknown to a plain server
    t.regex(error?.message ?? '', /MSG_DENIED AUTH_ERROR AUTH_REJECTEDCRED/);
  } finally {
    client.destroy();
    await server.close();
  }
});

for (const [title, answer, check] of [
  ['MSG_DENIED AUTH_REJECTEDCRED', (xid: number) => authErrorBytes(xid, 2), { authStat: 2, replyStat: 1 }],
  ['a verifier "STARTTLX"', (xid: number) => Buffer.concat([startTlsReplyBytes(xid).subarray(0, 24), Buffer.from('STARTTLX'), Buffer.alloc(4)]), { replyStat: 0, acceptStat: 0 }],
  ['an AUTH_SYS verifier flavor', (xid: number) => {
    const b = startTlsReplyBytes(xid);
    b.writeUInt32BE(1, 16);
    return b;
  }, { replyStat: 0, verifierFlavor: 1 }],
] as const) {
  test(`a server answering ${title}: coded error and no ClientHello on the wire`, async (t) => {
    const raw = await rawServer((xid, socket) => socket.write(answer(xid)));
    const client = tlsClient(raw.port);
    try {
      const error = await t.throwsAsync(client.connect(), { code: 'ERR_RPC_TLS_NOT_OFFERED' });
      t.true(error instanceof StartTlsRefusedError);
      for (const [key, value] of Object.entries(check)) t.is((error as unknown as Record<string, unknown>)[key], value, key);
      // The client closes the connection; by then the server must have seen the probe and nothing else.
      await raw.closed;
      t.is(raw.received().length, 44);
      t.is(raw.received().readUInt32BE(28), 7);
    } finally {
      client.destroy();
      raw.close();
    }
  });
}

test('a server that never answers the probe: ERR_RPC_TIMEOUT after probeTimeout, no ClientHello', async (t) => {
  const raw = await rawServer(() => undefined);
  const client = tlsClient(raw.port, { probeTimeout: 200 });
  try {
    await t.throwsAsync(client.connect(), { code: 'ERR_RPC_TIMEOUT' });
    await raw.closed;
    t.is(raw.received().length, 44);
  } finally {
    client.destroy();
    raw.close();
  }
});

test('server: AUTH_TLS on a non-NULL procedure, a cred body, a non-AUTH_NONE verifier; then a good probe', async (t) => {
  const { server, port } = await startTlsServer();
  const raw = await rawConnect(port);
  try {
    const exchange = async (request: Buffer, expected: Buffer): Promise<void> => {
      const before = raw.received().length;
      raw.socket.write(request);
      await until(() => raw.received().length >= before + expected.length);
      t.is(raw.received().subarray(before).toString('hex'), expected.toString('hex'));
    };
    await exchange(probeRecord(11, { procedure: Proc.ECHO }), authErrorBytes(11, 1)); // AUTH_BADCRED
    await exchange(probeRecord(12, { credBody: Buffer.from('abc') }), authErrorBytes(12, 1)); // AUTH_BADCRED
    await exchange(probeRecord(13, { verfFlavor: 1 }), authErrorBytes(13, 3)); // AUTH_BADVERF
    // The connection is still plaintext and usable: a proper probe now gets STARTTLS, byte for byte.
    await exchange(probeRecord(14), startTlsReplyBytes(14));
  } finally {
    raw.socket.destroy();
    await server.close();
  }
});

test('AUTH_TLS on a non-NULL procedure through RpcClient: ERR_RPC_AUTH_BADCRED', async (t) => {
  const { server, port } = await startTlsServer();
  const client = new RpcClient({ port });
  try {
    await t.throwsAsync(client.call(PROG, VERS, Proc.ECHO, Buffer.from('x'), { auth: AUTH_TLS }), { code: 'ERR_RPC_AUTH_BADCRED' });
    t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('plain')), Buffer.from('plain'));
  } finally {
    client.destroy();
    await server.close();
  }
});

test('a probe inside TLS: AUTH_BADCRED, and the session goes on', async (t) => {
  const { server, port } = await startTlsServer();
  const client = tlsClient(port);
  try {
    const connection = await client.connect();
    const reply = await connection.callForReply(PROG, VERS, 0, Buffer.alloc(0), { auth: AUTH_TLS });
    t.is(reply.replyStat, 1);
    t.is(reply.rejectStat, 1);
    t.is(reply.authStat, 1);
    t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('still tls')), Buffer.from('still tls'));
    t.truthy(tlsInfoOf(connection));
  } finally {
    client.destroy();
    await server.close();
  }
});

test('garbage instead of a ClientHello: that connection is dropped, the server serves others', async (t) => {
  const { server, port } = await startTlsServer();
  const tlsErrors: Error[] = [];
  server.on('tlsClientError', (error: Error) => tlsErrors.push(error));
  const raw = await rawConnect(port);
  const client = tlsClient(port);
  try {
    raw.socket.write(probeRecord(21));
    await until(() => raw.received().length >= 36);
    t.is(raw.received().toString('hex'), startTlsReplyBytes(21).toString('hex'));
    raw.socket.write(Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), randomBytes(300)]));
    await raw.closed;
    await until(() => tlsErrors.length === 1);
    t.regex((tlsErrors[0] as Error & { code: string }).code, /^ERR_TLS_/);
    t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('fine')), Buffer.from('fine'));
  } finally {
    raw.socket.destroy();
    client.destroy();
    await server.close();
  }
});

test('bytes sent together with the probe: connection dropped without STARTTLS, server fine', async (t) => {
  const { server, port } = await startTlsServer();
  const errors: Error[] = [];
  server.on('connectionError', (error: Error) => errors.push(error));
  const raw = await rawConnect(port);
  const client = tlsClient(port);
  try {
    raw.socket.write(Buffer.concat([probeRecord(31), Buffer.from('\x16\x03\x01early')]));
    await raw.closed;
    t.is(raw.received().length, 0, 'no STARTTLS reply may go out');
    await until(() => errors.length >= 1);
    t.is((errors[0] as Error & { code: string }).code, 'ERR_RPC_UNEXPECTED_BYTES');
    t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('ok')), Buffer.from('ok'));
  } finally {
    raw.socket.destroy();
    client.destroy();
    await server.close();
  }
});

test('a client that never starts the handshake: ERR_TLS_HANDSHAKE_TIMEOUT on the server, connection closed', async (t) => {
  const { server, port } = await startTlsServer({ handshakeTimeout: 300 });
  const tlsErrors: Error[] = [];
  server.on('tlsClientError', (error: Error) => tlsErrors.push(error));
  const raw = await rawConnect(port);
  try {
    raw.socket.write(probeRecord(41));
    await raw.closed;
    t.is(raw.received().toString('hex'), startTlsReplyBytes(41).toString('hex'));
    await until(() => tlsErrors.length === 1);
    t.is((tlsErrors[0] as Error & { code: string }).code, 'ERR_TLS_HANDSHAKE_TIMEOUT');
    t.is(server.connections.size, 0);
  } finally {
    raw.socket.destroy();
    await server.close();
  }
});

test('a client that takes STARTTLS and leaves (FIN or reset) without a handshake: no tlsClientError, the close says ERR_TLS_NO_HANDSHAKE; one that leaves mid-ClientHello is a TLS failure', async (t) => {
  const { server, port } = await startTlsServer();
  const tlsErrors: Error[] = [];
  const closeErrors: (Error & { code?: string; errnoName?: string })[] = [];
  server.on('tlsClientError', (error: Error) => tlsErrors.push(error));
  server.on('connectionError', (error: Error) => closeErrors.push(error));
  try {
    const leave = async (xid: number, how: (socket: net.Socket) => void): Promise<void> => {
      const raw = await rawConnect(port);
      raw.socket.write(probeRecord(xid));
      await until(() => raw.received().length >= 36);
      t.is(raw.received().toString('hex'), startTlsReplyBytes(xid).toString('hex'));
      how(raw.socket);
      await until(() => closeErrors.length === xid - 50);
    };
    await leave(51, (socket) => socket.end());
    t.like(closeErrors[0], { code: 'ERR_TLS_NO_HANDSHAKE', errnoName: undefined });
    t.regex(closeErrors[0]!.message, /^the client closed the connection without starting the TLS handshake$/);
    await leave(52, (socket) => socket.resetAndDestroy());
    t.like(closeErrors[1], { code: 'ERR_TLS_NO_HANDSHAKE', errnoName: 'ECONNRESET' });
    t.deepEqual(tlsErrors, [], 'no handshake started: no handshake failed');
    // Five bytes of a TLS record header, then FIN: a handshake was started and is cut short.
    await leave(53, (socket) => socket.end(Buffer.from('1603010200', 'hex')));
    await until(() => tlsErrors.length === 1);
    t.regex((tlsErrors[0] as Error & { code: string }).code, /^ERR_TLS_/);
    t.not((tlsErrors[0] as Error & { code: string }).code, 'ERR_TLS_NO_HANDSHAKE');
    t.is(closeErrors[2]!.code, (tlsErrors[0] as Error & { code: string }).code);
  } finally {
    await server.close();
  }
});

test('requireTls: a plaintext non-NULL call gets AUTH_TOOWEAK, NULL is answered, TLS calls work', async (t) => {
  const { server, port } = await startTlsServer({ requireTls: true });
  const plain = new RpcClient({ port });
  const secure = tlsClient(port);
  try {
    const error = await t.throwsAsync(plain.call(PROG, VERS, Proc.ECHO, Buffer.from('x')), { code: 'ERR_RPC_AUTH_TOOWEAK' });
    t.is((error as unknown as { authStat: number }).authStat, 5);
    t.is((await plain.call(PROG, VERS, 0)).length, 0);
    t.deepEqual(await secure.call(PROG, VERS, Proc.ECHO, Buffer.from('tls')), Buffer.from('tls'));
  } finally {
    plain.destroy();
    secure.destroy();
    await server.close();
  }
});

test('closing the server during a handshake closes that connection too', async (t) => {
  const { server, port } = await startTlsServer({ handshakeTimeout: 0 });
  let connection: RpcConnection | undefined;
  server.on('connection', (c: RpcConnection) => (connection = c));
  const raw = await rawConnect(port);
  raw.socket.write(probeRecord(51));
  await until(() => raw.received().length >= 36);
  await server.close();
  await raw.closed;
  t.true(connection?.closed);
});

test('the TLS server reports secureConnection and tlsClientError without a listener on each connection', async (t) => {
  const { server, port } = await startTlsServer();
  const accepted: RpcConnection[] = [];
  server.on('connection', (connection: RpcConnection) => accepted.push(connection));
  const secured: [RpcConnection, TlsInfo][] = [];
  server.on('secureConnection', (connection: RpcConnection, info: TlsInfo) => secured.push([connection, info]));
  const tlsErrors: Error[] = [];
  server.on('tlsClientError', (error: Error) => tlsErrors.push(error));
  const client = tlsClient(port);
  const raw = await rawConnect(port);
  try {
    await client.call(PROG, VERS, Proc.ECHO, Buffer.from('fine'));
    raw.socket.write(probeRecord(61));
    await until(() => raw.received().length >= 36);
    raw.socket.write(Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n\r\n'), randomBytes(300)]));
    await raw.closed;
    await until(() => tlsErrors.length === 1 && secured.length === 1);
    const [connection, info] = secured[0]!;
    t.true(accepted.includes(connection));
    t.true(info === connection.security, "the event carries the connection's security");
    for (const c of accepted) {
      t.is(c.listenerCount('secure'), 0);
      t.is(c.listenerCount('tlsError'), 0);
    }
  } finally {
    raw.socket.destroy();
    client.destroy();
    await server.close();
  }
});
