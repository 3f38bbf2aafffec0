/**
 * TypeScript emitter: one module per .x file with types, straight-line encode/decode functions on the
 * XdrWriter/XdrReader core, Codec objects, constants, and per program version a typed client class and
 * a server-side adapter.
 */
import { XdrCompileError } from './errors.js';
import { type Decl, type Model, type ProcedureModel, type ProgramModel, type TypeDef, type TypeRef, type VersionModel } from './model.js';

export interface EmitOptions {
  /** Module specifier generated code imports XdrWriter/XdrReader/errors from. */
  readonly xdrImport: string;
  /** Module specifier for the RPC stub interfaces (RpcCaller, RawProgram, handlerFailure). */
  readonly runtimeImport: string;
  /** Longest linked list (`struct x *next` chains) accepted or written; guards against hostile input. */
  readonly maxListLength: number;
  /** Shown in the header comment. */
  readonly sourceName: string;
}

/** Names the generated module's own code relies on; .x types with these names get a `_` suffix. */
const RESERVED_TYPE_NAMES = new Set([
  'Array', 'Buffer', 'Set', 'ReadonlySet', 'Promise', 'Exclude', 'Error', 'Number', 'String', 'Boolean', 'Object',
  'BigInt', 'Symbol', 'Function', 'Record', 'Codec', 'XdrWriter', 'XdrReader', 'XdrEncodeError',
  'XdrInvalidValueError', 'XdrLengthError', 'CallOptions', 'RpcCaller', 'RawProgram', 'Ctx', 'O',
]);

const JS_RESERVED = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for function if ' +
    'import in instanceof new null return super switch this throw true try typeof var void while with yield let static ' +
    'implements interface package private protected public await arguments eval undefined NaN Infinity')
    .split(' '),
);

export function pascalCase(name: string): string {
  const parts = name.split(/[^A-Za-z0-9]+/).filter((p) => p.length > 0);
  const joined = parts
    .map((p) => (p === p.toUpperCase() ? p.charAt(0) + p.slice(1).toLowerCase() : p.charAt(0).toUpperCase() + p.slice(1)))
    .join('');
  return /^[0-9]/.test(joined) || joined === '' ? `T${joined}` : joined;
}

/** Accumulates indented lines and hands out unique temporaries for one function body. */
class Out {
  readonly lines: string[] = [];
  constructor(
    private readonly counter: { n: number },
    private indentLevel: number,
  ) {}
  line(text: string): void {
    this.lines.push('  '.repeat(this.indentLevel) + text);
  }
  indent(): void {
    this.indentLevel++;
  }
  dedent(): void {
    this.indentLevel--;
  }
  fresh(prefix: string): string {
    return `${prefix}${this.counter.n++}`;
  }
  /** A nested Out sharing the temporaries counter, for code that may or may not need a block. */
  child(extraIndent: number): Out {
    return new Out(this.counter, this.indentLevel + extraIndent);
  }
  get level(): number {
    return this.indentLevel;
  }
}

export interface EmittedType {
  readonly xdrName: string;
  readonly tsName: string;
  readonly encodeName: string;
  readonly decodeName: string;
  readonly codecName: string;
}

export interface EmittedProgram {
  readonly program: string;
  readonly version: number;
  readonly clientClass: string;
  readonly serverInterface: string;
  readonly programFactory: string;
}

export interface EmitResult {
  readonly code: string;
  readonly types: readonly EmittedType[];
  readonly programs: readonly EmittedProgram[];
}

export function emitTypeScript(model: Model, options: EmitOptions): EmitResult {
  return new Emitter(model, options).emit();
}

class Emitter {
  private readonly tsNames = new Map<string, string>();
  private readonly usedTypeNames = new Set(RESERVED_TYPE_NAMES);
  private readonly valueNames = new Map<string, string>();
  private readonly out: string[] = [];
  private readonly minSizes = new Map<string, number>();

  constructor(
    private readonly model: Model,
    private readonly options: EmitOptions,
  ) {
    for (const name of model.types.keys()) {
      let ts = pascalCase(name);
      while (this.usedTypeNames.has(ts)) ts += '_';
      this.usedTypeNames.add(ts);
      this.tsNames.set(name, ts);
    }
  }

  private fail(message: string): never {
    throw new XdrCompileError({ file: this.options.sourceName, line: 1, column: 1 }, message);
  }

  /** Registers a value-namespace name of the module, rejecting clashes (a constant named like a codec). */
  private claimValue(name: string, what: string): string {
    const existing = this.valueNames.get(name);
    if (existing !== undefined) this.fail(`generated name "${name}" for ${what} clashes with ${existing}`);
    this.valueNames.set(name, what);
    return name;
  }

  private ts(name: string): string {
    const ts = this.tsNames.get(name);
    if (ts === undefined) return this.fail(`internal: unknown type ${name}`);
    return ts;
  }

  private def(name: string): TypeDef {
    const def = this.model.types.get(name);
    if (def === undefined) return this.fail(`internal: unknown type ${name}`);
    return def;
  }

  // ---------------------------------------------------------------- types

  private tsRef(ref: TypeRef): string {
    if (ref.kind === 'named') return this.ts(ref.name);
    switch (ref.type) {
      case 'hyper':
      case 'uhyper':
        return 'bigint';
      case 'bool':
        return 'boolean';
      default:
        return 'number';
    }
  }

  private tsDecl(d: Decl): string {
    switch (d.kind) {
      case 'void':
        return 'void';
      case 'scalar':
        return this.tsRef(d.type);
      case 'fixedArray':
      case 'varArray':
        return `Array<${this.tsRef(d.type)}>`;
      case 'fixedOpaque':
      case 'varOpaque':
        return 'Buffer';
      case 'string':
        return 'string';
      case 'optional':
        return `${this.tsRef(d.type)} | null`;
    }
  }

  /** Smallest encoding of a type; bounds array lengths against the remaining input before allocating. */
  private minSizeRef(ref: TypeRef): number {
    if (ref.kind === 'primitive') return ref.type === 'hyper' || ref.type === 'uhyper' || ref.type === 'double' ? 8 : 4;
    const cached = this.minSizes.get(ref.name);
    if (cached !== undefined) return cached;
    // Recursion only happens through optional or variable-size parts, which count 4 and stop here.
    this.minSizes.set(ref.name, 4);
    const def = this.def(ref.name);
    let size: number;
    switch (def.kind) {
      case 'enum':
        size = 4;
        break;
      case 'typedef':
        size = this.minSizeDecl(def.decl);
        break;
      case 'struct':
        size = def.fields.reduce((sum, f) => sum + this.minSizeDecl(f), 0);
        break;
      case 'union': {
        const arms = [...def.arms.map((a) => a.decl), ...(def.defaultArm ? [def.defaultArm] : [])];
        size = 4 + Math.min(...arms.map((a) => this.minSizeDecl(a)));
        break;
      }
    }
    this.minSizes.set(ref.name, size);
    return size;
  }

  private minSizeDecl(d: Decl): number {
    switch (d.kind) {
      case 'void':
        return 0;
      case 'scalar':
        return this.minSizeRef(d.type);
      case 'fixedArray':
        return d.length * this.minSizeRef(d.type);
      case 'fixedOpaque':
        return (d.length + 3) & ~3;
      default:
        return 4;
    }
  }

  /** A typedef simple enough to expand in place (string, opaque, primitive) instead of calling its codec. */
  private inlineable(ref: TypeRef): Decl | null {
    if (ref.kind !== 'named') return null;
    const def = this.def(ref.name);
    if (def.kind !== 'typedef') return null;
    const d = def.decl;
    if (d.kind === 'string' || d.kind === 'varOpaque' || d.kind === 'fixedOpaque') return d;
    if (d.kind === 'scalar' && (d.type.kind === 'primitive' || this.inlineable(d.type) !== null)) return d;
    return null;
  }

  // ---------------------------------------------------------------- encoding

  private encodeRef(ref: TypeRef, v: string, o: Out): void {
    if (ref.kind === 'primitive') {
      o.line(`w.${ref.type}(${v});`);
      return;
    }
    const inline = this.inlineable(ref);
    if (inline !== null) this.encodeDecl(inline, v, o, ref.name);
    else o.line(`encode${this.ts(ref.name)}(w, ${v});`);
  }

  private encodeDecl(d: Decl, v: string, o: Out, what: string): void {
    switch (d.kind) {
      case 'void':
        return;
      case 'scalar':
        this.encodeRef(d.type, v, o);
        return;
      case 'fixedOpaque':
        o.line(`w.fixedOpaque(${v}, ${d.length});`);
        return;
      case 'varOpaque':
        o.line(`w.opaque(${v}, ${d.max});`);
        return;
      case 'string':
        o.line(`w.string(${v}, ${d.max});`);
        return;
      case 'optional': {
        const t = o.fresh('opt');
        o.line(`const ${t} = ${v};`);
        o.line(`if (${t} === null || ${t} === undefined) {`);
        o.line('  w.bool(false);');
        o.line('} else {');
        o.indent();
        o.line('w.bool(true);');
        this.encodeRef(d.type, t, o);
        o.dedent();
        o.line('}');
        return;
      }
      case 'varArray':
      case 'fixedArray': {
        const items = o.fresh('items');
        const item = o.fresh('item');
        o.line(`const ${items} = ${v};`);
        if (d.kind === 'varArray') {
          o.line(`if (${items}.length > ${d.max}) throw new XdrLengthError(${JSON.stringify(`${what} array`)}, ${items}.length, ${d.max}, w.length);`);
          o.line(`w.uint(${items}.length);`);
        } else {
          o.line(
            `if (${items}.length !== ${d.length}) throw new XdrEncodeError(\`${what} needs ${d.length} items, got \${${items}.length}\`);`,
          );
        }
        o.line(`for (const ${item} of ${items}) {`);
        o.indent();
        this.encodeRef(d.type, item, o);
        o.dedent();
        o.line('}');
        return;
      }
    }
  }

  // ---------------------------------------------------------------- decoding

  /** Emits statements as needed and returns an expression for the decoded value. */
  private decodeRef(ref: TypeRef, o: Out): string {
    if (ref.kind === 'primitive') return `r.${ref.type}()`;
    const inline = this.inlineable(ref);
    if (inline !== null) return this.decodeDecl(inline, o, ref.name);
    return `decode${this.ts(ref.name)}(r)`;
  }

  private decodeDecl(d: Decl, o: Out, what: string): string {
    switch (d.kind) {
      case 'void':
        return 'undefined';
      case 'scalar':
        return this.decodeRef(d.type, o);
      case 'fixedOpaque':
        return `r.fixedOpaque(${d.length})`;
      case 'varOpaque':
        return `r.opaque(${d.max})`;
      case 'string':
        return `r.string(${d.max})`;
      case 'optional': {
        const inner = o.child(1);
        const expr = this.decodeRef(d.type, inner);
        if (inner.lines.length === 0) return `(r.bool() ? ${expr} : null)`;
        const t = o.fresh('opt');
        o.line(`let ${t}: ${this.tsRef(d.type)} | null = null;`);
        o.line('if (r.bool()) {');
        o.lines.push(...inner.lines);
        o.line(`  ${t} = ${expr};`);
        o.line('}');
        return t;
      }
      case 'varArray':
      case 'fixedArray': {
        const n = o.fresh('n');
        const items = o.fresh('items');
        const i = o.fresh('i');
        if (d.kind === 'varArray') {
          o.line(`const ${n} = r.length(${JSON.stringify(`${what} array`)}, ${d.max}, ${Math.max(1, this.minSizeRef(d.type))});`);
        } else {
          o.line(`const ${n} = ${d.length};`);
        }
        o.line(`const ${items} = new Array<${this.tsRef(d.type)}>(${n});`);
        o.line(`for (let ${i} = 0; ${i} < ${n}; ${i}++) {`);
        const inner = o.child(1);
        const expr = this.decodeRef(d.type, inner);
        o.lines.push(...inner.lines);
        o.line(`  ${items}[${i}] = ${expr};`);
        o.line('}');
        return items;
      }
    }
  }

  // ---------------------------------------------------------------- definitions

  emit(): EmitResult {
    const body: string[] = [];
    const types: EmittedType[] = [];
    for (const c of this.model.constants) {
      const name = JS_RESERVED.has(c.name) ? `${c.name}_` : c.name;
      this.claimValue(name, `constant ${c.name}`);
      body.push(`export const ${name} = ${typeof c.value === 'string' ? JSON.stringify(c.value) : c.value};`);
    }
    if (this.model.constants.length > 0) body.push('');
    for (const def of this.model.types.values()) {
      const ts = this.ts(def.name);
      const names: EmittedType = {
        xdrName: def.name,
        tsName: ts,
        encodeName: this.claimValue(`encode${ts}`, `the encoder of ${def.name}`),
        decodeName: this.claimValue(`decode${ts}`, `the decoder of ${def.name}`),
        codecName: this.claimValue(`${ts}Codec`, `the codec of ${def.name}`),
      };
      types.push(names);
      body.push(...this.emitType(def, ts));
      body.push(`export const ${ts}Codec: Codec<${ts}> = { encode: encode${ts}, decode: decode${ts}, minSize: ${this.minSizeRef({ kind: 'named', name: def.name })} };`);
      body.push('');
    }
    const programs: EmittedProgram[] = [];
    for (const program of this.model.programs) {
      const seen = new Set<number>();
      for (const version of program.versions) {
        if (seen.has(version.number)) this.fail(`program ${program.name} defines version ${version.number} twice`);
        seen.add(version.number);
        const emitted = this.emitVersion(program, version, body);
        programs.push(emitted);
      }
    }
    const text = body.join('\n');
    return { code: this.header(text) + text.replace(/\n+$/, '') + '\n', types, programs };
  }

  private header(body: string): string {
    const uses = (name: string): boolean => new RegExp(`\\b${name}\\b`).test(body);
    const xdrNames = ['XdrEncodeError', 'XdrInvalidValueError', 'XdrLengthError', 'XdrReader', 'XdrWriter'].filter(uses);
    const xdrTypes = ['Codec'].filter(uses);
    const runtimeNames = ['handlerFailure'].filter(uses);
    const runtimeTypes = ['CallOptions', 'RawProgram', 'RpcCaller'].filter(uses);
    const lines = [
      `// Generated by rpctls gen from ${this.options.sourceName}. Do not edit: change the .x file and regenerate.`,
      '/* eslint-disable */',
    ];
    const spec = (values: string[], types: string[]): string => [...values, ...types.map((t) => `type ${t}`)].join(', ');
    if (this.options.xdrImport === this.options.runtimeImport) {
      const all = spec([...xdrNames, ...runtimeNames].sort(), [...xdrTypes, ...runtimeTypes].sort());
      if (all !== '') lines.push(`import { ${all} } from ${JSON.stringify(this.options.xdrImport)};`);
    } else {
      if (xdrNames.length + xdrTypes.length > 0) lines.push(`import { ${spec(xdrNames, xdrTypes)} } from ${JSON.stringify(this.options.xdrImport)};`);
      if (runtimeNames.length + runtimeTypes.length > 0) {
        lines.push(`import { ${spec(runtimeNames, runtimeTypes)} } from ${JSON.stringify(this.options.runtimeImport)};`);
      }
    }
    return `${lines.join('\n')}\n\n`;
  }

  private emitType(def: TypeDef, ts: string): string[] {
    switch (def.kind) {
      case 'enum':
        return this.emitEnum(def, ts);
      case 'typedef':
        return this.emitTypedef(def, ts);
      case 'struct':
        return this.emitStruct(def, ts);
      case 'union':
        return this.emitUnion(def, ts);
    }
  }

  private emitEnum(def: TypeDef & { kind: 'enum' }, ts: string): string[] {
    const values = [...new Set(def.members.map((m) => m.value))];
    const set = this.claimValue(`${ts}Values`, `the value set of ${def.name}`);
    return [
      `/** enum ${def.name}: ${def.members.map((m) => m.name).join(', ')} */`,
      `export type ${ts} = ${values.join(' | ')};`,
      `export const ${set}: ReadonlySet<number> = new Set<number>([${values.join(', ')}]);`,
      `export function encode${ts}(w: XdrWriter, v: ${ts}): void {`,
      `  if (!${set}.has(v)) throw new XdrEncodeError(\`\${v} is not a value of enum ${def.name}\`);`,
      '  w.int(v);',
      '}',
      `export function decode${ts}(r: XdrReader): ${ts} {`,
      `  return r.enum(${set}) as ${ts};`,
      '}',
    ];
  }

  private emitTypedef(def: TypeDef & { kind: 'typedef' }, ts: string): string[] {
    const lines = [`/** typedef ${def.name} */`, `export type ${ts} = ${this.tsDecl(def.decl)};`];
    const enc = new Out({ n: 0 }, 1);
    this.encodeDecl(def.decl, 'v', enc, def.name);
    lines.push(`export function encode${ts}(w: XdrWriter, v: ${ts}): void {`, ...enc.lines, '}');
    const dec = new Out({ n: 0 }, 1);
    const expr = this.decodeDecl(def.decl, dec, def.name);
    lines.push(`export function decode${ts}(r: XdrReader): ${ts} {`, ...dec.lines, `  return ${expr};`, '}');
    return lines;
  }

  /** For `struct s { ...; s *next; }` (directly or through a typedef): the link field, coded as a loop. */
  private listLink(def: TypeDef & { kind: 'struct' }): (Decl & { kind: 'optional' | 'scalar' }) | null {
    const last = def.fields[def.fields.length - 1];
    if (last === undefined) return null;
    let decl: Decl = last;
    for (let hops = 0; hops < 16; hops++) {
      if (decl.kind === 'optional') {
        return decl.type.kind === 'named' && decl.type.name === def.name && (last.kind === 'optional' || last.kind === 'scalar') ? last : null;
      }
      if (decl.kind !== 'scalar' || decl.type.kind !== 'named') return null;
      const target = this.def(decl.type.name);
      if (target.kind !== 'typedef') return null;
      decl = target.decl;
    }
    return null;
  }

  private emitStruct(def: TypeDef & { kind: 'struct' }, ts: string): string[] {
    const lines = [`/** struct ${def.name} */`, `export interface ${ts} {`];
    for (const f of def.fields) if (f.kind !== 'void') lines.push(`  ${f.name}: ${this.tsDecl(f)};`);
    lines.push('}');
    const link = this.listLink(def);
    const fields = def.fields.filter((f): f is Exclude<Decl, { kind: 'void' }> => f.kind !== 'void');
    const max = this.options.maxListLength;

    const enc = new Out({ n: 0 }, 1);
    if (link === null) {
      for (const f of fields) this.encodeDecl(f, `v.${f.name}`, enc, `${def.name}.${f.name}`);
    } else {
      // Iterative, so that a long list cannot overflow the stack; the length cap also stops cycles.
      enc.line(`let node: ${ts} = v;`);
      enc.line('for (let count = 1; ; count++) {');
      enc.indent();
      for (const f of fields.slice(0, -1)) this.encodeDecl(f, `node.${f.name}`, enc, `${def.name}.${f.name}`);
      enc.line(`const next = node.${link.name};`);
      enc.line('if (next === null || next === undefined) {');
      enc.line('  w.bool(false);');
      enc.line('  return;');
      enc.line('}');
      enc.line(`if (count >= ${max}) throw new XdrLengthError(${JSON.stringify(`${def.name} list`)}, count + 1, ${max}, w.length);`);
      enc.line('w.bool(true);');
      enc.line('node = next;');
      enc.dedent();
      enc.line('}');
    }
    lines.push(`export function encode${ts}(w: XdrWriter, v: ${ts}): void {`, ...enc.lines, '}');

    const dec = new Out({ n: 0 }, 1);
    if (link === null) {
      const values = fields.map((f) => {
        const t = dec.fresh('f');
        dec.line(`const ${t} = ${this.decodeDecl(f, dec, `${def.name}.${f.name}`)};`);
        return `${f.name}: ${t}`;
      });
      dec.line(`return { ${values.join(', ')} };`);
    } else {
      dec.line(`let head: ${ts} | undefined;`);
      dec.line(`let tail: ${ts} | undefined;`);
      dec.line('for (let count = 1; ; count++) {');
      dec.indent();
      const values = fields.slice(0, -1).map((f) => {
        const t = dec.fresh('f');
        dec.line(`const ${t} = ${this.decodeDecl(f, dec, `${def.name}.${f.name}`)};`);
        return `${f.name}: ${t}`;
      });
      values.push(`${link.name}: null`);
      dec.line(`const node: ${ts} = { ${values.join(', ')} };`);
      dec.line('if (tail === undefined) head = node;');
      dec.line(`else tail.${link.name} = node;`);
      dec.line('tail = node;');
      dec.line(`if (!r.bool()) return head as ${ts};`);
      dec.line(`if (count >= ${max}) throw new XdrLengthError(${JSON.stringify(`${def.name} list`)}, count + 1, ${max}, r.offset);`);
      dec.dedent();
      dec.line('}');
    }
    lines.push(`export function decode${ts}(r: XdrReader): ${ts} {`, ...dec.lines, '}');
    return lines;
  }

  /** The discriminant's base: 'bool', 'int', 'uint' or the enum's type name. */
  private discriminantBase(ref: TypeRef): { kind: 'bool' | 'int' | 'uint' } | { kind: 'enum'; ts: string } {
    if (ref.kind === 'primitive') {
      if (ref.type === 'bool' || ref.type === 'int' || ref.type === 'uint') return { kind: ref.type };
      return this.fail(`internal: bad discriminant ${ref.type}`);
    }
    const def = this.def(ref.name);
    if (def.kind === 'enum') return { kind: 'enum', ts: this.ts(def.name) };
    if (def.kind === 'typedef' && def.decl.kind === 'scalar') return this.discriminantBase(def.decl.type);
    return this.fail(`internal: bad discriminant type ${ref.name}`);
  }

  private emitUnion(def: TypeDef & { kind: 'union' }, ts: string): string[] {
    const disc = def.discriminant.name;
    const base = this.discriminantBase(def.discriminant.type);
    const literal = (value: number): string => (base.kind === 'bool' ? String(value !== 0) : String(value));
    const armType = (labels: string, decl: Decl): string =>
      decl.kind === 'void' ? `{ ${disc}: ${labels} }` : `{ ${disc}: ${labels}; ${decl.name}: ${this.tsDecl(decl)} }`;

    const members = def.arms.map((arm) => armType(arm.values.map(literal).join(' | '), arm.decl));
    const covered = def.arms.flatMap((a) => a.values);
    let defaultLabels: string | null = null;
    if (def.defaultArm !== null) {
      if (base.kind === 'enum') defaultLabels = covered.length > 0 ? `Exclude<${base.ts}, ${covered.join(' | ')}>` : base.ts;
      else if (base.kind === 'bool') {
        const rest = [0, 1].filter((b) => !covered.includes(b)).map(literal);
        defaultLabels = rest.length > 0 ? rest.join(' | ') : null;
      } else defaultLabels = 'number';
      if (defaultLabels !== null) members.push(armType(defaultLabels, def.defaultArm));
    }
    const lines = [`/** union ${def.name} switch (${disc}) */`, `export type ${ts} =`, ...members.map((m) => `  | ${m}`)];
    lines[lines.length - 1] += ';';

    const writeDisc = base.kind === 'bool' ? 'bool' : base.kind === 'uint' ? 'uint' : 'int';
    const enc = new Out({ n: 0 }, 1);
    enc.line(`switch (v.${disc}) {`);
    def.arms.forEach((arm, index) => {
      for (const value of arm.values) enc.line(`  case ${literal(value)}:`);
      enc.line('  {');
      enc.indent();
      enc.indent();
      enc.line(`w.${writeDisc}(v.${disc});`);
      if (arm.decl.kind !== 'void') {
        const a = enc.fresh('arm');
        enc.line(`const ${a} = v as ${members[index]};`);
        this.encodeDecl(arm.decl, `${a}.${arm.decl.name}`, enc, `${def.name}.${arm.decl.name}`);
      }
      enc.line('return;');
      enc.dedent();
      enc.dedent();
      enc.line('  }');
    });
    enc.line('  default: {');
    enc.indent();
    enc.indent();
    if (def.defaultArm !== null && defaultLabels !== null) {
      const a = enc.fresh('arm');
      enc.line(`const ${a} = v as ${armType(defaultLabels, def.defaultArm)};`);
      this.encodeRef(def.discriminant.type, `${a}.${disc}`, enc);
      if (def.defaultArm.kind !== 'void') this.encodeDecl(def.defaultArm, `${a}.${def.defaultArm.name}`, enc, `${def.name}.${def.defaultArm.name}`);
      enc.line('return;');
    } else {
      enc.line(`throw new XdrEncodeError(\`union ${def.name} has no arm for ${disc} \${String((v as { ${disc}: unknown }).${disc})}\`);`);
    }
    enc.dedent();
    enc.dedent();
    enc.line('  }');
    enc.line('}');
    lines.push(`export function encode${ts}(w: XdrWriter, v: ${ts}): void {`, ...enc.lines, '}');

    const dec = new Out({ n: 0 }, 1);
    const hasDefault = def.defaultArm !== null && defaultLabels !== null;
    if (!hasDefault) dec.line('const at = r.offset;');
    dec.line(`const d = ${this.decodeRef(def.discriminant.type, dec)};`);
    dec.line('switch (d) {');
    const decodeArm = (decl: Decl): void => {
      dec.indent();
      dec.indent();
      if (decl.kind === 'void') dec.line(`return { ${disc}: d };`);
      else {
        const expr = this.decodeDecl(decl, dec, `${def.name}.${decl.name}`);
        dec.line(`return { ${disc}: d, ${decl.name}: ${expr} };`);
      }
      dec.dedent();
      dec.dedent();
    };
    for (const arm of def.arms) {
      for (const value of arm.values) dec.line(`  case ${literal(value)}:`);
      dec.line('  {');
      decodeArm(arm.decl);
      dec.line('  }');
    }
    if (def.defaultArm !== null && defaultLabels !== null) {
      dec.line('  default: {');
      decodeArm(def.defaultArm);
      dec.line('  }');
      dec.line('}');
    } else {
      dec.line('}');
      dec.line(`throw new XdrInvalidValueError(${JSON.stringify(`union ${def.name} discriminant`)}, Number(d), at);`);
    }
    lines.push(`export function decode${ts}(r: XdrReader): ${ts} {`, ...dec.lines, '}');
    return lines;
  }

  // ---------------------------------------------------------------- programs

  private emitVersion(program: ProgramModel, version: VersionModel, body: string[]): EmittedProgram {
    const stem = program.name.replace(/_?PROG(RAM)?$/i, '') || program.name;
    const base = pascalCase(stem);
    const suffix = `_v${version.number}`;
    const clientClass = `${base}Client${suffix}`;
    const serverInterface = `${base}Server${suffix}`;
    const programFactory = `${base.charAt(0).toLowerCase()}${base.slice(1)}Program${suffix}`;
    for (const name of [clientClass, serverInterface]) {
      if (this.usedTypeNames.has(name)) this.fail(`generated name "${name}" clashes with a type of the same name`);
      this.usedTypeNames.add(name);
    }
    this.claimValue(clientClass, `the client of ${program.name} version ${version.number}`);
    this.claimValue(programFactory, `the server adapter of ${program.name} version ${version.number}`);

    const params = (proc: ProcedureModel): { name: string; type: string; decl: Decl }[] =>
      proc.args.map((decl, i) => ({ name: proc.args.length === 1 ? 'arg' : `arg${i}`, type: this.tsDecl(decl), decl }));
    const resultType = (proc: ProcedureModel): string => (proc.result.kind === 'void' ? 'void' : this.tsDecl(proc.result));

    body.push(
      `/** Client for ${program.name} (${program.number}) version ${version.name} (${version.number}). */`,
      `export class ${clientClass}<O = CallOptions> {`,
      '  readonly #caller: RpcCaller<O>;',
      '  constructor(caller: RpcCaller<O>) {',
      '    this.#caller = caller;',
      '  }',
    );
    for (const proc of version.procedures) {
      const ps = params(proc);
      const signature = [...ps.map((p) => `${p.name}: ${p.type}`), 'options?: O'].join(', ');
      const o = new Out({ n: 0 }, 2);
      o.line('const w = new XdrWriter();');
      for (const p of ps) this.encodeDecl(p.decl, p.name, o, `${proc.name} argument`);
      o.line(`const r = new XdrReader(await this.#caller.call(${program.number}, ${version.number}, ${proc.number}, w.finish(), options));`);
      if (proc.result.kind === 'void') {
        o.line('r.assertEnd();');
      } else {
        const expr = this.decodeDecl(proc.result, o, `${proc.name} result`);
        o.line(`const result = ${expr};`);
        o.line('r.assertEnd();');
        o.line('return result;');
      }
      body.push(`  /** Procedure ${proc.number}. */`, `  async ${proc.name}(${signature}): Promise<${resultType(proc)}> {`, ...o.lines, '  }');
    }
    body.push('}', '');

    body.push(`/** What a server implements for ${program.name} version ${version.number}; \`ctx\` is the server's call context. */`);
    body.push(`export interface ${serverInterface}<Ctx = unknown> {`);
    for (const proc of version.procedures) {
      const signature = [...params(proc).map((p) => `${p.name}: ${p.type}`), 'ctx: Ctx'].join(', ');
      const result = resultType(proc);
      body.push(`  ${proc.name}(${signature}): ${result} | Promise<${result}>;`);
    }
    body.push('}', '');

    body.push(
      `/**`,
      ` * Adapts an implementation to raw-bytes handlers. Argument decoding errors reject with XdrError (answer`,
      ` * GARBAGE_ARGS); failures of the implementation or of result encoding go through handlerFailure().`,
      ` */`,
      `export function ${programFactory}<Ctx = unknown>(impl: ${serverInterface}<Ctx>): RawProgram<Ctx> {`,
      '  return {',
      `    program: ${program.number},`,
      `    version: ${version.number},`,
      '    procedures: {',
    );
    for (const proc of version.procedures) {
      const ps = params(proc);
      const o = new Out({ n: 0 }, 4);
      o.line('const r = new XdrReader(args);');
      for (const p of ps) o.line(`const ${p.name} = ${this.decodeDecl(p.decl, o, `${proc.name} argument`)};`);
      o.line('r.assertEnd();');
      o.line('const w = new XdrWriter();');
      o.line('try {');
      o.indent();
      const call = `impl.${proc.name}(${[...ps.map((p) => p.name), 'ctx'].join(', ')})`;
      if (proc.result.kind === 'void') o.line(`await ${call};`);
      else {
        o.line(`const result = await ${call};`);
        this.encodeDecl(proc.result, 'result', o, `${proc.name} result`);
      }
      o.dedent();
      o.line('} catch (error) {');
      o.line('  throw handlerFailure(error);');
      o.line('}');
      o.line('return w.finish();');
      body.push(`      ${proc.number}: async (args: Buffer, ctx: Ctx): Promise<Buffer[]> => {`, ...o.lines, '      },');
    }
    body.push('    },', '  };', '}', '');
    return { program: program.name, version: version.number, clientClass, serverInterface, programFactory };
  }
}
