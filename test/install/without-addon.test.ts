/**
 * The native addon is optional: a machine without a compiler installs rpctls, and everything but TLS works.
 * RPCTLS_NATIVE_PATH pointing nowhere hides the addon from the loader, as if install could not build it.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

test('install without any compiler or node-gyp on PATH succeeds, with one line saying what is missing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, 'scripts', 'install.mjs'), join(dir, 'scripts', 'install.mjs'));
  cpSync(join(root, 'native', 'binding.gyp'), join(dir, 'native', 'binding.gyp'));
  mkdirSync(join(dir, 'bin'));
  symlinkSync(process.execPath, join(dir, 'bin', 'node'));
  const { stdout, stderr } = await run(join(dir, 'bin', 'node'), [join(dir, 'scripts', 'install.mjs')], {
    env: { PATH: join(dir, 'bin'), HOME: dir },
  });
  t.is(stdout, '');
  t.regex(stderr, /^rpctls: the TLS addon could not be built \(.*ENOENT.*\); XDR, plain RPC, rpcbind and "rpctls gen" work without it, TLS fails with ERR_TLS_NATIVE_MISSING\. To build it later: .*node-gyp rebuild/);
  t.is(stderr.trim().split('\n').length, 1);
});

/** Runs in a child with the addon hidden: XDR, the compiler, a plain typed call and UDP; then TLS's error. */
const CHILD = `
import { RpcServer, RpcClient, UdpClient, procedure, xdr, compileXdr, createTlsClient, TlsContext, RpctlsError } from './src/index.ts';
const ECHO = procedure(0x20000099, 1, 1, xdr.string(), xdr.string());
const server = new RpcServer().addProgram({ program: 0x20000099, version: 1, procedures: { 1: { args: xdr.string(), result: xdr.string(), handler: (s) => s + '!' } } });
const { port } = await server.listen({ host: '127.0.0.1', udp: true });
const tcp = new RpcClient({ port });
const udp = new UdpClient({ host: '127.0.0.1', port });
const out = { tcp: await tcp.request(ECHO, 'hi'), udp: await udp.request(ECHO, 'yo'), gen: compileXdr('struct s { int a; };').includes('export') };
for (const [what, make] of [['client', () => createTlsClient({ port: 1, tls: {}, probe: { program: 1, version: 1 } })], ['context', () => new TlsContext({ role: 'client' })]]) {
  try { make(); out[what] = 'no error'; } catch (e) { out[what] = { code: e.code, rpctls: e instanceof RpctlsError, message: e.message }; }
}
await tcp.close(); await udp.close(); await server.close();
console.log(JSON.stringify(out));
`;

test('with the addon hidden, plain RPC over TCP and UDP, XDR and the compiler work; TLS fails with ERR_TLS_NATIVE_MISSING naming how to build it', async (t) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
    cwd: root,
    env: { ...process.env, RPCTLS_NATIVE_PATH: join(tmpdir(), 'no-such-dir', 'rpctls_native.node') },
  });
  const out = JSON.parse(stdout) as Record<string, unknown>;
  t.like(out, { tcp: 'hi!', udp: 'yo!', gen: true });
  for (const what of ['client', 'context']) {
    const error = out[what] as { code: string; rpctls: boolean; message: string };
    t.is(error.code, 'ERR_TLS_NATIVE_MISSING', what);
    t.true(error.rpctls);
    t.regex(error.message, /is not built .*node-gyp rebuild --directory=node_modules\/rpctls\/native/);
  }
});

test('without the addon the CLI says so in one rendered error (no stack); gen still works', async (t) => {
  const bin = join(root, 'bin', 'rpctls.js');
  const env = { ...process.env, RPCTLS_NATIVE_PATH: join(tmpdir(), 'no-such-dir', 'rpctls_native.node'), NO_COLOR: '1' };
  const demo = await run(process.execPath, [bin, 'demo'], { env }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
  t.is(demo.code, 1);
  t.regex(demo.stderr, /native addon \(needed for TLS\) is not built .*\[ERR_TLS_NATIVE_MISSING\]/);
  t.regex(demo.stderr, /plain RPC does not/);
  t.notRegex(demo.stderr, /\n\s+at /);
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-gen-noaddon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, 'src', 'generated', 'mount.x'), join(dir, 'mount.x'));
  const gen = await run(process.execPath, [bin, 'gen', join(dir, 'mount.x'), '-o', join(dir, 'mount.ts')], { env });
  t.regex(gen.stdout, /rpctls gen: wrote .*mount\.ts/);
});
