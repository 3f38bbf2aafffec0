import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { OpaqueAuth } from './auth.js';
import type { RpcReply } from './message.js';
import type { ProcedureRef, ProgramDefinition } from './program.js';

/**
 * What handlers, interceptors and the layers above see of one RPC connection. RpcConnection implements
 * it; naming the shape here keeps the program registry and the dispatcher free of the connection class.
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

/** What an upgrade returns: the new byte stream and what it says about security. */
export interface StreamUpgrade {
  stream: Duplex;
  security: ConnectionSecurity;
}

/** The public surface of RpcConnection (the type handlers see as `context.connection`). */
export interface RpcPeer extends EventEmitter {
  readonly stats: Readonly<ConnectionStats>;
  readonly security: ConnectionSecurity | null;
  readonly closed: boolean;
  readonly pendingCalls: number;
  readonly incomingCalls: number;
  /** The byte stream underneath, for diagnostics (null while an upgrade holds it, and once closed). */
  readonly transport: Duplex | null;
  readonly upgrading: boolean;
  addProgram(definition: ProgramDefinition): this;
  replyAuthError(xid: number, authStat: number): void;
  stopReadingAfterNextRecord(): void;
  upgrade(upgrader: (stream: Duplex, signal: AbortSignal) => Promise<StreamUpgrade>, finalReply?: Buffer[]): Promise<void>;
  call(program: number, version: number, procedure: number, args?: Buffer | readonly Buffer[], options?: CallOptions): Promise<Buffer>;
  callForReply(program: number, version: number, procedure: number, args?: Buffer | readonly Buffer[], options?: CallOptions): Promise<RpcReply>;
  request<A, R>(ref: ProcedureRef<A, R>, args: A, options?: CallOptions): Promise<R>;
  close(): Promise<void>;
  destroy(error?: Error): void;
}
