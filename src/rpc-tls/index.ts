// RPC-with-TLS (RFC 9289) wiring: the AUTH_TLS probe and its STARTTLS answer, and the swap of an
// RpcConnection's byte stream from the TCP socket to a TlsStream. The RPC layer above is unchanged; the
// TLS layer below knows nothing of RPC. See shared/reference/rpc-with-tls.md for the rules followed here.
import net from 'node:net';

import { AUTH_TLS, type OpaqueAuth } from '../rpc/auth.js';
import { type ClientOptions, RpcClient } from '../rpc/client.js';
import type { CallInterceptor, RpcConnection } from '../rpc/connection.js';
import { AcceptStat, AuthFlavor, AuthStat, RejectStat, ReplyStat, nameOf } from '../rpc/constants.js';
import { RpcError } from '../rpc/errors.js';
import { type RpcCall, type RpcReply, writeAcceptedHeader } from '../rpc/message.js';
import { RpcServer, type ServerOptions } from '../rpc/server.js';
import { frameRecord, MAX_FRAGMENT_LENGTH } from '../transport/record-marking.js';
import { XdrWriter } from '../xdr/writer.js';
import { TlsContext, type TlsContextOptions } from '../tls/context.js';
import { TlsTakeoverError } from '../tls/errors.js';
import { type TlsCipherSuite, type TlsInfo, TlsStream, type TlsStreamOptions, stopReading } from '../tls/tls-stream.js';

type Pem = string | Buffer;

/** The verifier body a server answers an AUTH_TLS probe with when it offers TLS. */
export const STARTTLS_VERIFIER = Buffer.from('STARTTLS', 'latin1');

const EMPTY = Buffer.alloc(0);
const NULL_PROCEDURE = 0;
/** Linux's client gives the probe and the handshake 10 s each. */
const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

// ---- errors --------------------------------------------------------------------------------------

/**
 * The server answered the AUTH_TLS probe with something other than an AUTH_NONE "STARTTLS" verifier:
 * it does not offer TLS on this connection. The reply's wire values ride along for diagnosis.
 */
export class StartTlsRefusedError extends RpcError {
  readonly replyStat: number;
  readonly acceptStat: number | undefined;
  readonly rejectStat: number | undefined;
  readonly authStat: number | undefined;
  readonly verifierFlavor: number | undefined;
  readonly verifierBody: Buffer | undefined;

  constructor(reply: RpcReply) {
    super('ERR_RPC_TLS_NOT_OFFERED', `server does not offer RPC-with-TLS: it answered the AUTH_TLS probe with ${describeReply(reply)}`);
    this.xid = reply.xid;
    this.replyStat = reply.replyStat;
    this.acceptStat = reply.acceptStat;
    this.rejectStat = reply.rejectStat;
    this.authStat = reply.authStat;
    this.verifierFlavor = reply.verf?.flavor;
    // Copy: the verifier is a view into a record buffer that may be reused.
    this.verifierBody = reply.verf ? Buffer.from(reply.verf.body) : undefined;
  }
}

function describeReply(reply: RpcReply): string {
  if (reply.replyStat === ReplyStat.MSG_ACCEPTED) {
    const verf = reply.verf as OpaqueAuth;
    const body = verf.body.length > 0 ? ` body ${JSON.stringify(verf.body.toString('latin1'))}` : ' (empty body)';
    return `MSG_ACCEPTED ${nameOf(AcceptStat, reply.acceptStat as number)}, verifier ${nameOf(AuthFlavor, verf.flavor)}${body}`;
  }
  if (reply.rejectStat === RejectStat.AUTH_ERROR) return `MSG_DENIED AUTH_ERROR ${nameOf(AuthStat, reply.authStat as number)}`;
  return `MSG_DENIED RPC_MISMATCH (${reply.low}-${reply.high})`;
}

/** RFC 9289 5.1: the one answer that means "go ahead with TLS"; accept_stat does not matter. */
export function offersStartTls(reply: RpcReply): boolean {
  return (
    reply.replyStat === ReplyStat.MSG_ACCEPTED &&
    reply.verf !== undefined &&
    reply.verf.flavor === AuthFlavor.AUTH_NONE &&
    reply.verf.body.equals(STARTTLS_VERIFIER)
  );
}

/** The TLS session of a connection (what the upgrade stored in `connection.security`), or null. */
export function tlsInfoOf(connection: RpcConnection): TlsInfo | null {
  return (connection.security as TlsInfo | null) ?? null;
}

// ---- shared option mapping ----------------------------------------------------------------------

interface CommonTlsOptions {
  cert?: Pem;
  key?: Pem;
  /** Trusted CAs; without it the OpenSSL default store is used. */
  ca?: Pem | Pem[];
  /** 'offer' (default): offer/select "sunrpc" but accept a peer without ALPN (Linux sends none). */
  alpn?: 'offer' | 'require' | 'off';
  /** Handshake time limit in ms (default: client 10000, server 5000, as Linux). */
  handshakeTimeout?: number;
  /** 'auto' (default): kernel TLS when the kernel has it, else userspace records. */
  kernelTls?: 'auto' | 'off' | 'require';
  ciphersuites?: readonly TlsCipherSuite[];
  /**
   * Receives SSLKEYLOGFILE lines; only for debugging. Without it, lines are appended to the file the
   * SSLKEYLOGFILE environment variable names, when it is set (read at each handshake).
   */
  keylog?: (line: string) => void;
}

/** One TlsContext (one SSL_CTX) per configuration, validated here: bad options throw at construction. */
function tlsContext(role: 'client' | 'server', options: CommonTlsOptions, extra: Partial<TlsContextOptions> = {}): TlsContext {
  const out: TlsContextOptions = { role, ...extra };
  if (options.cert !== undefined) out.cert = options.cert;
  if (options.key !== undefined) out.key = options.key;
  if (options.ca !== undefined) out.ca = options.ca;
  if (options.alpn !== undefined) out.alpn = options.alpn;
  if (options.handshakeTimeout !== undefined) out.handshakeTimeout = options.handshakeTimeout;
  if (options.kernelTls !== undefined) out.kernelTls = options.kernelTls;
  if (options.ciphersuites !== undefined) out.ciphersuites = options.ciphersuites;
  if (options.keylog !== undefined) out.keylog = options.keylog;
  return new TlsContext(out, 'tls.');
}

/**
 * Starts the handshake on `socket` and settles when it completed. The stream is returned at once too,
 * so the caller can destroy it if the connection goes away meanwhile.
 */
function startHandshake(socket: net.Socket, options: TlsStreamOptions): { stream: TlsStream; secure: Promise<TlsInfo> } {
  const stream = new TlsStream(socket, options);
  const secure = new Promise<TlsInfo>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    stream.once('error', onError);
    stream.once('secure', (info: TlsInfo) => {
      stream.off('error', onError);
      resolve(info);
    });
  });
  return { stream, secure };
}

// ---- client ------------------------------------------------------------------------------------

export interface RpcTlsClientOptions extends CommonTlsOptions {
  /** Name (or IP literal) the server certificate must match; default: the address connected to. */
  servername?: string;
  /** Reject a server certificate that fails verification (default true). */
  rejectUnauthorized?: boolean;
  /** Milliseconds to wait for the probe's reply (default 10000). */
  probeTimeout?: number;
  /**
   * Sees the probe's reply on each connection, whatever it says, before it is judged (for diagnostics
   * such as `rpctls probe`). Its verifier body is a view into the received record: copy what you keep.
   */
  onProbeReply?: (reply: RpcReply) => void;
}

/** Which program/version the probe's NULL call goes to: the one the client will use (RFC 9289 4.1). */
export interface ProbeTarget {
  program: number;
  version: number;
}

/**
 * The `upgrade` callback for RpcClient: on each new connection, probe with AUTH_TLS; on an AUTH_NONE
 * "STARTTLS" verifier, hand the socket to TLS and put the TlsStream under the connection. Any other
 * answer rejects with StartTlsRefusedError before a single TLS byte is sent.
 */
export function rpcTlsUpgrade(
  tlsOptions: RpcTlsClientOptions,
  probe: ProbeTarget,
): (connection: RpcConnection, socket: net.Socket) => Promise<void> {
  const probeTimeout = tlsOptions.probeTimeout ?? DEFAULT_PROBE_TIMEOUT_MS;
  const context = tlsContext(
    'client',
    tlsOptions,
    tlsOptions.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tlsOptions.rejectUnauthorized },
  );
  const options: TlsStreamOptions =
    tlsOptions.servername === undefined ? { context } : { context, servername: tlsOptions.servername };

  return async (connection, socket) => {
    // Nothing else is sent before the reply: the RpcClient exposes the connection only after upgrade.
    const reply = await connection.callForReply(probe.program, probe.version, NULL_PROCEDURE, EMPTY, {
      auth: AUTH_TLS,
      timeout: probeTimeout,
    });
    tlsOptions.onProbeReply?.(reply);
    if (!offersStartTls(reply)) throw new StartTlsRefusedError(reply);
    const detached = connection.detachStream();
    if (detached !== socket) {
      detached.destroy();
      throw new TlsTakeoverError('the connection is not running on the socket it was created with');
    }
    let handshake;
    try {
      handshake = startHandshake(socket, options);
    } catch (error) {
      // The takeover failed before the fd changed hands: the socket is still ours to close.
      socket.destroy();
      throw error;
    }
    const info = await handshake.secure;
    // Set before attaching, so no call read from the new stream can see a plaintext connection.
    connection.security = info as unknown as Readonly<Record<string, unknown>>;
    try {
      // Throws if the connection was destroyed during the handshake; the stream must not outlive it.
      connection.attachStream(handshake.stream);
    } catch (error) {
      handshake.stream.destroy();
      throw error;
    }
  };
}

export interface TlsClientOptions extends ClientOptions {
  tls: RpcTlsClientOptions;
  /** Program/version for the probe; the client's own calls should use the same. */
  probe: ProbeTarget;
}

/**
 * An RpcClient whose every connection is upgraded to TLS. The server name checked defaults to `host`
 * (as Node's tls.connect does), not to the address it resolved to.
 */
export function createTlsClient(options: TlsClientOptions): RpcClient {
  const { tls, probe, ...clientOptions } = options;
  const servername = tls.servername ?? (options.path === undefined ? options.host : undefined);
  const upgrade = rpcTlsUpgrade(servername === undefined ? tls : { ...tls, servername }, probe);
  return new RpcClient({ ...clientOptions, upgrade });
}

// ---- server ------------------------------------------------------------------------------------

export interface RpcTlsServerOptions extends CommonTlsOptions {
  /** Ask clients for a certificate (default: true when `ca` is given, as RFC 9289 wants). */
  requestCert?: boolean;
  /** Refuse clients without a verified certificate (mutual TLS only). */
  requireClientCert?: boolean;
  /**
   * Plaintext CALLs other than NULL are answered MSG_DENIED / AUTH_ERROR / AUTH_TOOWEAK ("rejected for
   * security reasons"), so a client must probe and upgrade first. NULL stays open for pings and probes.
   * (Linux nfsd instead decides per export and answers in NFS terms; this is the transport-level switch.)
   */
  requireTls?: boolean;
}

function denyAuth(connection: RpcConnection, xid: number, authStat: number): void {
  connection.replyAuthError(xid, authStat);
}

/** The STARTTLS reply record, written in clear on the socket right before the server's handshake. */
export function startTlsReply(xid: number): Buffer {
  const w = new XdrWriter(48);
  const slot = w.reserve4();
  writeAcceptedHeader(w, xid, { flavor: AuthFlavor.AUTH_NONE, body: STARTTLS_VERIFIER }, AcceptStat.SUCCESS);
  return Buffer.concat(frameRecord(w.finish(), slot, MAX_FRAGMENT_LENGTH));
}

/**
 * The `interceptCall` for RpcServer (or any RpcConnection): answers AUTH_TLS probes per RFC 9289 and
 * runs the server handshake. The connection emits 'secure' (TlsInfo) once TLS is up, and 'tlsError'
 * (error) before it is destroyed with that error when the handshake fails (RpcServer then emits
 * 'connectionError'); the server itself is unaffected.
 */
export function rpcTlsInterceptor(tlsOptions: RpcTlsServerOptions): CallInterceptor {
  const extra: Partial<TlsContextOptions> = {};
  if (tlsOptions.requestCert !== undefined) extra.requestCert = tlsOptions.requestCert;
  if (tlsOptions.requireClientCert !== undefined) extra.requireClientCert = tlsOptions.requireClientCert;
  const options: TlsStreamOptions = { context: tlsContext('server', tlsOptions, extra) };
  const requireTls = tlsOptions.requireTls === true;

  return (call, connection) => {
    if (call.cred.flavor === AuthFlavor.AUTH_TLS) {
      answerProbe(call, connection, options);
      return true;
    }
    if (requireTls && connection.security === null && call.procedure !== NULL_PROCEDURE) {
      denyAuth(connection, call.xid, AuthStat.AUTH_TOOWEAK);
      return true;
    }
    return false;
  };
}

function answerProbe(call: RpcCall, connection: RpcConnection, options: TlsStreamOptions): void {
  // Inside TLS a probe is meaningless, and AUTH_TLS authenticates nothing on other procedures.
  if (call.procedure !== NULL_PROCEDURE || connection.security !== null || call.cred.body.length > 0) {
    denyAuth(connection, call.xid, AuthStat.AUTH_BADCRED);
    return;
  }
  if (call.verf.flavor !== AuthFlavor.AUTH_NONE) {
    denyAuth(connection, call.xid, AuthStat.AUTH_BADVERF);
    return;
  }
  const transport = connection.transport;
  if (!(transport instanceof net.Socket)) {
    // Not a TCP socket we can hand to the kernel (a test stream, or already upgraded): no TLS here.
    denyAuth(connection, call.xid, AuthStat.AUTH_REJECTEDCRED);
    return;
  }
  const socket = connection.detachStream() as net.Socket;
  // From here on libuv reads nothing more: bytes the client sends after the probe stay in the kernel,
  // where the TLS handshake reads them as its own (anything but a ClientHello fails it).
  stopReading(socket);
  // Deferred: bytes that came in the same read as the probe are counted only after this returns, and
  // RpcConnection then destroys itself (ERR_RPC_UNEXPECTED_BYTES); no STARTTLS may go out in that case.
  process.nextTick(sendStartTls, socket, connection, options, call.xid);
}

function sendStartTls(socket: net.Socket, connection: RpcConnection, options: TlsStreamOptions, xid: number): void {
  if (connection.closed) {
    // Detached, so the connection did not close the socket for us.
    socket.destroy();
    return;
  }
  // The reply goes out in clear; the takeover waits until libuv has handed it to the kernel. A failed
  // write reaches the callback; the listener keeps its 'error' event (detached: nobody else listens)
  // from becoming an uncaught exception.
  socket.on('error', ignoreError);
  socket.write(startTlsReply(xid), (error) => {
    if (error) {
      socket.destroy();
      failHandshake(connection, error);
      return;
    }
    serverHandshake(socket, connection, options);
  });
}

function ignoreError(): void {}

function serverHandshake(socket: net.Socket, connection: RpcConnection, options: TlsStreamOptions): void {
  if (connection.closed) {
    socket.destroy();
    return;
  }
  let handshake;
  try {
    handshake = startHandshake(socket, options);
  } catch (error) {
    socket.destroy();
    failHandshake(connection, error as Error);
    return;
  }
  const { stream, secure } = handshake;
  // The connection may be closed while the handshake runs (server.close()): take the stream down too.
  const abandon = (): void => {
    stream.destroy();
  };
  connection.once('close', abandon);
  secure.then(
    (info) => {
      connection.off('close', abandon);
      if (connection.closed) {
        stream.destroy();
        return;
      }
      connection.security = info as unknown as Readonly<Record<string, unknown>>;
      connection.attachStream(stream);
      connection.emit('secure', info);
    },
    (error: Error) => {
      connection.off('close', abandon);
      stream.destroy();
      failHandshake(connection, error);
    },
  );
}

function failHandshake(connection: RpcConnection, error: Error): void {
  if (connection.closed) return;
  connection.emit('tlsError', error);
  connection.destroy(error);
}

export interface TlsServerOptions extends ServerOptions {
  tls: RpcTlsServerOptions;
}

/**
 * An RpcServer that answers AUTH_TLS probes. Besides RpcServer's events it emits 'secureConnection'
 * (connection, TlsInfo) and 'tlsClientError' (error, connection) for failed handshakes.
 */
export function createTlsServer(options: TlsServerOptions): RpcServer {
  const { tls, ...serverOptions } = options;
  const userIntercept = serverOptions.interceptCall;
  const tlsIntercept = rpcTlsInterceptor(tls);
  const interceptCall: CallInterceptor =
    userIntercept === undefined ? tlsIntercept : (call, connection) => tlsIntercept(call, connection) || userIntercept(call, connection);
  const server = new RpcServer({ ...serverOptions, interceptCall });
  server.on('connection', (connection: RpcConnection) => {
    connection.on('secure', (info: TlsInfo) => server.emit('secureConnection', connection, info));
    connection.on('tlsError', (error: Error) => server.emit('tlsClientError', error, connection));
  });
  return server;
}
