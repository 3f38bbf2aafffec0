// Many TLS connections: concurrent handshakes all complete, and opening/closing thousands leaks no fd.
import test from 'ava';

import type { RpcClient } from '../../src/rpc/client.js';
import { tlsInfoOf } from '../../src/rpc-tls/index.js';
import { until } from '../helpers/net.js';
import { PROG, Proc, VERS, fdCount, scale, startTlsServer, tlsClient } from './helpers.js';

const CONCURRENT = scale(200, 50);
const SEQUENTIAL = scale(2000, 200);

test.serial(`${CONCURRENT} concurrent TLS connections: every handshake and call completes`, async (t) => {
  const { server, port } = await startTlsServer({ handshakeTimeout: 30_000 });
  let secured = 0;
  server.on('secureConnection', () => secured++);
  const clients: RpcClient[] = [];
  for (let i = 0; i < CONCURRENT; i++) clients.push(tlsClient(port, { handshakeTimeout: 30_000 }, { timeout: 60_000 }));
  try {
    const replies = await Promise.all(clients.map((client, i) => client.call(PROG, VERS, Proc.ECHO, Buffer.from(`conn ${i}`))));
    t.true(replies.every((reply, i) => reply.toString() === `conn ${i}`));
    t.is(secured, CONCURRENT);
    t.is(server.connections.size, CONCURRENT);
    t.true(clients.every((client) => tlsInfoOf(client.connection!)?.version === 'TLSv1.3'));
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await server.close();
  }
});

test.serial(`${SEQUENTIAL} TLS connections opened and closed leave the fd count where it started`, async (t) => {
  const { server, port } = await startTlsServer();
  // One connection first, so lazily opened fds (addon, OpenSSL, random) are already counted.
  const warm = tlsClient(port);
  await warm.call(PROG, VERS, 0);
  await warm.close();
  await until(() => server.connections.size === 0);
  // An earlier test's sockets may still be closing: count from a settled table.
  let before = fdCount();
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const now = fdCount();
    if (now === before) break;
    before = now;
  }
  let handshakes = 0;
  server.on('secureConnection', () => handshakes++);
  const BATCH = 20;
  try {
    for (let done = 0; done < SEQUENTIAL; done += BATCH) {
      await Promise.all(
        Array.from({ length: BATCH }, async () => {
          const client = tlsClient(port);
          await client.call(PROG, VERS, 0);
          await client.close();
        }),
      );
    }
    await until(() => server.connections.size === 0, 10_000);
    // The last sockets' close callbacks may still be on their way through the loop.
    await until(() => fdCount() <= before, 5_000).catch(() => undefined);
    t.is(handshakes, SEQUENTIAL);
    const after = fdCount();
    t.true(after <= before, `fds ${before} before, ${after} after`); // fewer: a stray from earlier closed meanwhile
  } finally {
    await server.close();
  }
});
