/**
 * Semantic pass: turns the syntax tree into a resolved model the emitter can walk without looking
 * anything up by hand. Constants become numbers, type names are checked, anonymous inline
 * struct/union/enum bodies are hoisted into named types, and C-level type names that rpcgen passes
 * through to libc's XDR routines (u_int, uint32_t, netobj, ...) are mapped to their wire types.
 */
import type { Declaration, Definition, EnumBody, Specification, StructBody, TypeSpec, UnionBody, Value } from './ast.js';
import { XdrCompileError, formatPosition, type SourcePosition } from './errors.js';
import { parseIntegerLiteral } from './lexer.js';

export const UNBOUNDED = 0xffffffff;

export type Primitive = 'int' | 'uint' | 'hyper' | 'uhyper' | 'float' | 'double' | 'bool';

export type TypeRef = { readonly kind: 'primitive'; readonly type: Primitive } | { readonly kind: 'named'; readonly name: string };

export type Decl =
  | { readonly kind: 'void' }
  | { readonly kind: 'scalar'; readonly name: string; readonly type: TypeRef }
  | { readonly kind: 'fixedArray'; readonly name: string; readonly type: TypeRef; readonly length: number }
  | { readonly kind: 'varArray'; readonly name: string; readonly type: TypeRef; readonly max: number }
  | { readonly kind: 'fixedOpaque'; readonly name: string; readonly length: number }
  | { readonly kind: 'varOpaque'; readonly name: string; readonly max: number }
  | { readonly kind: 'string'; readonly name: string; readonly max: number }
  | { readonly kind: 'optional'; readonly name: string; readonly type: TypeRef };

export interface UnionArmModel {
  readonly values: readonly number[];
  readonly decl: Decl;
}

export type TypeDef =
  | { readonly kind: 'typedef'; readonly name: string; readonly decl: Decl; readonly pos: SourcePosition }
  | { readonly kind: 'enum'; readonly name: string; readonly members: readonly { name: string; value: number }[]; readonly pos: SourcePosition }
  | { readonly kind: 'struct'; readonly name: string; readonly fields: readonly Decl[]; readonly pos: SourcePosition }
  | {
      readonly kind: 'union';
      readonly name: string;
      readonly discriminant: Decl & { kind: 'scalar' };
      readonly arms: readonly UnionArmModel[];
      readonly defaultArm: Decl | null;
      readonly pos: SourcePosition;
    };

export interface ProcedureModel {
  readonly name: string;
  readonly number: number;
  readonly args: readonly Decl[];
  readonly result: Decl;
}

export interface VersionModel {
  readonly name: string;
  readonly number: number;
  readonly procedures: readonly ProcedureModel[];
}

export interface ProgramModel {
  readonly name: string;
  readonly number: number;
  readonly versions: readonly VersionModel[];
}

export type ConstantOrigin = 'const' | 'enum' | 'program' | 'version' | 'procedure';

export interface ConstantModel {
  readonly name: string;
  readonly value: number | string;
  readonly origin: ConstantOrigin;
}

export interface Model {
  /** In definition order; duplicates (the same procedure name in several versions) appear once. */
  readonly constants: readonly ConstantModel[];
  /** In definition order (hoisted anonymous types come right before their owner). */
  readonly types: ReadonlyMap<string, TypeDef>;
  readonly programs: readonly ProgramModel[];
}

/** C type names rpcgen passes through to libtirpc's xdr_<name>; all are 32 bits on the wire except 64-bit ones. */
const PRIMITIVE_ALIASES: Readonly<Record<string, Primitive>> = {
  char: 'int', short: 'int', long: 'int', int8_t: 'int', int16_t: 'int', int32_t: 'int',
  u_char: 'uint', u_short: 'uint', u_int: 'uint', u_long: 'uint', uint8_t: 'uint', uint16_t: 'uint',
  uint32_t: 'uint', u_int8_t: 'uint', u_int16_t: 'uint', u_int32_t: 'uint', uint: 'uint',
  int64_t: 'hyper', quad_t: 'hyper', longlong_t: 'hyper',
  uint64_t: 'uhyper', u_int64_t: 'uhyper', u_quad_t: 'uhyper', u_longlong_t: 'uhyper',
  bool_t: 'bool',
};

/** Types from <rpc/xdr.h> and <rpc/auth.h> that .x files use without defining them. */
const LIBRARY_TYPEDEFS: Readonly<Record<string, Decl>> = {
  // xdr_netobj: opaque<MAX_NETOBJ_SZ>
  netobj: { kind: 'varOpaque', name: 'netobj', max: 1024 },
  // xdr_des_block: 8 opaque bytes
  des_block: { kind: 'fixedOpaque', name: 'des_block', length: 8 },
};

/** Constants from <rpc/*.h> that .x files use: TRUE/FALSE in bool unions, bounds like MAXNETNAMELEN. */
const LIBRARY_CONSTANTS: Readonly<Record<string, number>> = { TRUE: 1, FALSE: 0, MAXNETNAMELEN: 255, MAX_NETOBJ_SZ: 1024 };

interface PendingConstant {
  readonly name: string;
  readonly value: Value;
  readonly pos: SourcePosition;
  readonly origin: ConstantOrigin;
  /** For enum members without `= value`: the previous member (value + 1), like C. */
  readonly previous?: string | undefined;
}

export function buildModel(spec: Specification): Model {
  return new ModelBuilder(spec).build();
}

class ModelBuilder {
  private readonly pendingConstants = new Map<string, PendingConstant>();
  private readonly constantValues = new Map<string, number>();
  private readonly resolving = new Set<string>();
  private readonly constantOrder: ConstantModel[] = [];
  private readonly types = new Map<string, TypeDef>();
  private readonly typePositions = new Map<string, SourcePosition>();
  private readonly declaredTypeNames = new Set<string>();
  private readonly programs: ProgramModel[] = [];
  private readonly stringConstants = new Map<string, string>();
  private readonly cDefines = new Map<string, { expression: string; pos: SourcePosition }>();

  constructor(private readonly spec: Specification) {
    for (const d of spec.cDefines) this.cDefines.set(d.name, d);
  }

  /** Evaluates a pass-through `%#define` body: integers and names joined by + and -. */
  private cDefine(name: string, usedAt: SourcePosition): number | undefined {
    const define = this.cDefines.get(name);
    if (define === undefined) return undefined;
    const terms = define.expression.replace(/[()\s]/g, '').split(/(?=[+-])/);
    let sum = 0;
    for (const term of terms) {
      const match = /^([+-]?)(\w+)$/.exec(term);
      if (match === null) throw new XdrCompileError(usedAt, `cannot evaluate "${name}" (defined as "${define.expression}" at ${formatPosition(define.pos)})`);
      const operand = match[2] as string;
      const value = /^[0-9]/.test(operand) ? parseIntegerLiteral(operand, define.pos) : this.constant(operand, define.pos);
      sum += match[1] === '-' ? -value : value;
    }
    return sum;
  }

  build(): Model {
    // First pass: collect every name, so constants and types may be used before their definition.
    for (const def of this.spec.definitions) this.declareNames(def);
    for (const def of this.spec.definitions) this.defineType(def);
    for (const pending of this.pendingConstants.values()) {
      const value = this.stringConstants.get(pending.name) ?? this.constant(pending.name, pending.pos);
      this.constantOrder.push({ name: pending.name, value, origin: pending.origin });
    }
    return { constants: this.constantOrder, types: this.types, programs: this.programs };
  }

  private addConstant(pending: PendingConstant): void {
    const existing = this.pendingConstants.get(pending.name);
    if (existing !== undefined) {
      // rpcgen emits one #define per procedure; the same name in several versions is fine if it agrees.
      const sameProcedure =
        existing.origin === 'procedure' && pending.origin === 'procedure' && this.literalOf(existing.value) === this.literalOf(pending.value);
      if (sameProcedure) return;
      throw new XdrCompileError(pending.pos, `"${pending.name}" is already defined at ${formatPosition(existing.pos)}`);
    }
    this.pendingConstants.set(pending.name, pending);
  }

  private literalOf(value: Value): number | string {
    return value.kind === 'literal' ? value.value : `${value.negate ? '-' : ''}${value.name}`;
  }

  private declareTypeName(name: string, pos: SourcePosition): void {
    const existing = this.typePositions.get(name);
    if (existing !== undefined) throw new XdrCompileError(pos, `type "${name}" is already defined at ${formatPosition(existing)}`);
    this.typePositions.set(name, pos);
    this.declaredTypeNames.add(name);
  }

  private declareEnumMembers(body: EnumBody): void {
    let previous: string | undefined;
    for (const member of body.members) {
      const value: Value = member.value ?? { kind: 'literal', value: 0, pos: member.pos };
      this.addConstant({ name: member.name, value, pos: member.pos, origin: 'enum', previous: member.value === null ? previous : undefined });
      previous = member.name;
    }
  }

  /** Declares names of nested anonymous types too (their enum members are constants). */
  private declareNestedTypes(owner: string, decls: readonly Declaration[]): void {
    for (const decl of decls) {
      if (decl.kind === 'void' || !('type' in decl)) continue;
      this.declareInline(owner, decl.name, decl.type, decl.pos);
    }
  }

  private declareInline(owner: string, field: string, type: TypeSpec, pos: SourcePosition): void {
    if (type.kind !== 'enum' && type.kind !== 'struct' && type.kind !== 'union') return;
    const name = hoistedName(owner, field);
    this.declareTypeName(name, pos);
    this.declareBody(name, type);
  }

  private declareBody(name: string, type: TypeSpec): void {
    if (type.kind === 'enum') this.declareEnumMembers(type.body);
    else if (type.kind === 'struct') this.declareNestedTypes(name, type.body.fields);
    else if (type.kind === 'union') this.declareUnionNested(name, type.body);
  }

  private declareUnionNested(name: string, body: UnionBody): void {
    this.declareNestedTypes(name, [body.discriminant, ...body.arms.map((a) => a.declaration), ...(body.defaultArm ? [body.defaultArm] : [])]);
  }

  private declareNames(def: Definition): void {
    switch (def.kind) {
      case 'const':
        this.addConstant({ name: def.name, value: def.value, pos: def.pos, origin: 'const' });
        return;
      case 'stringConst':
        this.addConstant({ name: def.name, value: { kind: 'literal', value: 0, pos: def.pos }, pos: def.pos, origin: 'const' });
        this.stringConstants.set(def.name, def.value);
        return;
      case 'typedef': {
        const decl = def.declaration;
        if (decl.kind === 'void' || isSelfAlias(decl)) return;
        this.declareTypeName(decl.name, def.pos);
        // `typedef struct { ... } name;` defines the struct itself under that name.
        if (decl.kind === 'scalar') this.declareBody(decl.name, decl.type);
        else if ('type' in decl) this.declareInline(decl.name, 'item', decl.type, decl.pos);
        return;
      }
      case 'enum':
        this.declareTypeName(def.name, def.pos);
        this.declareEnumMembers(def.body);
        return;
      case 'struct':
        this.declareTypeName(def.name, def.pos);
        this.declareNestedTypes(def.name, def.body.fields);
        return;
      case 'union':
        this.declareTypeName(def.name, def.pos);
        this.declareUnionNested(def.name, def.body);
        return;
      case 'program':
        this.addConstant({ name: def.name, value: def.number, pos: def.pos, origin: 'program' });
        for (const version of def.versions) {
          this.addConstant({ name: version.name, value: version.number, pos: version.pos, origin: 'version' });
          for (const proc of version.procedures) {
            this.addConstant({ name: proc.name, value: proc.number, pos: proc.pos, origin: 'procedure' });
          }
        }
        return;
    }
  }

  /** The numeric value of a named constant (resolving forward references, rejecting cycles). */
  private constant(name: string, usedAt: SourcePosition): number {
    const known = this.constantValues.get(name);
    if (known !== undefined) return known;
    const pending = this.pendingConstants.get(name);
    if (pending === undefined) {
      const library = LIBRARY_CONSTANTS[name] ?? this.cDefine(name, usedAt);
      if (library !== undefined) return library;
      throw new XdrCompileError(usedAt, `unknown constant "${name}"`);
    }
    if (this.stringConstants.has(name)) throw new XdrCompileError(usedAt, `"${name}" is a string constant, not a number`);
    if (this.resolving.has(name)) throw new XdrCompileError(pending.pos, `constant "${name}" is defined in terms of itself`);
    this.resolving.add(name);
    const value = pending.previous !== undefined ? this.constant(pending.previous, pending.pos) + 1 : this.value(pending.value);
    this.resolving.delete(name);
    this.constantValues.set(name, value);
    return value;
  }

  value(value: Value): number {
    if (value.kind === 'literal') return value.value;
    const resolved = this.constant(value.name, value.pos);
    return value.negate ? -resolved : resolved;
  }

  private bound(value: Value | null, what: string): number {
    if (value === null) return UNBOUNDED;
    const n = this.value(value);
    if (!Number.isInteger(n) || n < 0 || n > UNBOUNDED) {
      throw new XdrCompileError(value.pos, `${what} must be from 0 to ${UNBOUNDED}, got ${n}`);
    }
    return n;
  }

  private typeRef(type: TypeSpec, owner: string, field: string, pos: SourcePosition): TypeRef {
    switch (type.kind) {
      case 'int':
        return { kind: 'primitive', type: type.unsigned ? 'uint' : 'int' };
      case 'hyper':
        return { kind: 'primitive', type: type.unsigned ? 'uhyper' : 'hyper' };
      case 'float':
      case 'double':
      case 'bool':
        return { kind: 'primitive', type: type.kind };
      case 'named': {
        if (this.declaredTypeNames.has(type.name)) return { kind: 'named', name: type.name };
        const primitive = PRIMITIVE_ALIASES[type.name];
        if (primitive !== undefined) return { kind: 'primitive', type: primitive };
        const library = LIBRARY_TYPEDEFS[type.name];
        if (library !== undefined) {
          if (!this.types.has(type.name)) this.types.set(type.name, { kind: 'typedef', name: type.name, decl: library, pos: type.pos });
          return { kind: 'named', name: type.name };
        }
        if (type.name === 'string' || type.name === 'opaque') {
          throw new XdrCompileError(type.pos, `${type.name} needs a name and a bound here (like "${type.name} x<>")`);
        }
        throw new XdrCompileError(type.pos, `unknown type "${type.name}"`);
      }
      case 'enum':
      case 'struct':
      case 'union': {
        const name = hoistedName(owner, field);
        this.defineBody(name, type, pos);
        return { kind: 'named', name };
      }
    }
  }

  private decl(declaration: Declaration, owner: string): Decl {
    const d = declaration;
    switch (d.kind) {
      case 'void':
        return { kind: 'void' };
      case 'scalar':
        return { kind: 'scalar', name: d.name, type: this.typeRef(d.type, owner, d.name, d.pos) };
      case 'optional':
        return { kind: 'optional', name: d.name, type: this.typeRef(d.type, owner, d.name, d.pos) };
      case 'fixedArray':
        return { kind: 'fixedArray', name: d.name, type: this.typeRef(d.type, owner, d.name, d.pos), length: this.bound(d.length, 'an array length') };
      case 'varArray':
        return { kind: 'varArray', name: d.name, type: this.typeRef(d.type, owner, d.name, d.pos), max: this.bound(d.max, 'an array bound') };
      case 'fixedOpaque':
        return { kind: 'fixedOpaque', name: d.name, length: this.bound(d.length, 'an opaque length') };
      case 'varOpaque':
        return { kind: 'varOpaque', name: d.name, max: this.bound(d.max, 'an opaque bound') };
      case 'string':
        return { kind: 'string', name: d.name, max: this.bound(d.max, 'a string bound') };
    }
  }

  private defineBody(name: string, type: TypeSpec & { kind: 'enum' | 'struct' | 'union' }, pos: SourcePosition): void {
    if (type.kind === 'enum') this.defineEnum(name, type.body, pos);
    else if (type.kind === 'struct') this.defineStruct(name, type.body, pos);
    else this.defineUnion(name, type.body, pos);
  }

  private defineEnum(name: string, body: EnumBody, pos: SourcePosition): void {
    const members = body.members.map((m) => {
      const value = this.constant(m.name, m.pos);
      if (value < -0x80000000 || value > 0x7fffffff) throw new XdrCompileError(m.pos, `enum value ${value} does not fit in 32 bits`);
      return { name: m.name, value };
    });
    this.types.set(name, { kind: 'enum', name, members, pos });
  }

  private defineStruct(name: string, body: StructBody, pos: SourcePosition): void {
    const seen = new Set<string>();
    const fields = body.fields.map((f) => {
      const decl = this.decl(f, name);
      if (decl.kind !== 'void') {
        if (seen.has(decl.name)) throw new XdrCompileError(f.pos, `duplicate field "${decl.name}" in struct ${name}`);
        seen.add(decl.name);
      }
      return decl;
    });
    this.types.set(name, { kind: 'struct', name, fields, pos });
  }

  private defineUnion(name: string, body: UnionBody, pos: SourcePosition): void {
    const discriminant = this.decl(body.discriminant, name);
    if (discriminant.kind !== 'scalar' || !this.isDiscriminantType(discriminant.type)) {
      throw new XdrCompileError(body.discriminant.pos, `the discriminant of union ${name} must be int, unsigned int, an enum or bool`);
    }
    const seen = new Map<number, SourcePosition>();
    const arms = body.arms.map((arm) => {
      const values = arm.cases.map((c) => {
        const value = this.value(c);
        const previous = seen.get(value);
        if (previous !== undefined) throw new XdrCompileError(c.pos, `case ${value} already appears at ${formatPosition(previous)}`);
        seen.set(value, c.pos);
        return value;
      });
      return { values, decl: this.decl(arm.declaration, name) };
    });
    const defaultArm = body.defaultArm === null ? null : this.decl(body.defaultArm, name);
    this.types.set(name, { kind: 'union', name, discriminant, arms, defaultArm, pos });
  }

  private isDiscriminantType(type: TypeRef): boolean {
    if (type.kind === 'primitive') return type.type === 'int' || type.type === 'uint' || type.type === 'bool';
    const def = this.types.get(type.name) ?? this.findDefinition(type.name);
    if (def === undefined) return false;
    if (def.kind === 'enum') return true;
    return def.kind === 'typedef' && def.decl.kind === 'scalar' && this.isDiscriminantType(def.decl.type);
  }

  /** Looks at the syntax tree for a type not modelled yet (a typedef'd discriminant defined later). */
  private findDefinition(name: string): TypeDef | undefined {
    for (const def of this.spec.definitions) {
      if ((def.kind === 'enum' && def.name === name)) return { kind: 'enum', name, members: [], pos: def.pos };
      if (def.kind === 'typedef' && def.declaration.kind === 'scalar' && def.declaration.name === name) {
        const type = def.declaration.type;
        if (type.kind === 'enum') return { kind: 'enum', name, members: [], pos: def.pos };
        if (type.kind === 'struct' || type.kind === 'union') return undefined;
        return { kind: 'typedef', name, decl: this.decl(def.declaration, name), pos: def.pos };
      }
    }
    return undefined;
  }

  private defineType(def: Definition): void {
    switch (def.kind) {
      case 'const':
      case 'stringConst':
        return;
      case 'typedef': {
        const d = def.declaration;
        if (d.kind === 'void' || isSelfAlias(d)) return;
        if (d.kind === 'scalar' && (d.type.kind === 'enum' || d.type.kind === 'struct' || d.type.kind === 'union')) {
          this.defineBody(d.name, d.type, def.pos);
          return;
        }
        const decl = this.decl(d, d.name);
        this.types.set(d.name, { kind: 'typedef', name: d.name, decl, pos: def.pos });
        return;
      }
      case 'enum':
        this.defineEnum(def.name, def.body, def.pos);
        return;
      case 'struct':
        this.defineStruct(def.name, def.body, def.pos);
        return;
      case 'union':
        this.defineUnion(def.name, def.body, def.pos);
        return;
      case 'program': {
        const versions = def.versions.map((v) => {
          const procNumbers = new Map<number, string>();
          const procedures = v.procedures.map((p) => {
            const number = this.value(p.number);
            const clash = procNumbers.get(number);
            if (clash !== undefined) throw new XdrCompileError(p.pos, `procedure number ${number} is already used by ${clash}`);
            procNumbers.set(number, p.name);
            return {
              name: p.name,
              number,
              args: p.args.map((a) => this.decl(a, `${p.name}_arg`)),
              result: this.decl(p.result, `${p.name}_res`),
            };
          });
          return { name: v.name, number: this.value(v.number), procedures };
        });
        this.programs.push({ name: def.name, number: this.value(def.number), versions });
        return;
      }
    }
  }
}

/** `typedef struct x x;`: the C idiom naming a struct type, a no-op in XDR. */
function isSelfAlias(decl: Declaration): boolean {
  return decl.kind === 'scalar' && decl.type.kind === 'named' && decl.type.name === decl.name;
}

function hoistedName(owner: string, field: string): string {
  return `${owner}_${field}`;
}
