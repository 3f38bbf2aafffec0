// `rpctls ping`: NULL calls plain and over RPC-with-TLS, with the JSON fields others script against.
import test from 'ava';

import type { RpcServer } from '../../src/rpc/server.js';
import { closedPort, expectKtls, json, pkiFiles, plainServer, rpctls, tlsServer, wrongNameCert } from './helpers.js';

const f = pkiFiles();
const T = ['--program', '0x20000001', '--version', '1'];
let tls: { server: RpcServer; port: number };
let plain: { server: RpcServer; port: number };
let wrong: { server: RpcServer; port: number };

test.before(async () => {
  tls = await tlsServer({ cert: f.pki.server.cert, key: f.pki.server.key, requireTls: true });
  plain = await plainServer();
  wrong = await tlsServer(wrongNameCert(f.pki));
});
test.after.always(async () => {
  await Promise.all([tls, plain, wrong].map((s) => s?.server.close()));
});

test('plain ping: calls, errors, callsPerSec, latency percentiles in order, offload false', async (t) => {
  const r = await rpctls(['ping', `127.0.0.1:${plain.port}`, ...T, '--count', '300', '--inflight', '4', '--json']);
  t.is(r.code, 0, r.stderr);
  const j = json(r);
  t.is(j.calls, 300);
  t.is(j.errors, 0);
  t.true(j.callsPerSec > 0);
  t.true(j.latencyMs.min > 0);
  t.true(j.latencyMs.min <= j.latencyMs.median && j.latencyMs.median <= j.latencyMs.p99);
  t.false(j.offload.tx);
  t.false(j.offload.rx);
  t.is(j.tls, null, 'no --tls: no TLS session');
});

test('TLS ping: the calls go inside TLS (the server requires it), offload as this kernel allows', async (t) => {
  const r = await rpctls(['ping', `localhost:${tls.port}`, ...T, '--tls', '--ca', f.ca, '--count', '200', '--json']);
  t.is(r.code, 0, r.stderr);
  const j = json(r);
  t.is(j.calls, 200);
  t.is(j.errors, 0);
  // The same shape as probe's `tls`.
  const probe = json(await rpctls(['probe', `localhost:${tls.port}`, ...T, '--ca', f.ca, '--json']));
  t.deepEqual(Object.keys(j.tls).sort(), Object.keys(probe.tls).sort());
  t.like(j.tls, { version: 'TLSv1.3', alpn: 'sunrpc', alpnOffered: ['sunrpc'], authMode: 'tls' });
  t.regex(j.tls.cipher, /^TLS_/);
  t.true(j.tls.handshakeMs > 0);
  t.is(j.offload.tx, expectKtls);
  t.is(j.offload.rx, expectKtls);
  const human = await rpctls(['ping', `127.0.0.1:${tls.port}`, ...T, '--tls', '--ca', f.ca, '--count', '20']);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /calls\s+20 ok, 0 failed/);
  t.regex(human.stdout, /latency\s+min [\d.]+ ms\s+median [\d.]+ ms\s+p99 [\d.]+ ms/);
  t.regex(human.stdout, /offload\s+TX (kernel|userspace), RX (kernel|userspace)/);
  t.regex(human.stdout, /TLS\s+TLSv1\.3\s+TLS_\w+\s+ALPN sunrpc\s+tls\s+handshake [\d.]+ ms/);
});

test('TLS ping --rekey-every 10: a KeyUpdate (update_requested) every 10 calls, each answered by the server; no call fails', async (t) => {
  const r = await rpctls(['ping', `localhost:${tls.port}`, ...T, '--tls', '--ca', f.ca, '--count', '101', '--rekey-every', '10', '--json']);
  t.is(r.code, 0, r.stderr);
  const j = json(r);
  t.is(j.errors, 0);
  t.deepEqual(j.keyUpdates, { sent: 10, received: 10 });
  // The kernel's counters exist from Linux 6.14 on; this process's sockets alone moved them here.
  if (j.kernelRekey) t.is(j.kernelRekey.TlsTxRekeyOk, 10 + 10, 'ours and the server\'s (same host)');
  const human = await rpctls(['ping', `localhost:${tls.port}`, ...T, '--tls', '--ca', f.ca, '--count', '5', '--rekey-every', '2']);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /rekey\s+2 KeyUpdates sent, 2 followed/);
  const plainRekey = await rpctls(['ping', `127.0.0.1:${plain.port}`, ...T, '--rekey-every', '2']);
  t.is(plainRekey.code, 2);
  t.regex(plainRekey.stderr, /--rekey-every needs --tls/);
});

test('plain ping of a server that requires TLS: every NULL still answers (requireTls leaves NULL open)', async (t) => {
  // requireTls leaves NULL open for pings and probes (README): ping without --tls works.
  const r = await rpctls(['ping', `127.0.0.1:${tls.port}`, ...T, '--count', '5', '--json']);
  t.is(r.code, 0, r.stderr);
  t.is(json(r).errors, 0);
});

test('a program the server lacks: every call fails, exit 1, the error rendered with its code', async (t) => {
  const r = await rpctls(['ping', `127.0.0.1:${plain.port}`, '--program', '0x20000077', '--version', '1', '--count', '3', '--json']);
  t.is(r.code, 1);
  const j = json(r);
  t.is(j.errors, 3);
  t.is(j.error.code, 'ERR_RPC_PROG_UNAVAIL');
  t.is(j.error.acceptStat, 'PROG_UNAVAIL');
  t.is(j.latencyMs, null, 'no success: no latency (not 0)');
  const human = await rpctls(['ping', `127.0.0.1:${plain.port}`, '--count', '1']);
  t.is(human.code, 1);
  t.regex(human.stderr, /PROG_UNAVAIL.*\[ERR_RPC_PROG_UNAVAIL\]/);
  t.regex(human.stdout, /latency    none \(no call succeeded\)/);
  t.notRegex(human.stdout, /0\.000/);
});

test('--tls against a plain server exits 4, wrong certificate 5 (ping verifies), --insecure 0, closed port 3', async (t) => {
  const noTls = await rpctls(['ping', `127.0.0.1:${plain.port}`, ...T, '--tls', '--count', '1', '--json']);
  t.is(noTls.code, 4);
  t.is(json(noTls).error.code, 'ERR_RPC_TLS_NOT_OFFERED');
  t.is(json(noTls).tls, null, 'TLS never came up');
  t.is(json(noTls).latencyMs, null, 'no call made: no latency (not zeros)');
  const bad = await rpctls(['ping', `localhost:${wrong.port}`, ...T, '--tls', '--ca', f.ca, '--count', '1', '--json']);
  t.is(bad.code, 5);
  t.is(json(bad).error.code, 'ERR_TLS_CERT_VERIFY');
  t.is(json(bad).calls, 0);
  const insecure = await rpctls(['ping', `localhost:${wrong.port}`, ...T, '--tls', '--insecure', '--count', '3', '--json']);
  t.is(insecure.code, 0, insecure.stderr);
  t.is(json(insecure).calls, 3);
  const port = await closedPort();
  const down = await rpctls(['ping', `127.0.0.1:${port}`, '--count', '1']);
  t.is(down.code, 3);
  t.regex(down.stderr, /ECONNREFUSED/);
});

test('usage errors exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['ping', 'h', '--count', '0'], /--count must be an integer from 1/],
    [['ping', 'h', '--count', '1.5'], /--count must be an integer/],
    [['ping', 'h', '--inflight'], /--inflight needs a value <n>/],
    [['ping', 'h', '--ca', f.ca], /--ca needs --tls/],
    [['ping', 'h', '--nope'], /unknown flag --nope/],
    [['ping', 'h', '-x'], /unknown flag -x/],
  ];
  for (const [args, re] of cases) {
    const r = await rpctls(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
  }
  const help = await rpctls(['ping', '-h']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--inflight <n>/);
});
