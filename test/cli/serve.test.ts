// `rpctls serve`: the listening line, the test program's procedures, the per-connection log lines the
// interop harness asserts on, --require-tls, --register (with rpcinfo), and a clean stop on signals.
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';

import { AUTH_TLS } from '../../src/rpc/auth.js';
import { RpcClient } from '../../src/rpc/client.js';
import { procedure } from '../../src/rpc/program.js';
import { RpcbindClient } from '../../src/rpc/rpcbind.js';
import * as xdr from '../../src/xdr/codec.js';
import { createTlsClient } from '../../src/rpc-tls/index.js';
import { SOURCE_MAX } from '../../src/cli/common.js';
import { ensureRpcbind } from '../helpers/rpcbind.js';
import { expectKtls, json, killLeftoverServes, pkiFiles, rpctls, serve } from './helpers.js';

test.after.always(killLeftoverServes);

const run = promisify(execFile);

const P = 0x20000001;
const ECHO = procedure(P, 1, 1, xdr.opaque(), xdr.opaque());
const SINK = procedure(P, 1, 2, xdr.opaque(), xdr.uint);
const SOURCE = procedure(P, 1, 3, xdr.uint, xdr.opaque());

test('plain serve: listening line first, ECHO/SINK/SOURCE, probe refused and logged, SIGTERM stops it with 0', async (t) => {
  const s = await serve([]);
  t.regex(s.lines[0] as string, /^listening 127\.0\.0\.1:\d+$/);
  t.true(s.port > 0);
  const client = new RpcClient({ host: '127.0.0.1', port: s.port, timeout: 5000 });
  t.deepEqual(await client.request(ECHO, Buffer.from('abc')), Buffer.from('abc'));
  t.is(await client.request(SINK, Buffer.alloc(70_000)), 70_000);
  t.is((await client.request(SOURCE, 5)).length, 5);
  t.is((await client.request(SOURCE, SOURCE_MAX + 12345)).length, SOURCE_MAX, 'SOURCE is capped');
  await client.close();
  await s.waitFor(/^conn 1 127\.0\.0\.1:\d+ closed probe=none tls=none calls=4$/);

  const prober = new RpcClient({ host: '127.0.0.1', port: s.port, timeout: 5000 });
  const reply = await (await prober.connect()).callForReply(100003, 4, 0, undefined, { auth: AUTH_TLS });
  t.is(reply.authStat, 2, 'AUTH_REJECTEDCRED: no TLS here');
  await prober.close();
  t.regex(await s.waitFor(/^conn 2 .* probe /), /probe program=100003 version=4 procedure=0 answer=AUTH_REJECTEDCRED$/);
  const ping = await rpctls(['ping', `127.0.0.1:${s.port}`, '--tls', '--program', String(P), '--version', '1', '--insecure', '--count', '1']);
  t.is(ping.code, 4, 'no STARTTLS from a plain serve');

  t.is(await s.stop('SIGTERM'), 0);
  t.true(s.lines.includes('stopping signal=SIGTERM'));
  t.is(s.lines.at(-1), 'stopped');
});

test('TLS serve with --program 100003:4: probe, tls and call lines; --write-ca lets probe verify; SIGINT', async (t) => {
  const f = pkiFiles();
  const caFile = join(f.dir, 'written-ca.pem');
  const s = await serve(['--tls', '--program', '100003:4', '--write-ca', caFile]);
  t.regex(await s.waitFor(/^serving /), /programs=536870913:1,100003:4 tls=on cert=self-signed/);
  t.regex(readFileSync(caFile, 'utf8'), /BEGIN CERTIFICATE/);

  const r = await rpctls(['probe', `127.0.0.1:${s.port}`, '--ca', caFile, '--json']);
  t.is(r.code, 0, r.stderr);
  t.true(json(r).certificate.verified);
  t.regex(await s.waitFor(/ probe program=100003/), /^conn 1 127\.0\.0\.1:\d+ probe program=100003 version=4 procedure=0 answer=STARTTLS$/);
  const tlsLine = await s.waitFor(/^conn 1 .* tls /);
  t.regex(tlsLine, /tls version=TLSv1\.3 cipher=TLS_\w+ alpn=sunrpc authMode=tls offload\.tx=(true|false) offload\.rx=(true|false) offload\.reason=/);
  t.true(tlsLine.includes(`offload.tx=${expectKtls}`));
  t.regex(await s.waitFor(/^conn 1 .* call /), /call program=100003 version=4 procedure=0 tls=yes$/);
  t.regex(await s.waitFor(/^conn 1 .* closed /), /closed probe=STARTTLS tls=TLSv1\.3 authMode=tls offload\.tx=\w+ offload\.rx=\w+ offload\.reason=.* calls=1$/);

  // Calls to the test program are not logged without --verbose; a failed handshake is.
  const wrongCa = await rpctls(['ping', `127.0.0.1:${s.port}`, '--tls', '--program', String(P), '--version', '1', '--count', '1']);
  t.is(wrongCa.code, 5);
  t.regex(await s.waitFor(/^conn 2 .* (tls-failed|closed)/), /conn 2 /);
  await s.waitFor(/^conn 2 .* closed .*tls=(failed|none)/);

  t.is(await s.stop('SIGINT'), 0);
  t.true(s.lines.includes('stopping signal=SIGINT'));
  t.false(s.lines.some((l) => / call program=536870913 /.test(l)), 'test-program calls are quiet by default');
});

test('--cert/--key/--ca with --require-tls and --verbose: mtls, TOOWEAK for plaintext, every call logged', async (t) => {
  const f = pkiFiles();
  const s = await serve(['--tls', '--cert', f.cert, '--key', f.key, '--ca', f.ca, '--require-tls', '--verbose']);
  const plain = new RpcClient({ host: '127.0.0.1', port: s.port, timeout: 5000 });
  const denied = await t.throwsAsync(plain.request(ECHO, Buffer.from('x')));
  t.is((denied as { code?: string }).code, 'ERR_RPC_AUTH_TOOWEAK');
  await plain.close();
  t.regex(await s.waitFor(/ call .*answer=/), /call program=536870913 version=1 procedure=1 tls=no answer=AUTH_TOOWEAK$/);

  const client = createTlsClient({
    host: '127.0.0.1', port: s.port, probe: { program: P, version: 1 },
    tls: { ca: f.pki.ca.cert, cert: f.pki.client.cert, key: f.pki.client.key, servername: 'localhost' },
  });
  t.deepEqual(await client.request(ECHO, Buffer.from('inside')), Buffer.from('inside'));
  await client.close();
  t.regex(await s.waitFor(/^conn 2 .* tls /), /authMode=mtls peer="CN=rpctls client"/);
  t.regex(await s.waitFor(/^conn 2 .* call /), /call program=536870913 version=1 procedure=1 tls=yes$/);
  t.is(await s.stop(), 0);
});

test('--require-client-cert: a client without a certificate fails the handshake, one with it gets in; needs --ca', async (t) => {
  const f = pkiFiles();
  const usage = await rpctls(['serve', '--tls', '--cert', f.cert, '--key', f.key, '--require-client-cert']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /--require-client-cert needs --ca <file>/);
  const s = await serve(['--tls', '--cert', f.cert, '--key', f.key, '--ca', f.ca, '--require-client-cert']);
  t.regex(await s.waitFor(/client-certs=/), /client-certs=required$/);
  const tls = (extra: object) => createTlsClient({
    host: '127.0.0.1', port: s.port, probe: { program: P, version: 1 }, tls: { ca: f.pki.ca.cert, servername: 'localhost', ...extra },
  });
  const anonymous = tls({});
  // The server's alert, or the reset when it closes first: a TLS error or the connection's loss.
  const refused = await t.throwsAsync(anonymous.request(ECHO, Buffer.from('x')));
  t.regex(String((refused as { code?: string }).code), /^ERR_(TLS_|RPC_CONNECTION_CLOSED)/);
  anonymous.destroy();
  const mutual = tls({ cert: f.pki.client.cert, key: f.pki.client.key });
  t.deepEqual(await mutual.request(ECHO, Buffer.from('in')), Buffer.from('in'));
  await mutual.close();
  t.is(await s.stop(), 0);
});

// Serial: every `serve --register` also registers the test program 0x20000001:1, which rpcbind gives
// to one owner at a time.
test.serial('--register: rpcbind lists the programs, rpcinfo shows starttls yes; unregistered on stop', async (t) => {
  await ensureRpcbind();
  const prog = 0x20000000 + 0x7000 + (process.pid % 0x1000);
  const s = await serve(['--tls', '--register', '--program', `${prog}:3`]);
  t.regex(await s.waitFor(/^serving /), / registered/);
  const info = await rpctls(['rpcinfo', '127.0.0.1', '--json']);
  t.is(info.code, 0, info.stderr);
  const rows = json<{ program: number; version: number; port: number; starttls: boolean | null }[]>(info);
  t.like(rows.find((r) => r.program === prog && r.version === 3), { port: s.port, starttls: true });
  const human = await rpctls(['rpcinfo']);
  t.regex(human.stdout, new RegExp(`${prog}\\s+3 tcp\\s+${s.port}  yes`));
  t.is(await s.stop(), 0);
  const rpcb = RpcbindClient.create({});
  t.is(await rpcb.getPort(prog, 3), 0, 'unregistered');
  await rpcb.close();
});

test.serial('serve --tls: rpcinfo (libtirpc) NULL calls and rpctls rpcinfo\'s probe-only connections are logged as such, never as TLS failures', async (t) => {
  await ensureRpcbind();
  const prog = 0x20000000 + 0x6000 + (process.pid % 0x1000);
  const s = await serve(['--tls', '--register', '--program', `${prog}:3`]);
  await s.waitFor(/^serving .* registered/);
  const lo = s.port & 0xff;
  const hi = s.port >> 8;
  // libtirpc's rpcinfo: through rpcbind (-T tcp host prog vers), and a direct call to our universal address.
  const viaRpcbind = await run('rpcinfo', ['-T', 'tcp', '127.0.0.1', String(prog), '3']);
  t.regex(viaRpcbind.stdout, new RegExp(`program ${prog} version 3 ready and waiting`));
  const direct = await run('rpcinfo', ['-a', `127.0.0.1.${hi}.${lo}`, '-T', 'tcp', String(prog), '3']);
  t.regex(direct.stdout, /ready and waiting/);
  // rpctls rpcinfo probes each registered TCP program with AUTH_TLS, gets STARTTLS and leaves.
  const info = await rpctls(['rpcinfo', '127.0.0.1', '--json']);
  t.is(info.code, 0, info.stderr);
  t.like(json<{ program: number; version: number; starttls: boolean }[]>(info).find((r) => r.program === prog && r.version === 3), { starttls: true });
  // And a probe of ours through a direct RpcClient that destroys the connection after the reply (a reset).
  const prober = new RpcClient({ host: '127.0.0.1', port: s.port, timeout: 5000 });
  t.true((await (await prober.connect()).callForReply(prog, 3, 0, undefined, { auth: AUTH_TLS })).verf?.body.equals(Buffer.from('STARTTLS')));
  prober.destroy();
  // Two plain NULL calls (rpcinfo) and at least two probe-only connections (rpctls rpcinfo's and ours).
  const closed = async (re: RegExp, n: number): Promise<string[]> => {
    for (let i = 0; i < 50 && s.lines.filter((l) => re.test(l)).length < n; i++) await new Promise((r) => setTimeout(r, 100));
    return s.lines.filter((l) => re.test(l));
  };
  t.is((await closed(new RegExp(`call program=${prog} version=3 procedure=0 tls=no$`), 2)).length, 2);
  const probeOnly = await closed(/ closed probe=STARTTLS tls=probe-only calls=0$/, 2);
  t.true(probeOnly.length >= 2, s.lines.join('\n'));
  t.false(s.lines.some((l) => / tls-failed | tls=failed | error=ERR_TLS_/.test(l)), s.lines.join('\n'));
  t.is(await s.stop(), 0);
});

test('usage errors exit 2; a port in use exits 1', async (t) => {
  const cases: [string[], RegExp][] = [
    [['serve', '--cert', 'x'], /--cert needs --tls/],
    [['serve', '--tls', '--cert', 'x'], /--cert and --key go together/],
    [['serve', '--program', '100003'], /--program must be <prog>:<vers>/],
    [['serve', '--program', '0x20000001:1'], /given twice \(or is the test program\)/],
    [['serve', '--port', '70000'], /--port must be an integer from 0 to 65535; got "70000"/],
    [['serve', '--host', 'not an ip'], /--host must be an IP address/],
    [['serve', 'extra'], /unexpected argument "extra"/],
    [['serve', '--self-signed'], /--self-signed needs --tls/],
    [['serve', '--tls', '--self-signed', '--cert', 'c', '--key', 'k'], /--self-signed and --cert exclude each other/],
    [['serve', '--tls', '--write-ca', 'x', '--cert', 'c', '--key', 'k'], /--write-ca writes the --self-signed CA; it does not go with --cert/],
  ];
  for (const [args, re] of cases) {
    const r = await rpctls(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
  }
  const s = await serve([]);
  const busy = await rpctls(['serve', '--host', '127.0.0.1', '--port', String(s.port)]);
  t.is(busy.code, 1);
  t.regex(busy.stderr, /EADDRINUSE/);
  t.is(busy.stderr.trim().split('\n').length, 1, 'one line, not the error twice');
  t.regex(busy.stderr, /hint: pick another --port/);
  await s.stop();
  const help = await rpctls(['serve', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /SOURCE=3 uint n -> opaque<min\(n, 1048576\)>/);
});

test('--idle-timeout: a connection with nothing in flight is closed after that long (and logged); 0 is refused below', async (t) => {
  const s = await serve(['--idle-timeout', '300']);
  const client = new RpcClient({ host: '127.0.0.1', port: s.port, timeout: 5000 });
  const closed = new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
  await client.connect();
  const started = Date.now(); // before the call: the server cannot have heard from us after it
  t.deepEqual(await client.request(ECHO, Buffer.from('x')), Buffer.from('x'));
  await closed;
  const ms = Date.now() - started;
  t.true(ms >= 300 && ms < 3000, `closed after ${ms} ms`);
  await s.waitFor(/^conn 1 127\.0\.0\.1:\d+ closed /);
  await client.close();
  t.is(await s.stop('SIGTERM'), 0);
  const bad = await rpctls(['serve', '--idle-timeout', '-1']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--idle-timeout must be an integer from 0/);
});

test('serve --tls with a key that does not belong to the certificate, or the files swapped: exit 2 at start, naming the flags', async (t) => {
  const f = pkiFiles();
  const mismatch = await rpctls(['serve', '--tls', '--port', '0', '--cert', f.cert, '--key', f.clientKey]);
  t.is(mismatch.code, 2);
  t.regex(mismatch.stderr, /^rpctls serve: --key must be the private key of --cert/);
  const swapped = await rpctls(['serve', '--tls', '--port', '0', '--cert', f.key, '--key', f.cert]);
  t.is(swapped.code, 2);
  t.regex(swapped.stderr, /^rpctls serve: --cert must be a PEM certificate/);
  t.notRegex(mismatch.stderr + swapped.stderr, /at \w+ \(/, 'no stack trace');
});
