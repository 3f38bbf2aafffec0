// Each suite kernel TLS can take (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), forced with the
// `ciphersuites` option: 64 MiB of RPC traffic each way through createTlsClient/createTlsServer, with
// distinct data per direction, sha256-checked on both ends. Inside the UML runner (RPCTLS_EXPECT_KTLS=1)
// both ends must run on kernel TLS (offload tx+rx, TlsTxSw/TlsRxSw up); on the host (no tls.ko) both
// must fall back to userspace records and say why. The full 64 MiB runs in UML too (~see the t.log).
import { createHash, randomBytes } from 'node:crypto';

import test from 'ava';

import type { RpcConnection } from '../../src/rpc/connection.js';
import { TLS_CIPHERSUITES, type TlsCipherSuite, type TlsInfo } from '../../src/tls/index.js';
import { tlsInfoOf } from '../../src/rpc-tls/index.js';
import { assertOffload, expectKtls, readTlsStat, startTlsServer, tlsClient } from './helpers.js';

const TOTAL = 64 * 1024 * 1024;
const PIECE = 512 * 1024;
const INFLIGHT = 8;
const BULK_PROG = 0x20000199;

for (const suite of TLS_CIPHERSUITES) {
  test.serial(`${suite}: 64 MiB each way over RPC-with-TLS, sha256 on both ends, offload as the kernel allows`, async (t) => {
    t.timeout(expectKtls ? 600_000 : 120_000);
    const before = readTlsStat();
    const ciphersuites: readonly TlsCipherSuite[] = [suite];
    const { server, port } = await startTlsServer({ ciphersuites });
    const secured = new Promise<[RpcConnection, TlsInfo]>((resolve) =>
      server.once('secureConnection', (connection: RpcConnection, info: TlsInfo) => resolve([connection, info])),
    );
    // Server side: hashes what arrives (client -> server) and answers each call with fresh random
    // bytes of the same size, hashed as sent (server -> client). One connection: arrival = call order.
    const serverIn = createHash('sha256');
    const serverOut = createHash('sha256');
    let serverInBytes = 0;
    let serverOutBytes = 0;
    server.addProgram({
      program: BULK_PROG,
      version: 1,
      procedures: {
        1: (args: Buffer) => {
          serverIn.update(args);
          serverInBytes += args.length;
          const reply = randomBytes(args.length);
          serverOut.update(reply);
          serverOutBytes += reply.length;
          return reply;
        },
      },
    });
    // The client offers all three suites; the server allows only `suite`: the server's choice decides.
    const client = tlsClient(port, {}, { timeout: expectKtls ? 300_000 : 60_000 });
    try {
      const started = process.hrtime.bigint();
      await client.connect();
      const clientOut = createHash('sha256');
      const clientIn = createHash('sha256');
      let clientInBytes = 0;
      const replies: (Buffer | undefined)[] = [];
      let nextToHash = 0;
      const inFlight: Promise<void>[] = [];
      const pieces = TOTAL / PIECE;
      for (let i = 0; i < pieces; i++) {
        const payload = randomBytes(PIECE);
        clientOut.update(payload);
        const index = i;
        inFlight.push(
          client.call(BULK_PROG, 1, 1, payload).then((reply) => {
            replies[index] = reply;
            // Hash strictly in call order, whatever order the replies settle in.
            while (replies[nextToHash] !== undefined) {
              clientIn.update(replies[nextToHash]!);
              clientInBytes += replies[nextToHash]!.length;
              replies[nextToHash] = undefined;
              nextToHash++;
            }
          }),
        );
        if (inFlight.length >= INFLIGHT) await inFlight.shift();
      }
      await Promise.all(inFlight);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;

      t.is(nextToHash, pieces);
      t.is(serverInBytes, TOTAL, 'client -> server bytes');
      t.is(clientInBytes, TOTAL, 'server -> client bytes');
      t.is(serverOutBytes, TOTAL);
      t.is(serverIn.digest('hex'), clientOut.digest('hex'), 'client -> server sha256');
      t.is(clientIn.digest('hex'), serverOut.digest('hex'), 'server -> client sha256');

      const [serverConnection, serverInfo] = await secured;
      const clientInfo = tlsInfoOf(client.connection!);
      assertOffload(t, clientInfo, 'client', suite);
      assertOffload(t, serverInfo, 'server', suite);
      t.is(tlsInfoOf(serverConnection), serverInfo);
      t.log(
        `${suite}: ${(2 * TOTAL) / 1048576} MiB moved in ${seconds.toFixed(1)} s ` +
          `(${((2 * TOTAL) / 1048576 / seconds).toFixed(1)} MiB/s both ways together), ` +
          `offload ${clientInfo!.offload.tx && clientInfo!.offload.rx ? 'kernel' : `none (${clientInfo!.offload.reason})`}`,
      );

      if (expectKtls) {
        const after = readTlsStat();
        t.truthy(before && after, '/proc/net/tls_stat must exist with tls.ko loaded');
        t.true(after!.TlsTxSw! >= before!.TlsTxSw! + 2, `TlsTxSw ${before!.TlsTxSw} -> ${after!.TlsTxSw}`);
        t.true(after!.TlsRxSw! >= before!.TlsRxSw! + 2, `TlsRxSw ${before!.TlsRxSw} -> ${after!.TlsRxSw}`);
        t.is(after!.TlsDecryptError ?? 0, before!.TlsDecryptError ?? 0, 'no decrypt errors');
        t.log(`tls_stat ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
      }
    } finally {
      await client.close();
      await server.close();
    }
  });
}
