// The STARTTLS upgrade as the RPC layer sees it: the reply goes through the connection's channel and is
// counted, calls made while the handshake runs wait and go out inside TLS, and the interceptor reports
// each probe's answer.
import { once } from 'node:events';
import net from 'node:net';
import test from 'ava';

import { RpcConnection } from '../../src/rpc/connection.js';
import { rpcTlsUpgrade } from '../../src/rpc-tls/index.js';
import { PROBE, PROG, Proc, VERS, clientTls, startTlsServer, tlsClient } from '../tls/helpers.js';

test('server: the STARTTLS reply is written through the connection and counted in stats.repliesSent', async (t) => {
  const { server, port } = await startTlsServer();
  const connections: RpcConnection[] = [];
  server.on('connection', (c: RpcConnection) => connections.push(c));
  const secured = new Promise<RpcConnection>((resolve) => server.once('secureConnection', resolve));
  const client = tlsClient(port);
  try {
    await client.call(PROG, VERS, Proc.ECHO, Buffer.from('x'));
    const connection = await secured;
    t.is(connections.length, 1);
    t.is(connection, connections[0]);
    t.not(connection.security, null);
    // Probe + ECHO received; STARTTLS + ECHO reply sent: every reply passed through the channel.
    t.deepEqual({ callsReceived: connection.stats.callsReceived, repliesSent: connection.stats.repliesSent }, { callsReceived: 2, repliesSent: 2 });
    t.is(client.connection!.stats.callsSent, 2, 'client: the probe and the ECHO');
    t.is(client.connection!.stats.repliesReceived, 2);
  } finally {
    await client.close();
    await server.close();
  }
});

test('calls made right after the probe wait in the call table and go out inside TLS', async (t) => {
  const { server, port } = await startTlsServer();
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const connection = new RpcConnection(socket);
  try {
    const upgraded = rpcTlsUpgrade(clientTls(), PROBE)(connection);
    // Made while the probe is out and during the handshake: none may leave in clear (RFC 9289 4.1).
    const answers = Array.from({ length: 20 }, () => connection.call(PROG, VERS, Proc.SECURITY));
    t.is(connection.stats.callsSent, 1, 'only the probe went out so far');
    await upgraded;
    for (const answer of await Promise.all(answers)) t.not(JSON.parse(answer.toString()), null, 'answered from inside TLS');
    t.is(connection.stats.callsSent, 21);
  } finally {
    await connection.close();
    await server.close();
  }
});

test('onProbe sees each probe and its answer; the server log needs no copy of the rules', async (t) => {
  const seen: string[] = [];
  const { server, port } = await startTlsServer({ onProbe: (call, answer) => seen.push(`${call.procedure}:${answer}`) });
  const client = tlsClient(port);
  try {
    await client.call(PROG, VERS, Proc.ECHO, Buffer.alloc(0));
    t.deepEqual(seen, ['0:STARTTLS']);
  } finally {
    await client.close();
    await server.close();
  }
});
