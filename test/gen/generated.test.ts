/** The checked-in src/generated/*.ts (and test fixtures) must be exactly what the compiler produces from their .x files. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { generatedFiles } from './regenerate.js';

for (const { path, expected } of generatedFiles()) {
  test(`${path.replace(/^.*\/(src|test)\//, '$1/')} is up to date (regenerate: npx tsx test/gen/regenerate.ts)`, (t) => {
    const current = readFileSync(path, 'utf8');
    // Compare line by line first so a failure points at the first differing line.
    const a = current.split('\n');
    const b = expected.split('\n');
    const first = a.findIndex((line, i) => line !== b[i]);
    t.is(first === -1 && a.length === b.length ? -1 : first, -1, `first difference at line ${first + 1}`);
    t.is(current, expected);
  });
}
