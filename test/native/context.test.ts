// One SecureContext (SSL_CTX) per configuration: every connection made from a TlsContext runs on the
// same native context, while certificate and name checks still happen per connection.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import type { InvalidOptionError } from '../../src/errors.js';
import { TlsContext, connectTlsStream, type TlsCertVerifyError, type TlsStream } from '../../src/tls/index.js';
import { makeCerts, tcpPair } from './helpers.js';

const N = 8;

async function pair(
  clientContext: TlsContext,
  serverContext: TlsContext,
  servername = 'localhost',
): Promise<[PromiseSettledResult<TlsStream>, PromiseSettledResult<TlsStream>]> {
  const [c, s] = await tcpPair();
  return Promise.allSettled([
    connectTlsStream(c, { context: clientContext, servername }),
    connectTlsStream(s, { context: serverContext }),
  ]);
}

test('N connections of one context share its SSL_CTX; closing them releases it', async (t) => {
  const certs = makeCerts();
  const serverContext = new TlsContext({ role: 'server', cert: certs.serverCert, key: certs.serverKey, ca: certs.ca });
  const clientContext = new TlsContext({ role: 'client', ca: certs.ca });
  const results = await Promise.all(Array.from({ length: N }, () => pair(clientContext, serverContext)));
  const streams = results.flat().map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
  const [clients, servers] = [streams.filter((_, i) => i % 2 === 0), streams.filter((_, i) => i % 2 === 1)];
  t.deepEqual(new Set(clients.map((s) => s.counters.contextId)), new Set([clientContext.stats().id]));
  t.deepEqual(new Set(servers.map((s) => s.counters.contextId)), new Set([serverContext.stats().id]));
  t.like(serverContext.stats(), { liveSockets: N, socketsCreated: N });
  t.like(clientContext.stats(), { liveSockets: N, socketsCreated: N });
  for (const s of streams) t.true(s.tlsInfo!.peerVerified || s.tlsInfo!.peerCertificate === null);
  for (const s of streams) s.destroy();
  t.like(serverContext.stats(), { liveSockets: 0, socketsCreated: N });
  t.like(clientContext.stats(), { liveSockets: 0, socketsCreated: N });
});

test('a shared client context still verifies each connection: its own servername, its own peer', async (t) => {
  const certs = makeCerts();
  const goodServer = new TlsContext({ role: 'server', cert: certs.serverCert, key: certs.serverKey });
  const untrustedServer = new TlsContext({ role: 'server', cert: certs.otherCert, key: certs.otherKey });
  const clientContext = new TlsContext({ role: 'client', ca: certs.ca });
  const [ok, wrongName, untrusted] = await Promise.all([
    pair(clientContext, goodServer, 'localhost'),
    pair(clientContext, goodServer, 'not-localhost.example'),
    pair(clientContext, untrustedServer, 'localhost'),
  ]);
  t.is(ok[0].status, 'fulfilled');
  const nameError = (wrongName[0] as PromiseRejectedResult).reason as TlsCertVerifyError;
  t.is(nameError.code, 'ERR_TLS_CERT_VERIFY');
  t.regex(nameError.reason, /hostname mismatch/);
  const caError = (untrusted[0] as PromiseRejectedResult).reason as TlsCertVerifyError;
  t.is(caError.code, 'ERR_TLS_CERT_VERIFY');
  t.regex(caError.reason, /self-signed|unable to get local issuer/);
  // And the connection after the failures is as good as the first.
  const again = await pair(clientContext, goodServer);
  t.is(again[0].status, 'fulfilled');
  for (const r of [...ok, ...wrongName, ...untrusted, ...again]) if (r.status === 'fulfilled') r.value.destroy();
  t.is(clientContext.stats().socketsCreated, 4);
  t.is(clientContext.stats().liveSockets, 0);
});

// H75: an encrypted private key. OpenSSL's default PEM callback would prompt "Enter PEM pass phrase:" on
// the terminal and block the process; the context hands over `passphrase` or fails at construction.
test('H75: an encrypted key with its passphrase works', async (t) => {
  const certs = makeCerts();
  const serverContext = new TlsContext(
    { role: 'server', cert: certs.serverCert, key: certs.encryptedServerKey, passphrase: certs.keyPassphrase }, 'tls.');
  const clientContext = new TlsContext({ role: 'client', ca: certs.ca });
  const [c, s] = await pair(clientContext, serverContext);
  t.is(c.status, 'fulfilled');
  t.is(s.status, 'fulfilled');
  for (const r of [c, s]) if (r.status === 'fulfilled') r.value.destroy();
});

test('H75: an encrypted key without a passphrase, or with a wrong one, throws at construction, fast', (t) => {
  const certs = makeCerts();
  let started = Date.now();
  const missing = t.throws(() => new TlsContext({ role: 'server', cert: certs.serverCert, key: certs.encryptedServerKey }, 'tls.'));
  t.true(Date.now() - started < 1000);
  t.is((missing as InvalidOptionError).code, 'ERR_RPC_INVALID_OPTION');
  t.is((missing as InvalidOptionError).option, 'tls.passphrase');
  t.regex(missing!.message, /tls\.key is encrypted/);
  started = Date.now();
  const wrong = t.throws(() => new TlsContext(
    { role: 'server', cert: certs.serverCert, key: certs.encryptedServerKey, passphrase: 'not it' }, 'tls.'));
  t.true(Date.now() - started < 1000);
  t.is((wrong as InvalidOptionError).option, 'tls.passphrase');
  t.regex(wrong!.message, /tls\.key: it does not decrypt it/);
  t.false(wrong!.message.includes('not it'));
  t.throws(() => new TlsContext({ role: 'server', cert: certs.serverCert, key: certs.serverKey, passphrase: 42 as unknown as string }), {
    message: 'passphrase must be a string; received number',
  });
});

test('H75: on a terminal, OpenSSL never prompts for the pass phrase', async (t) => {
  const certs = makeCerts();
  const keyFile = join(certs.dir, 'server-enc.key');
  const script = [
    `const { TlsContext } = await import(${JSON.stringify(join(process.cwd(), 'src/tls/index.ts'))});`,
    "const { readFileSync } = await import('node:fs');",
    `const read = (f) => readFileSync(f, 'utf8');`,
    `try { new TlsContext({ role: 'server', cert: read(${JSON.stringify(join(certs.dir, 'server.pem'))}), key: read(${JSON.stringify(keyFile)}) }); console.log('BUILT'); }`,
    "catch (e) { console.log('THREW ' + e.code); }",
  ].join('\n');
  const scriptFile = join(certs.dir, 'prompt-check.mjs');
  writeFileSync(scriptFile, script);
  // script(1) gives the child a pseudo-terminal as its controlling terminal, where OpenSSL would prompt.
  const result = spawnSync('script', ['-qec', `${process.execPath} --import tsx ${scriptFile}`, '/dev/null'], {
    cwd: process.cwd(), encoding: 'utf8', timeout: 20_000, input: '',
  });
  t.not(result.signal, 'SIGTERM', `timed out waiting at a prompt: ${result.stdout}`);
  if (result.signal === null && !/THREW|BUILT|pass phrase/i.test(result.stdout)) {
    // No pseudo-terminal to be had (the UML stage has no devpts): the host run checks it.
    t.log(`no pseudo-terminal here: script exited ${String(result.status)} ${(result.stderr ?? '').trim()}`);
    return;
  }
  t.notRegex(result.stdout, /pass phrase/i);
  t.regex(result.stdout, /THREW ERR_RPC_INVALID_OPTION/);
});
