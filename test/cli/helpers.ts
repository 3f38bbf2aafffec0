// Drives the built binary (`node bin/rpctls.js`, as a user runs it after `npm install`) and starts the
// servers the CLI tests probe: TLS, plain, and TLS with a certificate for the wrong name.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { createCertificateAuthority, createDemoPki, issueCertificate, type DemoPki } from '../../src/cli/certs.js';
import { TEST_PROGRAM_DEFINITION } from '../../src/cli/common.js';
import { RpcServer } from '../../src/rpc/server.js';
import { createTlsServer, type RpcTlsServerOptions } from '../../src/rpc-tls/index.js';

export { expectKtls } from '../native/helpers.js';

export const BIN = new URL('../../bin/rpctls.js', import.meta.url).pathname;
export const ROOT = new URL('../../', import.meta.url).pathname;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `rpctls ...args`; never rejects, whatever the exit status. */
export function rpctls(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: options.env ?? process.env, timeout: options.timeout ?? 30_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export function json<T = Record<string, any>>(r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/** A temp dir with the PKI's PEM files, removed at exit. */
export function pkiFiles(pki: DemoPki = createDemoPki()): { dir: string; pki: DemoPki; ca: string; cert: string; key: string; clientCert: string; clientKey: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-cli-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  return {
    dir,
    pki,
    ca: file('ca.pem', pki.ca.cert),
    cert: file('server.pem', pki.server.cert),
    key: file('server.key', pki.server.key),
    clientCert: file('client.pem', pki.client.cert),
    clientKey: file('client.key', pki.client.key),
  };
}

export async function tlsServer(tls: RpcTlsServerOptions, extra: { program: number; version: number }[] = []): Promise<{ server: RpcServer; port: number }> {
  const server = createTlsServer({ tls });
  server.addProgram(TEST_PROGRAM_DEFINITION);
  for (const p of extra) server.addProgram({ ...p, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1' });
  return { server, port };
}

export async function plainServer(extra: { program: number; version: number }[] = []): Promise<{ server: RpcServer; port: number }> {
  const server = new RpcServer();
  server.addProgram(TEST_PROGRAM_DEFINITION);
  for (const p of extra) server.addProgram({ ...p, procedures: {} });
  const { port } = await server.listen({ host: '127.0.0.1' });
  return { server, port };
}

/** A server certificate from the same CA but for another name only (no localhost, no 127.0.0.1). */
export function wrongNameCert(pki: DemoPki): { cert: string; key: string } {
  const { cert, key } = issueCertificate(pki.ca, { commonName: 'elsewhere.example', dns: ['elsewhere.example'], usage: 'server' });
  return { cert, key };
}

export { createCertificateAuthority, createDemoPki };

/** A TCP port with nothing listening (bound, then closed). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  lines: string[];
  /** Resolves with the first log line matching `re` (waits for it). */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  /** Sends the signal; resolves with the exit status. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `rpctls serve --host 127.0.0.1 --port 0 ...args` and waits for its listening line. */
const live = new Set<ChildProcess>();

/** For `test.after.always` in files that use serve(): kills what failed tests left running. */
export function killLeftoverServes(): void {
  for (const child of live) child.kill('SIGKILL');
}
// One listener for every serve() (one each would pass Node's limit of 10 in a file).
process.once('exit', killLeftoverServes);

/**
 * `serve --register` registers the test program 0x20000001:1 too, which rpcbind gives to one owner at a
 * time: such serves, in any test file (ava runs files in parallel), take turns through a lock directory.
 */
async function registerTurn(): Promise<() => void> {
  const lock = join(tmpdir(), 'rpctls-test-rpcbind-register.lock');
  for (const deadline = Date.now() + 60_000; ; ) {
    try {
      mkdirSync(lock);
      return () => rmSync(lock, { recursive: true, force: true });
    } catch {
      // A holder that died without releasing (a killed worker): its lock is stale after two minutes.
      if (Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 120_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`no turn to register with rpcbind in 60 s (${lock})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export async function serve(args: readonly string[]): Promise<ServeProcess> {
  const release = args.includes('--register') ? await registerTurn() : undefined;
  const child = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (release) child.once('exit', release);
  // A test that fails before stop() would leave this child, whose pipes keep the ava worker alive.
  live.add(child);
  child.once('exit', () => live.delete(child));
  const waitFor = (re: RegExp, ms = 10_000): Promise<string> => {
    const found = lines.find((l) => re.test(l));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} in ${ms} ms; got:\n${lines.join('\n')}\nstderr: ${stderr}`)), ms);
      waiters.push({ re, resolve: (line) => { clearTimeout(timer); resolve(line); } });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`serve exited (${code}) before ${re}; output:\n${lines.join('\n')}\nstderr: ${stderr}`));
      });
    });
  };
  const first = await waitFor(/^listening /);
  const port = Number(/:(\d+)$/.exec(first)?.[1]);
  return {
    child,
    port,
    lines,
    waitFor,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
