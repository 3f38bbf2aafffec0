import { XdrError } from '../xdr/errors.js';
import { XdrReader } from '../xdr/reader.js';
import { XdrWriter } from '../xdr/writer.js';
import { AUTH_NONE, type AuthSysParams, type OpaqueAuth, decodeAuthSys } from './auth.js';
import { AcceptStat, AuthFlavor, AuthStat, MsgType, RPC_VERSION } from './constants.js';
import { RpcAcceptedError, RpcAuthError, SystemErrError, authError } from './errors.js';
import { type RpcCall, writeAcceptedHeader, writeAuthError, writeProgMismatch, writeRpcMismatch } from './message.js';
import type { CallInterceptor, RpcPeer } from './peer.js';
import {
  type CallContext,
  type ProcedureDefinition,
  type ProgramRegistry,
  type TypedProcedure,
  isLookupMiss,
} from './program.js';

/**
 * The incoming half of a connection: checks the RPC version and the credential, runs the authenticate
 * hook, finds the procedure, decodes its arguments, runs the handler, encodes the result, and maps
 * whatever went wrong to the reply RFC 5531 has for it. It writes replies through the connection and
 * never touches the stream.
 */

/**
 * Decides whether a call's credential is acceptable: return nothing (or AUTH_OK) to accept, or an auth_stat
 * to deny with MSG_DENIED/AUTH_ERROR. Throwing an RpcAuthError denies with its stat.
 */
export type AuthenticateHook = (context: CallContext) => number | void | Promise<number | void>;

/** What the dispatcher needs from a connection (or a UDP source) for the calls it receives. */
export interface DispatchHost {
  readonly peer: RpcPeer;
  /** Calls whose handlers have not finished: the dispatcher counts them here, in the host's own state. */
  incoming: number;
  /** Writes one reply record (gather list with a 4-byte mark slot) and counts it. */
  sendReply(parts: Buffer[]): void;
  /**
   * Room for a small reply written in place, counted as sent: the buffer to write the body into at
   * `reservedAt`, or null when it must go through `sendReply` (or when the host has no such room).
   */
  reserveReply?(bodyLength: number): Buffer | null;
  readonly reservedAt?: number;
  /** The number of calls being handled changed (the connection may stop or resume reading). */
  incomingChanged(): void;
  /** A handler failed (or its result could not be encoded): the host reports it ('handlerError'). */
  handlerError(error: unknown, context: CallContext): void;
}

export interface DispatcherOptions {
  programs: ProgramRegistry;
  authenticate?: AuthenticateHook | undefined;
  /** Sees every CALL before authentication and dispatch; true means it handled the call. */
  interceptCall?: CallInterceptor | undefined;
}

/** The context handed to handlers; one per incoming call. */
class IncomingCall implements CallContext {
  constructor(
    readonly connection: RpcPeer,
    readonly xid: number,
    readonly program: number,
    readonly version: number,
    readonly procedure: number,
    readonly cred: OpaqueAuth,
    readonly verf: OpaqueAuth,
    readonly authSys: AuthSysParams | null,
  ) {}
}

/** Marks an argument-decoding failure inside a typed procedure (answered with GARBAGE_ARGS). */
class GarbageArgs extends Error {
  constructor(cause: unknown) {
    super('cannot decode arguments', { cause });
  }
}

/**
 * One per server (per set of resolved options), shared by all its connections: it holds only what they
 * share (programs, hooks). Each call names its host, which keeps the per-connection count of calls.
 */
export class Dispatcher {
  private readonly programs: ProgramRegistry;
  private readonly authenticate: AuthenticateHook | undefined;
  private readonly interceptCall: CallInterceptor | undefined;
  /** Every call must be decoded into a message first: an interceptCall sees each one. */
  readonly intercepts: boolean;

  constructor(options: DispatcherOptions) {
    this.programs = options.programs;
    this.authenticate = options.authenticate;
    this.interceptCall = options.interceptCall;
    this.intercepts = options.interceptCall !== undefined;
  }

  receiveCall(host: DispatchHost, call: RpcCall): void {
    if (this.interceptCall !== undefined && this.interceptCall(call, host.peer)) return;
    if (call.rpcvers !== RPC_VERSION) {
      const w = new XdrWriter(32);
      w.reserve4(); // the record mark's place
      writeRpcMismatch(w, call.xid, RPC_VERSION, RPC_VERSION);
      reply(host, w);
      return;
    }
    let authSys: AuthSysParams | null = null;
    const flavor = call.cred.flavor;
    if (flavor === AuthFlavor.AUTH_SYS) {
      try {
        authSys = decodeAuthSys(call.cred.body);
      } catch {
        this.replyAuthError(host, call.xid, AuthStat.AUTH_BADCRED);
        return;
      }
    } else if (flavor !== AuthFlavor.AUTH_NONE && this.authenticate === undefined) {
      // Like libtirpc: a flavor this server does not know is rejected, not ignored.
      this.replyAuthError(host, call.xid, AuthStat.AUTH_REJECTEDCRED);
      return;
    }
    this.accept(host, new IncomingCall(host.peer, call.xid, call.program, call.version, call.procedure, call.cred, call.verf, authSys), call.args);
  }

  /**
   * A call of RPC version 2 with an empty AUTH_NONE credential and verifier, read from the record by the
   * connection without decoding a message (only when there is no interceptCall, which needs the message).
   */
  receivePlainCall(host: DispatchHost, xid: number, program: number, version: number, procedure: number, args: Buffer): void {
    this.accept(host, new IncomingCall(host.peer, xid, program, version, procedure, AUTH_NONE, AUTH_NONE, null), args);
  }

  private accept(host: DispatchHost, context: IncomingCall, args: Buffer): void {
    // Counted at once; the host hears of it only if the call outlives this stack (a promise): a call
    // answered synchronously changes nothing it would act on.
    host.incoming++;
    if (this.authenticate !== undefined) {
      let verdict;
      try {
        verdict = this.authenticate(context);
      } catch (error) {
        this.answerError(host, context, error);
        return;
      }
      if (verdict instanceof Promise) {
        host.incomingChanged();
        void this.authenticateThenDispatch(host, context, args, verdict);
        return;
      }
      if (verdict !== undefined && verdict !== AuthStat.AUTH_OK) {
        this.answerError(host, context, authError(verdict));
        return;
      }
    }
    this.dispatch(host, context, args);
  }

  /** Answers a call with MSG_DENIED / AUTH_ERROR (also for interceptors, e.g. a refused probe). */
  replyAuthError(host: DispatchHost, xid: number, authStat: number): void {
    const w = new XdrWriter(32);
    w.reserve4(); // the record mark's place
    writeAuthError(w, xid, authStat);
    reply(host, w);
  }

  private async authenticateThenDispatch(host: DispatchHost, context: IncomingCall, args: Buffer, verdict: Promise<number | void>): Promise<void> {
    let stat;
    try {
      stat = await verdict;
    } catch (error) {
      this.answerError(host, context, error);
      return;
    }
    if (stat !== undefined && stat !== AuthStat.AUTH_OK) this.answerError(host, context, authError(stat));
    else this.dispatch(host, context, args);
  }

  private dispatch(host: DispatchHost, context: IncomingCall, args: Buffer): void {
    const found = this.programs.lookup(context.program, context.version, context.procedure);
    if (isLookupMiss(found)) {
      const w = new XdrWriter(48);
      w.reserve4(); // the record mark's place
      if (found.miss === 'prog-mismatch') writeProgMismatch(w, context.xid, AUTH_NONE, found.low, found.high);
      else writeAcceptedHeader(w, context.xid, AUTH_NONE, found.miss === 'prog-unavail' ? AcceptStat.PROG_UNAVAIL : AcceptStat.PROC_UNAVAIL);
      finishIncoming(host, w);
      return;
    }
    let result;
    try {
      result = invoke(found, args, context);
    } catch (error) {
      this.answerError(host, context, error, found);
      return;
    }
    if (result instanceof Promise) {
      host.incomingChanged();
      void this.awaitResult(host, context, found, result);
    } else this.answerSuccess(host, context, found, result);
  }

  private async awaitResult(host: DispatchHost, context: IncomingCall, found: ProcedureDefinition, result: Promise<unknown>): Promise<void> {
    let value;
    try {
      value = await result;
    } catch (error) {
      this.answerError(host, context, error, found);
      return;
    }
    this.answerSuccess(host, context, found, value);
  }

  private answerSuccess(host: DispatchHost, context: IncomingCall, found: ProcedureDefinition, value: unknown): void {
    // The common reply of a raw handler (nothing, or a few bytes) is written in place behind a header
    // built from four constant words and the XID: no writer, no gather list.
    if (typeof found === 'function' && host.reserveReply !== undefined) {
      const length = value === undefined ? 0 : Buffer.isBuffer(value) && value.length <= INLINE_RESULTS ? value.length : -1;
      const out = length < 0 ? null : host.reserveReply(SUCCESS_HEADER_BYTES + length);
      if (out !== null) {
        const at = host.reservedAt as number;
        writeSuccessHeader(out, at, context.xid);
        if (length > 0) out.set(value as Buffer, at + SUCCESS_HEADER_BYTES);
        host.incoming--;
        host.incomingChanged();
        return;
      }
    }
    const w = new XdrWriter(256);
    w.reserve4(); // the record mark's place
    writeAcceptedHeader(w, context.xid, AUTH_NONE, AcceptStat.SUCCESS);
    try {
      if (typeof found === 'function') {
        if (Buffer.isBuffer(value)) w.raw(value);
        else if (Array.isArray(value)) for (const part of value as Buffer[]) w.raw(part);
        else if (value !== undefined) throw new TypeError('a raw handler must return a Buffer, an array of Buffers, or nothing');
      } else {
        (found as TypedProcedure<unknown, unknown>).result.encode(w, value);
      }
    } catch (error) {
      // Our own result could not be encoded: a server fault, never the caller's arguments.
      host.handlerError(error, context);
      this.answerError(host, context, new SystemErrError(), found, true);
      return;
    }
    finishIncoming(host, w);
  }

  /**
   * Maps what a handler threw to the reply RFC 5531 has for it. An XdrError from a raw handler means it
   * could not decode its arguments (GARBAGE_ARGS); from a typed handler it is the handler's own fault.
   */
  private answerError(host: DispatchHost, context: IncomingCall, error: unknown, found?: ProcedureDefinition, reported = false): void {
    const w = new XdrWriter(48);
    w.reserve4(); // the record mark's place
    if (error instanceof RpcAuthError) {
      writeAuthError(w, context.xid, error.authStat);
    } else if (error instanceof GarbageArgs || (error instanceof XdrError && typeof found === 'function')) {
      writeAcceptedHeader(w, context.xid, AUTH_NONE, AcceptStat.GARBAGE_ARGS);
    } else if (error instanceof RpcAcceptedError && error.acceptStat !== AcceptStat.PROG_MISMATCH) {
      writeAcceptedHeader(w, context.xid, AUTH_NONE, error.acceptStat);
    } else {
      if (!reported) host.handlerError(error, context);
      writeAcceptedHeader(w, context.xid, AUTH_NONE, AcceptStat.SYSTEM_ERR);
    }
    finishIncoming(host, w);
  }
}

function finishIncoming(host: DispatchHost, w: XdrWriter): void {
  host.incoming--;
  reply(host, w);
  host.incomingChanged();
}

/** Every reply starts with `w.reserve4()`: the first part's first 4 bytes take the record mark. */
function reply(host: DispatchHost, w: XdrWriter): void {
  host.sendReply(w.finish());
}

/** Results up to this size are copied behind the reply header (beyond, referenced from a gather list). */
const INLINE_RESULTS = 512;
/** xid, REPLY, MSG_ACCEPTED, verifier AUTH_NONE (flavor, empty body), SUCCESS. */
const SUCCESS_HEADER_BYTES = 24;

function writeSuccessHeader(b: Buffer, at: number, xid: number): void {
  b[at] = xid >>> 24;
  b[at + 1] = xid >>> 16;
  b[at + 2] = xid >>> 8;
  b[at + 3] = xid;
  // REPLY is 1; MSG_ACCEPTED, AUTH_NONE, an empty verifier body and SUCCESS are all zero words.
  for (let i = at + 4; i < at + SUCCESS_HEADER_BYTES; i++) b[i] = 0;
  b[at + 7] = MsgType.REPLY;
}

function invoke(found: ProcedureDefinition, args: Buffer, context: IncomingCall): unknown {
  if (typeof found === 'function') return found(args, context);
  const reader = new XdrReader(args);
  let decoded;
  try {
    decoded = found.args.decode(reader);
    reader.assertEnd();
  } catch (error) {
    throw new GarbageArgs(error);
  }
  return found.handler(decoded, context);
}
