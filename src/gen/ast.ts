/**
 * Syntax tree of an XDR language (RFC 4506 section 6) plus RPC language (RFC 5531 section 12) source, as
 * written: names are not resolved yet and anonymous inline struct/union/enum bodies are still nested.
 */
import type { SourcePosition } from './errors.js';

/** A constant as written: a literal or a reference to a named constant (or enum member). */
export type Value =
  | { readonly kind: 'literal'; readonly value: number; readonly pos: SourcePosition }
  | { readonly kind: 'ref'; readonly name: string; readonly negate: boolean; readonly pos: SourcePosition };

export type TypeSpec =
  | { readonly kind: 'int'; readonly unsigned: boolean }
  | { readonly kind: 'hyper'; readonly unsigned: boolean }
  | { readonly kind: 'float' }
  | { readonly kind: 'double' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'named'; readonly name: string; readonly pos: SourcePosition }
  | { readonly kind: 'enum'; readonly body: EnumBody }
  | { readonly kind: 'struct'; readonly body: StructBody }
  | { readonly kind: 'union'; readonly body: UnionBody };

/** One declaration (RFC 4506 section 6.3 "declaration"); `name` is '' for procedure arguments/results. */
export type Declaration =
  | { readonly kind: 'void'; readonly pos: SourcePosition }
  | { readonly kind: 'scalar'; readonly name: string; readonly type: TypeSpec; readonly pos: SourcePosition }
  | { readonly kind: 'fixedArray'; readonly name: string; readonly type: TypeSpec; readonly length: Value; readonly pos: SourcePosition }
  | { readonly kind: 'varArray'; readonly name: string; readonly type: TypeSpec; readonly max: Value | null; readonly pos: SourcePosition }
  | { readonly kind: 'fixedOpaque'; readonly name: string; readonly length: Value; readonly pos: SourcePosition }
  | { readonly kind: 'varOpaque'; readonly name: string; readonly max: Value | null; readonly pos: SourcePosition }
  | { readonly kind: 'string'; readonly name: string; readonly max: Value | null; readonly pos: SourcePosition }
  | { readonly kind: 'optional'; readonly name: string; readonly type: TypeSpec; readonly pos: SourcePosition };

export interface EnumMember {
  readonly name: string;
  /** null when the source leaves it out (rpcgen dialect): previous value + 1, like C. */
  readonly value: Value | null;
  readonly pos: SourcePosition;
}

export interface EnumBody {
  readonly members: readonly EnumMember[];
  readonly pos: SourcePosition;
}

export interface StructBody {
  readonly fields: readonly Declaration[];
  readonly pos: SourcePosition;
}

export interface UnionArm {
  /** Case labels sharing this arm (`case 1: case 2: int x;`). */
  readonly cases: readonly Value[];
  readonly declaration: Declaration;
}

export interface UnionBody {
  readonly discriminant: Declaration;
  readonly arms: readonly UnionArm[];
  readonly defaultArm: Declaration | null;
  readonly pos: SourcePosition;
}

export interface Procedure {
  readonly name: string;
  readonly number: Value;
  /** Empty for `(void)`. More than one only in rpcgen's "newstyle" multi-argument form. */
  readonly args: readonly Declaration[];
  readonly result: Declaration;
  readonly pos: SourcePosition;
}

export interface Version {
  readonly name: string;
  readonly number: Value;
  readonly procedures: readonly Procedure[];
  readonly pos: SourcePosition;
}

export type Definition =
  | { readonly kind: 'const'; readonly name: string; readonly value: Value; readonly pos: SourcePosition }
  /** `const NAME = "text";` (rpcgen dialect): a string constant, usable only as an exported value. */
  | { readonly kind: 'stringConst'; readonly name: string; readonly value: string; readonly pos: SourcePosition }
  | { readonly kind: 'typedef'; readonly declaration: Declaration; readonly pos: SourcePosition }
  | { readonly kind: 'enum'; readonly name: string; readonly body: EnumBody; readonly pos: SourcePosition }
  | { readonly kind: 'struct'; readonly name: string; readonly body: StructBody; readonly pos: SourcePosition }
  | { readonly kind: 'union'; readonly name: string; readonly body: UnionBody; readonly pos: SourcePosition }
  | {
      readonly kind: 'program';
      readonly name: string;
      readonly number: Value;
      readonly versions: readonly Version[];
      readonly pos: SourcePosition;
    };

/** A `%#define NAME expr` pass-through line: rpcgen's C sees it, and some files use it as a bound. */
export interface CDefine {
  readonly name: string;
  readonly expression: string;
  readonly pos: SourcePosition;
}

export interface Specification {
  readonly definitions: readonly Definition[];
  readonly cDefines: readonly CDefine[];
}
