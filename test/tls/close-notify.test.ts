// H76: close_notify (RFC 8446 6.1) on a graceful close, and in answer to the peer's, whichever end
// closes first. Runs in userspace mode on the host and in kernel mode in the UML stage.
import test from 'ava';

import type { RpcConnection } from '../../src/rpc/connection.js';
import type { TlsStream } from '../../src/tls/index.js';
import { PROG, Proc, VERS, expectKtls, startTlsServer, tlsClient } from './helpers.js';

async function connected(): Promise<{
  close: () => Promise<void>;
  client: ReturnType<typeof tlsClient>;
  clientConnection: RpcConnection;
  serverConnection: RpcConnection;
  streams: Array<[string, TlsStream]>;
}> {
  const { server, port } = await startTlsServer();
  const accepted = new Promise<RpcConnection>((resolve) => server.once('secureConnection', resolve));
  const client = tlsClient(port);
  await client.call(PROG, VERS, Proc.ECHO, Buffer.from('hello'));
  const serverConnection = await accepted;
  const clientConnection = client.connection!;
  // Captured now: a closed connection no longer exposes its stream.
  const streams: Array<[string, TlsStream]> = [
    ['client', clientConnection.transport as TlsStream],
    ['server', serverConnection.transport as TlsStream],
  ];
  return { close: () => server.close(), client, clientConnection, serverConnection, streams };
}

const closed = (connection: RpcConnection): Promise<void> =>
  new Promise((resolve) => (connection.closed ? resolve() : connection.once('close', () => resolve())));

function sides(t: import('ava').ExecutionContext, streams: Array<[string, TlsStream]>): void {
  for (const [side, stream] of streams) {
    t.is(stream.tlsInfo!.offload.tx, expectKtls, `${side}: ${expectKtls ? 'kernel' : 'userspace'} mode`);
    t.like(stream.counters, { closeNotifySent: true, closeNotifyReceived: true }, side);
  }
}

test('H76 client.close(): both ends send close_notify, each receives the other\'s', async (t) => {
  const { client, clientConnection, serverConnection, streams, close } = await connected();
  try {
    await client.close();
    await Promise.all([closed(clientConnection), closed(serverConnection)]);
    sides(t, streams);
  } finally {
    await close();
  }
});

test('H76 the server closes first: the client answers its close_notify', async (t) => {
  const { client, clientConnection, serverConnection, streams, close } = await connected();
  try {
    await serverConnection.close();
    await Promise.all([closed(clientConnection), closed(serverConnection)]);
    sides(t, streams);
  } finally {
    await client.close();
    await close();
  }
});
