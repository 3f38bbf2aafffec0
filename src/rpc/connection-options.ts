import { InvalidOptionError, optionNames, rejectUnknownOptions, validateInteger } from '../errors.js';
import type { ChannelOptions } from '../transport/channel.js';
import { DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_RECORD_SIZE, MAX_FRAGMENT_LENGTH } from '../transport/record-marking.js';
import type { OpaqueAuth } from './auth.js';
import { type ResolvedCallOptions, resolveCallOptions } from './call-table.js';
import { type AuthenticateHook, Dispatcher } from './dispatcher.js';
import type { CallInterceptor } from './peer.js';
import { ProgramRegistry } from './program.js';

/** A connection's options, checked once and split among the parts that use them. */

export type { AuthenticateHook } from './dispatcher.js';

export interface ConnectionOptions {
  /** Largest record accepted, in bytes (default 1 MiB + 64 KiB: NFS's 1 MiB I/O plus headers). */
  maxRecordSize?: number;
  /** Most fragments one incoming record may have (default 1024). */
  maxFragments?: number;
  /** Outgoing records are split into fragments of at most this many bytes (default: one fragment). */
  maxFragmentSize?: number;
  /** Outgoing calls awaiting a reply at once; more wait in a queue (default 1024). */
  maxPendingCalls?: number;
  /** Outgoing calls that may wait for a slot; past this a call fails with ERR_RPC_QUEUE_FULL (default 16384). */
  maxQueuedCalls?: number;
  /** Incoming calls handled at once; past this the connection stops reading (default 128). */
  maxIncomingCalls?: number;
  /**
   * Milliseconds a peer may take to finish a record it started (0: no limit, the default for a bare
   * connection; RpcServer uses 30000). Time while this end is not reading does not count. Past it the
   * connection is destroyed with ERR_RPC_RECORD_TIMEOUT: a slowloris sender cannot hold it.
   */
  recordTimeout?: number;
  /**
   * Milliseconds with nothing received and no call in flight either way before a graceful close and an
   * 'idle' event (0: never, the default for a bare connection; RpcServer uses 120000).
   */
  idleTimeout?: number;
  /**
   * Milliseconds a new connection may take to send its first byte before it is closed as idle (0: only
   * idleTimeout applies; RpcServer uses 10000), so silent sockets cannot hold a server's slots.
   */
  firstByteTimeout?: number;
  /**
   * Milliseconds our records may wait unsent with no progress (the peer reads nothing) before the
   * connection is destroyed with ERR_RPC_WRITE_TIMEOUT (0: never, the default for a bare connection and
   * a client; RpcServer uses 30000). A reader slower than (its largest reply / writeTimeout) is cut.
   */
  writeTimeout?: number;
  /** Default per-call timeout in ms (default 30000; 0 disables). */
  timeout?: number;
  /** Credential for outgoing calls (default AUTH_NONE). */
  auth?: OpaqueAuth;
  /**
   * Resend an outgoing call left unanswered for `timeout` ms, with the same XID, up to `retries` times;
   * then it fails with ERR_RPC_TIMEOUT (the per-call `timeout` still bounds the whole). Off by default:
   * over a stream a call is not lost, but some servers drop one (NFS-Ganesha 15 right after STARTTLS),
   * and the kernel's NFS client resends the same way over TCP (nfs(5) timeo/retrans).
   */
  retransmit?: StreamRetransmitOptions;
  /** Programs served to the peer; a server passes its own, shared by all its connections. */
  programs?: ProgramRegistry;
  /** Credential check for incoming calls (default: AUTH_NONE and AUTH_SYS accepted). */
  authenticate?: AuthenticateHook;
  /**
   * Sees every incoming CALL before authentication and dispatch; returning true means it handled the
   * call (answered it, refused it, or began an upgrade). The RPC-with-TLS layer answers probes here.
   */
  interceptCall?: CallInterceptor;
}

export interface StreamRetransmitOptions {
  /** Milliseconds each copy waits for its reply (at least 1). */
  timeout: number;
  /** Copies resent after the first (at least 1). */
  retries: number;
}

/** Marks options already checked: a server resolves its options once and shares them with its connections. */
export const kResolvedOptions = Symbol('rpctls.resolvedConnectionOptions');

export interface ResolvedConnectionOptions {
  readonly [kResolvedOptions]: true;
  channel: ChannelOptions;
  calls: ResolvedCallOptions;
  /** Shared by every connection made with these options. */
  dispatcher: Dispatcher;
  maxIncomingCalls: number;
  programs: ProgramRegistry;
}

const MAX_INT = 0x7fffffff;

export const CONNECTION_OPTIONS = optionNames<ConnectionOptions>()(
  'maxRecordSize', 'maxFragments', 'maxFragmentSize', 'maxPendingCalls', 'maxQueuedCalls', 'maxIncomingCalls',
  'recordTimeout', 'idleTimeout', 'firstByteTimeout', 'writeTimeout', 'timeout', 'auth', 'programs', 'authenticate',
  'interceptCall', 'retransmit',
);

function validateFunction<T>(value: T, option: string): T {
  if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(option, 'a function', value);
  return value;
}

/** Validates every option (precise messages, at construction) and hands each part its own. */
export function resolveConnectionOptions(options: ConnectionOptions): ResolvedConnectionOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
  rejectUnknownOptions(options, CONNECTION_OPTIONS);
  const programs = options.programs ?? new ProgramRegistry();
  let retransmit;
  if (options.retransmit !== undefined) {
    const r = options.retransmit;
    if (typeof r !== 'object' || r === null) throw new InvalidOptionError('retransmit', 'an object { timeout, retries }', r);
    const timeout = validateInteger(r.timeout, 'retransmit.timeout', 1, MAX_INT);
    // Each copy waits the same time, as the kernel's NFS client does over TCP (no doubling).
    retransmit = { initial: timeout, max: timeout, retries: validateInteger(r.retries, 'retransmit.retries', 1, MAX_INT) };
  }
  const calls = resolveCallOptions({
    timeout: options.timeout,
    auth: options.auth,
    maxPendingCalls: options.maxPendingCalls,
    maxQueuedCalls: options.maxQueuedCalls,
    retransmit,
  });
  return {
    [kResolvedOptions]: true,
    programs,
    maxIncomingCalls: validateInteger(options.maxIncomingCalls ?? 128, 'maxIncomingCalls', 1, MAX_INT),
    calls,
    dispatcher: new Dispatcher({
      programs,
      authenticate: validateFunction(options.authenticate, 'authenticate'),
      interceptCall: validateFunction(options.interceptCall, 'interceptCall'),
    }),
    channel: {
      maxRecordSize: validateInteger(options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE, 'maxRecordSize', 28, MAX_FRAGMENT_LENGTH),
      maxFragments: validateInteger(options.maxFragments ?? DEFAULT_MAX_FRAGMENTS, 'maxFragments', 1, MAX_INT),
      maxFragmentSize: validateInteger(options.maxFragmentSize ?? MAX_FRAGMENT_LENGTH, 'maxFragmentSize', 1, MAX_FRAGMENT_LENGTH),
      recordTimeout: validateInteger(options.recordTimeout ?? 0, 'recordTimeout', 0, MAX_INT),
      idleTimeout: validateInteger(options.idleTimeout ?? 0, 'idleTimeout', 0, MAX_INT),
      firstByteTimeout: validateInteger(options.firstByteTimeout ?? 0, 'firstByteTimeout', 0, MAX_INT),
      writeTimeout: validateInteger(options.writeTimeout ?? 0, 'writeTimeout', 0, MAX_INT),
    },
  };
}
