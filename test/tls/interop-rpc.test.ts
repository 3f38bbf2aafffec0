// Interop with tools that know TLS but not RPC-with-TLS:
// - `openssl s_client` against createTlsServer, through a relay that does the plaintext AUTH_TLS probe
//   and reads the STARTTLS reply first (s_client cannot), then splices bytes both ways. s_client must
//   verify the server, negotiate TLSv1.3 with ALPN "sunrpc", and an RPC ECHO typed into it is answered.
// - a tshark capture of a short TLS RPC exchange, decrypted with the keylog option's lines. Wireshark
//   4.0 has no RPC-with-TLS support (its "tls.port" table refuses rpc, and the rpc dissector takes the
//   whole TCP conversation after the probe), so tshark decrypts to `data` and the test parses the RPC
//   records out of the decrypted bytes; the plaintext probe/STARTTLS exchange is checked with -Y rpc.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { toolsPresent } from '../helpers/tools.js';

import type { RpcConnection } from '../../src/rpc/connection.js';
import type { TlsInfo } from '../../src/tls/index.js';
import { tlsInfoOf } from '../../src/rpc-tls/index.js';
import {
  KERNEL_OFFLOAD,
  PROBE_BYTES_TEMPLATE,
  PROG,
  Proc,
  VERS,
  expectKtls,
  makeCerts,
  startTlsReplyBytes,
  startTlsServer,
  tlsClient,
} from './helpers.js';
import { readExactly } from '../helpers/read.js';

const dir = mkdtempSync(join(tmpdir(), 'rpctls-interop-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

/**
 * A relay for TLS clients that cannot do the RPC-with-TLS probe: for each connection it connects to
 * the RPC server, sends the AUTH_TLS probe, checks the STARTTLS reply, then splices both ways. The
 * client's ClientHello waits in the accepted socket's buffer meanwhile.
 */
async function startProbeRelay(serverPort: number): Promise<{ port: number; close: () => Promise<void>; errors: Error[] }> {
  const errors: Error[] = [];
  const sockets = new Set<net.Socket>();
  const relay = net.createServer({ pauseOnConnect: true }, (downstream) => {
    sockets.add(downstream);
    const upstream = net.connect(serverPort, '127.0.0.1');
    sockets.add(upstream);
    const fail = (error: Error): void => {
      errors.push(error);
      downstream.destroy();
      upstream.destroy();
    };
    upstream.once('connect', () => {
      const xid = 0x52454c59; // "RELY"
      const probe = PROBE_BYTES_TEMPLATE(PROG, VERS);
      probe.writeUInt32BE(xid, 4);
      upstream.write(probe);
      readExactly(upstream, 36).then(([reply, excess]) => {
        if (!reply.equals(startTlsReplyBytes(xid))) throw new Error(`not a STARTTLS reply: ${reply.toString('hex')}`);
        if (excess.length > 0) throw new Error('bytes after the STARTTLS reply before the ClientHello');
        downstream.pipe(upstream);
        upstream.pipe(downstream);
        downstream.resume();
        upstream.resume();
      }).catch(fail);
    });
    upstream.on('error', fail);
    downstream.on('error', fail);
    upstream.once('close', () => downstream.destroy());
    downstream.once('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    port: (relay.address() as net.AddressInfo).port,
    errors,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        relay.close(() => resolve());
      }),
  };
}

/** A CALL record for PROG/VERS/ECHO with AUTH_NONE and raw bytes as arguments (as RpcClient sends). */
function echoCall(xid: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(44);
  let at = 4;
  for (const word of [xid, 0, 2, PROG, VERS, Proc.ECHO, 0, 0, 0, 0]) at = header.writeUInt32BE(word, at);
  header.writeUInt32BE((0x80000000 | (40 + payload.length)) >>> 0, 0);
  return Buffer.concat([header, payload]);
}

function echoReply(xid: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(28);
  let at = 4;
  for (const word of [xid, 1, 0, 0, 0, 0]) at = header.writeUInt32BE(word, at);
  header.writeUInt32BE((0x80000000 | (24 + payload.length)) >>> 0, 0);
  return Buffer.concat([header, payload]);
}

test.serial('openssl s_client through a probe relay: verified, TLSv1.3, ALPN sunrpc, an RPC echo answered', async (t) => {
  t.timeout(60_000);
  if (!toolsPresent(t, has('openssl') ? null : 'openssl is not installed')) return;
  const c = makeCerts();
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, c.ca);
  const { server, port } = await startTlsServer();
  const secured: [RpcConnection, TlsInfo][] = [];
  server.on('secureConnection', (connection: RpcConnection, info: TlsInfo) => secured.push([connection, info]));
  const relay = await startProbeRelay(port);
  try {
    const xid = 0x4f53534c; // "OSSL"
    const payload = Buffer.from('hello from openssl s_client');
    const expectedReply = echoReply(xid, payload);
    const child = spawn(
      'openssl',
      ['s_client', '-tls1_3', '-alpn', 'sunrpc', '-CAfile', caFile, '-servername', 'localhost',
        '-verify_return_error', '-connect', `127.0.0.1:${relay.port}`],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = Buffer.alloc(0);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let sent = false;
    let answered = false;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout = Buffer.concat([stdout, d]);
        // After the session block, type an RPC call into s_client; once its reply came back, hang up.
        if (!sent && stdout.includes('Verify return code:')) {
          sent = true;
          child.stdin.write(echoCall(xid, payload));
        }
        if (sent && !answered && stdout.includes(expectedReply)) {
          answered = true;
          child.stdin.end();
          resolve();
        }
      });
      void exited.then(() => resolve());
    });
    const code = await exited;
    clearTimeout(killer);
    const text = stdout.toString('latin1');
    t.log(text.split('\n').filter((l) => /Verification|New, TLS|ALPN|Protocol|Cipher is|Verify return/.test(l)).join('\n'));
    t.is(code, 0, stderr);
    t.regex(text, /Verification: OK/);
    t.regex(text, /New, TLSv1\.3, Cipher is TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)/);
    t.regex(text, /ALPN protocol: sunrpc/);
    t.regex(text, /Verify return code: 0 \(ok\)/);
    t.true(answered, 'the ECHO call typed into s_client was answered inside TLS');
    t.deepEqual(relay.errors, []);

    // The server saw (and reported) a secure connection from s_client.
    t.is(secured.length, 1);
    const [connection, info] = secured[0]!;
    t.is(info.version, 'TLSv1.3');
    t.is(info.alpn, 'sunrpc');
    t.is(info.authMode, 'tls');
    t.is(tlsInfoOf(connection), info);
    if (expectKtls) t.deepEqual(info.offload, KERNEL_OFFLOAD);
    else t.false(info.offload.tx);
  } finally {
    await relay.close();
    await server.close();
  }
});

interface RpcRecord {
  xid: number;
  msgType: number;
  body: Buffer;
}

/** Splits a decrypted byte stream into RPC records (single-fragment records, as the client sends). */
function parseRecords(stream: Buffer): RpcRecord[] {
  const out: RpcRecord[] = [];
  let at = 0;
  while (at + 4 <= stream.length) {
    const mark = stream.readUInt32BE(at);
    const length = mark & 0x7fffffff;
    if ((mark & 0x80000000) === 0 || at + 4 + length > stream.length) throw new Error(`bad record at ${at}`);
    const body = stream.subarray(at + 4, at + 4 + length);
    out.push({ xid: body.readUInt32BE(0), msgType: body.readUInt32BE(4), body });
    at += 4 + length;
  }
  if (at !== stream.length) throw new Error(`${stream.length - at} trailing bytes`);
  return out;
}

function tshark(args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test.serial('tshark: the RPC calls of a TLS session are visible decrypted with the keylog', async (t) => {
  t.timeout(120_000);
  if (!toolsPresent(t, has('tshark') ? null : 'tshark is not installed (apt-get install tshark)')) return;
  const pcap = join(dir, 'rpc-tls.pcapng');
  const keylogFile = join(dir, 'rpc-tls.keylog');
  const { server, port } = await startTlsServer();
  const capture = spawn('tshark', ['-i', 'lo', '-f', `tcp port ${port}`, '-w', pcap], { stdio: ['ignore', 'ignore', 'pipe'] });
  let captureLog = '';
  const captureExit = new Promise<number | null>((resolve) => capture.once('exit', resolve));
  const started = await new Promise<boolean>((resolve) => {
    capture.stderr.on('data', (d: Buffer) => {
      captureLog += d.toString();
      if (captureLog.includes('Capture started')) resolve(true);
    });
    void captureExit.then(() => resolve(false));
  });
  if (!started) {
    await server.close();
    t.fail(`tshark could not capture on lo: ${captureLog}`);
    return;
  }
  // "Capture started" is printed a moment before the filter is live.
  await new Promise((resolve) => setTimeout(resolve, expectKtls ? 2000 : 700));

  const lines: string[] = [];
  const client = tlsClient(port, { keylog: (line) => lines.push(line) });
  const markers = [0, 1, 2].map((i) => Buffer.from(`rpctls-capture-marker-${i}`));
  let offload: TlsInfo['offload'] | undefined;
  try {
    for (const marker of markers) t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, marker), marker);
    offload = tlsInfoOf(client.connection!)!.offload;
  } finally {
    await client.close();
    await server.close();
  }
  writeFileSync(keylogFile, `${lines.join('\n')}\n`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  capture.kill('SIGINT');
  await captureExit;
  t.log(captureLog.trim().split('\n').slice(-1)[0] ?? '');
  t.log(`client offload: ${JSON.stringify(offload)}`);
  if (expectKtls) t.deepEqual(offload, KERNEL_OFFLOAD);

  // Without the keys, the markers never appear on the wire.
  const raw = readFileSync(pcap);
  t.false(markers.some((m) => raw.includes(m)), 'payload is encrypted on the wire');

  // The plaintext part: the AUTH_TLS probe (flavor 7) and its reply, as the rpc dissector shows them.
  const plain = tshark(['-r', pcap, '-o', 'rpc.dissect_unknown_programs:TRUE', '-Y', 'rpc',
    '-T', 'fields', '-e', 'rpc.xid', '-e', 'rpc.msgtyp', '-e', 'rpc.program', '-e', 'rpc.auth.flavor'])
    .trim().split('\n').map((l) => l.split('\t'));
  t.log(`plaintext rpc: ${JSON.stringify(plain)}`);
  t.is(plain[0]?.[1], '0', 'probe is a CALL');
  t.is(plain[0]?.[2], String(PROG));
  t.true((plain[0]?.[3] ?? '').split(',').includes('7'), 'probe uses AUTH_TLS');
  t.is(plain[1]?.[0], plain[0]?.[0], 'STARTTLS reply has the probe xid');
  t.is(plain[1]?.[1], '1');

  // The TLS part, decrypted with the keylog: application data per direction, parsed as RPC records.
  const rows = tshark(['-r', pcap, '-o', `tls.keylog_file:${keylogFile}`, '-d', `tcp.port==${port},tls`,
    '-d', `tls.port==${port},data`, '-Y', 'data', '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tls.record.content_type', '-e', 'data.data'])
    .trim().split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'));
  const toServer = Buffer.concat(rows.filter((r) => r[0] !== String(port)).map((r) => Buffer.from(r[2] ?? '', 'hex')));
  const toClient = Buffer.concat(rows.filter((r) => r[0] === String(port)).map((r) => Buffer.from(r[2] ?? '', 'hex')));
  t.true(rows.every((r) => (r[1] ?? '').split(',').includes('23')), 'decrypted from application data records');
  const calls = parseRecords(toServer);
  const replies = parseRecords(toClient);
  t.is(calls.length, 3);
  t.is(replies.length, 3);
  calls.forEach((call, i) => {
    t.is(call.msgType, 0);
    t.deepEqual([2, PROG, VERS, Proc.ECHO].map((_, k) => call.body.readUInt32BE(8 + 4 * k)), [2, PROG, VERS, Proc.ECHO]);
    t.deepEqual(call.body.subarray(40), markers[i]);
    t.is(replies[i]!.xid, call.xid);
    t.is(replies[i]!.msgType, 1);
    t.deepEqual(replies[i]!.body.subarray(24), markers[i]);
  });
  t.log(`decrypted calls: ${calls.map((c) => `xid 0x${c.xid.toString(16)} "${c.body.subarray(40).toString()}"`).join(', ')}`);
});
