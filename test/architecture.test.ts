/**
 * The layering of src/, enforced. A layer is a top-level entry of src/: a directory (`src/rpc/`) or a
 * file (`src/errors.ts` is `errors`). Every relative import (static, `export ... from`, dynamic, type-only
 * too) is an edge; the test fails on an import cycle between files and on an edge between two layers that
 * ALLOWED does not list. Files of one layer may import each other (without cycles).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';
import ts from 'typescript';

const LAYERS = ['errors', 'diagnostics', 'xdr', 'transport', 'runtime', 'generated', 'rpc', 'tls', 'rpc-tls', 'agent', 'gen', 'cli', 'index', 'error-registry'] as const;
type Layer = (typeof LAYERS)[number];
const allBut = (...excluded: Layer[]): Layer[] => LAYERS.filter((layer) => !excluded.includes(layer));

/** Layer -> the other layers its files may import. Nothing but cli imports cli. */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  errors: [],
  diagnostics: [],
  xdr: ['errors'],
  transport: ['xdr', 'errors'],
  runtime: ['xdr', 'errors'],
  generated: ['xdr', 'runtime', 'errors'],
  rpc: ['xdr', 'transport', 'generated', 'runtime', 'errors', 'diagnostics'],
  tls: ['errors', 'diagnostics'],
  'rpc-tls': ['rpc', 'tls', 'transport', 'xdr', 'errors', 'diagnostics'],
  agent: ['tls', 'errors'],
  gen: ['xdr', 'runtime', 'errors'],
  cli: allBut('index', 'error-registry'),
  index: allBut('cli'),
  'error-registry': allBut('cli', 'index'),
};

/** File (repository-relative, `src/rpc/client.ts`) -> the files it imports. */
type ImportGraph = Readonly<Record<string, readonly string[]>>;

/** `src/rpc/client.ts` -> `rpc`, `src/errors.ts` -> `errors`; undefined outside src/ or for an unknown name. */
function layerOf(file: string): Layer | undefined {
  const parts = file.split('/');
  if (parts[0] !== 'src' || parts.length < 2) return undefined;
  const name = parts.length === 2 ? (parts[1] as string).replace(/\.ts$/, '') : (parts[1] as string);
  return (LAYERS as readonly string[]).includes(name) ? (name as Layer) : undefined;
}

/** Every rule broken by `graph`, one message each, naming the files. Pure: the fixture tests below use it too. */
function checkArchitecture(graph: ImportGraph): string[] {
  const problems: string[] = [];
  for (const [from, targets] of Object.entries(graph)) {
    const fromLayer = layerOf(from);
    if (fromLayer === undefined) {
      problems.push(`${from} is in no known layer (add its top-level name to LAYERS and ALLOWED)`);
      continue;
    }
    for (const to of targets) {
      const toLayer = layerOf(to);
      if (!(to in graph) || toLayer === undefined) problems.push(`${from} -> ${to}: not a file of a known layer under src/`);
      else if (toLayer !== fromLayer && !ALLOWED[fromLayer].includes(toLayer)) {
        problems.push(`${from} -> ${to}: ${fromLayer} may not import ${toLayer} (${fromLayer} may import: ${ALLOWED[fromLayer].join(', ') || 'nothing'})`);
      }
    }
  }
  for (const cycle of findCycles(graph)) problems.push(`import cycle: ${cycle.join(' -> ')}`);
  return problems;
}

/**
 * One cycle per strongly connected component (Tarjan), as a closed path `a -> b -> a` starting at the
 * component's first file in sorted order; the shortest such path, so the message stays readable.
 */
function findCycles(graph: ImportGraph): string[][] {
  const edges = (file: string): readonly string[] => (graph[file] ?? []).filter((to) => to in graph);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file) as number);
    stack.push(file);
    onStack.add(file);
    for (const to of edges(file)) {
      if (!index.has(to)) visit(to), low.set(file, Math.min(low.get(file) as number, low.get(to) as number));
      else if (onStack.has(to)) low.set(file, Math.min(low.get(file) as number, index.get(to) as number));
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    for (let member = ''; member !== file; ) {
      member = stack.pop() as string;
      onStack.delete(member);
      component.push(member);
    }
    components.push(component);
  };
  for (const file of Object.keys(graph).sort()) if (!index.has(file)) visit(file);

  const cycles: string[][] = [];
  for (const component of components) {
    const start = [...component].sort()[0] as string;
    if (component.length === 1 && !edges(start).includes(start)) continue;
    const members = new Set(component);
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0 && !previous.has(start)) {
      const file = queue.shift() as string;
      for (const to of edges(file)) {
        if (!members.has(to) || previous.has(to)) continue;
        previous.set(to, file);
        queue.push(to);
      }
    }
    const path = [start];
    for (let file = previous.get(start) as string; file !== start; file = previous.get(file) as string) path.unshift(file);
    cycles.push([start, ...path]);
  }
  return cycles;
}

/** The relative module specifiers a TypeScript source imports (comments and strings are not imports). */
function relativeImports(source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((name) => name.startsWith('./') || name.startsWith('../'));
}

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The import graph of every .ts file under src/, `./x.js` resolved to `src/.../x.ts`. */
function srcGraph(): ImportGraph {
  const graph: Record<string, string[]> = {};
  const files = readdirSync(join(REPO_ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  for (const file of files) {
    const path = posix.join('src', file.split('\\').join('/'));
    const imports = relativeImports(readFileSync(join(REPO_ROOT, path), 'utf8'));
    graph[path] = [...new Set(imports.map((spec) => relative(REPO_ROOT, join(REPO_ROOT, dirname(path), spec)).split('\\').join('/').replace(/\.js$/, '.ts')))];
  }
  return graph;
}

test('src/ has no import cycle and no edge between layers outside ALLOWED', (t) => {
  const graph = srcGraph();
  t.true('src/index.ts' in graph && (graph['src/index.ts'] ?? []).length > 0, 'the graph reader found src/ and its imports');
  t.deepEqual(checkArchitecture(graph), []);
});

test('imports are read from static, export-from, dynamic and type-only forms, not from comments or strings', (t) => {
  const source = [
    "import { a } from './a.js';",
    "import type { B } from '../b/index.js';",
    "export * from './c.js';",
    "export type { D } from './d.js';",
    "import './e.js';",
    "const f = await import('./f.js');",
    "import net from 'node:net';",
    "// import { g } from './g.js';",
    "const h = \"import { h } from './h.js'\";",
  ].join('\n');
  t.deepEqual(relativeImports(source), ['./a.js', '../b/index.js', './c.js', './d.js', './e.js', './f.js']);
});

/** A small house that follows the rules; the tests below add one bad edge each. */
const FIXTURE: ImportGraph = {
  'src/errors.ts': [],
  'src/xdr/index.ts': ['src/xdr/reader.ts', 'src/errors.ts'],
  'src/xdr/reader.ts': ['src/errors.ts'],
  'src/rpc/client.ts': ['src/rpc/program.ts', 'src/xdr/index.ts'],
  'src/rpc/program.ts': ['src/xdr/reader.ts'],
  'src/tls/index.ts': ['src/errors.ts'],
  'src/rpc-tls/index.ts': ['src/rpc/client.ts', 'src/tls/index.ts'],
  'src/cli/index.ts': ['src/rpc-tls/index.ts'],
  'src/index.ts': ['src/rpc/client.ts', 'src/rpc-tls/index.ts'],
};

test('the fixture house passes', (t) => {
  t.deepEqual(checkArchitecture(FIXTURE), []);
});

test('an added forbidden edge (tls -> rpc) is reported with both files', (t) => {
  const graph = { ...FIXTURE, 'src/tls/index.ts': ['src/errors.ts', 'src/rpc/client.ts'] };
  t.deepEqual(checkArchitecture(graph), ['src/tls/index.ts -> src/rpc/client.ts: tls may not import rpc (tls may import: errors, diagnostics)']);
});

test('an import of cli from below it, and a file outside every layer, are reported', (t) => {
  const graph = { ...FIXTURE, 'src/rpc/extra.ts': ['src/cli/args.ts'], 'src/cli/args.ts': [], 'src/misc.ts': [] };
  t.deepEqual(checkArchitecture(graph), [
    'src/rpc/extra.ts -> src/cli/args.ts: rpc may not import cli (rpc may import: xdr, transport, generated, runtime, errors, diagnostics)',
    'src/misc.ts is in no known layer (add its top-level name to LAYERS and ALLOWED)',
  ]);
});

test('an import cycle inside one layer is reported as the path through its files', (t) => {
  const graph = { ...FIXTURE, 'src/rpc/program.ts': ['src/xdr/reader.ts', 'src/rpc/client.ts'] };
  t.deepEqual(checkArchitecture(graph), ['import cycle: src/rpc/client.ts -> src/rpc/program.ts -> src/rpc/client.ts']);
});

test('a longer cycle, across layers, and a file importing itself are each reported once', (t) => {
  const graph = {
    ...FIXTURE,
    'src/errors.ts': ['src/index.ts'],
    'src/cli/index.ts': ['src/rpc-tls/index.ts', 'src/cli/index.ts'],
  };
  const problems = checkArchitecture(graph);
  t.true(problems.includes('src/errors.ts -> src/index.ts: errors may not import index (errors may import: nothing)'));
  t.deepEqual(problems.filter((p) => p.startsWith('import cycle')).sort(), [
    'import cycle: src/cli/index.ts -> src/cli/index.ts',
    'import cycle: src/errors.ts -> src/index.ts -> src/rpc/client.ts -> src/xdr/index.ts -> src/errors.ts',
  ]);
});
