import { InvalidOptionError, validateUint32 } from '../errors.js';
import type { Codec } from '../xdr/codec.js';
import type { CheckedProgramDefinition, ProcedureDefinition, ProcedureRef, ProgramDefinition, RawHandler, TypedProcedure } from './peer.js';

export type {
  CallContext,
  CheckedProcedures,
  CheckedProgramDefinition,
  ProcedureDefinition,
  ProcedureRef,
  ProgramDefinition,
  RawHandler,
  TypedProcedure,
} from './peer.js';

/**
 * A program definition whose typed handlers are checked against their codecs (and inline handlers get
 * typed arguments), for defining a program away from the `addProgram` call that registers it.
 */
export function defineProgram<A, R extends { [K in keyof A]: unknown }>(definition: CheckedProgramDefinition<A, R>): ProgramDefinition {
  return definition as ProgramDefinition;
}

export function procedure<A, R>(program: number, version: number, proc: number, args: Codec<A>, result: Codec<R>): ProcedureRef<A, R> {
  return Object.freeze({
    program: validateUint32(program, 'program'),
    version: validateUint32(version, 'version'),
    procedure: validateUint32(proc, 'procedure'),
    args,
    result,
  });
}

/** Why a call found no procedure (an accept_stat the dispatcher answers with). */
export type LookupMiss =
  | { readonly miss: 'prog-unavail' }
  | { readonly miss: 'prog-mismatch'; readonly low: number; readonly high: number }
  | { readonly miss: 'proc-unavail' };

const PROG_UNAVAIL: LookupMiss = Object.freeze({ miss: 'prog-unavail' });
const PROC_UNAVAIL: LookupMiss = Object.freeze({ miss: 'proc-unavail' });
/** The NULL procedure every program answers with empty results unless it defines its own. */
const answerNull: RawHandler = () => undefined;

export function isLookupMiss(found: ProcedureDefinition | LookupMiss): found is LookupMiss {
  return typeof found === 'object' && 'miss' in found;
}

/** Programs one endpoint serves: program -> version -> procedure. Shared by a server's connections. */
export class ProgramRegistry {
  private readonly programs = new Map<number, Map<number, ProgramDefinition>>();

  add<A, R extends { [K in keyof A]: unknown }>(definition: CheckedProgramDefinition<A, R> | ProgramDefinition): void {
    if (typeof definition !== 'object' || definition === null) {
      throw new InvalidOptionError('program definition', 'an object { program, version, procedures }', definition);
    }
    const program = validateUint32(definition.program, 'program');
    const version = validateUint32(definition.version, 'version');
    const procedures = definition.procedures;
    if (typeof procedures !== 'object' || procedures === null) {
      throw new InvalidOptionError('procedures', 'an object mapping procedure numbers to handlers', procedures);
    }
    for (const [key, value] of Object.entries(procedures)) {
      const number = Number(key);
      if (!Number.isInteger(number) || number < 0 || number > 0xffffffff) {
        throw new InvalidOptionError('procedures', 'keyed by procedure numbers 0..4294967295', key);
      }
      const typed = value as TypedProcedure<unknown, unknown>;
      if (typeof value !== 'function' && (typeof typed?.handler !== 'function' || !typed.args || !typed.result)) {
        throw new InvalidOptionError(`procedures[${key}]`, 'a function or { args, result, handler }', value);
      }
    }
    let versions = this.programs.get(program);
    if (!versions) this.programs.set(program, (versions = new Map()));
    versions.set(version, { program, version, procedures });
  }

  remove(program: number, version?: number): void {
    if (version === undefined) {
      this.programs.delete(program);
      return;
    }
    const versions = this.programs.get(program);
    versions?.delete(version);
    if (versions?.size === 0) this.programs.delete(program);
  }

  /** Every registered (program, version) pair, for rpcbind registration. */
  list(): { program: number; version: number }[] {
    const out: { program: number; version: number }[] = [];
    for (const [program, versions] of this.programs) for (const version of versions.keys()) out.push({ program, version });
    return out;
  }

  get size(): number {
    return this.programs.size;
  }

  lookup(program: number, version: number, proc: number): ProcedureDefinition | LookupMiss {
    const versions = this.programs.get(program);
    if (!versions) return PROG_UNAVAIL;
    const definition = versions.get(version);
    if (!definition) {
      let low = 0xffffffff;
      let high = 0;
      for (const v of versions.keys()) {
        if (v < low) low = v;
        if (v > high) high = v;
      }
      return { miss: 'prog-mismatch', low, high };
    }
    const found = definition.procedures[proc];
    if (found) return found;
    return proc === 0 ? answerNull : PROC_UNAVAIL;
  }
}
