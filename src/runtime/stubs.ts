/**
 * Runtime of generated code: the minimal structural interfaces generated stubs are written against (so
 * they depend on shapes, not on the concrete RPC client and server classes) and the handler-failure
 * wrapping their server adapters use. It owns only that; it must not import rpc/ or gen/, so that both
 * generated code and the compiler can depend on it. Users' generated code gets the same names from
 * 'rpctls' (src/index.ts re-exports them).
 */
import { RpctlsError } from '../errors.js';
import { XdrError } from '../xdr/index.js';

/** Per-call options forwarded untouched to the caller (the RPC client decides what they mean). */
export interface CallOptions {
  timeout?: number;
  signal?: AbortSignal;
  auth?: unknown;
}

/** Anything that can make an ONC-RPC call with encoded arguments and return the encoded result. */
export interface RpcCaller<O = CallOptions> {
  call(program: number, version: number, procedure: number, args: Buffer[], options?: O): Promise<Buffer>;
}

/** A raw-bytes procedure handler: encoded arguments in, encoded result out. */
export type RawProcedure<Ctx = unknown> = (args: Buffer, ctx: Ctx) => Promise<Buffer[] | Buffer>;

export type RawProcedures<Ctx = unknown> = { [procedure: number]: RawProcedure<Ctx> };

/** One program version as a server registers it. */
export interface RawProgram<Ctx = unknown> {
  program: number;
  version: number;
  procedures: RawProcedures<Ctx>;
}

/**
 * An XdrError raised by a procedure implementation or while encoding its result. It is wrapped so that
 * a server does not mistake it for undecodable arguments (GARBAGE_ARGS): it is a server-side fault.
 */
export class HandlerXdrError extends RpctlsError {
  constructor(cause: XdrError) {
    super('ERR_RPC_HANDLER_XDR', `procedure implementation failed: ${cause.message}`, { cause });
  }
}

/** What generated server adapters throw for a failure after the arguments were decoded. */
export function handlerFailure(error: unknown): unknown {
  return error instanceof XdrError ? new HandlerXdrError(error) : error;
}
