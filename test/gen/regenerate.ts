/**
 * Regenerates the checked-in TypeScript under src/generated/ (and the test fixture under test/types/generated/)
 * from the .x sources next to it.
 * `npx tsx test/gen/regenerate.ts` writes them; `--check` only reports differences (exit 1).
 * The regeneration test (generated.test.ts) uses `generatedFiles()` to compare without writing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileXdr, type CompileOptions } from '../../src/gen/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The .x sources the project itself uses (imports relative to src/generated/), and test fixtures. */
export const CHECKED_IN_SOURCES: readonly { path: string; options: CompileOptions }[] = [
  { path: 'src/generated/mount.x', options: { xdrImport: '../xdr/index.js', runtimeImport: '../runtime/stubs.js' } },
  { path: 'src/generated/rpcbind.x', options: { xdrImport: '../xdr/index.js', runtimeImport: '../runtime/stubs.js' } },
  // The types of each string mode, checked by test/types/gen-strings.ts.
  {
    path: 'test/types/generated/strings.x',
    options: {
      xdrImport: '../../../src/xdr/index.js',
      runtimeImport: '../../../src/runtime/stubs.js',
      stringsByName: { filename: 'buffer', 'entry.note': 'utf8-strict', NOTE: 'buffer' },
    },
  },
];

export function generatedFiles(): { path: string; expected: string }[] {
  return CHECKED_IN_SOURCES.map(({ path, options }) => ({
    path: `${ROOT}${path.replace(/\.x$/, '.ts')}`,
    expected: compileXdr(readFileSync(`${ROOT}${path}`, 'utf8'), { fileName: path.replace(/^.*\//, ''), ...options }),
  }));
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const { path, expected } of generatedFiles()) {
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current === expected) continue;
    stale++;
    if (check) console.error(`stale: ${path}`);
    else writeFileSync(path, expected), console.log(`wrote ${path}`);
  }
  if (check && stale > 0) process.exitCode = 1;
}
