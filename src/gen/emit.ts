/**
 * TypeScript emitter: one module per .x file with types, straight-line encode/decode functions on the
 * XdrWriter/XdrReader core, Codec objects, constants, and per program version a typed client class and
 * a server-side adapter. The Emitter here holds all state (names, value-name claims, size cache) and the
 * declaration-level coding; whole definitions are emitted by definitions.ts, program stubs by programs.ts,
 * both through interfaces the Emitter implements.
 */
import { emitDefinition, type DefinitionContext } from './definitions.js';
import { XdrCompileError } from './errors.js';
import { type Decl, type Model, type TypeDef, type TypeRef } from './model.js';
import { JS_RESERVED, RESERVED_TYPE_NAMES, pascalCase, type Out } from './output.js';
import { emitVersion, type EmittedProgram, type ProgramContext } from './programs.js';
import { StringModes, type StringMode } from './strings.js';

export { pascalCase };
export type { EmittedProgram };

export interface EmitOptions {
  /** Module specifier generated code imports XdrWriter/XdrReader/errors from. */
  readonly xdrImport: string;
  /** Module specifier for the RPC stub interfaces (RpcCaller, RawProgram, handlerFailure). */
  readonly runtimeImport: string;
  /** Longest linked list (`struct x *next` chains) accepted or written; guards against hostile input. */
  readonly maxListLength: number;
  /** Shown in the header comment. */
  readonly sourceName: string;
  /** How `string` is coded unless `stringsByName` selects it (see strings.ts). */
  readonly strings: StringMode;
  /** Per-name exceptions: a string typedef, a struct, union or procedure, or `type.member`. */
  readonly stringsByName: Readonly<Record<string, StringMode>>;
}

export interface EmittedType {
  readonly xdrName: string;
  readonly tsName: string;
  readonly encodeName: string;
  readonly decodeName: string;
  readonly codecName: string;
}

export interface EmitResult {
  readonly code: string;
  readonly types: readonly EmittedType[];
  readonly programs: readonly EmittedProgram[];
}

export function emitTypeScript(model: Model, options: EmitOptions): EmitResult {
  return new Emitter(model, options).emit();
}

class Emitter implements DefinitionContext, ProgramContext {
  private readonly tsNames = new Map<string, string>();
  private readonly usedTypeNames = new Set(RESERVED_TYPE_NAMES);
  private readonly valueNames = new Map<string, string>();
  private readonly minSizes = new Map<string, number>();
  private readonly stringModes: StringModes;

  constructor(
    private readonly model: Model,
    private readonly options: EmitOptions,
  ) {
    this.stringModes = new StringModes(model, options.strings, options.stringsByName);
    for (const name of model.types.keys()) {
      let ts = pascalCase(name);
      while (this.usedTypeNames.has(ts)) ts += '_';
      this.usedTypeNames.add(ts);
      this.tsNames.set(name, ts);
    }
  }

  fail(message: string): never {
    throw new XdrCompileError({ file: this.options.sourceName, line: 1, column: 1 }, message);
  }

  get maxListLength(): number {
    return this.options.maxListLength;
  }

  claimTypeName(name: string): void {
    if (this.usedTypeNames.has(name)) this.fail(`generated name "${name}" clashes with a type of the same name`);
    this.usedTypeNames.add(name);
  }

  /** Registers a value-namespace name of the module, rejecting clashes (a constant named like a codec). */
  claimValue(name: string, what: string): string {
    const existing = this.valueNames.get(name);
    if (existing !== undefined) this.fail(`generated name "${name}" for ${what} clashes with ${existing}`);
    this.valueNames.set(name, what);
    return name;
  }

  ts(name: string): string {
    const ts = this.tsNames.get(name);
    if (ts === undefined) return this.fail(`internal: unknown type ${name}`);
    return ts;
  }

  def(name: string): TypeDef {
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

  tsDecl(d: Decl): string {
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
        return this.stringModes.modeOf(d) === 'buffer' ? 'Buffer' : 'string';
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

  encodeRef(ref: TypeRef, v: string, o: Out): void {
    if (ref.kind === 'primitive') {
      o.line(`w.${ref.type}(${v});`);
      return;
    }
    const inline = this.inlineable(ref);
    if (inline !== null) this.encodeDecl(inline, v, o, ref.name);
    else o.line(`encode${this.ts(ref.name)}(w, ${v});`);
  }

  encodeDecl(d: Decl, v: string, o: Out, what: string): void {
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
        // 'buffer' needs no method of its own: w.string() writes a Buffer's bytes as they are.
        o.line(`w.${this.stringModes.modeOf(d) === 'utf8-strict' ? 'stringStrict' : 'string'}(${v}, ${d.max});`);
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
  decodeRef(ref: TypeRef, o: Out): string {
    if (ref.kind === 'primitive') return `r.${ref.type}()`;
    const inline = this.inlineable(ref);
    if (inline !== null) return this.decodeDecl(inline, o, ref.name);
    return `decode${this.ts(ref.name)}(r)`;
  }

  decodeDecl(d: Decl, o: Out, what: string): string {
    switch (d.kind) {
      case 'void':
        return 'undefined';
      case 'scalar':
        return this.decodeRef(d.type, o);
      case 'fixedOpaque':
        return `r.fixedOpaque(${d.length})`;
      case 'varOpaque':
        return `r.opaque(${d.max})`;
      case 'string': {
        const mode = this.stringModes.modeOf(d);
        return `r.${mode === 'buffer' ? 'stringBytes' : mode === 'utf8-strict' ? 'stringStrict' : 'string'}(${d.max})`;
      }
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
      body.push(...emitDefinition(this, def, ts));
      body.push(`export const ${ts}Codec: Codec<${ts}> = { encode: encode${ts}, decode: decode${ts}, minSize: ${this.minSizeRef({ kind: 'named', name: def.name })} };`);
      body.push('');
    }
    const programs: EmittedProgram[] = [];
    for (const program of this.model.programs) {
      const seen = new Set<number>();
      for (const version of program.versions) {
        if (seen.has(version.number)) this.fail(`program ${program.name} defines version ${version.number} twice`);
        seen.add(version.number);
        const emitted = emitVersion(this, program, version, body);
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
}
