/**
 * Regenerates the checked-in TypeScript under src/generated/ from the .x sources next to it.
 * `npx tsx test/gen/regenerate.ts` writes them; `--check` only reports differences (exit 1).
 * The regeneration test (generated.test.ts) uses `generatedFiles()` to compare without writing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileXdr } from '../../src/gen/index.js';

const GENERATED_DIR = fileURLToPath(new URL('../../src/generated/', import.meta.url));

/** The .x sources the project itself uses, compiled with imports relative to src/generated/. */
export const CHECKED_IN_SOURCES = ['mount.x', 'rpcbind.x'] as const;

export function generatedFiles(): { path: string; expected: string }[] {
  return CHECKED_IN_SOURCES.map((name) => ({
    path: `${GENERATED_DIR}${name.replace(/\.x$/, '.ts')}`,
    expected: compileXdr(readFileSync(`${GENERATED_DIR}${name}`, 'utf8'), {
      fileName: name,
      xdrImport: '../xdr/index.js',
      runtimeImport: '../runtime/stubs.js',
    }),
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
