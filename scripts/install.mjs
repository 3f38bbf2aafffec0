// npm's install step for the native addon TLS needs. The package ships prebuilt binaries
// (prebuilds/linux-x64, linux-arm64; glibc): where the one for this platform loads in this Node, nothing
// is compiled. Otherwise (another platform, musl, a git checkout) the addon is built from native/. It is
// optional (XDR, plain RPC, rpcbind and the .x compiler work without it), so a machine without make or a
// C++ compiler still installs: one line says what is missing and how to build it later.
// RPCTLS_BUILD_FROM_SOURCE=1 builds even where a prebuilt binary loads.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const native = join(root, 'native');

function nodeGyp() {
  // npm puts its own node-gyp on PATH for install scripts; npm_config_node_gyp names its JS entry point.
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && existsSync(bundled)) return [process.execPath, [bundled]];
  try {
    return [process.execPath, [createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')]];
  } catch {
    return ['node-gyp', []];
  }
}

if (process.env.RPCTLS_SKIP_NATIVE_BUILD) {
  console.log('rpctls: RPCTLS_SKIP_NATIVE_BUILD is set: the TLS addon was not built (plain RPC works without it)');
  process.exit(0);
}
const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'rpctls_native.node');
if (existsSync(prebuilt) && !process.env.RPCTLS_BUILD_FROM_SOURCE) {
  // Loaded in a child: a binary that does not load here (musl, a missing symbol) must not end the install.
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(prebuilt)}).opensslVersion`], { encoding: 'utf8' });
  if (probe.status === 0) process.exit(0);
  console.warn(`rpctls: the prebuilt TLS addon does not load here (${probe.stderr.trim().split('\n').find((l) => /Error/.test(l)) ?? `exit ${probe.status}`}); building it from source`);
}
const [command, prefix] = nodeGyp();
const result = spawnSync(command, [...prefix, 'rebuild', `--directory=${native}`], { stdio: ['ignore', 'inherit', 'inherit'] });
if (result.status !== 0) {
  const why = result.error ? result.error.message : `node-gyp exited with ${result.status ?? result.signal}`;
  console.warn(
    `rpctls: the TLS addon could not be built (${why}); XDR, plain RPC, rpcbind and "rpctls gen" work without it, ` +
      `TLS fails with ERR_TLS_NATIVE_MISSING. To build it later: install make, g++ and OpenSSL 3 headers, then ` +
      `"npx node-gyp rebuild --directory=${native}"`,
  );
}
process.exit(0);
