/**
 * `.x` (XDR / RPC language) to TypeScript compiler. `compileXdr` is the programmatic entry point;
 * `rpctls gen` (src/gen/cli.ts) wraps it.
 */
import { optionNames, rejectUnknownOptions } from '../errors.js';
import { emitTypeScript, type EmitResult } from './emit.js';
import type { IncludeResolver } from './lexer.js';
import { buildModel, type Model } from './model.js';
import { parseXdr } from './parser.js';
import { validateStringOptions, type StringMode } from './strings.js';

export interface CompileOptions {
  /** File name used in error messages and the header comment; default '<input>'. */
  fileName?: string;
  /** Module the generated code imports XdrWriter/XdrReader/Codec/errors from; default 'rpctls'. */
  xdrImport?: string;
  /** Module the generated code imports RpcCaller/RawProgram/handlerFailure from; default 'rpctls'. */
  runtimeImport?: string;
  /** Longest linked list (`entry *next` chains) decoded or encoded; default 1048576. */
  maxListLength?: number;
  /** Macros for `#ifdef`/`#if` and substitution, like `cpp -D`. */
  defines?: Record<string, string>;
  /** Supplies the text of `#include`d files; without it an #include is an error. */
  resolveInclude?: IncludeResolver;
  /**
   * Other .x sources whose definitions are compiled into this module first: for files that use types
   * defined elsewhere without #including them (nis_callback.x uses nis.x's nis_object via a C header).
   */
  prelude?: { source: string; fileName: string }[];
  /**
   * How XDR `string` is decoded and typed: 'utf8' (default; a JS string, invalid UTF-8 becomes U+FFFD),
   * 'utf8-strict' (a JS string; invalid UTF-8 is an XdrInvalidUtf8Error) or 'buffer' (a Buffer of the
   * bytes exactly, a view of the received record; for names that need not be UTF-8, like NFS file names).
   */
  strings?: StringMode;
  /**
   * Exceptions to `strings`, by name: a string typedef (`{ filename3: 'buffer' }`), a struct, union or
   * procedure (all its `string` members), or one member (`'entry.name'`). A `type.member` wins over its type.
   */
  stringsByName?: Record<string, StringMode>;
}

const COMPILE_OPTIONS = optionNames<CompileOptions>()(
  'fileName', 'xdrImport', 'runtimeImport', 'maxListLength', 'defines', 'resolveInclude', 'prelude', 'strings', 'stringsByName',
);

export interface CompileResult extends EmitResult {
  readonly model: Model;
}

/** Compiles and also returns the resolved model and the generated names (for tooling and tests). */
export function compileXdrDetailed(source: string, options: CompileOptions = {}): CompileResult {
  rejectUnknownOptions(options, COMPILE_OPTIONS);
  validateStringOptions(options.strings, options.stringsByName);
  const fileName = options.fileName ?? '<input>';
  const preprocessOptions = {
    ...(options.defines !== undefined ? { defines: options.defines } : {}),
    ...(options.resolveInclude !== undefined ? { resolveInclude: options.resolveInclude } : {}),
  };
  const specs = [...(options.prelude ?? []), { source, fileName }].map((s) => parseXdr(s.source, s.fileName, preprocessOptions));
  const model = buildModel({ definitions: specs.flatMap((s) => s.definitions), cDefines: specs.flatMap((s) => s.cDefines) });
  const emitted = emitTypeScript(model, {
    xdrImport: options.xdrImport ?? 'rpctls',
    runtimeImport: options.runtimeImport ?? 'rpctls',
    maxListLength: options.maxListLength ?? 1 << 20,
    sourceName: fileName.replace(/^.*[\\/]/, ''),
    strings: options.strings ?? 'utf8',
    stringsByName: options.stringsByName ?? {},
  });
  return { ...emitted, model };
}

/** Compiles one .x source to a TypeScript module; throws XdrCompileError with file:line:column. */
export function compileXdr(source: string, options: CompileOptions = {}): string {
  return compileXdrDetailed(source, options).code;
}

export { XdrCompileError } from './errors.js';
export { parseXdr } from './parser.js';
export { buildModel } from './model.js';
export type { Model, TypeDef, Decl, TypeRef } from './model.js';
export type { Specification } from './ast.js';
export { STRING_MODES, type StringMode } from './strings.js';
