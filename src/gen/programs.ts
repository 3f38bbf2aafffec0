/**
 * Emits the RPC stubs of one program version: the typed client class, the server interface and the
 * adapter from an implementation to raw-bytes handlers (`RawProgram`), and picks and registers their
 * names. Argument and result coding comes from the Emitter in emit.ts, through `ProgramContext`.
 */
import type { Decl, ProcedureModel, ProgramModel, VersionModel } from './model.js';
import { Out, pascalCase, type DeclCoder } from './output.js';

export interface EmittedProgram {
  readonly program: string;
  readonly version: number;
  readonly clientClass: string;
  readonly serverInterface: string;
  readonly programFactory: string;
}

/** The Emitter's services the stub emitter uses. */
export interface ProgramContext extends DeclCoder {
  /** Registers a type-namespace name of the module, failing if a type (or another stub) already has it. */
  claimTypeName(name: string): void;
}

export function emitVersion(cx: ProgramContext, program: ProgramModel, version: VersionModel, body: string[]): EmittedProgram {
  const stem = program.name.replace(/_?PROG(RAM)?$/i, '') || program.name;
  const base = pascalCase(stem);
  const suffix = `_v${version.number}`;
  const clientClass = `${base}Client${suffix}`;
  const serverInterface = `${base}Server${suffix}`;
  const programFactory = `${base.charAt(0).toLowerCase()}${base.slice(1)}Program${suffix}`;
  for (const name of [clientClass, serverInterface]) cx.claimTypeName(name);
  cx.claimValue(clientClass, `the client of ${program.name} version ${version.number}`);
  cx.claimValue(programFactory, `the server adapter of ${program.name} version ${version.number}`);

  const params = (proc: ProcedureModel): { name: string; type: string; decl: Decl }[] =>
    proc.args.map((decl, i) => ({ name: proc.args.length === 1 ? 'arg' : `arg${i}`, type: cx.tsDecl(decl), decl }));
  const resultType = (proc: ProcedureModel): string => (proc.result.kind === 'void' ? 'void' : cx.tsDecl(proc.result));

  body.push(
    `/** Client for ${program.name} (${program.number}) version ${version.name} (${version.number}). */`,
    `export class ${clientClass}<O = CallOptions> {`,
    '  readonly #caller: RpcCaller<O>;',
    '  constructor(caller: RpcCaller<O>) {',
    '    this.#caller = caller;',
    '  }',
  );
  for (const proc of version.procedures) {
    const ps = params(proc);
    const signature = [...ps.map((p) => `${p.name}: ${p.type}`), 'options?: O'].join(', ');
    const o = new Out({ n: 0 }, 2);
    o.line('const w = new XdrWriter();');
    for (const p of ps) cx.encodeDecl(p.decl, p.name, o, `${proc.name} argument`);
    o.line(`const r = new XdrReader(await this.#caller.call(${program.number}, ${version.number}, ${proc.number}, w.finish(), options));`);
    if (proc.result.kind === 'void') {
      o.line('r.assertEnd();');
    } else {
      const expr = cx.decodeDecl(proc.result, o, `${proc.name} result`);
      o.line(`const result = ${expr};`);
      o.line('r.assertEnd();');
      o.line('return result;');
    }
    body.push(`  /** Procedure ${proc.number}. */`, `  async ${proc.name}(${signature}): Promise<${resultType(proc)}> {`, ...o.lines, '  }');
  }
  body.push('}', '');

  body.push(`/** What a server implements for ${program.name} version ${version.number}; \`ctx\` is the server's call context. */`);
  body.push(`export interface ${serverInterface}<Ctx = unknown> {`);
  for (const proc of version.procedures) {
    const signature = [...params(proc).map((p) => `${p.name}: ${p.type}`), 'ctx: Ctx'].join(', ');
    const result = resultType(proc);
    body.push(`  ${proc.name}(${signature}): ${result} | Promise<${result}>;`);
  }
  body.push('}', '');

  body.push(
    `/**`,
    ` * Adapts an implementation to raw-bytes handlers. Argument decoding errors reject with XdrError (answer`,
    ` * GARBAGE_ARGS); failures of the implementation or of result encoding go through handlerFailure().`,
    ` */`,
    `export function ${programFactory}<Ctx = unknown>(impl: ${serverInterface}<Ctx>): RawProgram<Ctx> {`,
    '  return {',
    `    program: ${program.number},`,
    `    version: ${version.number},`,
    '    procedures: {',
  );
  for (const proc of version.procedures) {
    const ps = params(proc);
    const o = new Out({ n: 0 }, 4);
    o.line('const r = new XdrReader(args);');
    for (const p of ps) o.line(`const ${p.name} = ${cx.decodeDecl(p.decl, o, `${proc.name} argument`)};`);
    o.line('r.assertEnd();');
    o.line('const w = new XdrWriter();');
    o.line('try {');
    o.indent();
    const call = `impl.${proc.name}(${[...ps.map((p) => p.name), 'ctx'].join(', ')})`;
    if (proc.result.kind === 'void') o.line(`await ${call};`);
    else {
      o.line(`const result = await ${call};`);
      cx.encodeDecl(proc.result, 'result', o, `${proc.name} result`);
    }
    o.dedent();
    o.line('} catch (error) {');
    o.line('  throw handlerFailure(error);');
    o.line('}');
    o.line('return w.finish();');
    body.push(`      ${proc.number}: async (args: Buffer, ctx: Ctx): Promise<Buffer[]> => {`, ...o.lines, '      },');
  }
  body.push('    },', '  };', '}', '');
  return { program: program.name, version: version.number, clientClass, serverInterface, programFactory };
}
