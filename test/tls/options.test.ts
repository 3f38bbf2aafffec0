// TlsContext validates every option when it is built, naming the option (with its prefix) and the
// allowed values; bad PEM and a key that does not match its certificate throw there, not at a handshake.
import test from 'ava';

import { InvalidOptionError, RpctlsError } from '../../src/errors.js';
import { TlsContext, type TlsContextOptions } from '../../src/tls/index.js';
import { createTlsClient, createTlsServer } from '../../src/rpc-tls/index.js';
import { makeCerts } from '../native/helpers.js';

const certs = makeCerts();
const server = (extra: Record<string, unknown> = {}): TlsContextOptions =>
  ({ role: 'server', cert: certs.serverCert, key: certs.serverKey, ...extra }) as TlsContextOptions;
const client = (extra: Record<string, unknown> = {}): TlsContextOptions =>
  ({ role: 'client', ca: certs.ca, ...extra }) as TlsContextOptions;

function rejects(t: import('ava').ExecutionContext, options: TlsContextOptions, option: string, message: RegExp, prefix = 'tls.'): void {
  const error = t.throws(() => new TlsContext(options, prefix));
  t.true(error instanceof InvalidOptionError, String(error));
  t.true(error instanceof RpctlsError);
  t.is((error as InvalidOptionError).code, 'ERR_RPC_INVALID_OPTION');
  t.is((error as InvalidOptionError).option, option);
  t.regex(error!.message, message);
}

test('valid client and server contexts build, with their defaults', (t) => {
  const s = new TlsContext(server());
  t.is(s.handshakeTimeout, 5000);
  t.is(s.kernelTls, 'auto');
  const c = new TlsContext(client());
  t.is(c.handshakeTimeout, 10000);
  t.not(s.stats().id, c.stats().id);
});

test('role', (t) => {
  rejects(t, { role: 'peer' } as never, 'tls.role', /^tls\.role must be one of "client", "server"; received "peer"$/);
  rejects(t, {} as never, 'tls.role', /tls\.role must be one of "client", "server"; received undefined/);
});

test('kernelTls', (t) => {
  rejects(t, client({ kernelTls: 'bogus' }), 'tls.kernelTls', /^tls\.kernelTls must be one of "auto", "off", "require"; received "bogus"$/);
});

test('handshakeTimeout', (t) => {
  rejects(t, client({ handshakeTimeout: -5 }), 'tls.handshakeTimeout', /^tls\.handshakeTimeout must be an integer number of milliseconds from 0 \(no limit\) to 2147483647; received -5$/);
  rejects(t, client({ handshakeTimeout: 1.5 }), 'tls.handshakeTimeout', /received 1\.5/);
  rejects(t, client({ handshakeTimeout: '100' }), 'tls.handshakeTimeout', /received "100"/);
  t.is(new TlsContext(client({ handshakeTimeout: 0 })).handshakeTimeout, 0);
});

test('ciphersuites', (t) => {
  rejects(t, client({ ciphersuites: ['TLS_FOO'] }), 'tls.ciphersuites[0]', /^tls\.ciphersuites\[0\] must be one of "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"; received "TLS_FOO"$/);
  rejects(t, client({ ciphersuites: [] }), 'tls.ciphersuites', /non-empty array of distinct values/);
  rejects(t, client({ ciphersuites: 'TLS_AES_128_GCM_SHA256' }), 'tls.ciphersuites', /non-empty array/);
  rejects(t, client({ ciphersuites: ['TLS_AES_128_GCM_SHA256', 'TLS_AES_128_GCM_SHA256'] }), 'tls.ciphersuites', /distinct/);
});

test('alpn', (t) => {
  rejects(t, client({ alpn: 1 }), 'tls.alpn', /^tls\.alpn must be one of "offer", "require", "off"; received 1$/);
});

test('cert: not PEM, not loadable, or missing on a server', (t) => {
  rejects(t, server({ cert: 'hello' }), 'tls.cert', /^tls\.cert must be a PEM certificate \(string or Buffer\); received a string of 5 characters$/);
  rejects(t, server({ cert: 42 }), 'tls.cert', /received 42/);
  rejects(t, server({ cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }), 'tls.cert', /a PEM certificate OpenSSL can load/);
  rejects(t, { role: 'server' }, 'tls.cert', /a server must present one/);
});

test('key: not PEM, missing with a cert, not matching the cert; never echoed back', (t) => {
  rejects(t, server({ key: 'not a key' }), 'tls.key', /^tls\.key must be a PEM private key \(string or Buffer\); received a string of 9 characters$/);
  rejects(t, server({ key: undefined }), 'tls.key', /tls\.key must be given with tls\.cert/);
  rejects(t, client({ key: certs.clientKey }), 'tls.cert', /tls\.cert must be given with tls\.key/);
  const error = t.throws(() => new TlsContext(server({ key: certs.clientKey }), 'tls.'));
  t.is((error as InvalidOptionError).option, 'tls.key');
  t.regex(error!.message, /^tls\.key must be the private key of tls\.cert/);
  t.false(error!.message.includes(certs.clientKey.slice(30, 60)), 'no key material in the message');
  const buffer = t.throws(() => new TlsContext(server({ key: Buffer.from('-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n') })));
  t.regex(buffer!.message, /^key must be a PEM private key OpenSSL can load .*received a Buffer of \d+ bytes$/);
});

test('ca: PEM, or a non-empty array of PEM', (t) => {
  rejects(t, client({ ca: 'nope' }), 'tls.ca', /^tls\.ca must be a PEM certificate/);
  rejects(t, client({ ca: [] }), 'tls.ca', /non-empty array/);
  rejects(t, client({ ca: [certs.ca, 7] }), 'tls.ca[1]', /^tls\.ca\[1\] must be a PEM certificate/);
  t.notThrows(() => new TlsContext(client({ ca: [certs.ca, Buffer.from(certs.otherCa)] })));
});

test('booleans: rejectUnauthorized, requestCert, requireClientCert', (t) => {
  for (const option of ['rejectUnauthorized', 'requestCert', 'requireClientCert']) {
    rejects(t, server({ [option]: 'yes' }), `tls.${option}`, new RegExp(`^tls\\.${option} must be a boolean; received "yes"$`));
    rejects(t, server({ [option]: 1 }), `tls.${option}`, /received 1$/);
  }
});

test('keylog', (t) => {
  rejects(t, client({ keylog: '/tmp/keys' }), 'tls.keylog', /^tls\.keylog must be a function/);
});

test('moved options name their new place', (t) => {
  rejects(t, client({ handshakeTimeoutMs: 5 }), 'tls.handshakeTimeoutMs', /use handshakeTimeout/);
  rejects(t, client({ servername: 'x' }), 'tls.servername', /per connection/);
  rejects(t, server({ preface: Buffer.alloc(1) }), 'tls.preface', /removed/);
});

test('the prefix is optional and gets its dot', (t) => {
  rejects(t, client({ kernelTls: 'x' }), 'kernelTls', /^kernelTls must be/, '');
  rejects(t, client({ kernelTls: 'x' }), 'cfg.kernelTls', /^cfg\.kernelTls must be/, 'cfg');
});

test('createTlsServer and createTlsClient validate at construction with the tls. prefix', (t) => {
  const s = t.throws(() => createTlsServer({ tls: { cert: certs.serverCert, key: certs.serverKey, kernelTls: 'bogus' as never } }));
  t.is((s as InvalidOptionError).option, 'tls.kernelTls');
  const c = t.throws(() => createTlsClient({ host: '127.0.0.1', port: 1, probe: { program: 1, version: 1 }, tls: { handshakeTimeout: -5 } }));
  t.is((c as InvalidOptionError).option, 'tls.handshakeTimeout');
});
