// RFC 8449 record_size_limit against GnuTLS (gnutls-cli/gnutls-serv --recordsize, as tlshd's GnuTLS
// announces it to the kernel's peers): a relay reads the limit out of the handshake and measures every
// record the other side sends after it. In kernel mode the kernel cuts the records (TLS_TX_MAX_PAYLOAD_LEN,
// Linux >= 6.19); a kernel without it leaves the session in userspace and says why; in userspace the
// writes are cut. Without a small limit, full 16 KiB records flow (the control).
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';

import { TlsContext, connectTlsStream, loadNative, type TlsStream } from '../../src/tls/index.js';
import { haveCommand } from '../helpers/tools.js';
import { expectKtls, makeCerts } from '../native/helpers.js';

const certs = makeCerts();
const PAYLOAD = 96 * 1024;
const TAG = 16; // AES-GCM and ChaCha20-Poly1305

/** Extension 28's value in a ClientHello or EncryptedExtensions-free ServerHello flight, or null. */
function clientHelloLimit(record: Buffer): number | null {
  // record header 5, handshake header 4, version 2, random 32
  let p = 5 + 4 + 2 + 32;
  p += 1 + record[p]!; // session id
  p += 2 + record.readUInt16BE(p); // cipher suites
  p += 1 + record[p]!; // compression methods
  const end = p + 2 + record.readUInt16BE(p);
  for (p += 2; p + 4 <= end; ) {
    const type = record.readUInt16BE(p);
    const length = record.readUInt16BE(p + 2);
    if (type === 28 && length === 2) return record.readUInt16BE(p + 4);
    p += 4 + length;
  }
  return null;
}

interface Relay {
  port: number;
  /** The first record the connecting side sent (its ClientHello). */
  firstRecord: () => Buffer | undefined;
  /** Lengths of the application_data records (type 23) the accepting side sent. */
  fromServer: number[];
  close: () => void;
}

/** A TCP relay that splits the server-to-client stream into TLS records. */
async function relay(target: number): Promise<Relay> {
  let first: Buffer | undefined;
  const fromServer: number[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.push(client, upstream);
    let fromClient = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (!first) {
        fromClient = Buffer.concat([fromClient, chunk]);
        if (fromClient.length >= 5 && fromClient.length >= 5 + fromClient.readUInt16BE(3)) first = fromClient.subarray(0, 5 + fromClient.readUInt16BE(3));
      }
      upstream.write(chunk);
    });
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
        const length = pending.readUInt16BE(3);
        if (pending[0] === 23) fromServer.push(length);
        pending = pending.subarray(5 + length);
      }
      client.write(chunk);
    });
    for (const s of [client, upstream]) s.on('error', () => undefined);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    firstRecord: () => first,
    fromServer,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

/** Our server: sends PAYLOAD bytes once secure. Resolves its stream when a client has connected. */
async function ourServer(): Promise<{ port: number; stream: Promise<TlsStream>; close: () => void }> {
  const context = new TlsContext({ role: 'server', cert: certs.serverCert, key: certs.serverKey });
  let resolveStream!: (s: TlsStream) => void;
  let rejectStream!: (e: Error) => void;
  const stream = new Promise<TlsStream>((resolve, reject) => ((resolveStream = resolve), (rejectStream = reject)));
  const server = net.createServer((socket) => {
    connectTlsStream(socket, { context }).then((s) => {
      s.on('error', () => undefined);
      s.write(Buffer.alloc(PAYLOAD, 0x61));
      resolveStream(s);
    }, rejectStream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, stream, close: () => server.close() };
}

function gnutls(tool: 'gnutls-cli' | 'gnutls-serv', args: string[]): ChildProcess {
  const child = spawn(tool, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  child.on('error', () => undefined);
  return child;
}

const kernelFeatures = (): { txMaxPayloadLen: string | null } =>
  (loadNative() as unknown as { kernelTlsFeatures(): { txMaxPayloadLen: string | null } }).kernelTlsFeatures();

for (const recordsize of [1000, 0]) {
  const label = recordsize ? `gnutls-cli --recordsize=${recordsize}` : 'gnutls-cli with its default limit (the control)';
  test.serial(`our server -> ${label}: every record fits the limit the client announced`, async (t) => {
    if (!haveCommand('gnutls-cli')) return t.fail('gnutls-cli is missing (apt-get install gnutls-bin)');
    const server = await ourServer();
    const r = await relay(server.port);
    const args = ['--insecure', '--priority=NORMAL:-VERS-ALL:+VERS-TLS1.3', '--port', String(r.port), ...(recordsize ? [`--recordsize=${recordsize}`] : []), '127.0.0.1'];
    const cli = gnutls('gnutls-cli', args);
    let stderr = '';
    cli.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const stream = await server.stream;
      const overhead = 1 + TAG;
      await waitFor(() => r.fromServer.reduce((sum, n) => sum + n - overhead, 0) >= PAYLOAD, 20_000, `${PAYLOAD} bytes through the relay`);
      const announced = clientHelloLimit(r.firstRecord()!);
      const info = stream.tlsInfo!;
      t.is(info.recordSizeLimit, announced === null ? null : Math.min(announced, 16385), 'tlsInfo.recordSizeLimit is what the client announced');
      const largest = Math.max(...r.fromServer);
      if (recordsize) {
        t.truthy(announced, 'gnutls-cli announced record_size_limit');
        t.true(announced! <= recordsize + 1, `announced ${announced}`);
        // TLSInnerPlaintext (content + type byte) within the limit, plus the AEAD tag.
        t.true(largest <= announced! + TAG, `largest record ${largest}, limit ${announced}`);
        t.true(r.fromServer.length >= Math.floor(PAYLOAD / (announced! - 1)), `${r.fromServer.length} records`);
      } else {
        t.true(largest > 4096 + TAG, `full-size records flow without a small limit (largest ${largest})`);
      }
      const { offload } = info;
      if (!expectKtls) {
        t.false(offload.tx);
      } else if (!recordsize || kernelFeatures().txMaxPayloadLen === 'ok') {
        t.true(offload.tx && offload.rx, `kernel records (${offload.reason})`);
      } else {
        // Linux < 6.19: the limit cannot be given to the kernel, so the session stays in userspace.
        t.false(offload.tx);
        t.regex(offload.reason ?? '', /record_size_limit \(\d+\) needs TLS_TX_MAX_PAYLOAD_LEN \(Linux >= 6\.19\)/);
      }
      t.log(`${label}: announced ${announced}, ${r.fromServer.length} records, largest ${largest}, offload ${offload.tx ? 'kernel' : `userspace (${offload.reason})`}`);
      stream.destroy();
    } catch (error) {
      t.log(stderr.slice(-2000));
      throw error;
    } finally {
      cli.kill();
      r.close();
      server.close();
    }
  });
}

test.serial('our client -> gnutls-serv --recordsize=512: what the client sends fits the server\'s limit', async (t) => {
  if (!haveCommand('gnutls-serv')) return t.fail('gnutls-serv is missing (apt-get install gnutls-bin)');
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  const serv = gnutls('gnutls-serv', [
    '--echo', '--recordsize=512', '--priority=NORMAL:-VERS-ALL:+VERS-TLS1.3',
    '--x509certfile', join(certs.dir, 'server.pem'), '--x509keyfile', join(certs.dir, 'server.key'), '--port', String(port),
  ]);
  let stderr = '';
  serv.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    let socket: net.Socket | undefined;
    for (let i = 0; i < 200 && !socket; i++) {
      socket = await new Promise<net.Socket | undefined>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s)).on('error', () => resolve(undefined));
      });
      if (!socket) await new Promise((r) => setTimeout(r, 50));
    }
    if (!socket) return t.fail('gnutls-serv did not listen');
    const context = new TlsContext({ role: 'client', ca: certs.ca, alpn: 'off' });
    const stream = await connectTlsStream(socket, { context, servername: 'localhost' });
    const info = stream.tlsInfo!;
    t.true(info.recordSizeLimit !== null && info.recordSizeLimit <= 513, `server announced ${info.recordSizeLimit}`);
    const echoed: Buffer[] = [];
    let received = 0;
    stream.on('data', (d: Buffer) => {
      echoed.push(d);
      received += d.length;
    });
    const message = Buffer.alloc(4000, 0x62);
    message[message.length - 1] = 0x0a; // gnutls-serv --echo answers each line
    stream.write(message);
    await waitFor(() => received >= message.length, 30_000, 'the echo');
    // GnuTLS refuses any record above its limit (record_overflow): the whole echo back proves they fit.
    t.deepEqual(Buffer.concat(echoed).subarray(0, message.length), message);
    t.log(`gnutls-serv announced ${info.recordSizeLimit}; offload ${info.offload.tx ? 'kernel' : `userspace (${info.offload.reason})`}`);
    stream.destroy();
  } catch (error) {
    t.log(stderr.slice(-2000));
    throw error;
  } finally {
    serv.kill();
  }
});
