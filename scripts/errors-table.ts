/**
 * Writes README.md's error table from src/error-registry.ts, between the errors:start and errors:end
 * markers. `npm run errors:table` writes it; `--check` only reports a difference (exit 1).
 * test/errors/registry.test.ts uses `readmeWithErrorTable()` to compare without writing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { ERROR_BASES, ERROR_CODES, type ErrorClass } from '../src/error-registry.js';

export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url));
export const START = '<!-- errors:start: generated from src/error-registry.ts by `npm run errors:table`; do not edit -->';
export const END = '<!-- errors:end -->';

const cell = (text: string): string => text.replace(/\|/g, '\\|');
const code = (text: string): string => `\`${cell(text)}\``;
const fields = (names: readonly string[]): string => (names.length === 0 ? '' : names.map(code).join(', '));
const className = (Class: ErrorClass): string => Class.name;

/** The generated Markdown: the families, then one row per code. */
export function renderErrorTable(): string {
  const lines = [
    'Catch a family with `instanceof`:',
    '',
    '| Class | Layer | What | Fields |',
    '| --- | --- | --- | --- |',
    ...ERROR_BASES.map((b) => `| ${code(className(b.class))} | ${b.layer} | ${cell(b.description)} | ${fields(b.fields)} |`),
    '',
    'Or switch on `code`:',
    '',
    '| Code | Class | Layer | Message | Fields |',
    '| --- | --- | --- | --- | --- |',
    ...ERROR_CODES.map((e) => {
      const classes = [e.class, ...(e.subclasses ?? [])].map((C) => code(className(C))).join(', ');
      const notes = [e.note, e.reportedIn === undefined ? undefined : `not thrown: reported in ${e.reportedIn}`].filter((n) => n !== undefined);
      const message = [code(e.message), ...notes.map(cell)].join('; ');
      return `| ${code(e.code)} | ${classes} | ${e.layer} | ${message} | ${fields(e.fields)} |`;
    }),
  ];
  return lines.join('\n');
}

/** `readme` with the text between the markers replaced by the generated table. */
export function readmeWithErrorTable(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no "${START}" ... "${END}" section`);
  return `${readme.slice(0, start + START.length)}\n${renderErrorTable()}\n${readme.slice(end)}`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const current = readFileSync(README_PATH, 'utf8');
  const expected = readmeWithErrorTable(current);
  if (current === expected) {
    console.log('README.md error table is up to date');
  } else if (process.argv.includes('--check')) {
    console.error('README.md error table differs from src/error-registry.ts: run npm run errors:table');
    process.exitCode = 1;
  } else {
    writeFileSync(README_PATH, expected);
    console.log('wrote README.md error table');
  }
}
