/** What the published tarball holds: a LICENSE, and source maps whose sources ship with them. */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('the tarball ships LICENSE (MIT), the install script, and every source a shipped source map points at', async (t) => {
  if (!existsSync(join(root, 'dist', 'index.js.map'))) return t.fail('build dist/ first: npx tsc -p tsconfig.build.json');
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root });
  const files = new Set((JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  t.true(files.has('LICENSE'));
  t.regex(readFileSync(join(root, 'LICENSE'), 'utf8'), /^MIT License/);
  t.is((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { license: string }).license, 'MIT');
  t.true(files.has('scripts/install.mjs'));
  const maps = [...files].filter((f) => f.endsWith('.map'));
  t.true(maps.length > 50, `${maps.length} source maps`);
  const dangling: string[] = [];
  for (const map of maps) {
    const { sources } = JSON.parse(readFileSync(join(root, map), 'utf8')) as { sources: string[] };
    for (const source of sources) {
      const shipped = posix.normalize(posix.join(posix.dirname(map), source));
      if (!files.has(shipped)) dangling.push(`${map} -> ${shipped}`);
    }
  }
  t.deepEqual(dangling, []);
  t.false([...files].some((f) => f.startsWith('test/') || f.startsWith('native/build/')));
});

test('CommonJS can require() the package where Node has require(esm) (20.19+, 22.12+)', async (t) => {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const hasRequireEsm = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23;
  if (!hasRequireEsm) return t.pass(`Node ${process.versions.node} has no require(esm): nothing to check`);
  const script = `const rpctls = require(${JSON.stringify(join(root, 'dist', 'index.js'))}); console.log(typeof rpctls.RpcClient, typeof rpctls.compileXdr);`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--no-warnings', '-e', script], { cwd: root });
  t.is(stdout.trim(), 'function function');
});
