// `rpctls bench` and `rpctls demo` end to end, and colours: only on a TTY, never with NO_COLOR.
import test from 'ava';
import { execFile } from 'node:child_process';

import { BIN, expectKtls, json, rpctls } from './helpers.js';

test('bench --json: plain and tls side by side, with calls/s, MB/s, CPU s/GB from both processes, offload', async (t) => {
  const r = await rpctls(['bench', '--mode', 'all', '--duration', '0.3', '--size', '4096', '--inflight', '4', '--json'], { timeout: 60_000 });
  t.is(r.code, 0, r.stderr);
  const j = json(r);
  t.is(j.size, 4096);
  t.is(j.server, 'child process');
  t.deepEqual(j.results.map((x: { mode: string }) => x.mode), ['plain', 'tls']);
  for (const row of j.results) {
    t.true(row.calls > 0);
    t.is(row.errors, 0);
    t.true(row.callsPerSec > 0);
    t.true(Math.abs(row.mbPerSec - (row.callsPerSec * 4096) / 1e6) < row.mbPerSec * 0.05 + 0.01);
    t.true(row.cpuSecPerGb.client > 0);
    t.true(row.cpuSecPerGb.server > 0, 'the child reports its CPU');
  }
  t.is(j.results[1].offload.tx, expectKtls);
  t.false(j.results[0].offload.tx);
  // No progress line when stderr is not a terminal.
  t.false(r.stderr.includes('\r'));
});

test('bench table and usage errors', async (t) => {
  const r = await rpctls(['bench', '--mode', 'tls', '--duration', '0.2', '--size', '1024'], { timeout: 60_000 });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /mode\s+calls\/s\s+MB\/s\s+CPU s\/GB client\s+CPU s\/GB server\s+offload/);
  t.regex(r.stdout, /^tls\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+TX (kernel|userspace)/m);
  const bad = await rpctls(['bench', '--mode', 'fast']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--mode must be plain, tls or all; got "fast"/);
  const big = await rpctls(['bench', '--size', '2000000']);
  t.is(big.code, 2);
  t.regex(big.stderr, /--size must be an integer from 0 to 1048576/);
  const dur = await rpctls(['bench', '--duration', 'long']);
  t.is(dur.code, 2);
  t.regex(dur.stderr, /--duration must be a number/);
});

test('demo --json: every step, TLS 1.3, mutual TLS, offload as this kernel allows, exit 0', async (t) => {
  const started = Date.now();
  const r = await rpctls(['demo', '--json']);
  t.is(r.code, 0, r.stderr);
  const j = json(r);
  t.true(j.ok);
  t.is(j.error, null, 'the documented error key is there, null on success');
  t.true(j.probe.starttls);
  t.is(j.probe.reply, 'MSG_ACCEPTED SUCCESS, verifier AUTH_NONE "STARTTLS"');
  t.is(j.plaintext.refused, 'ERR_RPC_AUTH_TOOWEAK');
  t.is(j.tls.version, 'TLSv1.3');
  t.is(j.tls.authMode, 'mtls');
  t.true(j.tls.peerVerified);
  t.is(j.calls.serverAuthMode, 'mtls');
  t.is(j.offload.tx, expectKtls);
  t.deepEqual(j.bench.map((x: { mode: string }) => x.mode), ['plain', 'tls']);
  t.true(Date.now() - started < 20_000, 'quick');
});

test('demo tells the story in order, without colour codes off a TTY', async (t) => {
  const r = await rpctls(['demo']);
  t.is(r.code, 0, r.stderr);
  const order = ['certificates', 'server', 'plaintext', 'TCP', 'probe', 'STARTTLS', 'handshake', 'offload', 'calls', 'bench', 'demo done'];
  let at = -1;
  for (const word of order) {
    const next = r.stdout.indexOf(word, at + 1);
    t.true(next > at, `${word} after the previous step`);
    at = next;
  }
  t.regex(r.stdout, expectKtls ? /offload\s+kernel TLS/ : /offload\s+userspace: ENOENT/);
  t.false(r.stdout.includes('\x1b['));
});

/** Runs the command on a pseudo-terminal (util-linux script), so stdout is a TTY. */
function onTty(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve, reject) => {
    execFile('script', ['-qec', command, '/dev/null'], { env, timeout: 30_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

test('colours on a TTY, none with NO_COLOR', async (t) => {
  const { NO_COLOR: _drop, ...env } = process.env;
  const coloured = await onTty(['demo'], { ...env, TERM: 'xterm' });
  t.true(coloured.includes('\x1b[1m'), 'bold on a TTY');
  const plain = await onTty(['demo'], { ...env, TERM: 'xterm', NO_COLOR: '1' });
  t.regex(plain, /demo done/);
  t.false(plain.includes('\x1b[1m'));
});

test('bench shows a progress line on a terminal only', async (t) => {
  const out = await onTty(['bench', '--mode', 'plain', '--duration', '0.7', '--size', '1024'], { ...process.env, TERM: 'xterm' });
  t.regex(out, /\r\x1b\[K  plain \d+\.\ds\/0\.7s  \d+ calls/);
  t.regex(out, /^plain\s+\d+/m);
});
