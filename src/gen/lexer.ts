/**
 * Tokenizer and the small C-preprocessor subset that real .x files rely on. rpcgen runs the input through
 * cpp; we do not, so we understand just what rpcsvc files use: `#ifdef/#ifndef/#if/#elif/#else/#endif`,
 * object-like `#define`/`#undef`, `#include "file"`, and we ignore `#pragma`. Lines starting with `%` are
 * rpcgen pass-through C code and are skipped.
 */
import { XdrCompileError, type SourcePosition } from './errors.js';

export type TokenKind = 'ident' | 'number' | 'string' | 'punct' | 'directive' | 'passthroughDefine' | 'invalid' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly pos: SourcePosition;
}

/** Resolves an `#include` name to its text; undefined when it cannot be found. */
export type IncludeResolver = (name: string, fromFile: string) => { file: string; source: string } | undefined;

export interface PreprocessOptions {
  /** Macros defined before the first line, like `cpp -D` (rpcgen itself defines RPC_HDR, RPC_XDR, ...). */
  readonly defines?: Readonly<Record<string, string>>;
  readonly resolveInclude?: IncludeResolver;
}

const PUNCTUATION = new Set(['{', '}', '(', ')', '[', ']', '<', '>', ';', ',', '=', '*', ':', '-']);

/** Splits one source into tokens; directives come back whole (one token per `#` line). */
export function tokenize(source: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  // Whether only whitespace precedes `i` on its line: `%` and `#` are special only there.
  let atLineStart = true;
  const pos = (at: number): SourcePosition => ({ file, line, column: at - lineStart + 1 });
  const restOfLine = (): string => {
    let end = source.indexOf('\n', i);
    if (end < 0) end = source.length;
    // A backslash-newline continues a directive onto the next line.
    while (end > 0 && source[end - 1] === '\\' && end < source.length) {
      line++;
      lineStart = end + 1;
      let next = source.indexOf('\n', end + 1);
      if (next < 0) next = source.length;
      end = next;
    }
    const text = source.slice(i, end);
    i = end;
    return text;
  };

  while (i < source.length) {
    const c = source[i] as string;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      atLineStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      const start = pos(i);
      const end = source.indexOf('*/', i + 2);
      if (end < 0) throw new XdrCompileError(start, 'unterminated comment');
      for (let k = i; k < end; k++) {
        if (source[k] === '\n') {
          line++;
          lineStart = k + 1;
        }
      }
      i = end + 2;
      continue;
    }
    if (c === '/' && source[i + 1] === '/') {
      restOfLine();
      continue;
    }
    if (atLineStart && c === '%') {
      // `%#define NAME value` reaches rpcgen's C output; files use such names as bounds (nlm_prot.x).
      const start = pos(i);
      const text = restOfLine();
      if (/^%\s*#\s*define\s+[A-Za-z_]\w*\s+\S/.test(text)) tokens.push({ kind: 'passthroughDefine', text, pos: start });
      continue;
    }
    if (atLineStart && c === '#') {
      const start = pos(i);
      tokens.push({ kind: 'directive', text: restOfLine(), pos: start });
      continue;
    }
    atLineStart = false;
    const start = pos(i);
    if (/[A-Za-z_]/.test(c)) {
      let end = i + 1;
      while (end < source.length && /[A-Za-z0-9_]/.test(source[end] as string)) end++;
      tokens.push({ kind: 'ident', text: source.slice(i, end), pos: start });
      i = end;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let end = i + 1;
      while (end < source.length && /[0-9A-Za-z_]/.test(source[end] as string)) end++;
      tokens.push({ kind: 'number', text: source.slice(i, end), pos: start });
      i = end;
      continue;
    }
    if (c === '"') {
      const end = source.indexOf('"', i + 1);
      const newline = source.indexOf('\n', i + 1);
      if (end > 0 && (newline < 0 || end < newline)) {
        tokens.push({ kind: 'string', text: source.slice(i + 1, end), pos: start });
        i = end + 1;
        continue;
      }
    }
    tokens.push({ kind: PUNCTUATION.has(c) ? 'punct' : 'invalid', text: c, pos: start });
    i++;
  }
  tokens.push({ kind: 'eof', text: '', pos: pos(i) });
  return tokens;
}

/** Parses an integer literal in C syntax (decimal, 0x hex, leading-0 octal). */
export function parseIntegerLiteral(text: string, pos: SourcePosition): number {
  let value: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) value = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = parseInt(text, 10);
  else throw new XdrCompileError(pos, `invalid number "${text}"`);
  if (!Number.isSafeInteger(value)) throw new XdrCompileError(pos, `number "${text}" is too large`);
  return value;
}

interface Conditional {
  /** Whether the enclosing region is active. */
  readonly parentActive: boolean;
  /** Whether some branch of this #if chain was already taken. */
  taken: boolean;
  active: boolean;
  sawElse: boolean;
  readonly pos: SourcePosition;
}

/**
 * Tokenizes `source` and applies the preprocessor: drops inactive regions, expands object-like macros and
 * splices in included files. The result ends with one 'eof' token.
 */
export function preprocess(source: string, file: string, options: PreprocessOptions = {}): Token[] {
  const macros = new Map<string, Token[]>();
  for (const [name, value] of Object.entries(options.defines ?? {})) {
    macros.set(name, tokenize(value, '<define>').filter((t) => t.kind !== 'eof'));
  }
  const out: Token[] = [];
  const including: string[] = [];

  const run = (text: string, fileName: string): void => {
    if (including.includes(fileName)) {
      throw new XdrCompileError({ file: fileName, line: 1, column: 1 }, 'file includes itself');
    }
    including.push(fileName);
    const stack: Conditional[] = [];
    const active = (): boolean => stack.length === 0 || (stack[stack.length - 1] as Conditional).active;
    for (const token of tokenize(text, fileName)) {
      if (token.kind === 'eof') break;
      if (token.kind === 'directive') {
        handleDirective(token, stack, active());
        continue;
      }
      // Kept even in inactive regions: rpcgen's C output always sees the header's #defines.
      if (token.kind === 'passthroughDefine') {
        out.push(token);
        continue;
      }
      if (!active()) continue;
      out.push(...expand(token, new Set()));
    }
    const open = stack[stack.length - 1];
    if (open !== undefined) throw new XdrCompileError(open.pos, 'unterminated #if');
    including.pop();
  };

  const expand = (token: Token, expanding: Set<string>): Token[] => {
    const body = token.kind === 'ident' ? macros.get(token.text) : undefined;
    if (body === undefined || expanding.has(token.text)) return [token];
    const inner = new Set(expanding).add(token.text);
    // Expanded tokens report the position of the macro use, which is what the author can fix.
    return body.flatMap((t) => expand({ ...t, pos: token.pos }, inner));
  };

  const handleDirective = (token: Token, stack: Conditional[], isActive: boolean): void => {
    const match = /^#\s*([A-Za-z_]*)\s*(.*)$/s.exec(token.text);
    const name = match?.[1] ?? '';
    const rest = stripComments(match?.[2] ?? '').trim();
    const top = stack[stack.length - 1];
    switch (name) {
      case 'ifdef':
      case 'ifndef': {
        const defined = macros.has(identifierArgument(rest, token));
        const condition = name === 'ifdef' ? defined : !defined;
        stack.push({ parentActive: isActive, taken: condition, active: isActive && condition, sawElse: false, pos: token.pos });
        return;
      }
      case 'if': {
        const condition = isActive ? evaluateCondition(rest, token, macros) !== 0 : false;
        stack.push({ parentActive: isActive, taken: condition, active: isActive && condition, sawElse: false, pos: token.pos });
        return;
      }
      case 'elif': {
        if (top === undefined || top.sawElse) throw new XdrCompileError(token.pos, '#elif without #if');
        const condition = top.parentActive && !top.taken ? evaluateCondition(rest, token, macros) !== 0 : false;
        top.active = top.parentActive && !top.taken && condition;
        top.taken ||= condition;
        return;
      }
      case 'else':
        if (top === undefined || top.sawElse) throw new XdrCompileError(token.pos, '#else without #if');
        top.sawElse = true;
        top.active = top.parentActive && !top.taken;
        top.taken = true;
        return;
      case 'endif':
        if (top === undefined) throw new XdrCompileError(token.pos, '#endif without #if');
        stack.pop();
        return;
      default:
        break;
    }
    if (!isActive) return;
    switch (name) {
      case 'define': {
        const def = /^([A-Za-z_][A-Za-z0-9_]*)(\(?)(.*)$/s.exec(rest);
        if (def === null) throw new XdrCompileError(token.pos, '#define needs a macro name');
        if (def[2] === '(') throw new XdrCompileError(token.pos, 'function-like macros are not supported');
        const body = tokenize(def[3] ?? '', token.pos.file).filter((t) => t.kind !== 'eof');
        macros.set(def[1] as string, body.map((t) => ({ ...t, pos: token.pos })));
        return;
      }
      case 'undef':
        macros.delete(identifierArgument(rest, token));
        return;
      case 'include': {
        const inc = /^(?:"([^"]+)"|<([^>]+)>)$/.exec(rest);
        if (inc === null) throw new XdrCompileError(token.pos, '#include needs "file" or <file>');
        const target = (inc[1] ?? inc[2]) as string;
        const found = options.resolveInclude?.(target, token.pos.file);
        if (found === undefined) throw new XdrCompileError(token.pos, `cannot find included file "${target}"`);
        run(found.source, found.file);
        return;
      }
      case 'pragma':
      case 'ident':
        return;
      case 'error':
        throw new XdrCompileError(token.pos, `#error ${rest}`);
      default:
        throw new XdrCompileError(token.pos, `unsupported preprocessor directive "#${name}"`);
    }
  };

  run(source, file);
  const last = out[out.length - 1];
  out.push({ kind: 'eof', text: '', pos: last === undefined ? { file, line: 1, column: 1 } : { ...last.pos } });
  return out;
}

function stripComments(text: string): string {
  return text.replace(/\/\*.*?\*\//gs, ' ').replace(/\/\/.*$/s, '');
}

function identifierArgument(rest: string, token: Token): string {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)/.exec(rest);
  if (match === null) throw new XdrCompileError(token.pos, 'expected a macro name');
  return match[1] as string;
}

/**
 * Evaluates a `#if` condition: integers, macro names (undefined ones are 0, as in cpp), `defined`,
 * `! && || == != < > <= >=` and parentheses.
 */
function evaluateCondition(text: string, token: Token, macros: ReadonlyMap<string, Token[]>): number {
  const parts = text.match(/\s*(defined|[A-Za-z_][A-Za-z0-9_]*|0[xX][0-9a-fA-F]+|[0-9]+|&&|\|\||==|!=|<=|>=|[!()<>])/gy);
  const joined = (parts ?? []).join('');
  if (joined.length !== text.length && text.slice(joined.length).trim() !== '') {
    throw new XdrCompileError(token.pos, `unsupported #if expression "${text}"`);
  }
  const items = (parts ?? []).map((p) => p.trim());
  let at = 0;
  const fail = (): never => {
    throw new XdrCompileError(token.pos, `unsupported #if expression "${text}"`);
  };
  const peek = (): string | undefined => items[at];
  const primary = (): number => {
    const item = items[at++];
    if (item === undefined) return fail();
    if (item === '!') return primary() === 0 ? 1 : 0;
    if (item === '(') {
      const value = or();
      if (items[at++] !== ')') fail();
      return value;
    }
    if (item === 'defined') {
      const paren = peek() === '(';
      if (paren) at++;
      const name = items[at++];
      if (name === undefined || !/^[A-Za-z_]/.test(name)) return fail();
      if (paren && items[at++] !== ')') fail();
      return macros.has(name) ? 1 : 0;
    }
    if (/^[0-9]/.test(item)) return parseIntegerLiteral(item, token.pos);
    if (/^[A-Za-z_]/.test(item)) {
      const body = macros.get(item);
      if (body === undefined || body.length === 0) return 0;
      if (body.length === 1 && (body[0] as Token).kind === 'number') return parseIntegerLiteral((body[0] as Token).text, token.pos);
      return 1;
    }
    return fail();
  };
  const comparison = (): number => {
    let left = primary();
    for (let op = peek(); op === '==' || op === '!=' || op === '<' || op === '>' || op === '<=' || op === '>='; op = peek()) {
      at++;
      const right = primary();
      const result =
        op === '==' ? left === right : op === '!=' ? left !== right : op === '<' ? left < right : op === '>' ? left > right : op === '<=' ? left <= right : left >= right;
      left = result ? 1 : 0;
    }
    return left;
  };
  const and = (): number => {
    let left = comparison();
    while (peek() === '&&') {
      at++;
      const right = comparison();
      left = left !== 0 && right !== 0 ? 1 : 0;
    }
    return left;
  };
  const or = (): number => {
    let left = and();
    while (peek() === '||') {
      at++;
      const right = and();
      left = left !== 0 || right !== 0 ? 1 : 0;
    }
    return left;
  };
  const value = or();
  if (at !== items.length) fail();
  return value;
}
