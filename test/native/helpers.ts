// Shared fixtures for the addon tests: throwaway certificates, loopback socket pairs, data checks.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';

import { TlsContext, type TlsContextOptions, connectTlsStream, type TlsStream, type TlsStreamOptions } from '../../src/tls/index.js';

/** Inside the UML runner: kernel TLS must be used. */
export const expectKtls = process.env.RPCTLS_EXPECT_KTLS === '1';

export interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
  otherCert: string;
  otherKey: string;
  /** CN=localhost, no subjectAltName, issued by `ca`. */
  noSanCert: string;
  noSanKey: string;
  /** serverKey encrypted (AES-256) with `keyPassphrase`. */
  encryptedServerKey: string;
  keyPassphrase: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function issue(dir: string, name: string, ca: string, subject: string, extensions: string): void {
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`);
}

function selfSigned(dir: string, name: string, subject: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', subject);
}

let certs: Certs | undefined;

/** A CA, a server cert (localhost, 127.0.0.1), a client cert, and an unrelated CA with its own cert. */
export function makeCerts(): Certs {
  if (certs) return certs;
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-certs-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  selfSigned(dir, 'ca', '/CN=rpctls test CA');
  selfSigned(dir, 'other-ca', '/CN=untrusted CA');
  issue(dir, 'server', 'ca', '/CN=localhost',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,1.3.6.1.5.5.7.3.34\n');
  issue(dir, 'client', 'ca', '/CN=rpctls client',
    'extendedKeyUsage=clientAuth,1.3.6.1.5.5.7.3.33\n');
  issue(dir, 'other', 'other-ca', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  issue(dir, 'nosan', 'ca', '/CN=localhost', 'extendedKeyUsage=serverAuth\n');
  const keyPassphrase = 'rpctls test passphrase';
  openssl(dir, 'pkey', '-in', 'server.key', '-aes256', '-passout', `pass:${keyPassphrase}`, '-out', 'server-enc.key');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  certs = {
    dir,
    ca: read('ca.pem'),
    serverCert: read('server.pem'),
    serverKey: read('server.key'),
    clientCert: read('client.pem'),
    clientKey: read('client.key'),
    otherCa: read('other-ca.pem'),
    otherCert: read('other.pem'),
    otherKey: read('other.key'),
    noSanCert: read('nosan.pem'),
    noSanKey: read('nosan.key'),
    encryptedServerKey: read('server-enc.key'),
    keyPassphrase,
  };
  return certs;
}

/** A connected loopback TCP pair: [client side, server side]. */
export async function tcpPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  const serverSide = await accepted;
  server.close();
  return [client, serverSide];
}

/** Context options plus the per-connection ones, as the tests spell one side's settings. */
export type PeerOptions = Partial<Omit<TlsContextOptions, 'role'>> & { servername?: string; allowHalfOpen?: boolean };

/** Splits one side's settings into a TlsContext (built here) and the stream's own options. */
export function streamOptions(role: 'client' | 'server', options: PeerOptions): TlsStreamOptions {
  const { servername, allowHalfOpen, ...context } = options;
  const out: TlsStreamOptions = { context: new TlsContext({ role, ...context }) };
  if (servername !== undefined) out.servername = servername;
  if (allowHalfOpen !== undefined) out.allowHalfOpen = allowHalfOpen;
  return out;
}

export function serverContextOptions(extra: PeerOptions = {}): PeerOptions {
  const c = makeCerts();
  return { cert: c.serverCert, key: c.serverKey, ca: c.ca, ...extra };
}

export function clientContextOptions(extra: PeerOptions = {}): PeerOptions {
  const c = makeCerts();
  return { ca: c.ca, servername: 'localhost', ...extra };
}

/** A server side with the test certificates (a fresh TlsContext per call). */
export function serverOptions(extra: PeerOptions = {}): TlsStreamOptions {
  return streamOptions('server', serverContextOptions(extra));
}

/** A client side trusting the test CA, checking "localhost" (a fresh TlsContext per call). */
export function clientOptions(extra: PeerOptions = {}): TlsStreamOptions {
  return streamOptions('client', clientContextOptions(extra));
}

/** Both handshakes at once; settles with each side's stream or error. */
export async function tlsPair(
  client: PeerOptions = {},
  server: PeerOptions = {},
): Promise<[PromiseSettledResult<TlsStream>, PromiseSettledResult<TlsStream>]> {
  const [c, s] = await tcpPair();
  return Promise.all([
    connectTlsStream(c, clientOptions(client)).then(
      (value) => ({ status: 'fulfilled', value }) as const,
      (reason: unknown) => ({ status: 'rejected', reason }) as const,
    ),
    connectTlsStream(s, serverOptions(server)).then(
      (value) => ({ status: 'fulfilled', value }) as const,
      (reason: unknown) => ({ status: 'rejected', reason }) as const,
    ),
  ]);
}

export async function okPair(
  client: PeerOptions = {},
  server: PeerOptions = {},
): Promise<[TlsStream, TlsStream]> {
  const [c, s] = await tlsPair(client, server);
  if (c.status === 'rejected') throw c.reason;
  if (s.status === 'rejected') throw s.reason;
  return [c.value, s.value];
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads a stream to its end: the bytes' hash and count. */
export function drain(stream: Duplex): Promise<{ hash: string; length: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let length = 0;
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    stream.once('end', () => resolve({ hash: hash.digest('hex'), length }));
    stream.once('error', reject);
  });
}

/** Writes data in RPC-sized gathered pieces (writev via cork), then end(). */
export function sendAll(stream: Duplex, data: Buffer): void {
  const piece = 48 * 1024 + 7;
  for (let offset = 0; offset < data.length; offset += piece * 2) {
    stream.cork();
    stream.write(data.subarray(offset, Math.min(offset + piece, data.length)));
    if (offset + piece < data.length) stream.write(data.subarray(offset + piece, Math.min(offset + 2 * piece, data.length)));
    process.nextTick(() => stream.uncork());
  }
  stream.end();
}

export type TlsStat = Record<string, number>;

export function readTlsStat(): TlsStat | null {
  if (!existsSync('/proc/net/tls_stat')) return null;
  const stat: TlsStat = {};
  for (const line of readFileSync('/proc/net/tls_stat', 'utf8').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value) stat[key] = Number(value);
  }
  return stat;
}

/** The kernel can take new TLS keys on a live socket (Linux >= 6.14: its tls_stat has the rekey counters). */
export const kernelCanRekey = expectKtls && readTlsStat()?.TlsRxRekeyOk !== undefined;

/** `tlsInfo.offload` of a session on kernel TLS in this environment. */
export const KERNEL_OFFLOAD = { tx: true, rx: true, reason: null, rekey: kernelCanRekey } as const;

/** Reads `stream` until `expected` has arrived; resolves with all read (rejects if it ends first). */
export function readUntil(stream: NodeJS.ReadableStream, expected: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      if (text.includes(expected)) {
        stream.off('data', onData);
        resolve(text);
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.once('end', () => reject(new Error(`stream ended before "${expected}"; got "${text}"`)));
  });
}

/**
 * The port an `openssl s_server -accept 127.0.0.1:0` bound, from its "ACCEPT host:port" line (a fixed
 * random port could be in use: s_server then exits).
 */
export async function openSslAcceptPort(stdout: NodeJS.ReadableStream): Promise<number> {
  let text = await readUntil(stdout, 'ACCEPT');
  while (!/ACCEPT \S+:\d+\s/.test(text)) text += await readUntil(stdout, '\n');
  return Number(/ACCEPT \S+:(\d+)\s/.exec(text)![1]);
}
