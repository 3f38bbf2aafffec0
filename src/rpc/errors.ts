import { RpctlsError } from '../errors.js';
import { AcceptStat, AuthStat, RejectStat, nameOf } from './constants.js';

/** Where a failed call was going; set on every error a call rejects with. */
export interface CallTarget {
  xid?: number;
  program?: number;
  version?: number;
  procedure?: number;
}

/** Base of every error about one RPC call or connection. */
export class RpcError extends RpctlsError {
  xid?: number;
  program?: number;
  version?: number;
  procedure?: number;
}

// ---- The server answered MSG_ACCEPTED with a status other than SUCCESS -------------------------

/** Base for accept_stat failures; `acceptStat` is the wire value. */
export class RpcAcceptedError extends RpcError {
  readonly acceptStat: number;
  constructor(code: string, acceptStat: number, message: string) {
    super(code, message);
    this.acceptStat = acceptStat;
  }
}

export class ProgUnavailError extends RpcAcceptedError {
  constructor() {
    super('ERR_RPC_PROG_UNAVAIL', AcceptStat.PROG_UNAVAIL, 'remote does not export this program (PROG_UNAVAIL)');
  }
}

export class ProgMismatchError extends RpcAcceptedError {
  readonly low: number;
  readonly high: number;
  constructor(low: number, high: number) {
    super('ERR_RPC_PROG_MISMATCH', AcceptStat.PROG_MISMATCH, `program version not supported; remote supports ${low}..${high} (PROG_MISMATCH)`);
    this.low = low;
    this.high = high;
  }
}

export class ProcUnavailError extends RpcAcceptedError {
  constructor() {
    super('ERR_RPC_PROC_UNAVAIL', AcceptStat.PROC_UNAVAIL, 'remote does not implement this procedure (PROC_UNAVAIL)');
  }
}

export class GarbageArgsError extends RpcAcceptedError {
  constructor(message = 'remote could not decode the arguments (GARBAGE_ARGS)') {
    super('ERR_RPC_GARBAGE_ARGS', AcceptStat.GARBAGE_ARGS, message);
  }
}

export class SystemErrError extends RpcAcceptedError {
  constructor(message = 'remote failed while executing the call (SYSTEM_ERR)') {
    super('ERR_RPC_SYSTEM_ERR', AcceptStat.SYSTEM_ERR, message);
  }
}

/** An accept_stat outside RFC 5531's list. */
export class UnknownAcceptStatError extends RpcAcceptedError {
  constructor(acceptStat: number) {
    super('ERR_RPC_UNKNOWN_ACCEPT_STAT', acceptStat, `reply has unknown accept_stat ${acceptStat}`);
  }
}

// ---- The server answered MSG_DENIED ------------------------------------------------------------

export class RpcDeniedError extends RpcError {
  readonly rejectStat: number;
  constructor(code: string, rejectStat: number, message: string) {
    super(code, message);
    this.rejectStat = rejectStat;
  }
}

/** MSG_DENIED / RPC_MISMATCH: the remote speaks RPC versions low..high only. */
export class RpcMismatchError extends RpcDeniedError {
  readonly low: number;
  readonly high: number;
  constructor(low: number, high: number) {
    super('ERR_RPC_MISMATCH', RejectStat.RPC_MISMATCH, `RPC version not supported; remote supports ${low}..${high} (RPC_MISMATCH)`);
    this.low = low;
    this.high = high;
  }
}

/** MSG_DENIED / AUTH_ERROR; each auth_stat has its own subclass and code `ERR_RPC_<AUTH_STAT>`. */
export class RpcAuthError extends RpcDeniedError {
  readonly authStat: number;
  constructor(authStat: number, message?: string, code?: string) {
    const name = nameOf(AuthStat, authStat);
    super(code ?? (authStat in AUTH_ERROR_CLASSES ? `ERR_RPC_${name}` : 'ERR_RPC_AUTH_ERROR'), RejectStat.AUTH_ERROR, message ?? `authentication failed: ${name}`);
    this.authStat = authStat;
  }
}

export class AuthBadCredError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.AUTH_BADCRED, message ?? 'bad credential (AUTH_BADCRED)'); }
}
export class AuthRejectedCredError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.AUTH_REJECTEDCRED, message ?? 'credential rejected; begin a new session (AUTH_REJECTEDCRED)'); }
}
export class AuthBadVerfError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.AUTH_BADVERF, message ?? 'bad verifier (AUTH_BADVERF)'); }
}
export class AuthRejectedVerfError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.AUTH_REJECTEDVERF, message ?? 'verifier expired or replayed (AUTH_REJECTEDVERF)'); }
}
export class AuthTooWeakError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.AUTH_TOOWEAK, message ?? 'rejected for security reasons (AUTH_TOOWEAK)'); }
}
export class AuthInvalidRespError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.AUTH_INVALIDRESP, message ?? 'bogus response verifier (AUTH_INVALIDRESP)'); }
}
export class AuthFailedError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.AUTH_FAILED, message ?? 'authentication failed for an unknown reason (AUTH_FAILED)'); }
}
export class AuthGssCredProblemError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.RPCSEC_GSS_CREDPROBLEM, message ?? 'RPCSEC_GSS credential problem (RPCSEC_GSS_CREDPROBLEM)'); }
}
export class AuthGssCtxProblemError extends RpcAuthError {
  constructor(message?: string) { super(AuthStat.RPCSEC_GSS_CTXPROBLEM, message ?? 'RPCSEC_GSS context problem (RPCSEC_GSS_CTXPROBLEM)'); }
}

const AUTH_ERROR_CLASSES: Record<number, new (message?: string) => RpcAuthError> = {
  [AuthStat.AUTH_BADCRED]: AuthBadCredError,
  [AuthStat.AUTH_REJECTEDCRED]: AuthRejectedCredError,
  [AuthStat.AUTH_BADVERF]: AuthBadVerfError,
  [AuthStat.AUTH_REJECTEDVERF]: AuthRejectedVerfError,
  [AuthStat.AUTH_TOOWEAK]: AuthTooWeakError,
  [AuthStat.AUTH_INVALIDRESP]: AuthInvalidRespError,
  [AuthStat.AUTH_FAILED]: AuthFailedError,
  [AuthStat.RPCSEC_GSS_CREDPROBLEM]: AuthGssCredProblemError,
  [AuthStat.RPCSEC_GSS_CTXPROBLEM]: AuthGssCtxProblemError,
};

/** The coded error for an auth_stat received on the wire (or produced by an auth hook). */
export function authError(authStat: number, message?: string): RpcAuthError {
  const Class = AUTH_ERROR_CLASSES[authStat];
  return Class ? new Class(message) : new RpcAuthError(authStat, message);
}

/** The coded error for a non-SUCCESS accept_stat received on the wire. */
export function acceptedError(acceptStat: number, low = 0, high = 0): RpcAcceptedError {
  switch (acceptStat) {
    case AcceptStat.PROG_UNAVAIL: return new ProgUnavailError();
    case AcceptStat.PROG_MISMATCH: return new ProgMismatchError(low, high);
    case AcceptStat.PROC_UNAVAIL: return new ProcUnavailError();
    case AcceptStat.GARBAGE_ARGS: return new GarbageArgsError();
    case AcceptStat.SYSTEM_ERR: return new SystemErrError();
    default: return new UnknownAcceptStatError(acceptStat);
  }
}

export function acceptStatName(value: number): string {
  return nameOf(AcceptStat, value);
}

// ---- Local failures: timeouts, aborts, connections, framing --------------------------------------

export class RpcTimeoutError extends RpcError {
  readonly timeout: number;
  constructor(timeout: number) {
    super('ERR_RPC_TIMEOUT', `no reply within ${timeout} ms`);
    this.timeout = timeout;
  }
}

export class RpcAbortError extends RpcError {
  constructor(reason?: unknown) {
    super('ERR_RPC_ABORTED', 'the call was aborted', { cause: reason });
  }
}

/** The connection closed (or was never open) while the call waited; `cause` says why when known. */
export class ConnectionClosedError extends RpcError {
  constructor(message = 'the connection closed before a reply arrived', cause?: unknown) {
    super('ERR_RPC_CONNECTION_CLOSED', message, cause === undefined ? undefined : { cause });
  }
}

/** TCP connect failed; `errno`/`syscallCode` come from the system error. */
export class ConnectError extends RpcError {
  readonly address: string;
  readonly port: number;
  /** `service` names what was expected there (`rpcbind`), for the message. */
  constructor(address: string, port: number, cause: unknown, service?: string) {
    const code = (cause as { code?: string } | undefined)?.code;
    super('ERR_RPC_CONNECT', `cannot connect to ${service ? `${service} at ` : ''}${address}:${port}${code ? ` (${code})` : ''}`, { cause });
    this.address = address;
    this.port = port;
  }
}

/** An operation that needs a protected stream (TLS) on a connection that has none (yet). */
export class NotSecureError extends RpcError {
  constructor(operation: string) {
    super('ERR_RPC_NOT_SECURE', `${operation} needs a connection whose stream can rotate its keys (RPC-with-TLS); this one has none`);
  }
}

/** Too many calls already queued on this client (bounded queue). */
export class QueueFullError extends RpcError {
  readonly limit: number;
  constructor(limit: number) {
    super('ERR_RPC_QUEUE_FULL', `more than ${limit} calls are waiting for a slot`);
    this.limit = limit;
  }
}

/** A record is not a valid RPC message (too short, unknown msg_type, undecodable header). */
export class MalformedMessageError extends RpcError {
  constructor(message: string, cause?: unknown) {
    super('ERR_RPC_MALFORMED_MESSAGE', message, cause === undefined ? undefined : { cause });
  }
}

/** The reply's bytes could not be decoded with the result codec the caller gave. */
export class ResultDecodeError extends RpcError {
  constructor(cause: unknown) {
    super('ERR_RPC_RESULT_DECODE', `cannot decode the reply's results: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}
