/**
 * `rpctls gen <file.x> -o <out.ts>`: compiles an .x file. Returns the process exit code rather than
 * exiting, so the rpctls binary (and tests) decide what to do with it.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { compileXdr, type CompileOptions } from './index.js';
import { XdrCompileError } from './errors.js';
import { isStringMode, STRING_MODES, type StringMode } from './strings.js';

const USAGE = `usage: rpctls gen <file.x> -o <out.ts> [--xdr-import <module>] [--runtime-import <module>]
                  [-I <dir>]... [-D NAME[=value]]... [--with <other.x>]... [--strings [NAME=]MODE]...
  Compiles an XDR/RPC language file to TypeScript. Imports default to 'rpctls'.
  --with compiles another .x file's definitions into the same module first (for types a file uses
  without #including them).
  --strings MODE decodes every XDR string as: utf8 (default: a JS string, invalid UTF-8 becomes U+FFFD),
  utf8-strict (a JS string; invalid UTF-8 is an error, ERR_XDR_INVALID_UTF8) or buffer (a Buffer of the
  bytes exactly, for names that need not be UTF-8). --strings NAME=MODE applies MODE to one name only:
  a string typedef (--strings filename3=buffer), a struct, union or procedure (its string members), or
  type.member; repeat it for several.`;

export interface GenIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: GenIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** `argv` is what follows `gen`; returns 0 on success, 1 on a compile error, 2 on bad usage. */
export function runGen(argv: readonly string[], io: GenIo = defaultIo): number {
  let input: string | undefined;
  let output: string | undefined;
  const includeDirs: string[] = [];
  const withFiles: string[] = [];
  const defines: Record<string, string> = {};
  const options: CompileOptions = {};
  const stringsByName: Record<string, StringMode> = {};
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i] as string;
    // `--name=value` as well as `--name value`, like the other commands.
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    if (eq >= 0) arg = arg.slice(0, eq);
    const value = (): string | undefined => inline ?? argv[++i];
    if (arg === '-h' || arg === '--help') {
      io.stdout(`${USAGE}\n`);
      return 0;
    }
    let v: string | undefined;
    if (arg === '-o' || arg === '--output') v = output = value();
    else if (arg === '--xdr-import') v = options.xdrImport = value();
    else if (arg === '--runtime-import') v = options.runtimeImport = value();
    else if (arg === '--with') v = value(), v !== undefined && withFiles.push(v);
    else if (arg === '--strings') {
      v = value();
      if (v !== undefined) {
        const at = v.lastIndexOf('=');
        const mode = at < 0 ? v : v.slice(at + 1);
        if (!isStringMode(mode) || at === 0) {
          io.stderr(`rpctls gen: --strings takes ${STRING_MODES.join(', ')} or NAME=<one of them>; got ${JSON.stringify(v)}\n`);
          return 2;
        }
        if (at < 0) options.strings = mode;
        else stringsByName[v.slice(0, at)] = mode;
      }
    }
    else if (arg === '-I') v = value(), v !== undefined && includeDirs.push(v);
    else if (arg.startsWith('-I') && arg.length > 2) v = arg.slice(2), includeDirs.push(v);
    else if (arg === '-D' || (arg.startsWith('-D') && arg.length > 2)) {
      v = arg === '-D' ? value() : arg.slice(2);
      if (v !== undefined) {
        const eq = v.indexOf('=');
        defines[eq < 0 ? v : v.slice(0, eq)] = eq < 0 ? '1' : v.slice(eq + 1);
      }
    } else if (arg.startsWith('-')) {
      io.stderr(`rpctls gen: unknown option ${arg}\n${USAGE}\n`);
      return 2;
    } else if (input === undefined) v = input = arg;
    else {
      io.stderr(`rpctls gen: only one input file is accepted (got ${input} and ${arg})\n`);
      return 2;
    }
    if (v === undefined) {
      io.stderr(`rpctls gen: ${arg} needs a value\n${USAGE}\n`);
      return 2;
    }
  }
  if (input === undefined || output === undefined) {
    io.stderr(`rpctls gen: ${input === undefined ? 'no input file given' : 'no output file given: add -o <out.ts>'}\n${USAGE}\n`);
    return 2;
  }
  let source: string;
  const prelude: { source: string; fileName: string }[] = [];
  try {
    source = readFileSync(input, 'utf8');
    for (const file of withFiles) prelude.push({ source: readFileSync(file, 'utf8'), fileName: file });
  } catch (error) {
    io.stderr(`rpctls gen: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    const code = compileXdr(source, {
      ...options,
      fileName: input,
      defines,
      prelude,
      stringsByName,
      // Like cpp: quoted includes are looked up next to the including file first, then in -I dirs.
      resolveInclude: (name, fromFile) => {
        for (const dir of [dirname(fromFile), ...includeDirs]) {
          const candidate = resolve(dir, name);
          if (existsSync(candidate)) return { file: candidate, source: readFileSync(candidate, 'utf8') };
        }
        return undefined;
      },
    });
    writeFileSync(output, code);
    io.stdout(`rpctls gen: wrote ${output} (${code.length} bytes) from ${input}\n`);
  } catch (error) {
    if (error instanceof XdrCompileError) {
      // A type defined in another .x file that this one does not #include: --with compiles that one in.
      const hint = /unknown type "/.test(error.message) ? '\n  hint: a type from another .x file? pass it with --with <other.x> (or #include it)' : '';
      io.stderr(`${error.message}${hint}\n`);
      return 1;
    }
    if (error instanceof InvalidOptionError) {
      // A --strings NAME that names no string of the source; said in the command line's terms.
      io.stderr(`rpctls gen: ${error.message.replace(/^a stringsByName key/, '--strings NAME')}\n`);
      return 2;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('E')) {
      io.stderr(`rpctls gen: cannot write ${output}: ${(error as Error).message}\n`);
      return 1;
    }
    throw error;
  }
  return 0;
}
