// npm's install step: builds the native addon TLS needs. The addon is optional (XDR, plain RPC, rpcbind and
// the .x compiler work without it), so a machine without make or a C++ compiler still installs: one line
// says what is missing and how to build it later, and the install succeeds.
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
