import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Codec } from '../xdr/codec.js';
import type { AuthSysParams, OpaqueAuth } from './auth.js';
import type { RpcCall, RpcReply } from './message.js';

/**
 * The shapes the RPC layer's parts share: what handlers, interceptors and the layers above see of one
 * connection (RpcPeer, which RpcConnection implements) and of a call (CallContext), and how programs are
 * described. Naming them here keeps the program registry and the dispatcher free of the connection class.
 */

export interface CallOptions {
  /** Milliseconds until the call fails with ERR_RPC_TIMEOUT (default: the connection's). 0 disables. */
  timeout?: number;
  signal?: AbortSignal;
  /** Credential for this call only. */
  auth?: OpaqueAuth;
}

export interface ConnectionStats {
  callsSent: number;
  repliesReceived: number;
  callsReceived: number;
  repliesSent: number;
  /** Replies whose XID matched no pending call (late replies after a timeout, or a confused peer). */
  unmatchedReplies: number;
}

/**
 * What the layer under RPC says about the connection's security, or null for plaintext. The RPC layer
 * knows no TLS: src/rpc-tls fills this in with the TLS session (see `TlsInfo`) and augments this type.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface ConnectionSecurity {}

/**
 * Sees every incoming CALL before authentication and dispatch; returning true means it handled the call
 * (answered it, refused it, or began an upgrade). The RPC-with-TLS layer answers probes here.
 */
export type CallInterceptor = (call: RpcCall, connection: RpcPeer) => boolean;

/** What an upgrade returns: the new byte stream and what it says about security. */
export interface StreamUpgrade {
  stream: Duplex;
  security: ConnectionSecurity;
}

/**
 * Events of an RpcConnection (each entry: the listener's arguments). `secure` and `tlsError` come from
 * the RPC-with-TLS server's interceptor, on the server's connections only.
 */
export interface RpcConnectionEvents {
  /** The connection is closed; `error` says why when it did not end cleanly. */
  close: [error: Error | undefined];
  /** Nothing was received and nothing was in flight for `idleTimeout` ms: a graceful close follows. */
  idle: [];
  /** The connection asks to be replaced (its TLS keys reached their usage limit); see `retire()`. */
  retire: [];
  /** A REPLY whose XID matched no pending call (a late reply after a timeout, or a confused peer). */
  unmatchedReply: [xid: number];
  /** A handler threw something that is no RPC error (answered SYSTEM_ERR), or its result did not encode. */
  handlerError: [error: unknown, context: CallContext];
  /** TLS is up on this (server-side) connection; `security` is its TlsInfo. */
  secure: [security: ConnectionSecurity];
  /**
   * The TLS handshake after STARTTLS failed; the connection closes with this error next. A client that
   * left without starting the handshake is no failure: no tlsError, the close carries ERR_TLS_NO_HANDSHAKE.
   */
  tlsError: [error: Error];
}

/** The public surface of RpcConnection (the type handlers see as `context.connection`). */
export interface RpcPeer extends EventEmitter<RpcConnectionEvents> {
  readonly stats: Readonly<ConnectionStats>;
  readonly security: ConnectionSecurity | null;
  readonly closed: boolean;
  readonly pendingCalls: number;
  readonly incomingCalls: number;
  /** The byte stream underneath, for diagnostics (null while an upgrade holds it, and once closed). */
  readonly transport: Duplex | null;
  readonly upgrading: boolean;
  /** The peer's IP address and port (undefined when the stream is no TCP socket). */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  addProgram<A, R extends { [K in keyof A]: unknown }>(definition: CheckedProgramDefinition<A, R>): this;
  replyAuthError(xid: number, authStat: number): void;
  prepareUpgrade(): void;
  upgrade(upgrader: (stream: Duplex, signal: AbortSignal) => Promise<StreamUpgrade>, finalReply?: Buffer[]): Promise<void>;
  call(program: number, version: number, procedure: number, args?: Buffer | readonly Buffer[], options?: CallOptions): Promise<Buffer>;
  callForReply(program: number, version: number, procedure: number, args?: Buffer | readonly Buffer[], options?: CallOptions): Promise<RpcReply>;
  request<A, R>(ref: ProcedureRef<A, R>, args: A, options?: CallOptions): Promise<R>;
  close(): Promise<void>;
  destroy(error?: Error): void;
  updateKeys(options?: KeyUpdateOptions): Promise<void>;
  retire(): void;
}

export interface KeyUpdateOptions {
  /** Ask the peer to rotate its sending key too (TLS 1.3 update_requested). */
  requestPeerUpdate?: boolean;
}

/** A byte stream that can rotate its keys (TlsStream): what `connection.updateKeys()` needs below it. */
export interface KeyRotatingStream {
  updateKeys(options?: KeyUpdateOptions): Promise<void>;
}

/** What a procedure handler learns about the call it serves. */
export interface CallContext {
  readonly xid: number;
  readonly program: number;
  readonly version: number;
  readonly procedure: number;
  readonly cred: OpaqueAuth;
  readonly verf: OpaqueAuth;
  /** The decoded AUTH_SYS credential, or null for other flavors. */
  readonly authSys: AuthSysParams | null;
  /** The connection the call came on (an RpcConnection); handlers may call back the peer over it. */
  readonly connection: RpcPeer;
}

/** A raw handler: gets the argument bytes (a view), returns result bytes (a Buffer or gather list). */
export type RawHandler = (
  args: Buffer,
  context: CallContext,
) => Buffer | readonly Buffer[] | void | Promise<Buffer | readonly Buffer[] | void>;

/** A typed handler: arguments are decoded with `args`, the result encoded with `result`. */
export interface TypedProcedure<A, R> {
  args: Codec<A>;
  result: Codec<R>;
  handler: (args: A, context: CallContext) => R | Promise<R>;
}

/** A stored procedure, typed or raw; `addProgram` checks each typed one against its codecs first. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ProcedureDefinition = RawHandler | TypedProcedure<any, any>;

export interface ProgramDefinition {
  program: number;
  version: number;
  /** Procedure number -> handler. Procedure 0 (NULL) is answered automatically unless given here. */
  procedures: Readonly<Record<number, ProcedureDefinition>>;
}

/**
 * Procedures whose handlers are checked against their codecs: `A` and `R` map each procedure number to
 * its argument and result types, inferred from the `args` and `result` codecs, so an inline handler's
 * argument is typed and a handler taking or returning the wrong type fails to compile.
 */
export type CheckedProcedures<A, R extends { [K in keyof A]: unknown }> = {
  readonly [K in keyof A]: TypedProcedure<A[K], R[K]> | RawHandler;
} & { readonly [K in keyof R]: RawHandler | { result: Codec<R[K]> } };

/** What `addProgram` and `defineProgram` take: a ProgramDefinition whose typed handlers are checked. */
export interface CheckedProgramDefinition<A, R extends { [K in keyof A]: unknown }> {
  program: number;
  version: number;
  /** Procedure number -> handler. Procedure 0 (NULL) is answered automatically unless given here. */
  procedures: CheckedProcedures<A, R>;
}

/**
 * A typed reference to a remote procedure, so callers write `client.request(ECHO, buf)` and get a decoded
 * result. Build one with `procedure()`.
 */
export interface ProcedureRef<A, R> {
  readonly program: number;
  readonly version: number;
  readonly procedure: number;
  readonly args: Codec<A>;
  readonly result: Codec<R>;
}

