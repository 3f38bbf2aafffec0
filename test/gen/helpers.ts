/**
 * Shared by the generator tests: compiling .x files into an importable temp dir, system tool checks,
 * and fast-check arbitraries derived from a compiled model.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { compileXdrDetailed, type CompileOptions, type CompileResult } from '../../src/gen/index.js';
import type { Decl, Model, TypeRef } from '../../src/gen/model.js';
import { haveCommand } from '../helpers/tools.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RPCSVC_DIR = '/usr/include/rpcsvc';
/** Debian packages providing what these tests compile against. */
export const APT_PACKAGES = ['rpcsvc-proto', 'libtirpc-dev', 'gcc'];

/** Whether rpcgen's C toolchain is installed (missingTools() says what is not; toolsPresent() gates on it). */
function rpcgenToolchainInstalled(): boolean {
  return haveCommand('gcc') && haveCommand('rpcgen') && existsSync(`${RPCSVC_DIR}/nfs_prot.x`) && existsSync('/usr/include/tirpc/rpc/rpc.h');
}

let toolsChecked: string | null | undefined;

/**
 * Null when gcc, rpcgen, rpcsvc .x files and libtirpc headers are available, installing them with
 * apt-get when missing and possible; otherwise the reason they are not.
 */
export function missingTools(): string | null {
  if (toolsChecked !== undefined) return toolsChecked;
  if (!rpcgenToolchainInstalled() && process.getuid?.() === 0 && haveCommand('apt-get')) {
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...APT_PACKAGES], { stdio: 'ignore', timeout: 300_000 });
    if (!rpcgenToolchainInstalled()) {
      spawnSync('apt-get', ['update'], { stdio: 'ignore', timeout: 300_000 });
      spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...APT_PACKAGES], { stdio: 'ignore', timeout: 300_000 });
    }
  }
  toolsChecked = rpcgenToolchainInstalled() ? null : `needs gcc, rpcgen and libtirpc headers: apt-get install ${APT_PACKAGES.join(' ')}`;
  return toolsChecked;
}

/** A temp dir where generated modules can be imported (ESM) and type-checked against this checkout. */
export function makeTempModuleDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  return dir;
}

export const TEMP_IMPORTS: Pick<CompileOptions, 'xdrImport' | 'runtimeImport'> = {
  xdrImport: join(REPO_ROOT, 'src/xdr/index.js'),
  runtimeImport: join(REPO_ROOT, 'src/runtime/stubs.js'),
};

/** Compiles an .x file (resolving #include next to it) with imports usable from a temp dir. */
export function compileFile(path: string, extra: CompileOptions = {}): CompileResult {
  return compileXdrDetailed(readFileSync(path, 'utf8'), {
    fileName: path,
    ...TEMP_IMPORTS,
    resolveInclude: (name) => {
      const candidate = join(path, '..', name);
      return existsSync(candidate) ? { file: candidate, source: readFileSync(candidate, 'utf8') } : undefined;
    },
    ...extra,
  });
}

/** nis_callback.x uses nis_object from nis.x without including it (rpcgen gets it from a C header). */
export function preludeFor(name: string): CompileOptions {
  if (name !== 'nis_callback.x') return {};
  return { prelude: [{ fileName: `${RPCSVC_DIR}/nis.x`, source: readFileSync(`${RPCSVC_DIR}/nis.x`, 'utf8') }] };
}

export function runTsc(dir: string): string {
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true,
        skipLibCheck: true, noUnusedLocals: true, noImplicitReturns: true, types: ['node'],
        typeRoots: [join(REPO_ROOT, 'node_modules/@types')],
      },
      include: ['*.ts'],
    }),
  );
  try {
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
    return '';
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}` || String(error);
  }
}

export interface ArbitraryOptions {
  /** Only values rpcgen's C can carry: strings without NUL bytes (C strings), ASCII. */
  cStrings?: boolean;
  /** Strings as Buffers of any bytes (UTF-8 or not), for code compiled with `strings: 'buffer'`. */
  byteStrings?: boolean;
}

const MAX_DEPTH = 3;

/** Random values of every type in a model, shaped like the generated TypeScript types. */
export class ModelArbitraries {
  private readonly cache = new Map<string, fc.Arbitrary<unknown>>();
  constructor(
    private readonly model: Model,
    private readonly options: ArbitraryOptions = {},
  ) {}

  forType(name: string, depth = 0): fc.Arbitrary<unknown> {
    const key = `${name}@${depth}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const def = this.model.types.get(name);
    if (def === undefined) throw new Error(`unknown type ${name}`);
    let arb: fc.Arbitrary<unknown>;
    switch (def.kind) {
      case 'enum':
        arb = fc.constantFrom(...def.members.map((m) => m.value));
        break;
      case 'typedef':
        arb = this.decl(def.decl, depth);
        break;
      case 'struct': {
        const fields: Record<string, fc.Arbitrary<unknown>> = {};
        for (const f of def.fields) if (f.kind !== 'void') fields[f.name] = this.decl(f, depth + 1);
        arb = fc.record(fields, { noNullPrototype: true });
        break;
      }
      case 'union': {
        const disc = def.discriminant.name;
        const isBool = this.isBool(def.discriminant.type);
        const toDisc = (v: number): unknown => (isBool ? v !== 0 : v);
        const arm = (values: fc.Arbitrary<number>, d: Decl): fc.Arbitrary<unknown> =>
          d.kind === 'void'
            ? values.map((v) => ({ [disc]: toDisc(v) }))
            : fc.tuple(values, this.decl(d, depth + 1)).map(([v, x]) => ({ [disc]: toDisc(v), [d.name]: x }));
        const arms = def.arms.map((a) => arm(fc.constantFrom(...a.values), a.decl));
        if (def.defaultArm !== null) {
          const covered = new Set(def.arms.flatMap((a) => a.values));
          const others = this.discriminantValues(def.discriminant.type).filter((v) => !covered.has(v));
          const otherArb = others.length > 0 ? fc.constantFrom(...others) : null;
          const openInt = this.enumValues(def.discriminant.type) === null && !isBool;
          if (openInt) {
            const unsigned = this.isUnsigned(def.discriminant.type);
            arms.push(arm(fc.integer({ min: unsigned ? 0 : -0x80000000, max: unsigned ? 0xffffffff : 0x7fffffff }).filter((v) => !covered.has(v)), def.defaultArm));
          } else if (otherArb !== null) arms.push(arm(otherArb, def.defaultArm));
        }
        arb = fc.oneof(...arms);
        break;
      }
    }
    this.cache.set(key, arb);
    return arb;
  }

  private resolve(ref: TypeRef): TypeRef {
    let current = ref;
    for (;;) {
      if (current.kind !== 'named') return current;
      const def = this.model.types.get(current.name);
      if (def?.kind !== 'typedef' || def.decl.kind !== 'scalar') return current;
      current = def.decl.type;
    }
  }

  private isBool(ref: TypeRef): boolean {
    const r = this.resolve(ref);
    return r.kind === 'primitive' && r.type === 'bool';
  }

  private isUnsigned(ref: TypeRef): boolean {
    const r = this.resolve(ref);
    return r.kind === 'primitive' && r.type === 'uint';
  }

  private enumValues(ref: TypeRef): number[] | null {
    const r = this.resolve(ref);
    if (r.kind !== 'named') return null;
    const def = this.model.types.get(r.name);
    return def?.kind === 'enum' ? [...new Set(def.members.map((m) => m.value))] : null;
  }

  private discriminantValues(ref: TypeRef): number[] {
    if (this.isBool(ref)) return [0, 1];
    return this.enumValues(ref) ?? [];
  }

  private ref(ref: TypeRef, depth: number): fc.Arbitrary<unknown> {
    if (ref.kind === 'named') return this.forType(ref.name, depth);
    switch (ref.type) {
      case 'int':
        return fc.integer({ min: -0x80000000, max: 0x7fffffff });
      case 'uint':
        return fc.integer({ min: 0, max: 0xffffffff });
      case 'hyper':
        return fc.bigInt(-(1n << 63n), (1n << 63n) - 1n);
      case 'uhyper':
        return fc.bigInt(0n, (1n << 64n) - 1n);
      case 'bool':
        return fc.boolean();
      case 'float':
        return fc.float({ noNaN: true });
      case 'double':
        return fc.double({ noNaN: true });
    }
  }

  private decl(d: Decl, depth: number): fc.Arbitrary<unknown> {
    const deep = depth > MAX_DEPTH;
    switch (d.kind) {
      case 'void':
        return fc.constant(undefined);
      case 'scalar':
        return this.ref(d.type, depth);
      case 'optional':
        return deep ? fc.constant(null) : fc.option(this.ref(d.type, depth + 1), { nil: null, freq: 2 });
      case 'fixedArray':
        return fc.array(this.ref(d.type, depth + 1), { minLength: d.length, maxLength: d.length });
      case 'varArray':
        return fc.array(this.ref(d.type, depth + 1), { maxLength: deep ? 0 : Math.min(d.max, 3) });
      case 'fixedOpaque':
        return fc.uint8Array({ minLength: d.length, maxLength: d.length }).map((a) => Buffer.from(a));
      case 'varOpaque':
        return fc.uint8Array({ maxLength: Math.min(d.max, 40) }).map((a) => Buffer.from(a));
      case 'string': {
        const max = Math.min(d.max, 24);
        if (this.options.byteStrings) return fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
        const text = this.options.cStrings
          ? fc.string({ unit: fc.integer({ min: 1, max: 127 }).map((c) => String.fromCharCode(c)), maxLength: max })
          : fc.string({ unit: 'grapheme', maxLength: max });
        return text.filter((s) => Buffer.byteLength(s) <= d.max);
      }
    }
  }
}
