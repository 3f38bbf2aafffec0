// `rpctls probe` against a TLS server, a plain one, one with a certificate for the wrong name, and a
// closed port: the screen, the JSON fields and the exit status of each.
import test from 'ava';

import type { RpcServer } from '../../src/rpc/server.js';
import { closedPort, expectKtls, json, pkiFiles, plainServer, rpctls, tlsServer, wrongNameCert } from './helpers.js';

const f = pkiFiles();
const NFS = [{ program: 100003, version: 4 }];
let tls: { server: RpcServer; port: number };
let plain: { server: RpcServer; port: number };
let wrong: { server: RpcServer; port: number };
let mtls: { server: RpcServer; port: number };

test.before(async () => {
  tls = await tlsServer({ cert: f.pki.server.cert, key: f.pki.server.key }, NFS);
  plain = await plainServer(NFS);
  wrong = await tlsServer(wrongNameCert(f.pki), NFS);
  mtls = await tlsServer({ cert: f.pki.server.cert, key: f.pki.server.key, ca: f.pki.ca.cert }, NFS);
});
test.after.always(async () => {
  await Promise.all([tls, plain, wrong, mtls].map((s) => s?.server.close()));
});

test('TLS server: exit 0, every JSON field, offload as this kernel allows', async (t) => {
  const r = await rpctls(['probe', `127.0.0.1:${tls.port}`, '--ca', f.ca, '--json']);
  t.is(r.code, 0, r.stderr);
  const j = json(r);
  t.true(j.starttls);
  t.is(j.probeReply.text, 'MSG_ACCEPTED SUCCESS, verifier AUTH_NONE "STARTTLS"');
  t.is(j.tls.version, 'TLSv1.3');
  t.regex(j.tls.cipher, /^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/);
  t.is(j.tls.alpn, 'sunrpc');
  t.deepEqual(j.tls.alpnOffered, ['sunrpc']);
  t.is(j.tls.authMode, 'tls');
  t.is(j.certificate.subject, 'CN=localhost');
  t.true(j.certificate.verified);
  t.is(j.certificate.verifyError, null);
  t.is(j.offload.tx, expectKtls);
  t.is(j.offload.rx, expectKtls);
  if (expectKtls) t.is(j.offload.reason, null);
  else t.regex(j.offload.reason, /^ENOENT/);
  t.is(typeof j.nullRttMs, 'number');
  t.true(j.nullRttMs > 0);
  t.deepEqual(j.nullCall, { ok: true, ms: j.nullRttMs, error: null });
  t.is(j.error, null);
  t.is(j.tcp.connected, true);
});

test('TLS server, human screen: each step on its line, no colour codes when not a TTY', async (t) => {
  const r = await rpctls(['probe', `localhost:${tls.port}`, '--ca', f.ca]);
  t.is(r.code, 0, r.stderr);
  for (const re of [/TCP connect\s+ok/, /AUTH_TLS probe\s+STARTTLS/, /TLS\s+TLSv1\.3/, /ALPN\s+offered sunrpc, selected sunrpc/,
    /subject CN=localhost/, /SANs\s+DNS:localhost/, /verify\s+ok/, /auth mode\s+tls/, /kernel offload\s+TX (kernel|userspace)/, /NULL in TLS\s+ok/, /result: TLS ok/]) {
    t.regex(r.stdout, re);
  }
  t.false(r.stdout.includes('\x1b['));
});

test('mutual TLS with --cert/--key: authMode mtls', async (t) => {
  const r = await rpctls(['probe', `127.0.0.1:${mtls.port}`, '--ca', f.ca, '--cert', f.clientCert, '--key', f.clientKey, '--json']);
  t.is(r.code, 0, r.stderr);
  t.is(json(r).tls.authMode, 'mtls');
});

test('plain server: exit 4 (no STARTTLS), the exact denial reply', async (t) => {
  const r = await rpctls(['probe', `127.0.0.1:${plain.port}`, '--json']);
  t.is(r.code, 4);
  const j = json(r);
  t.false(j.starttls);
  t.is(j.tls, null);
  t.is(j.nullCall, null, 'no TLS: no NULL call inside it');
  t.is(j.probeReply.replyStat, 'MSG_DENIED');
  t.is(j.probeReply.authStat, 'AUTH_REJECTEDCRED');
  t.is(j.error.code, 'ERR_RPC_TLS_NOT_OFFERED');
  t.is(j.error.authStat, 'AUTH_REJECTEDCRED');
  const human = await rpctls(['probe', `127.0.0.1:${plain.port}`]);
  t.is(human.code, 4);
  t.regex(human.stdout, /AUTH_TLS probe\s+no STARTTLS\s+\(MSG_DENIED AUTH_ERROR AUTH_REJECTEDCRED\)/);
  t.regex(human.stderr, /\[ERR_RPC_TLS_NOT_OFFERED\]/);
  t.regex(human.stderr, /hint: .*--tls/);
});

test('wrong-name certificate: exit 5 with the certificate shown and "hostname mismatch"; --insecure gives 0', async (t) => {
  const byIp = await rpctls(['probe', `127.0.0.1:${wrong.port}`, '--ca', f.ca, '--json']);
  t.is(byIp.code, 5);
  t.is(json(byIp).certificate.verifyError, 'IP address mismatch');
  const r = await rpctls(['probe', `localhost:${wrong.port}`, '--ca', f.ca, '--json']);
  t.is(r.code, 5);
  const j = json(r);
  t.true(j.starttls);
  t.is(j.certificate.subject, 'CN=elsewhere.example');
  t.false(j.certificate.verified);
  t.is(j.certificate.verifyError, 'hostname mismatch');
  t.is(j.error.code, 'ERR_TLS_CERT_VERIFY');
  const human = await rpctls(['probe', `localhost:${wrong.port}`, '--ca', f.ca]);
  t.is(human.code, 5);
  t.regex(human.stdout, /verify\s+FAILED: hostname mismatch/);
  const insecure = await rpctls(['probe', `127.0.0.1:${wrong.port}`, '--ca', f.ca, '--insecure', '--json']);
  t.is(insecure.code, 0, insecure.stderr);
  t.false(json(insecure).certificate.verified);
  // --servername naming the certificate's name makes it verify.
  const named = await rpctls(['probe', `127.0.0.1:${wrong.port}`, '--ca', f.ca, '--servername', 'elsewhere.example', '--json']);
  t.is(named.code, 0, named.stderr);
  t.true(json(named).certificate.verified);
});

test('untrusted CA: exit 5, verify error from OpenSSL', async (t) => {
  const r = await rpctls(['probe', `127.0.0.1:${tls.port}`, '--json']);
  t.is(r.code, 5);
  t.regex(json(r).certificate.verifyError, /unable to (get local issuer|verify the first) certificate/);
});

test('TLS up but the program is not served: NULL inside TLS fails, exit 1', async (t) => {
  const r = await rpctls(['probe', `127.0.0.1:${tls.port}`, '--ca', f.ca, '--program', '0x20000077', '--version', '1', '--json']);
  t.is(r.code, 1);
  const j = json(r);
  t.true(j.starttls);
  t.is(j.tls.version, 'TLSv1.3');
  t.is(j.nullRttMs, null);
  t.is(j.error.code, 'ERR_RPC_PROG_UNAVAIL');
  t.like(j.nullCall, { ok: false, ms: null, error: { code: 'ERR_RPC_PROG_UNAVAIL', acceptStat: 'PROG_UNAVAIL' } });
  const human = await rpctls(['probe', `127.0.0.1:${tls.port}`, '--ca', f.ca, '--program', '0x20000077', '--version', '1']);
  t.is(human.code, 1);
  t.regex(human.stdout, /TLS\s+TLSv1\.3/);
  t.regex(human.stdout, /NULL in TLS\s+FAILED\s+.*\[ERR_RPC_PROG_UNAVAIL\]/);
  t.regex(human.stdout, /result: failed \(exit 1\)/);
  // The same failure under a certificate that does not verify: the certificate (the earlier step)
  // decides the exit status and `error`; the NULL call's own error stays in nullCall.
  const both = json(await rpctls(['probe', `localhost:${wrong.port}`, '--ca', f.ca, '--program', '0x20000077', '--version', '1', '--json']));
  t.is(both.exitCode, 5);
  t.is(both.error.code, 'ERR_TLS_CERT_VERIFY');
  t.is(both.nullCall.error.code, 'ERR_RPC_PROG_UNAVAIL');
});

test('unreachable: exit 3 with ECONNREFUSED rendered', async (t) => {
  const port = await closedPort();
  const r = await rpctls(['probe', `127.0.0.1:${port}`, '--json']);
  t.is(r.code, 3);
  const j = json(r);
  t.is(j.error.code, 'ERR_RPC_CONNECT');
  t.is(j.tcp.connected, false);
  const human = await rpctls(['probe', `[::1]:${port}`]);
  t.is(human.code, 3);
  t.regex(human.stderr, /cannot connect to ::1:\d+ \(ECONNREFUSED\) \[ERR_RPC_CONNECT\]/);
});

test('usage errors exit 2 with precise messages; --help exits 0', async (t) => {
  const cases: [string[], RegExp][] = [
    [['probe', 'x', '--bogus'], /unknown flag --bogus/],
    [['probe', 'x', '--ca'], /--ca needs a value <file>/],
    [['probe', 'x', '--ca', '--json'], /--ca needs a value/],
    [['probe', 'x', '--program', 'nfs'], /--program must be an integer from 0 to 4294967295; got "nfs"/],
    [['probe', 'x', '--timeout', '0'], /--timeout must be an integer from 1/],
    [['probe', 'host:99999'], /port must be an integer from 1 to 65535; got "99999"/],
    [['probe', 'fe80::1:2049x'], /\[addr\]:port/],
    [['probe'], /missing <host>\[:<port>\]/],
    [['probe', 'x', 'y'], /unexpected argument "y"/],
    [['probe', 'x', '--ca', '/nonexistent/ca.pem'], /cannot read --ca \/nonexistent\/ca.pem: ENOENT/],
    [['probe', 'x', '--cert', f.clientCert], /--cert and --key go together/],
    [['probe', 'x', '--json=1'], /--json takes no value/],
  ];
  for (const [args, re] of cases) {
    const r = await rpctls(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
  }
  const help = await rpctls(['probe', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /usage: rpctls probe <host>\[:<port>\]/);
  t.regex(help.stdout, /--servername <name>/);
});

test('H78 a client certificate the server does not trust: exit 5 (not 1), the server\'s alert or the reset explained by a hint', async (t) => {
  const other = pkiFiles(); // another CA: its client certificate is not trusted by `mtls`
  const args = ['probe', `127.0.0.1:${mtls.port}`, '--ca', f.ca, '--cert', other.clientCert, '--key', other.clientKey];
  const r = await rpctls([...args, '--json']);
  t.is(r.code, 5, r.stderr);
  const j = json(r);
  t.log(`${j.error.code}: ${j.error.message}`);
  // The alert usually arrives; a reset may overtake it (the server closes with our data unread).
  if (j.error.code === 'ERR_TLS_ALERT') t.regex(j.error.message, /unknown_ca/);
  else t.like(j.error, { code: 'ERR_TLS_SYSCALL', errnoName: 'ECONNRESET' });
  t.is(j.nullCall.ok, false, 'the refusal came under the NULL call');
  const human = await rpctls(args);
  t.is(human.code, 5);
  t.regex(human.stdout + human.stderr, /hint:.*client certificate/);
  t.regex(human.stdout, /NULL in TLS\s+FAILED\s+.*\[ERR_TLS_/);
});

test('a --ca that is not PEM is a usage error (exit 2) before any connection', async (t) => {
  const port = await closedPort();
  // package.json is no certificate; the closed port shows nothing was attempted (that would be exit 3).
  const r = await rpctls(['probe', `127.0.0.1:${port}`, '--ca', new URL('../../package.json', import.meta.url).pathname]);
  t.is(r.code, 2);
  t.regex(r.stderr, /--ca .*package\.json is not PEM \(no "-----BEGIN" line\)/);
});
