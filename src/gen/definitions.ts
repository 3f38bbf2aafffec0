/**
 * Emits one named .x type definition (enum, typedef, struct or union): its TypeScript type and its
 * encode/decode functions, with linked lists (`struct s { ...; s *next; }`) coded as loops rather than by
 * recursion. Names, the Codec object and all emitter state stay with the Emitter in emit.ts; what this
 * module needs from it comes in explicitly through `DefinitionContext`.
 */
import type { Decl, TypeDef, TypeRef } from './model.js';
import { Out, type DeclCoder } from './output.js';

/** The Emitter's services the definition emitters use. */
export interface DefinitionContext extends DeclCoder {
  /** The TypeScript name of a .x type. */
  ts(name: string): string;
  /** The model's definition of a .x type. */
  def(name: string): TypeDef;
  /** Longest linked list accepted or written (EmitOptions.maxListLength). */
  readonly maxListLength: number;
}

export function emitDefinition(cx: DefinitionContext, def: TypeDef, ts: string): string[] {
  switch (def.kind) {
    case 'enum':
      return emitEnum(cx, def, ts);
    case 'typedef':
      return emitTypedef(cx, def, ts);
    case 'struct':
      return emitStruct(cx, def, ts);
    case 'union':
      return emitUnion(cx, def, ts);
  }
}

function emitEnum(cx: DefinitionContext, def: TypeDef & { kind: 'enum' }, ts: string): string[] {
  const values = [...new Set(def.members.map((m) => m.value))];
  const set = cx.claimValue(`${ts}Values`, `the value set of ${def.name}`);
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

function emitTypedef(cx: DefinitionContext, def: TypeDef & { kind: 'typedef' }, ts: string): string[] {
  const lines = [`/** typedef ${def.name} */`, `export type ${ts} = ${cx.tsDecl(def.decl)};`];
  const enc = new Out({ n: 0 }, 1);
  cx.encodeDecl(def.decl, 'v', enc, def.name);
  lines.push(`export function encode${ts}(w: XdrWriter, v: ${ts}): void {`, ...enc.lines, '}');
  const dec = new Out({ n: 0 }, 1);
  const expr = cx.decodeDecl(def.decl, dec, def.name);
  lines.push(`export function decode${ts}(r: XdrReader): ${ts} {`, ...dec.lines, `  return ${expr};`, '}');
  return lines;
}

/** For `struct s { ...; s *next; }` (directly or through a typedef): the link field, coded as a loop. */
function listLink(cx: DefinitionContext, def: TypeDef & { kind: 'struct' }): (Decl & { kind: 'optional' | 'scalar' }) | null {
  const last = def.fields[def.fields.length - 1];
  if (last === undefined) return null;
  let decl: Decl = last;
  for (let hops = 0; hops < 16; hops++) {
    if (decl.kind === 'optional') {
      return decl.type.kind === 'named' && decl.type.name === def.name && (last.kind === 'optional' || last.kind === 'scalar') ? last : null;
    }
    if (decl.kind !== 'scalar' || decl.type.kind !== 'named') return null;
    const target = cx.def(decl.type.name);
    if (target.kind !== 'typedef') return null;
    decl = target.decl;
  }
  return null;
}

function emitStruct(cx: DefinitionContext, def: TypeDef & { kind: 'struct' }, ts: string): string[] {
  const lines = [`/** struct ${def.name} */`, `export interface ${ts} {`];
  for (const f of def.fields) if (f.kind !== 'void') lines.push(`  ${f.name}: ${cx.tsDecl(f)};`);
  lines.push('}');
  const link = listLink(cx, def);
  const fields = def.fields.filter((f): f is Exclude<Decl, { kind: 'void' }> => f.kind !== 'void');
  const max = cx.maxListLength;

  const enc = new Out({ n: 0 }, 1);
  if (link === null) {
    for (const f of fields) cx.encodeDecl(f, `v.${f.name}`, enc, `${def.name}.${f.name}`);
  } else {
    // Iterative, so that a long list cannot overflow the stack; the length cap also stops cycles.
    enc.line(`let node: ${ts} = v;`);
    enc.line('for (let count = 1; ; count++) {');
    enc.indent();
    for (const f of fields.slice(0, -1)) cx.encodeDecl(f, `node.${f.name}`, enc, `${def.name}.${f.name}`);
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
      dec.line(`const ${t} = ${cx.decodeDecl(f, dec, `${def.name}.${f.name}`)};`);
      return `${propertyKey(f.name)}: ${t}`;
    });
    dec.line(`return { ${values.join(', ')} };`);
  } else {
    dec.line(`let head: ${ts} | undefined;`);
    dec.line(`let tail: ${ts} | undefined;`);
    dec.line('for (let count = 1; ; count++) {');
    dec.indent();
    const values = fields.slice(0, -1).map((f) => {
      const t = dec.fresh('f');
      dec.line(`const ${t} = ${cx.decodeDecl(f, dec, `${def.name}.${f.name}`)};`);
      return `${propertyKey(f.name)}: ${t}`;
    });
    values.push(`${propertyKey(link.name)}: null`);
    dec.line(`const node: ${ts} = { ${values.join(', ')} };`);
    dec.line('if (tail === undefined) head = node;');
    dec.line(link.name === '__proto__' ? `else Object.defineProperty(tail, '__proto__', { value: node, writable: true, enumerable: true, configurable: true });` : `else tail.${link.name} = node;`);
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
function discriminantBase(cx: DefinitionContext, ref: TypeRef): { kind: 'bool' | 'int' | 'uint' } | { kind: 'enum'; ts: string } {
  if (ref.kind === 'primitive') {
    if (ref.type === 'bool' || ref.type === 'int' || ref.type === 'uint') return { kind: ref.type };
    return cx.fail(`internal: bad discriminant ${ref.type}`);
  }
  const def = cx.def(ref.name);
  if (def.kind === 'enum') return { kind: 'enum', ts: cx.ts(def.name) };
  if (def.kind === 'typedef' && def.decl.kind === 'scalar') return discriminantBase(cx, def.decl.type);
  return cx.fail(`internal: bad discriminant type ${ref.name}`);
}

function emitUnion(cx: DefinitionContext, def: TypeDef & { kind: 'union' }, ts: string): string[] {
  const disc = def.discriminant.name;
  const base = discriminantBase(cx, def.discriminant.type);
  const literal = (value: number): string => (base.kind === 'bool' ? String(value !== 0) : String(value));
  const armType = (labels: string, decl: Decl): string =>
    decl.kind === 'void' ? `{ ${disc}: ${labels} }` : `{ ${disc}: ${labels}; ${decl.name}: ${cx.tsDecl(decl)} }`;

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
      cx.encodeDecl(arm.decl, `${a}.${arm.decl.name}`, enc, `${def.name}.${arm.decl.name}`);
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
    cx.encodeRef(def.discriminant.type, `${a}.${disc}`, enc);
    if (def.defaultArm.kind !== 'void') cx.encodeDecl(def.defaultArm, `${a}.${def.defaultArm.name}`, enc, `${def.name}.${def.defaultArm.name}`);
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
  dec.line(`const d = ${cx.decodeRef(def.discriminant.type, dec)};`);
  dec.line('switch (d) {');
  const decodeArm = (decl: Decl): void => {
    dec.indent();
    dec.indent();
    if (decl.kind === 'void') dec.line(`return { ${propertyKey(disc)}: d };`);
    else {
      const expr = cx.decodeDecl(decl, dec, `${def.name}.${decl.name}`);
      dec.line(`return { ${propertyKey(disc)}: d, ${propertyKey(decl.name)}: ${expr} };`);
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

/**
 * A field name as an object-literal key. `__proto__: v` in a literal sets the prototype instead of
 * defining a field (the value is lost, or the peer's data becomes the prototype); the computed form
 * `["__proto__"]: v` defines an own property like any other name.
 */
function propertyKey(name: string): string {
  return name === '__proto__' ? '["__proto__"]' : name;
}
