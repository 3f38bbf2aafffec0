// Handshake for each suite, then several MiB both ways; offload per environment (host: userspace).
import { randomBytes } from 'node:crypto';

import test from 'ava';

import { TLS_CIPHERSUITES, kernelTlsAvailable } from '../../src/tls/index.js';
import { KERNEL_OFFLOAD, drain, expectKtls, makeCerts, okPair, readTlsStat, sendAll, sha256 } from './helpers.js';

const SIZE = (expectKtls ? 3 : 8) * 1024 * 1024 + 13;

test.before(() => {
  makeCerts(); // openssl CLI runs synchronously: not between a TCP connect and its handshake
});

test.serial('kernel TLS probe matches the environment', (t) => {
  const probe = kernelTlsAvailable();
  t.is(probe.available, expectKtls);
  if (!expectKtls) t.regex(probe.reason ?? '', /ENOENT: kernel has no TLS ULP/);
});

for (const suite of TLS_CIPHERSUITES) {
  test.serial(`${suite}: handshake, info, ${SIZE} bytes each way`, async (t) => {
    const before = readTlsStat();
    const [client, server] = await okPair({ ciphersuites: [suite] }, {});

    for (const [side, info] of [['client', client.tlsInfo], ['server', server.tlsInfo]] as const) {
      t.truthy(info, side);
      t.is(info!.version, 'TLSv1.3');
      t.is(info!.cipher, suite);
      t.is(info!.alpn, 'sunrpc');
      if (expectKtls) {
        t.deepEqual(info!.offload, KERNEL_OFFLOAD, side);
      } else {
        t.false(info!.offload.tx);
        t.false(info!.offload.rx);
        t.regex(info!.offload.reason ?? '', /ENOENT: kernel has no TLS ULP/);
      }
    }
    // The client presented no certificate: plain tls on both sides; the server's cert is verified.
    t.is(server.tlsInfo!.authMode, 'tls');
    t.is(server.tlsInfo!.peerCertificate, null);
    t.true(client.tlsInfo!.peerVerified);
    t.is(client.tlsInfo!.peerX509?.subject, 'CN=localhost');

    const up = randomBytes(SIZE);
    const down = randomBytes(SIZE);
    const received = Promise.all([drain(server), drain(client)]);
    sendAll(client, up);
    sendAll(server, down);
    const [atServer, atClient] = await received;
    t.is(atServer.length, SIZE);
    t.is(atServer.hash, sha256(up));
    t.is(atClient.length, SIZE);
    t.is(atClient.hash, sha256(down));
    t.true(client.counters.closeNotifyReceived);
    t.true(server.counters.closeNotifyReceived);
    t.is(client.counters.bytesWritten, SIZE);

    if (expectKtls) {
      const after = readTlsStat();
      t.truthy(before && after, '/proc/net/tls_stat must exist with tls.ko loaded');
      t.true(after!.TlsTxSw! >= before!.TlsTxSw! + 2, `TlsTxSw ${before!.TlsTxSw} -> ${after!.TlsTxSw}`);
      t.true(after!.TlsRxSw! >= before!.TlsRxSw! + 2, `TlsRxSw ${before!.TlsRxSw} -> ${after!.TlsRxSw}`);
      t.log(`tls_stat before ${JSON.stringify(before)} after ${JSON.stringify(after)}`);
    }
  });
}

test.serial('mutual TLS: a verified client certificate makes authMode mtls', async (t) => {
  const { makeCerts } = await import('./helpers.js');
  const certs = makeCerts();
  const [client, server] = await okPair(
    { cert: certs.clientCert, key: certs.clientKey },
    { requireClientCert: true },
  );
  t.is(server.tlsInfo!.authMode, 'mtls');
  t.is(server.tlsInfo!.peerX509?.subject, 'CN=rpctls client');
  t.is(client.tlsInfo!.authMode, 'mtls');
  const echoed = drain(client);
  server.on('data', (chunk: Buffer) => server.write(chunk));
  client.end(Buffer.from('ping over mtls'));
  t.is((await echoed).length, 'ping over mtls'.length);
});

test.serial('kernel record sequence numbers start at 0 and count records', async (t) => {
  const [client, server] = await okPair();
  t.is(client.counters.txSeqAtHandoff, 0);
  t.is(client.counters.rxSeqAtHandoff, 0);
  t.is(server.counters.txSeqAtHandoff, 0);
  const got = new Promise<Buffer>((resolve) => server.once('data', resolve));
  client.write(Buffer.from('one record'));
  t.is((await got).toString(), 'one record');
  if (expectKtls) {
    t.deepEqual(client.kernelState(), { txSeq: 1, rxSeq: 0 });
    t.deepEqual(server.kernelState(), { txSeq: 0, rxSeq: 1 });
  } else {
    t.is(client.kernelState(), null);
  }
  client.destroy();
  server.destroy();
});
