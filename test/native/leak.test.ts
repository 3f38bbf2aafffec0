// A closed or destroyed TlsStream is collectable: nothing native keeps it (or its event callback,
// async context or SecureContext) alive, after successful and after failed handshakes alike.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import test from 'ava';

import { TlsContext, TlsStream } from '../../src/tls/index.js';
import { expectKtls, makeCerts, tcpPair } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test.serial('churning connections leaves no TlsStream alive after GC', async (t) => {
  const certs = makeCerts();
  const serverContext = new TlsContext({ role: 'server', cert: certs.serverCert, key: certs.serverKey });
  const clientContext = new TlsContext({ role: 'client', ca: certs.ca });
  const strangerContext = new TlsContext({ role: 'client', ca: certs.otherCa });
  let live = 0;
  let created = 0;
  const registry = new FinalizationRegistry<void>(() => live--);
  const track = <T extends object>(stream: T): T => {
    live++;
    created++;
    registry.register(stream);
    return stream;
  };
  const rounds = expectKtls ? 60 : 150; // 2 streams a round
  let failed = 0;
  for (let i = 0; i < rounds; i++) {
    const [c, s] = await tcpPair();
    // Every third round the client does not trust the server: both handshakes fail.
    const streams = [
      track(new TlsStream(c, { context: i % 3 === 2 ? strangerContext : clientContext, servername: 'localhost' })),
      track(new TlsStream(s, { context: serverContext })),
    ];
    const closed = streams.map((stream) => new Promise<void>((resolve) => stream.once('close', resolve)));
    for (const stream of streams) {
      stream.once('error', () => failed++);
      stream.once('secure', () => {
        stream.resume();
        stream.end();
      });
    }
    await Promise.all(closed);
  }
  t.true(failed > 0);
  t.is(serverContext.stats().liveSockets, 0);
  t.is(clientContext.stats().liveSockets, 0);
  await new Promise((resolve) => setImmediate(resolve));
  for (let i = 0; i < 10 && live > 0; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.log(`${created} TlsStreams created, ${live} alive after GC (${failed} failed handshakes)`);
  t.true(live <= 2, `${live} of ${created} TlsStreams still alive`);
});
