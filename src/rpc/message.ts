import { XdrReader } from '../xdr/reader.js';
import type { XdrWriter } from '../xdr/writer.js';
import { AUTH_NONE, type OpaqueAuth } from './auth.js';
import { AcceptStat, AuthFlavor, MAX_AUTH_BYTES, MsgType, RPC_VERSION, RejectStat, ReplyStat } from './constants.js';
import { MalformedMessageError } from './errors.js';

/**
 * RFC 5531 messages: encoding call and reply headers into a writer, and decoding a received record into a
 * call or a reply. Arguments and results stay as views into the record; this module never interprets them.
 */

/** A decoded CALL. `args` is a view of the rest of the record. */
export interface RpcCall {
  type: typeof MsgType.CALL;
  xid: number;
  rpcvers: number;
  program: number;
  version: number;
  procedure: number;
  cred: OpaqueAuth;
  verf: OpaqueAuth;
  args: Buffer;
}

/** A decoded REPLY; fields beyond `replyStat` depend on it (see RFC 5531 section 9). */
export interface RpcReply {
  type: typeof MsgType.REPLY;
  xid: number;
  replyStat: number;
  /** MSG_ACCEPTED: the server's verifier. */
  verf?: OpaqueAuth;
  acceptStat?: number;
  /** MSG_DENIED */
  rejectStat?: number;
  authStat?: number;
  /** PROG_MISMATCH or RPC_MISMATCH range. */
  low?: number;
  high?: number;
  /** SUCCESS: a view of the results. */
  results?: Buffer;
}

export type RpcMessage = RpcCall | RpcReply;

/** Thrown for CALLs whose header is intact enough to answer but whose auth is malformed. */
export class CallAuthTooLongError extends MalformedMessageError {
  readonly call: Omit<RpcCall, 'cred' | 'verf' | 'args'>;
  constructor(call: Omit<RpcCall, 'cred' | 'verf' | 'args'>, length: number) {
    super(`opaque_auth body of ${length} bytes exceeds ${MAX_AUTH_BYTES}`);
    this.call = call;
  }
}

/** Length of the last opaque_auth body that readAuth refused (read only right after it returned null). */
let refusedAuthLength = 0;

/** An opaque_auth, or null when its body is longer than 400 bytes (see refusedAuthLength). */
function readAuth(r: XdrReader): OpaqueAuth | null {
  const flavor = r.uint();
  const at = r.offset;
  const length = r.uint();
  if (length > MAX_AUTH_BYTES) {
    refusedAuthLength = length;
    return null;
  }
  // AUTH_NONE with an empty body (nearly every verifier, and the credential of most calls) is the one
  // shared frozen object: no object per call for it.
  if (length === 0 && flavor === AuthFlavor.AUTH_NONE) return AUTH_NONE;
  r.offset = at;
  return { flavor, body: r.opaque(MAX_AUTH_BYTES) };
}

function authTooLong(): MalformedMessageError {
  return new MalformedMessageError(`opaque_auth body of ${refusedAuthLength} bytes exceeds ${MAX_AUTH_BYTES}`);
}

/**
 * Decodes one record: bytes `start` to `end` of `record`, by default all of it. Throws
 * MalformedMessageError when it is no RPC message at all; a CALL with the wrong rpcvers is returned (the
 * server answers RPC_MISMATCH), and one whose auth body is too long throws CallAuthTooLongError carrying
 * what is needed to answer AUTH_BADCRED.
 */
export function decodeMessage(record: Buffer, start = 0, end = record.length): RpcMessage {
  const r = new XdrReader(record, { offset: start, end });
  try {
    const xid = r.uint();
    const type = r.uint();
    if (type === MsgType.CALL) {
      const rpcvers = r.uint();
      if (rpcvers !== RPC_VERSION) {
        return { type, xid, rpcvers, program: 0, version: 0, procedure: 0, cred: AUTH_NONE, verf: AUTH_NONE, args: AUTH_NONE.body };
      }
      const program = r.uint();
      const version = r.uint();
      const procedure = r.uint();
      const cred = readAuth(r);
      const verf = cred === null ? null : readAuth(r);
      // The header is built only for the answer (AUTH_BADCRED): no object per call otherwise.
      if (cred === null || verf === null) throw new CallAuthTooLongError({ type, xid, rpcvers, program, version, procedure }, refusedAuthLength);
      // An explicit literal, not a spread: this runs once per call and spreads are slow here.
      return { type, xid, rpcvers, program, version, procedure, cred, verf, args: r.rest() };
    }
    if (type === MsgType.REPLY) {
      const replyStat = r.uint();
      if (replyStat === ReplyStat.MSG_ACCEPTED) {
        const verf = readAuth(r);
        if (verf === null) throw authTooLong();
        const acceptStat = r.uint();
        if (acceptStat === AcceptStat.SUCCESS) return { type, xid, replyStat, verf, acceptStat, results: r.rest() };
        if (acceptStat === AcceptStat.PROG_MISMATCH) {
          return { type, xid, replyStat, verf, acceptStat, low: r.uint(), high: r.uint() };
        }
        return { type, xid, replyStat, verf, acceptStat };
      }
      if (replyStat === ReplyStat.MSG_DENIED) {
        const rejectStat = r.uint();
        if (rejectStat === RejectStat.RPC_MISMATCH) return { type, xid, replyStat, rejectStat, low: r.uint(), high: r.uint() };
        if (rejectStat === RejectStat.AUTH_ERROR) return { type, xid, replyStat, rejectStat, authStat: r.uint() };
        throw new MalformedMessageError(`reply has unknown reject_stat ${rejectStat}`);
      }
      throw new MalformedMessageError(`reply has unknown reply_stat ${replyStat}`);
    }
    throw new MalformedMessageError(`unknown msg_type ${type}`);
  } catch (err) {
    if (err instanceof MalformedMessageError) throw err;
    // The reader's offsets count from `record`'s start: decode a view once more (only when failing), so
    // that the error's offset counts from the message's first byte.
    if (start !== 0) return decodeMessage(record.subarray(start, end));
    throw new MalformedMessageError(`malformed RPC message: ${(err as Error).message}`, err);
  }
}

export function writeAuth(w: XdrWriter, auth: OpaqueAuth): void {
  w.uint(auth.flavor);
  w.opaque(auth.body, MAX_AUTH_BYTES);
}

/** CALL header (everything before the arguments). */
export function writeCallHeader(
  w: XdrWriter,
  xid: number,
  program: number,
  version: number,
  procedure: number,
  cred: OpaqueAuth,
  verf: OpaqueAuth,
): void {
  w.uint(xid).uint(MsgType.CALL).uint(RPC_VERSION).uint(program).uint(version).uint(procedure);
  writeAuth(w, cred);
  writeAuth(w, verf);
}

/** MSG_ACCEPTED header up to and including accept_stat (SUCCESS results or mismatch info follow). */
export function writeAcceptedHeader(w: XdrWriter, xid: number, verf: OpaqueAuth, acceptStat: number): void {
  w.uint(xid).uint(MsgType.REPLY).uint(ReplyStat.MSG_ACCEPTED);
  writeAuth(w, verf);
  w.uint(acceptStat);
}

export function writeProgMismatch(w: XdrWriter, xid: number, verf: OpaqueAuth, low: number, high: number): void {
  writeAcceptedHeader(w, xid, verf, AcceptStat.PROG_MISMATCH);
  w.uint(low).uint(high);
}

export function writeRpcMismatch(w: XdrWriter, xid: number, low: number, high: number): void {
  w.uint(xid).uint(MsgType.REPLY).uint(ReplyStat.MSG_DENIED).uint(RejectStat.RPC_MISMATCH).uint(low).uint(high);
}

export function writeAuthError(w: XdrWriter, xid: number, authStat: number): void {
  w.uint(xid).uint(MsgType.REPLY).uint(ReplyStat.MSG_DENIED).uint(RejectStat.AUTH_ERROR).uint(authStat);
}
