// An option name nobody reads is a typo: it is refused at construction, naming the nearest known option.
import test from 'ava';

import { InvalidOptionError } from '../../src/errors.js';
import { RpcClient } from '../../src/rpc/client.js';
import { RpcConnection } from '../../src/rpc/connection.js';
import { RpcServer } from '../../src/rpc/server.js';
import { UdpClient } from '../../src/rpc/udp-client.js';
import { createTlsClient, createTlsServer } from '../../src/rpc-tls/index.js';

const cases: [string, () => unknown, RegExp][] = [
  ['RpcClient', () => new RpcClient({ port: 1, timeuot: 5000 } as never), /^timeuot must be a known option \(did you mean timeout\?\); received 5000$/],
  ['RpcClient, its own option', () => new RpcClient({ port: 1, conectTimeout: 5 } as never), /\(did you mean connectTimeout\?\)/],
  ['RpcClient reconnect', () => new RpcClient({ port: 1, reconnect: { maxAttempt: 3 } } as never), /^reconnect\.maxAttempt must be a known option \(did you mean reconnect\.maxAttempts\?\)/],
  ['RpcServer', () => new RpcServer({ maxConnection: 5 } as never), /\(did you mean maxConnections\?\)/],
  ['RpcServer udp', () => new RpcServer({ udp: { maxSource: 5 } } as never), /^udp\.maxSource .*\(did you mean udp\.maxSources\?\)/],
  ['RpcConnection', () => new RpcConnection(null, { idleTimout: 5 } as never), /\(did you mean idleTimeout\?\)/],
  ['UdpClient', () => new UdpClient({ port: 1, retransmitTimout: 5 } as never), /\(did you mean retransmitTimeout\?\)/],
  ['createTlsClient', () => createTlsClient({ port: 1, probe: { program: 1, version: 1 }, tls: { servrname: 'x' } } as never), /^tls\.servrname .*\(did you mean tls\.servername\?\)/],
  ['createTlsClient, top level', () => createTlsClient({ port: 1, probe: { program: 1, version: 1 }, tsl: {} } as never), /^tsl must be a known option \(did you mean tls\?\)/],
  ['createTlsServer', () => createTlsServer({ tls: { requireTLS: true } } as never), /\(did you mean tls\.requireTls\?\)/],
  ['nothing near', () => new RpcClient({ port: 1, colour: 'blue' } as never), /^colour must be a known option; received "blue"$/],
];

for (const [where, make, message] of cases) {
  test(`${where}: an unknown option is refused with the nearest known name`, (t) => {
    const error = t.throws(make, { instanceOf: InvalidOptionError, code: 'ERR_RPC_INVALID_OPTION', message });
    t.truthy(error?.option);
  });
}

test('listen() refuses unknown options too', async (t) => {
  const server = new RpcServer();
  await t.throwsAsync(server.listen({ prot: 0 } as never), { code: 'ERR_RPC_INVALID_OPTION', message: /\(did you mean port\?\)/ });
});

test('every documented option is still accepted', async (t) => {
  const client = new RpcClient({
    host: '127.0.0.1', port: 1, connectTimeout: 5, reconnect: { initialDelay: 1, maxDelay: 2, maxAttempts: 1 }, timeout: 5,
    maxRecordSize: 4096, maxFragments: 4, maxFragmentSize: 1024, maxPendingCalls: 2, maxQueuedCalls: 2, maxIncomingCalls: 2,
    recordTimeout: 5, idleTimeout: 5, firstByteTimeout: 5, writeTimeout: 5,
  });
  const server = new RpcServer({ maxConnections: 2, closeTimeout: 5, udp: { maxSources: 2, duplicateCacheSize: 0 }, idleTimeout: 5 });
  const udp = new UdpClient({ port: 1, retransmitTimeout: 5, maxRetransmitTimeout: 10, maxDatagramSize: 1000, localAddress: '127.0.0.1' });
  t.is(client.target, '127.0.0.1:1');
  t.is(udp.target, '127.0.0.1:1');
  await client.close();
  await server.close();
  await udp.close();
});
