/**
 * The README's TypeScript blocks compile under the repository's strict tsconfig, importing 'rpctls' as a
 * user would (the package's own exports: dist/index.d.ts), and the blocks marked `<!-- ts-run -->` run
 * to completion. A ```c block marked `<!-- gen-test -->` whose first line is a comment naming an .x file,
 * followed by a ```sh block `npx rpctls gen ...`, is compiled by that very command (the built CLI), and
 * the blocks may import the module it writes (`./name.js`).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { ROOT, typecheck } from './compile.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const blocks = [...README.matchAll(/(<!-- ts-run -->\n)?```ts\n([\s\S]*?)```/g)].map((m, i) => ({ run: m[1] !== undefined, code: m[2] as string, index: i + 1 }));

/** Each block is its own module (`export {}`) so top-level await and repeated names are fine. */
const asModule = (code: string): string => `${code}\nexport {};\n`;

const genExamples = [...README.matchAll(/<!-- gen-test -->\n```c\n\/\* ([\w.-]+\.x) \*\/\n([\s\S]*?)```\n+```sh\nnpx rpctls gen ([^\n]*)\n```/g)].map((m) => ({
  file: m[1] as string,
  source: m[2] as string,
  args: (m[3] as string).split(/\s+/),
}));

/** Runs each example's `rpctls gen` command (the built binary) on its .x text; output file name -> generated code. */
async function generatedModules(): Promise<Map<string, string>> {
  const modules = new Map<string, string>();
  for (const example of genExamples) {
    const dir = mkdtempSync(join(tmpdir(), 'rpctls-readme-gen-'));
    try {
      writeFileSync(join(dir, example.file), example.source);
      await promisify(execFile)(process.execPath, [join(ROOT, 'bin', 'rpctls.js'), 'gen', ...example.args], { cwd: dir, timeout: 30_000 });
      const out = example.args[example.args.indexOf('-o') + 1] as string;
      modules.set(out, readFileSync(join(dir, out), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return modules;
}

test('the README\'s rpctls gen example is found (and its command runs)', async (t) => {
  t.true(genExamples.length >= 1);
  const modules = await generatedModules();
  t.regex(modules.get('files.ts') ?? '', /export class FilesClient_v1/);
});

test('every ts block of the README compiles under strict, against the published typings', async (t) => {
  if (!existsSync(join(ROOT, 'dist', 'index.d.ts'))) return t.fail('build dist/ first: npx tsc -p tsconfig.build.json');
  t.true(blocks.length >= 6, `${blocks.length} blocks`);
  const files = new Map(blocks.map((b) => [join(ROOT, 'test', 'types', `readme-block-${b.index}.ts`), asModule(b.code)]));
  for (const [name, code] of await generatedModules()) {
    const path = join(ROOT, 'test', 'types', name);
    if (existsSync(path)) return t.fail(`the README's generated ${name} would shadow test/types/${name}: rename it`);
    files.set(path, code);
  }
  t.deepEqual(typecheck([], files), []);
});

for (const block of blocks.filter((b) => b.run)) {
  test.serial(`README ts block ${block.index} runs to completion`, async (t) => {
    // Written under the package's own directory, so `import ... from 'rpctls'` resolves to this package;
    // the generated modules go next to it.
    const dir = join(ROOT, `.readme-block-${block.index}`);
    mkdirSync(dir, { recursive: true });
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    for (const [name, code] of await generatedModules()) writeFileSync(join(dir, name), code);
    const file = join(dir, 'block.mts');
    writeFileSync(file, asModule(block.code));
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, timeout: 30_000 });
    t.regex(stdout, /\S/);
  });
}
