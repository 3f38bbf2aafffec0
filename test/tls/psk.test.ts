// TLS 1.3 external PSK (the `psk` option) against the openssl CLI in userspace mode, both directions:
// `openssl s_server -psk -psk_identity -nocert` (no certificate anywhere: the PSK alone authenticates),
// `openssl s_client -psk`, a wrong key and an unknown identity refused.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';

import test from 'ava';

import { InvalidOptionError } from '../../src/errors.js';
import { TlsContext, type TlsContextOptions, connectTlsStream } from '../../src/tls/index.js';
import { makeCerts, openSslAcceptPort, readUntil, tcpPair } from '../native/helpers.js';

test.before(() => {
  makeCerts();
});

const key = randomBytes(32);
const identity = 'nvme-host-1';

function sServer(pskHex: string, pskIdentity: string): { server: ReturnType<typeof spawn>; port: Promise<number>; output: () => string } {
  const server = spawn('openssl', [
    's_server', '-tls1_3', '-accept', '127.0.0.1:0', '-nocert', '-psk', pskHex, '-psk_identity', pskIdentity,
    '-rev', '-naccept', '1',
  ]);
  let output = '';
  server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { server, port: openSslAcceptPort(server.stdout!), output: () => output };
}

const client = (extra: Partial<TlsContextOptions> = {}): TlsContext =>
  new TlsContext({ role: 'client', kernelTls: 'off', alpn: 'off', psk: { identity, key }, ...extra });

test.serial('client with a PSK against openssl s_server -psk -nocert: data both ways, no certificates', async (t) => {
  const { server, port } = sServer(key.toString('hex'), identity);
  try {
    const socket = net.connect(await port, '127.0.0.1');
    await once(socket, 'connect');
    const stream = await connectTlsStream(socket, { context: client(), servername: 'localhost' });
    t.true(stream.tlsInfo!.psk, 'the session stands on the PSK');
    t.is(stream.tlsInfo!.peerCertificate, null);
    t.is(stream.tlsInfo!.cipher, 'TLS_AES_128_GCM_SHA256');
    const reply = readUntil(stream, 'olleh');
    stream.write('hello\n');
    t.regex(await reply, /olleh/);
    stream.destroy();
  } finally {
    server.kill();
  }
});

test.serial('client with the wrong key or an unknown identity: refused by s_server, a coded error', async (t) => {
  for (const [hex, id, what] of [[randomBytes(32).toString('hex'), identity, 'wrong key'], [key.toString('hex'), 'someone-else', 'unknown identity']] as const) {
    const { server, port } = sServer(hex, id);
    try {
      const socket = net.connect(await port, '127.0.0.1');
      await once(socket, 'connect');
      const error = await t.throwsAsync(connectTlsStream(socket, { context: client(), servername: 'localhost' }), undefined, what);
      t.regex((error as { code?: string }).code ?? '', /^ERR_TLS_(ALERT|HANDSHAKE)$/, `${what}: ${String(error)}`);
    } finally {
      server.kill();
    }
  }
});

test.serial('server with a PSK and no certificate, against openssl s_client -psk', async (t) => {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const peer = spawn('openssl', [
    's_client', '-tls1_3', '-connect', `127.0.0.1:${(listener.address() as net.AddressInfo).port}`,
    '-psk', key.toString('hex'), '-psk_identity', identity, '-ign_eof', '-brief',
  ]);
  let output = '';
  peer.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  peer.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    const [raw] = await accepted;
    const context = new TlsContext({ role: 'server', kernelTls: 'off', alpn: 'off', psk: { identity, key } });
    const server = await connectTlsStream(raw, { context });
    t.true(server.tlsInfo!.psk);
    t.is(server.tlsInfo!.peerCertificate, null);
    const question = readUntil(server, 'question\n');
    peer.stdin.write('question\n');
    await question;
    server.end('answer\n');
    const [code] = (await once(peer, 'exit')) as [number];
    t.is(code, 0, output);
    t.regex(output, /answer/);
  } finally {
    peer.kill();
    listener.close();
  }
});

test('between two rpctls ends; against a certificate-only server the PSK is ignored and the certificate verified', async (t) => {
  const [c, s] = await tcpPair();
  const server = new TlsContext({ role: 'server', kernelTls: 'off', psk: { identity, key } });
  const [a, b] = await Promise.all([connectTlsStream(c, { context: client({ alpn: 'offer' }) }), connectTlsStream(s, { context: server })]);
  t.true(a.tlsInfo!.psk && b.tlsInfo!.psk);
  a.destroy();
  b.destroy();
  // The server has only a certificate: the client's PSK is ignored, the certificate is verified.
  const certs = makeCerts();
  const [c2, s2] = await tcpPair();
  const certOnly = new TlsContext({ role: 'server', kernelTls: 'off', cert: certs.serverCert, key: certs.serverKey });
  const [x, y] = await Promise.all([
    connectTlsStream(c2, { context: client({ ca: certs.ca }), servername: 'localhost' }),
    connectTlsStream(s2, { context: certOnly }),
  ]);
  t.false(x.tlsInfo!.psk);
  t.true(x.tlsInfo!.peerVerified);
  t.false(y.tlsInfo!.psk);
  x.destroy();
  y.destroy();
});

test('a PSK bound to SHA-384 (NVMe "R02"): TLS_AES_256_GCM_SHA384 between two rpctls ends; a SHA-256 end does not share it', async (t) => {
  const key48 = randomBytes(48);
  const nvme = 'NVMe0R02 nqn.2014-08.org.nvmexpress:uuid:host nqn.rpctls:subsys';
  const [c, s] = await tcpPair();
  const server = new TlsContext({ role: 'server', kernelTls: 'off', psk: { identity: nvme, key: key48, hash: 'sha384' } });
  const [a, b] = await Promise.all([
    connectTlsStream(c, { context: client({ psk: { identity: nvme, key: key48, hash: 'sha384' } }) }),
    connectTlsStream(s, { context: server }),
  ]);
  t.true(a.tlsInfo!.psk && b.tlsInfo!.psk);
  t.is(a.tlsInfo!.cipher, 'TLS_AES_256_GCM_SHA384');
  const got = readUntil(b, 'over sha384');
  a.write('over sha384');
  t.regex(await got, /over sha384/);
  a.destroy();
  b.destroy();
  // The same key bound to SHA-256 on the client is another PSK: no certificate either, so refused.
  const [c2, s2] = await tcpPair();
  const mismatch = await Promise.allSettled([
    connectTlsStream(c2, { context: client({ psk: { identity: nvme, key: key48 } }) }),
    connectTlsStream(s2, { context: server }),
  ]);
  t.true(mismatch.every((r) => r.status === 'rejected'), 'no shared PSK, no certificate: no session');
  c2.destroy();
  s2.destroy();
});

test('psk option validation: shape, identity and key sizes; the key never echoed', (t) => {
  const bad = (psk: unknown, option: string, message: RegExp): void => {
    const error = t.throws(() => new TlsContext({ role: 'client', psk } as TlsContextOptions, 'tls.'), { instanceOf: InvalidOptionError });
    t.is((error as InvalidOptionError).option, option);
    t.regex(error?.message ?? '', message);
  };
  bad('secret', 'tls.psk', /tls\.psk must be \{ identity: string, key: Buffer \}/);
  bad({ identity: '', key }, 'tls.psk.identity', /1 to 1024 bytes/);
  bad({ identity, key: Buffer.alloc(8) }, 'tls.psk.key', /^tls\.psk\.key must be a Buffer of 16 to 64 bytes; received a Buffer of 8 bytes$/);
  bad({ identity, key: key.toString('hex') }, 'tls.psk.key', /received string$/);
  bad({ identity, key, hash: 'sha512' }, 'tls.psk.hash', /tls\.psk\.hash must be 'sha256' or 'sha384'/);
  bad({ identity, key, extra: 1 }, 'tls.psk.extra', /absent/);
  // A server needs a certificate unless it takes a PSK.
  const noCert = t.throws(() => new TlsContext({ role: 'server' }), { instanceOf: InvalidOptionError });
  t.regex(noCert?.message ?? '', /unless it takes a psk/);
});

test('a PSK server that also requests client certificates (ca given) still takes the PSK', async (t) => {
  const certs = makeCerts();
  const [c, s] = await tcpPair();
  const server = new TlsContext({ role: 'server', kernelTls: 'off', alpn: 'off', psk: { identity, key }, ca: certs.ca, requestCert: true });
  const [a, b] = await Promise.all([connectTlsStream(c, { context: client() }), connectTlsStream(s, { context: server })]);
  t.true(a.tlsInfo!.psk && b.tlsInfo!.psk, 'no "session id context uninitialized" refusal');
  a.destroy();
  b.destroy();
});

test("psk { keyring: 'session' }: servers only, the value 'session' only", (t) => {
  const server = (psk: unknown): InvalidOptionError | undefined =>
    t.throws(() => new TlsContext({ role: 'server', psk } as TlsContextOptions, 'tls.'), { instanceOf: InvalidOptionError });
  t.regex(server({ keyring: 'user' })?.message ?? '', /tls\.psk\.keyring must be 'session'/);
  t.is(server({ keyring: 'session', identity })?.option, 'tls.psk.identity');
  const client = t.throws(() => new TlsContext({ role: 'client', psk: { keyring: 'session' } } as TlsContextOptions, 'tls.'), { instanceOf: InvalidOptionError });
  t.is(client?.option, 'tls.psk.keyring', 'a client offers a PSK it holds');
  t.notThrows(() => new TlsContext({ role: 'server', psk: { keyring: 'session' } }), 'a keyring PSK server needs no certificate');
});
