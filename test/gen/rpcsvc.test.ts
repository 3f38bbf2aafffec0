/**
 * Acceptance 1: every .x that Debian's rpcsvc-proto ships compiles, and the output type-checks under
 * tsc --strict (plus noUnusedLocals, so generated imports and temporaries stay tidy).
 */
import test from 'ava';

import { toolsPresent } from '../helpers/tools.js';
import { readdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RPCSVC_DIR, compileFile, makeTempModuleDir, missingTools, preludeFor, runTsc } from './helpers.js';

test('every /usr/include/rpcsvc/*.x compiles and type-checks under tsc --strict', (t) => {
  const missing = missingTools();
  if (!toolsPresent(t, missing)) return;
  const files = readdirSync(RPCSVC_DIR).filter((f) => f.endsWith('.x')).sort();
  t.true(files.length >= 15, `expected rpcsvc-proto's .x files, found ${files.join(', ')}`);
  const dir = makeTempModuleDir('rpctls-gen-rpcsvc-');
  try {
    for (const file of files) {
      const result = compileFile(join(RPCSVC_DIR, file), preludeFor(file));
      t.true(result.types.length > 0 || result.model.constants.length > 0, `${file} produced nothing`);
      writeFileSync(join(dir, file.replace(/\.x$/, '.ts')), result.code);
    }
    t.is(runTsc(dir), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
