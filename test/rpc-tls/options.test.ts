// Every RPC-with-TLS option is checked when the client or server is created, and the error names the
// option (as the caller spelled it, under `tls.`) and what it allows.
import test from 'ava';

import { InvalidOptionError } from '../../src/errors.js';
import { createTlsClient, createTlsServer } from '../../src/rpc-tls/index.js';
import { clientTls, makeCerts, serverTls } from '../tls/helpers.js';

type Case = [option: string, value: unknown, allowed: RegExp];

const COMMON: Case[] = [
  ['kernelTls', 'bogus', /"auto", "off", "require"/],
  ['alpn', 1, /"offer", "require", "off"/],
  ['handshakeTimeout', -5, /integer number of milliseconds from 0/],
  ['handshakeTimeout', 1.5, /integer number of milliseconds from 0/],
  ['ciphersuites', ['TLS_FOO'], /TLS_AES_128_GCM_SHA256/],
  ['ciphersuites', [], /TLS_AES_128_GCM_SHA256/],
  ['ciphersuites', 'TLS_AES_128_GCM_SHA256', /TLS_AES_128_GCM_SHA256/],
  ['ca', 'not a certificate', /PEM/],
  ['ca', 42, /PEM/],
  ['keylog', 'yes', /function/],
];

const CLIENT: Case[] = [
  ...COMMON,
  ['servername', '', /host name or IP literal/],
  ['rejectUnauthorized', 'false', /a boolean/],
  ['probeTimeout', 0, /integer from 1/],
  ['onProbeReply', {}, /function/],
];

const SERVER: Case[] = [
  ...COMMON,
  ['cert', 'garbage', /PEM/],
  ['key', Buffer.from('garbage'), /PEM/],
  ['requestCert', 1, /a boolean/],
  ['requireClientCert', 'yes', /a boolean/],
  ['requireTls', 'yes', /a boolean/],
  ['onProbe', 1, /function/],
];

function check(t: import('ava').ExecutionContext, make: () => unknown, option: string, allowed: RegExp): void {
  const error = t.throws(make, { instanceOf: InvalidOptionError });
  // An array option may name the offending element: tls.ciphersuites[0].
  t.regex(error?.option ?? '', new RegExp(`^tls\\.${option}(\\[\\d+\\])?$`));
  t.regex(error?.message ?? '', new RegExp(`^tls\\.${option}(\\[\\d+\\])? must be `));
  t.regex(error?.message ?? '', allowed);
}

for (const [option, value, allowed] of CLIENT) {
  test(`client: tls.${option} = ${JSON.stringify(value)} throws at createTlsClient`, (t) => {
    check(t, () => createTlsClient({ host: '127.0.0.1', port: 1, probe: { program: 1, version: 1 }, tls: { ...clientTls(), [option]: value } }), option, allowed);
  });
}

for (const [option, value, allowed] of SERVER) {
  test(`server: tls.${option} = ${JSON.stringify(value)} throws at createTlsServer`, (t) => {
    check(t, () => createTlsServer({ tls: { ...serverTls(), [option]: value } }), option, allowed);
  });
}

test('server: a certificate without its key, and no certificate at all, are refused at creation', (t) => {
  const { cert } = serverTls();
  check(t, () => createTlsServer({ tls: { cert } }), 'key', /given with tls\.cert/);
  check(t, () => createTlsServer({ tls: {} }), 'cert', /a server must present one/);
});

test('server: a key that does not belong to the certificate is refused at creation, not at the first handshake', (t) => {
  const c = makeCerts();
  const error = t.throws(() => createTlsServer({ tls: { cert: c.serverCert, key: c.clientKey } }), { instanceOf: InvalidOptionError });
  t.regex(error?.option ?? '', /^tls\.(key|cert)$/);
});

test('good options construct, and nothing connects or listens at construction', (t) => {
  t.notThrows(() => createTlsServer({ tls: serverTls({ kernelTls: 'off', alpn: 'require', handshakeTimeout: 0, ciphersuites: ['TLS_CHACHA20_POLY1305_SHA256'] }) }));
  t.notThrows(() => createTlsClient({ host: '127.0.0.1', port: 1, probe: { program: 1, version: 1 }, tls: clientTls({ probeTimeout: 1, rejectUnauthorized: false }) }));
});

test('H75: an encrypted key is loaded with tls.passphrase, and refused at creation without it', (t) => {
  const c = makeCerts();
  t.notThrows(() => createTlsServer({ tls: { cert: c.serverCert, key: c.encryptedServerKey, passphrase: c.keyPassphrase } }));
  check(t, () => createTlsServer({ tls: { cert: c.serverCert, key: c.encryptedServerKey } }), 'passphrase', /tls\.key is encrypted/);
  check(t, () => createTlsServer({ tls: { cert: c.serverCert, key: c.encryptedServerKey, passphrase: 'wrong' } }), 'passphrase', /tls\.key: it does not decrypt it/);
});
