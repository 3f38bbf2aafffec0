// RPC over the upgraded connection: calls both ways, callbacks inside TLS, bulk traffic, what handlers
// see, kernel offload per environment, and certificate verification failures.
import { createHash, randomBytes } from 'node:crypto';

import test from 'ava';

import type { RpcConnection } from '../../src/rpc/connection.js';
import { type TlsInfo } from '../../src/tls/index.js';
import { tlsInfoOf } from '../../src/rpc-tls/index.js';
import {
  CB_PROG,
  CB_VERS,
  PROG,
  Proc,
  VERS,
  expectKtls,
  makeCerts,
  readTlsStat,
  scale,
  sha256,
  startTlsServer,
  tlsClient,
  assertOffload,
} from './helpers.js';

test.serial('NULL and echo both ways, a callback inside TLS, security seen by handlers, offload', async (t) => {
  const before = readTlsStat();
  const { server, port } = await startTlsServer();
  const secured = new Promise<[RpcConnection, TlsInfo]>((resolve) =>
    server.once('secureConnection', (connection: RpcConnection, info: TlsInfo) => resolve([connection, info])),
  );
  const client = tlsClient(port);
  try {
    t.is((await client.call(PROG, VERS, 0)).length, 0);
    t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('hello over tls')), Buffer.from('hello over tls'));

    const seen = JSON.parse((await client.call(PROG, VERS, Proc.SECURITY)).toString()) as Record<string, unknown>;
    t.is(seen.authMode, 'tls');
    t.is(seen.peer, null);
    t.is(seen.version, 'TLSv1.3');

    // Server -> client inside the client's own call, and a call the server starts on its own.
    t.deepEqual(await client.call(PROG, VERS, Proc.CALL_BACK, Buffer.from('ping')), Buffer.from('cb-tls:ping'));
    const [serverConnection, serverInfo] = await secured;
    t.deepEqual(await serverConnection.call(CB_PROG, CB_VERS, 1, Buffer.from('server-initiated')), Buffer.from('cb-tls:server-initiated'));
    t.is((await serverConnection.call(CB_PROG, CB_VERS, 0)).length, 0);

    const clientInfo = tlsInfoOf(client.connection!);
    assertOffload(t, clientInfo, 'client');
    assertOffload(t, serverInfo, 'server');
    t.is(clientInfo!.alpn, 'sunrpc');
    t.true(clientInfo!.peerVerified);
    t.is(clientInfo!.peerX509?.subject, 'CN=localhost');
    t.is(tlsInfoOf(serverConnection), serverInfo);

    if (expectKtls) {
      const after = readTlsStat();
      t.truthy(before && after, '/proc/net/tls_stat must exist with tls.ko loaded');
      t.true(after!.TlsTxSw! >= before!.TlsTxSw! + 2, `TlsTxSw ${before!.TlsTxSw} -> ${after!.TlsTxSw}`);
      t.true(after!.TlsRxSw! >= before!.TlsRxSw! + 2, `TlsRxSw ${before!.TlsRxSw} -> ${after!.TlsRxSw}`);
      t.log(`tls_stat before ${JSON.stringify(before)}`);
      t.log(`tls_stat after  ${JSON.stringify(after)}`);
    }
  } finally {
    await client.close();
    await server.close();
  }
});

test.serial('mutual TLS: the handler sees mtls and the client certificate', async (t) => {
  const c = makeCerts();
  const { server, port } = await startTlsServer({ requireClientCert: true });
  const client = tlsClient(port, { cert: c.clientCert, key: c.clientKey });
  const anonymous = tlsClient(port);
  try {
    const seen = JSON.parse((await client.call(PROG, VERS, Proc.SECURITY)).toString()) as Record<string, unknown>;
    t.is(seen.authMode, 'mtls');
    t.is(seen.peer, 'CN=rpctls client');
    // Without a certificate the server refuses the handshake; the client learns it as a TLS error.
    const error = await t.throwsAsync(anonymous.call(PROG, VERS, Proc.ECHO, Buffer.from('x')));
    t.regex((error as Error & { code: string }).code, /^ERR_TLS_|ERR_RPC_CONNECTION_CLOSED/);
  } finally {
    client.destroy();
    anonymous.destroy();
    await server.close();
  }
});

const BULK = scale(64, 8) * 1024 * 1024;
const PIECE = 512 * 1024;

test.serial(`${BULK / 1048576} MiB of RPC each way over TLS, sha256 checked on both ends`, async (t) => {
  const { server, port } = await startTlsServer();
  const atServer = createHash('sha256');
  let serverBytes = 0;
  // A second program on the same server hashes what arrives, in arrival order (one stream: call order).
  server.addProgram({
    program: PROG + 1,
    version: 1,
    procedures: {
      1: (args: Buffer) => {
        atServer.update(args);
        serverBytes += args.length;
        return args;
      },
    },
  });
  const client = tlsClient(port, {}, { timeout: 60_000 });
  try {
    await client.connect();
    const sent = createHash('sha256');
    const back = createHash('sha256');
    const pieces = BULK / PIECE;
    const inFlight: Promise<Buffer>[] = [];
    let nextToHash = 0;
    const replies: (Buffer | undefined)[] = [];
    for (let i = 0; i < pieces; i++) {
      const payload = randomBytes(PIECE);
      sent.update(payload);
      const index = i;
      inFlight.push(
        client.call(PROG + 1, 1, 1, payload).then((reply) => {
          replies[index] = reply;
          // Replies may settle out of order in principle: hash strictly in call order.
          while (replies[nextToHash] !== undefined) {
            back.update(replies[nextToHash]!);
            replies[nextToHash] = undefined;
            nextToHash++;
          }
          return reply;
        }),
      );
      if (inFlight.length >= 8) await inFlight.shift();
    }
    await Promise.all(inFlight);
    const expected = sent.digest('hex');
    t.is(nextToHash, pieces);
    t.is(serverBytes, BULK);
    t.is(atServer.digest('hex'), expected);
    t.is(back.digest('hex'), expected);
    const info = tlsInfoOf(client.connection!);
    assertOffload(t, info, 'client');
  } finally {
    await client.close();
    await server.close();
  }
});

test.serial('server -> client bulk over TLS through the callback program', async (t) => {
  const { server, port } = await startTlsServer();
  const secured = new Promise<RpcConnection>((resolve) => server.once('secureConnection', resolve));
  const client = tlsClient(port, {}, { timeout: 60_000 });
  try {
    await client.connect();
    const connection = await secured;
    const payload = randomBytes(scale(8, 2) * 1024 * 1024);
    const replies: Buffer[] = [];
    for (let at = 0; at < payload.length; at += PIECE) {
      replies.push(await connection.call(CB_PROG, CB_VERS, 1, payload.subarray(at, at + PIECE)));
    }
    const prefix = Buffer.from('cb-tls:');
    t.true(replies.every((r) => r.subarray(0, prefix.length).equals(prefix)));
    t.is(sha256(Buffer.concat(replies.map((r) => r.subarray(prefix.length)))), sha256(payload));
  } finally {
    await client.close();
    await server.close();
  }
});

test.serial('untrusted CA: ERR_TLS_CERT_VERIFY naming the cause; the server stays up', async (t) => {
  const c = makeCerts();
  const { server, port } = await startTlsServer();
  const client = tlsClient(port, { ca: c.otherCa });
  const good = tlsClient(port);
  try {
    const error = await t.throwsAsync(client.call(PROG, VERS, Proc.ECHO, Buffer.from('x')), { code: 'ERR_TLS_CERT_VERIFY' });
    const { verifyCode, reason } = error as unknown as { verifyCode: number; reason: string };
    // 19 SELF_SIGNED_CERT_IN_CHAIN (the server sends its CA along) or 20 UNABLE_TO_GET_ISSUER_CERT_LOCALLY.
    t.true(verifyCode === 19 || verifyCode === 20, String(verifyCode));
    t.regex(reason, /self.signed certificate in certificate chain|unable to get local issuer certificate/);
    t.log(`verify error ${verifyCode}: ${reason}`);
    t.deepEqual(await good.call(PROG, VERS, Proc.ECHO, Buffer.from('y')), Buffer.from('y'));
  } finally {
    client.destroy();
    good.destroy();
    await server.close();
  }
});

test.serial('wrong server name: ERR_TLS_CERT_VERIFY "hostname mismatch"', async (t) => {
  const { server, port } = await startTlsServer();
  const client = tlsClient(port, { servername: 'nfs.example.org' });
  try {
    const error = await t.throwsAsync(client.connect(), { code: 'ERR_TLS_CERT_VERIFY' });
    const { verifyCode, reason } = error as unknown as { verifyCode: number; reason: string };
    t.is(verifyCode, 62); // X509_V_ERR_HOSTNAME_MISMATCH
    t.regex(reason, /hostname mismatch/);
    t.regex(error!.message, /nfs\.example\.org|hostname mismatch/);
  } finally {
    client.destroy();
    await server.close();
  }
});
