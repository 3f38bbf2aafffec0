// RpcServer.listen on a busy port: one path for the error (the rejected promise), no unheard 'error'
// event that would crash the process from inside a try/catch.
import test from 'ava';

import { RpcServer } from '../../src/rpc/server.js';

test('H71 listen() on a port in use rejects with EADDRINUSE and emits no unhandled error event', async (t) => {
  const first = new RpcServer();
  const { port } = await first.listen({ host: '127.0.0.1' });
  const second = new RpcServer();
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown): void => void uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    await t.throwsAsync(second.listen({ host: '127.0.0.1', port }), { code: 'EADDRINUSE' });
    await new Promise((resolve) => setImmediate(resolve));
    t.deepEqual(uncaught, []);
    // With a listener, later errors are still events; listen errors still only reject.
    const events: Error[] = [];
    second.on('error', (error: Error) => events.push(error));
    await t.throwsAsync(second.listen({ host: '127.0.0.1', port }), { code: 'EADDRINUSE' });
    t.deepEqual(events, []);
  } finally {
    process.off('uncaughtException', onUncaught);
    await second.close().catch(() => undefined);
    await first.close();
  }
});
