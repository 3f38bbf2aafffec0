// `rpctls agent` as a user meets it on a machine without the kernel's handshake upcall (this host,
// CI): usage and configuration mistakes exit 2 naming the file and line; a kernel without
// net/handshake exits 1 and says what is missing. The handshakes themselves: test/agent/, and the
// interop harness against Linux 6.12.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { rpctls } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rpctls-agent-cli-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

test('agent --help, and usage errors exit 2', async (t) => {
  const help = await rpctls(['agent', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /usage: rpctls agent \[--config <file>\] \[--once\]/);
  t.regex(help.stdout, /x509\.truststore/);
  t.regex(help.stdout, /Default: \/etc\/tlshd\/config \(tlshd 1\.4\), else the old \/etc\/tlshd\.conf/);
  const unknown = await rpctls(['agent', '--config', 'x', '--bogus']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /--bogus/);
});

test('agent without --config reads /etc/tlshd/config (absent here: exit 2 naming it)', async (t) => {
  if (existsSync('/etc/tlshd/config') || existsSync('/etc/tlshd.conf')) {
    t.pass('this host has a tlshd configuration: the path choice is covered by test/agent/agent.test.ts');
    return;
  }
  const none = await rpctls(['agent']);
  t.is(none.code, 2);
  t.regex(none.stderr, /\/etc\/tlshd\/config: cannot read: ENOENT/);
});

test('agent: a typo in the configuration is a warning naming the nearest key, not an error', async (t) => {
  const file = join(dir, 'typo.conf');
  writeFileSync(file, '[authenticate.client]\nx509.trustsotre = /etc/ca.pem\n');
  const r = await rpctls(['agent', '--config', file, '--once'], { timeout: 20_000 });
  t.not(r.code, 2, r.stderr);
  t.regex(r.stderr, /"level":"warn","msg":"\[authenticate\.client\] unknown key x509\.trustsotre \(line 2\): did you mean x509\.truststore\? \(ignored\)"/);
});

test('agent configuration errors exit 2 with file:line', async (t) => {
  const missing = await rpctls(['agent', '--config', join(dir, 'nope.conf')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nope\.conf: cannot read: ENOENT/);
  const file = join(dir, 'bad.conf');
  writeFileSync(file, '[authenticate.server]\nx509.certificate = /nonexistent/server.pem\nx509.private_key = /nonexistent/server.key\n');
  const bad = await rpctls(['agent', '--config', file]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /bad\.conf:2: x509\.certificate \/nonexistent\/server\.pem: ENOENT/);
});

test('agent on a kernel without net/handshake: exit 1, says what the kernel lacks', async (t) => {
  const file = join(dir, 'empty.conf');
  writeFileSync(file, '[authenticate.client]\n');
  const r = await rpctls(['agent', '--config', file, '--once'], { timeout: 20_000 });
  if (r.code === 1 && /no TLS handshake upcall/.test(r.stderr)) {
    t.regex(r.stderr, /ERR_NETLINK_NO_FAMILY/);
    t.regex(r.stderr, /"level":"warn".*no \[authenticate\.server\] x509\.certificate/, 'gaps in the configuration are warned about');
  } else {
    // A kernel with the upcall: --once waits for a request; the helper's timeout ends it.
    t.not(r.code, 2, r.stderr);
  }
});
