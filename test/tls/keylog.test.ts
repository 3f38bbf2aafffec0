// SSLKEYLOGFILE: secrets are logged only when asked, through the `keylog` option or the SSLKEYLOGFILE
// environment variable (read when each TLS stream is created, lines appended like curl/Firefox do).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { PROG, Proc, VERS, startTlsServer, tlsClient } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rpctls-keylog-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

const savedEnv = process.env.SSLKEYLOGFILE;
test.afterEach.always(() => {
  if (savedEnv === undefined) delete process.env.SSLKEYLOGFILE;
  else process.env.SSLKEYLOGFILE = savedEnv;
});

interface KeylogLine {
  label: string;
  clientRandom: string;
  secret: string;
}

function parse(text: string): KeylogLine[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [label, clientRandom, secret, ...rest] = line.split(' ');
      if (!label || !clientRandom || !secret || rest.length > 0) throw new Error(`bad keylog line: ${line}`);
      return { label, clientRandom, secret };
    });
}

/** One TLS RPC session: a couple of echo calls, then both ends closed. */
async function session(clientKeylog?: (line: string) => void): Promise<void> {
  const { server, port } = await startTlsServer();
  const client = tlsClient(port, clientKeylog ? { keylog: clientKeylog } : {});
  try {
    await client.call(PROG, VERS, Proc.ECHO, Buffer.from('keylog'));
    await client.call(PROG, VERS, Proc.ECHO, Buffer.from('keylog again'));
  } finally {
    await client.close();
    await server.close();
  }
}

test.serial('SSLKEYLOGFILE set: traffic secrets of the session are appended to the file', async (t) => {
  const file = join(dir, 'env.keylog');
  writeFileSync(file, '# existing content is kept\n');
  process.env.SSLKEYLOGFILE = file;
  // The client logs through the option (which wins over the variable), the server through the file:
  // the option's lines tell the session's client_random, and each label must be in the file once.
  const fromOption: string[] = [];
  await session((line) => fromOption.push(line));

  const text = readFileSync(file, 'utf8');
  t.true(text.startsWith('# existing content is kept\n'), 'appended, not truncated');
  const lines = parse(text.split('\n').slice(1).join('\n'));
  const optionLines = parse(fromOption.join('\n'));
  const clientRandom = optionLines[0]!.clientRandom;
  t.regex(clientRandom, /^[0-9a-f]{64}$/);
  t.true(optionLines.every((l) => l.clientRandom === clientRandom));

  for (const label of ['CLIENT_TRAFFIC_SECRET_0', 'SERVER_TRAFFIC_SECRET_0']) {
    const inFile = lines.filter((l) => l.label === label && l.clientRandom === clientRandom);
    t.is(inFile.length, 1, `${label} once in the file (server only; the client used its option)`);
    const inOption = optionLines.find((l) => l.label === label);
    t.is(inFile[0]?.secret ?? 'not in file', inOption?.secret ?? 'not from option', `${label}: same secret on both ends`);
    t.regex(inFile[0]?.secret ?? '', /^[0-9a-f]{64}$/);
  }
  t.true(lines.every((l) => l.clientRandom === clientRandom), 'nothing from other sessions');
  t.true(lines.some((l) => l.label === 'CLIENT_HANDSHAKE_TRAFFIC_SECRET'));
  t.log(`${lines.length} lines in ${file}: ${lines.map((l) => l.label).join(', ')}`);

  // A second session appends its own lines after the first's.
  await session();
  const second = parse(readFileSync(file, 'utf8').split('\n').slice(1).join('\n'));
  const randoms = new Set(second.map((l) => l.clientRandom));
  t.is(randoms.size, 2, 'two sessions in the file');
  // Both ends of the second session log: each secret twice, under one client_random.
  const other = second.filter((l) => l.clientRandom !== clientRandom);
  t.is(other.filter((l) => l.label === 'CLIENT_TRAFFIC_SECRET_0').length, 2);
  t.is(other.filter((l) => l.label === 'SERVER_TRAFFIC_SECRET_0').length, 2);
});

test.serial('SSLKEYLOGFILE unset or empty, no option: nothing is written anywhere', async (t) => {
  const file = join(dir, 'unset.keylog');
  const cwdBefore = readdirSync(process.cwd());
  const dirBefore = readdirSync(dir);
  delete process.env.SSLKEYLOGFILE;
  await session();
  process.env.SSLKEYLOGFILE = '';
  await session();
  t.false(existsSync(file));
  t.deepEqual(readdirSync(dir), dirBefore);
  t.deepEqual(readdirSync(process.cwd()), cwdBefore);
});

test.serial('an unwritable SSLKEYLOGFILE does not break the connection', async (t) => {
  process.env.SSLKEYLOGFILE = join(dir, 'no-such-dir', 'x.keylog');
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning.message);
  };
  process.on('warning', onWarning);
  try {
    await session();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  t.false(existsSync(join(dir, 'no-such-dir')));
  t.true(warnings.some((m) => m.includes('SSLKEYLOGFILE')), warnings.join('; '));
});
