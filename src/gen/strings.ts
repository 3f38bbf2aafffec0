/**
 * How each XDR `string` of a model is coded in the generated TypeScript. XDR strings are bytes; NFS file
 * names and paths need not be UTF-8, and decoding them as UTF-8 silently turns invalid sequences into
 * U+FFFD, so a name read and sent back no longer names the same file. The modes:
 * - 'utf8' (default): a JS string; invalid UTF-8 becomes U+FFFD, as Buffer#toString does.
 * - 'utf8-strict': a JS string; invalid UTF-8 received is an XdrInvalidUtf8Error (GARBAGE_ARGS on a
 *   server), and a string with no UTF-8 form is an XdrEncodeError.
 * - 'buffer': the bytes, a Buffer (a view of the received record, like opaques); encoders write them as they are.
 * A global mode applies unless a name selects the string: `type.member` (a struct field or union arm declared
 * `string`), else `type` (a string typedef, or every `string` member of a struct or union), or a procedure
 * name (its `string` arguments and result).
 */
import { InvalidOptionError, nearestName } from '../errors.js';
import type { Decl, Model, TypeDef, TypeRef } from './model.js';

export type StringMode = 'utf8' | 'utf8-strict' | 'buffer';
export const STRING_MODES: readonly StringMode[] = ['utf8', 'utf8-strict', 'buffer'];

export type StringDecl = Decl & { kind: 'string' };

export function isStringMode(value: unknown): value is StringMode {
  return (STRING_MODES as readonly unknown[]).includes(value);
}

export const STRING_MODE_EXPECTATION = "'utf8', 'utf8-strict' or 'buffer'";

/** Checks the modes before anything is compiled; which names select a string is checked by StringModes. */
export function validateStringOptions(global: unknown, byName: unknown): void {
  if (global !== undefined && !isStringMode(global)) throw new InvalidOptionError('strings', STRING_MODE_EXPECTATION, global);
  if (byName === undefined) return;
  if (typeof byName !== 'object' || byName === null || Array.isArray(byName)) {
    throw new InvalidOptionError('stringsByName', `an object of names to ${STRING_MODE_EXPECTATION}`, byName);
  }
  for (const [name, mode] of Object.entries(byName)) {
    if (!isStringMode(mode)) throw new InvalidOptionError(`stringsByName.${name}`, STRING_MODE_EXPECTATION, mode);
  }
}

/** Resolves the modes once per compilation (validateStringOptions has checked them); `modeOf` then answers for any string declaration of the model. */
export class StringModes {
  private readonly selected = new Map<Decl, StringMode>();

  constructor(
    private readonly model: Model,
    private readonly global: StringMode,
    byName: Readonly<Record<string, StringMode>>,
  ) {
    const selectors = this.selectors();
    // Whole types and procedures first, so that a `type.member` selection wins over its type's.
    const names = Object.keys(byName).sort((a, b) => Number(a.includes('.')) - Number(b.includes('.')));
    for (const name of names) {
      const mode = byName[name] as StringMode;
      const decls = selectors.get(name);
      if (decls === undefined) {
        const hint = this.typedefHint(name) ?? nearestName(name, selectors.keys());
        throw new InvalidOptionError(
          'a stringsByName key',
          `the name of a string typedef, of a struct, union or procedure with string members, or type.member${hint === undefined ? '' : ` (did you mean ${hint}?)`}`,
          name,
        );
      }
      for (const d of decls) this.selected.set(d, mode);
    }
  }

  modeOf(d: StringDecl): StringMode {
    return this.selected.get(d) ?? this.global;
  }

  /** Every name that selects at least one string, with the declarations it selects. */
  private selectors(): Map<string, Decl[]> {
    const out = new Map<string, Decl[]>();
    const add = (name: string, d: Decl): void => {
      if (d.kind !== 'string') return;
      const list = out.get(name);
      if (list === undefined) out.set(name, [d]);
      else list.push(d);
    };
    for (const def of this.model.types.values()) {
      if (def.kind === 'typedef') add(def.name, def.decl);
      for (const m of membersOf(def)) {
        if (m.kind === 'void') continue;
        add(def.name, m);
        add(`${def.name}.${m.name}`, m);
      }
    }
    for (const program of this.model.programs) {
      for (const version of program.versions) {
        for (const proc of version.procedures) for (const d of [...proc.args, proc.result]) add(proc.name, d);
      }
    }
    return out;
  }

  /**
   * A name that reaches a string only through a typedef (`filename3 name;` selected as `entry.name`, or
   * `typedef filename3 name3;` as `name3`): the string typedef is what to select.
   */
  private typedefHint(name: string): string | undefined {
    const dot = name.indexOf('.');
    const def = this.model.types.get(dot < 0 ? name : name.slice(0, dot));
    if (def === undefined) return undefined;
    const d = dot < 0 ? (def.kind === 'typedef' ? def.decl : undefined) : membersOf(def).find((m) => m.kind !== 'void' && m.name === name.slice(dot + 1));
    return d !== undefined && d.kind === 'scalar' ? this.stringTypedef(d.type) : undefined;
  }

  private stringTypedef(ref: TypeRef): string | undefined {
    for (let hops = 0, current = ref; hops < 16 && current.kind === 'named'; hops++) {
      const def = this.model.types.get(current.name);
      if (def?.kind !== 'typedef') return undefined;
      if (def.decl.kind === 'string') return def.name;
      if (def.decl.kind !== 'scalar') return undefined;
      current = def.decl.type;
    }
    return undefined;
  }
}

function membersOf(def: TypeDef): readonly Decl[] {
  if (def.kind === 'struct') return def.fields;
  if (def.kind === 'union') return [...def.arms.map((a) => a.decl), ...(def.defaultArm ? [def.defaultArm] : [])];
  return [];
}
