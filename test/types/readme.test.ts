/**
 * The README's TypeScript blocks compile under the repository's strict tsconfig, importing 'rpctls' as a
 * user would (the package's own exports: dist/index.d.ts), and the blocks marked `<!-- ts-run -->` run
 * to completion.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { ROOT, typecheck } from './compile.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const blocks = [...README.matchAll(/(<!-- ts-run -->\n)?```ts\n([\s\S]*?)```/g)].map((m, i) => ({ run: m[1] !== undefined, code: m[2] as string, index: i + 1 }));

/** Each block is its own module (`export {}`) so top-level await and repeated names are fine. */
const asModule = (code: string): string => `${code}\nexport {};\n`;

test('every ts block of the README compiles under strict, against the published typings', (t) => {
  if (!existsSync(join(ROOT, 'dist', 'index.d.ts'))) return t.fail('build dist/ first: npx tsc -p tsconfig.build.json');
  t.true(blocks.length >= 6, `${blocks.length} blocks`);
  const files = new Map(blocks.map((b) => [join(ROOT, 'test', 'types', `readme-block-${b.index}.ts`), asModule(b.code)]));
  t.deepEqual(typecheck([], files), []);
});

for (const block of blocks.filter((b) => b.run)) {
  test.serial(`README ts block ${block.index} runs to completion`, async (t) => {
    // Written next to package.json, so `import ... from 'rpctls'` resolves to this package.
    const file = join(ROOT, `.readme-block-${block.index}.mts`);
    writeFileSync(file, asModule(block.code));
    t.teardown(() => rmSync(file, { force: true }));
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, timeout: 30_000 });
    t.regex(stdout, /\S/);
  });
}
