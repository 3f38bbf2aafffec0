/**
 * Naming and output primitives shared by the parts of the TypeScript emitter: the reserved-name sets,
 * pascalCase, the `Out` line writer, and `DeclCoder`, the declaration-level services (TypeScript types of
 * declarations, encode/decode statements, value-name claims, errors) that the Emitter in emit.ts implements
 * and passes to definitions.ts and programs.ts. It holds no emitter state and imports no other emitter part.
 */
import type { Decl, TypeRef } from './model.js';

/** Names the generated module's own code relies on; .x types with these names get a `_` suffix. */
export const RESERVED_TYPE_NAMES = new Set([
  'Array', 'Buffer', 'Set', 'ReadonlySet', 'Promise', 'Exclude', 'Error', 'Number', 'String', 'Boolean', 'Object',
  'BigInt', 'Symbol', 'Function', 'Record', 'Codec', 'XdrWriter', 'XdrReader', 'XdrEncodeError',
  'XdrInvalidValueError', 'XdrLengthError', 'CallOptions', 'RpcCaller', 'RawProgram', 'Ctx', 'O',
]);

export const JS_RESERVED = new Set(
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
export class Out {
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

/** What the Emitter (emit.ts) provides to the modules that emit whole definitions and program stubs. */
export interface DeclCoder {
  /** Throws an XdrCompileError for the source being compiled. */
  fail(message: string): never;
  /** Registers a value-namespace name of the module, rejecting clashes (a constant named like a codec). */
  claimValue(name: string, what: string): string;
  tsDecl(d: Decl): string;
  encodeRef(ref: TypeRef, v: string, o: Out): void;
  encodeDecl(d: Decl, v: string, o: Out, what: string): void;
  /** Emits statements as needed and returns an expression for the decoded value. */
  decodeRef(ref: TypeRef, o: Out): string;
  decodeDecl(d: Decl, o: Out, what: string): string;
}
