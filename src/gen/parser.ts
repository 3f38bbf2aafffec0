/**
 * Recursive-descent parser for the XDR language (RFC 4506 section 6.3) and the RPC language
 * (RFC 5531 section 12.2), including the rpcgen dialect found in real .x files: `unsigned` alone,
 * `unsigned char/short/long`, `struct name` used as a type, inline anonymous struct/union/enum
 * declarations, enum members without values, several `case` labels per arm, and multi-argument
 * procedures.
 */
import type {
  CDefine,
  Declaration,
  Definition,
  EnumBody,
  EnumMember,
  Procedure,
  Specification,
  StructBody,
  TypeSpec,
  UnionArm,
  UnionBody,
  Value,
  Version,
} from './ast.js';
import { XdrCompileError, type SourcePosition } from './errors.js';
import { parseIntegerLiteral, preprocess, type PreprocessOptions, type Token } from './lexer.js';

const KEYWORDS = new Set([
  'bool', 'case', 'const', 'default', 'double', 'quadruple', 'enum', 'float', 'hyper', 'int', 'opaque',
  'string', 'struct', 'switch', 'typedef', 'union', 'unsigned', 'void', 'program', 'version',
]);

/** Parses one .x source (after preprocessing) into its syntax tree. */
export function parseXdr(source: string, file = '<input>', options: PreprocessOptions = {}): Specification {
  return new Parser(preprocess(source, file, options)).specification();
}

class Parser {
  private at = 0;
  private readonly tokens: readonly Token[];
  private readonly cDefines: CDefine[] = [];

  constructor(all: readonly Token[]) {
    // Pass-through #defines may sit anywhere (even inside a struct), so they are set aside first.
    this.tokens = all.filter((t) => {
      if (t.kind !== 'passthroughDefine') return true;
      const match = /^%\s*#\s*define\s+([A-Za-z_]\w*)\s+(.*?)\s*(\/\*.*)?$/.exec(t.text);
      if (match !== null) this.cDefines.push({ name: match[1] as string, expression: match[2] as string, pos: t.pos });
      return false;
    });
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.at + offset, this.tokens.length - 1)] as Token;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'eof') this.at++;
    return token;
  }

  private is(text: string, offset = 0): boolean {
    const token = this.peek(offset);
    return (token.kind === 'punct' || token.kind === 'ident') && token.text === text;
  }

  private accept(text: string): boolean {
    if (!this.is(text)) return false;
    this.at++;
    return true;
  }

  private fail(token: Token, expected: string): never {
    const found =
      token.kind === 'eof' ? 'end of input' : token.kind === 'invalid' ? `unexpected character "${token.text}"` : `"${token.text}"`;
    throw new XdrCompileError(token.pos, `expected ${expected}, found ${found}`);
  }

  private expect(text: string): Token {
    const token = this.peek();
    if (!this.is(text)) this.fail(token, `"${text}"`);
    return this.next();
  }

  private identifier(what = 'an identifier'): Token {
    const token = this.peek();
    if (token.kind !== 'ident' || KEYWORDS.has(token.text)) this.fail(token, what);
    return this.next();
  }

  specification(): Specification {
    const definitions: Definition[] = [];
    while (this.peek().kind !== 'eof') definitions.push(this.definition());
    return { definitions, cDefines: this.cDefines };
  }

  private definition(): Definition {
    const token = this.peek();
    const pos = token.pos;
    if (token.kind === 'ident') {
      switch (token.text) {
        case 'const': {
          this.next();
          const name = this.identifier('a constant name').text;
          this.expect('=');
          if (this.peek().kind === 'string') {
            const value = this.next().text;
            this.expect(';');
            return { kind: 'stringConst', name, value, pos };
          }
          const value = this.value();
          this.expect(';');
          return { kind: 'const', name, value, pos };
        }
        case 'typedef': {
          this.next();
          const declaration = this.declaration();
          if (declaration.kind === 'void') throw new XdrCompileError(declaration.pos, 'cannot typedef void');
          this.expect(';');
          return { kind: 'typedef', declaration, pos };
        }
        case 'enum':
        case 'struct':
        case 'union': {
          // `struct name { ... };` defines a type; `struct name *x;` at top level is not valid XDR.
          this.next();
          const name = this.identifier(`a ${token.text} name`).text;
          const def: Definition =
            token.text === 'enum'
              ? { kind: 'enum', name, body: this.enumBody(), pos }
              : token.text === 'struct'
                ? { kind: 'struct', name, body: this.structBody(), pos }
                : { kind: 'union', name, body: this.unionBody(), pos };
          this.expect(';');
          return def;
        }
        case 'program':
          return this.program();
        default:
          break;
      }
    }
    return this.fail(token, 'a definition (const, typedef, enum, struct, union or program)');
  }

  private value(): Value {
    const negate = this.accept('-');
    const token = this.next();
    if (token.kind === 'number') {
      const value = parseIntegerLiteral(token.text, token.pos);
      return { kind: 'literal', value: negate ? -value : value, pos: token.pos };
    }
    if (token.kind === 'ident' && !KEYWORDS.has(token.text)) return { kind: 'ref', name: token.text, negate, pos: token.pos };
    return this.fail(token, 'a number or constant name');
  }

  /** A type specifier, or null when the next tokens are not one. */
  private typeSpecifier(): TypeSpec {
    const token = this.peek();
    if (token.kind !== 'ident') return this.fail(token, 'a type');
    switch (token.text) {
      case 'unsigned': {
        this.next();
        const after = this.peek();
        if (after.kind === 'ident') {
          if (after.text === 'int' || after.text === 'long' || after.text === 'short' || after.text === 'char') {
            this.next();
            return { kind: 'int', unsigned: true };
          }
          if (after.text === 'hyper') {
            this.next();
            return { kind: 'hyper', unsigned: true };
          }
        }
        // rpcgen: `unsigned` alone means `unsigned int`.
        return { kind: 'int', unsigned: true };
      }
      case 'int':
        this.next();
        return { kind: 'int', unsigned: false };
      case 'hyper':
        this.next();
        return { kind: 'hyper', unsigned: false };
      case 'float':
        this.next();
        return { kind: 'float' };
      case 'double':
        this.next();
        return { kind: 'double' };
      case 'quadruple':
        throw new XdrCompileError(token.pos, 'quadruple (128-bit float) is not supported: JavaScript has no such number type');
      case 'bool':
        this.next();
        return { kind: 'bool' };
      case 'enum':
      case 'struct':
      case 'union': {
        this.next();
        if (this.is('{') || (token.text === 'union' && this.is('switch'))) {
          if (token.text === 'enum') return { kind: 'enum', body: this.enumBody() };
          if (token.text === 'struct') return { kind: 'struct', body: this.structBody() };
          return { kind: 'union', body: this.unionBody() };
        }
        // `struct foo` as a reference to a named type (C style, common in rpcgen sources).
        const name = this.identifier(`a ${token.text} name or body`);
        return { kind: 'named', name: name.text, pos: name.pos };
      }
      default: {
        const name = this.identifier('a type');
        return { kind: 'named', name: name.text, pos: name.pos };
      }
    }
  }

  /** `<max>` or `<>`; null max means unbounded. */
  private angleBound(): Value | null {
    this.expect('<');
    if (this.accept('>')) return null;
    const value = this.value();
    this.expect('>');
    return value;
  }

  private declaration(): Declaration {
    const token = this.peek();
    const pos = token.pos;
    if (this.is('void')) {
      this.next();
      return { kind: 'void', pos };
    }
    if (this.is('opaque')) {
      this.next();
      const name = this.identifier('a field name').text;
      if (this.is('[')) {
        this.next();
        const length = this.value();
        this.expect(']');
        return { kind: 'fixedOpaque', name, length, pos };
      }
      if (!this.is('<')) this.fail(this.peek(), '"[" or "<" after an opaque name');
      return { kind: 'varOpaque', name, max: this.angleBound(), pos };
    }
    if (this.is('string')) {
      this.next();
      const name = this.identifier('a field name').text;
      if (!this.is('<')) this.fail(this.peek(), '"<" after a string name (strings need a bound, "<>" for none)');
      return { kind: 'string', name, max: this.angleBound(), pos };
    }
    const type = this.typeSpecifier();
    if (this.accept('*')) {
      const name = this.identifier('a field name').text;
      return { kind: 'optional', name, type, pos };
    }
    const name = this.identifier('a field name').text;
    if (this.accept('[')) {
      const length = this.value();
      this.expect(']');
      return { kind: 'fixedArray', name, type, length, pos };
    }
    if (this.is('<')) return { kind: 'varArray', name, type, max: this.angleBound(), pos };
    return { kind: 'scalar', name, type, pos };
  }

  private enumBody(): EnumBody {
    const pos = this.expect('{').pos;
    const members: EnumMember[] = [];
    do {
      if (this.is('}') && members.length > 0) break; // tolerate a trailing comma
      const name = this.identifier('an enum member name');
      const value = this.accept('=') ? this.value() : null;
      members.push({ name: name.text, value, pos: name.pos });
    } while (this.accept(','));
    this.expect('}');
    return { members, pos };
  }

  private structBody(): StructBody {
    const pos = this.expect('{').pos;
    const fields: Declaration[] = [];
    while (!this.is('}')) {
      const field = this.declaration();
      if (field.kind === 'void') throw new XdrCompileError(field.pos, 'a struct field cannot be void');
      fields.push(field);
      this.expect(';');
    }
    this.expect('}');
    if (fields.length === 0) throw new XdrCompileError(pos, 'a struct needs at least one field');
    return { fields, pos };
  }

  private unionBody(): UnionBody {
    const pos = this.expect('switch').pos;
    this.expect('(');
    const discriminant = this.declaration();
    if (discriminant.kind !== 'scalar') {
      throw new XdrCompileError(discriminant.pos, 'a union discriminant must be a single int, unsigned int, enum or bool');
    }
    this.expect(')');
    this.expect('{');
    const arms: UnionArm[] = [];
    let defaultArm: Declaration | null = null;
    while (!this.is('}')) {
      if (this.is('default')) {
        const token = this.next();
        if (defaultArm !== null) throw new XdrCompileError(token.pos, 'a union can have only one default arm');
        this.expect(':');
        defaultArm = this.declaration();
        this.expect(';');
        continue;
      }
      const cases: Value[] = [];
      while (this.accept('case')) {
        cases.push(this.value());
        this.expect(':');
      }
      if (cases.length === 0) this.fail(this.peek(), '"case", "default" or "}"');
      arms.push({ cases, declaration: this.declaration() });
      this.expect(';');
    }
    this.expect('}');
    if (arms.length === 0 && defaultArm === null) throw new XdrCompileError(pos, 'a union needs at least one arm');
    return { discriminant, arms, defaultArm, pos };
  }

  private program(): Definition {
    const pos = this.expect('program').pos;
    const name = this.identifier('a program name').text;
    this.expect('{');
    const versions: Version[] = [];
    while (this.is('version')) versions.push(this.version());
    if (versions.length === 0) this.fail(this.peek(), '"version"');
    this.expect('}');
    this.expect('=');
    const number = this.value();
    this.expect(';');
    return { kind: 'program', name, number, versions, pos };
  }

  private version(): Version {
    const pos = this.expect('version').pos;
    const name = this.identifier('a version name').text;
    this.expect('{');
    const procedures: Procedure[] = [];
    while (!this.is('}')) procedures.push(this.procedure());
    if (procedures.length === 0) this.fail(this.peek(), 'a procedure');
    this.expect('}');
    this.expect('=');
    const number = this.value();
    this.expect(';');
    return { name, number, procedures, pos };
  }

  /** A procedure's argument or result: a type specifier, `void`, `string`/`opaque` with optional bound. */
  private procedureType(): Declaration {
    const pos = this.peek().pos;
    if (this.accept('void')) return { kind: 'void', pos };
    if (this.accept('string')) return { kind: 'string', name: '', max: this.is('<') ? this.angleBound() : null, pos };
    if (this.accept('opaque')) {
      if (!this.is('<')) this.fail(this.peek(), '"<" after opaque');
      return { kind: 'varOpaque', name: '', max: this.angleBound(), pos };
    }
    const type = this.typeSpecifier();
    if (this.accept('*')) return { kind: 'optional', name: '', type, pos };
    return { kind: 'scalar', name: '', type, pos };
  }

  private procedure(): Procedure {
    const result = this.procedureType();
    const nameToken = this.identifier('a procedure name');
    this.expect('(');
    const args: Declaration[] = [];
    const first = this.procedureType();
    if (first.kind !== 'void') {
      args.push(first);
      while (this.accept(',')) {
        const arg = this.procedureType();
        if (arg.kind === 'void') throw new XdrCompileError(arg.pos, 'void can only be the sole argument');
        args.push(arg);
      }
    }
    this.expect(')');
    this.expect('=');
    const number = this.value();
    this.expect(';');
    return { name: nameToken.text, number, args, result, pos: nameToken.pos };
  }
}

export type { SourcePosition };
