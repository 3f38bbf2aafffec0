/**
 * rpctls: ONC-RPC v2 for Node.js with RPC-with-TLS. Layers, bottom up (docs/architecture.md):
 * xdr (data) <- transport (record marking, the record channel that owns the byte stream) <- rpc (messages,
 * call table, dispatcher, connection, client, server, rpcbind) <- rpc-tls (RFC 9289) -> tls (the TLS
 * engine: handshake, kernel or userspace records); agent (the kernel's handshake agent) -> tls; gen (the
 * .x compiler) and runtime (what generated code needs). This file is the public API: an explicit list.
 */

// ---- errors (every class is an RpctlsError; README's table comes from src/error-registry.ts) -------
export { RpctlsError, InvalidOptionError, UsageError } from './errors.js';
export {
  XdrError,
  XdrShortInputError,
  XdrLengthError,
  XdrPaddingError,
  XdrInvalidValueError,
  XdrInvalidUtf8Error,
  XdrTrailingBytesError,
  XdrEncodeError,
} from './xdr/errors.js';
export {
  TransportError,
  RecordTooLargeError,
  TooManyFragmentsError,
  TruncatedRecordError,
  RecordTimeoutError,
  UnexpectedBytesError,
  UpgradeError,
  WriteTimeoutError,
  DatagramTooLargeError,
} from './transport/errors.js';
export {
  RpcError,
  RpcAcceptedError,
  ProgUnavailError,
  ProgMismatchError,
  ProcUnavailError,
  GarbageArgsError,
  SystemErrError,
  UnknownAcceptStatError,
  RpcDeniedError,
  RpcMismatchError,
  RpcAuthError,
  AuthBadCredError,
  AuthRejectedCredError,
  AuthBadVerfError,
  AuthRejectedVerfError,
  AuthTooWeakError,
  AuthInvalidRespError,
  AuthFailedError,
  AuthGssCredProblemError,
  AuthGssCtxProblemError,
  RpcTimeoutError,
  RpcAbortError,
  ConnectionClosedError,
  ConnectError,
  NotSecureError,
  QueueFullError,
  MalformedMessageError,
  ResultDecodeError,
  authError,
  acceptedError,
  type CallTarget,
} from './rpc/errors.js';
export { CallAuthTooLongError } from './rpc/message.js';
export {
  ALERT_NAMES,
  TlsError,
  TlsHandshakeTimeoutError,
  TlsHandshakeError,
  TlsCertVerifyError,
  TlsCertRequiredError,
  TlsAlertError,
  TlsKeyUpdateError,
  TlsKeyUpdateFloodError,
  TlsTruncatedError,
  TlsNoHandshakeError,
  TlsAlpnRequiredError,
  TlsKtlsError,
  TlsBadRecordError,
  TlsProtocolError,
  TlsSyscallError,
  TlsTakeoverError,
  TlsCertificateParseError,
  TlsNativeMissingError,
} from './tls/errors.js';
export { StartTlsRefusedError } from './rpc-tls/errors.js';
export { XdrCompileError } from './gen/errors.js';

// ---- diagnostics_channel channels (by name too: 'rpctls:call:start', ...) --------------------------------
export { channels as diagnosticsChannels } from './diagnostics.js';
export type { CallDiagnostic } from './rpc/call-table.js';

// ---- xdr ---------------------------------------------------------------------------------------------
export { XdrWriter, XdrReader, xdr, decode, GATHER_THRESHOLD, type Codec, type UnionValue } from './xdr/index.js';

// ---- transport ---------------------------------------------------------------------------------------
export {
  RecordDecoder,
  frameRecord,
  MAX_FRAGMENT_LENGTH,
  DEFAULT_MAX_RECORD_SIZE,
  DEFAULT_MAX_FRAGMENTS,
  type RecordDecoderOptions,
} from './transport/record-marking.js';
export { DEFAULT_MAX_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE } from './transport/datagram.js';

// ---- rpc ---------------------------------------------------------------------------------------------
export {
  RPC_VERSION,
  MsgType,
  ReplyStat,
  AcceptStat,
  RejectStat,
  AuthStat,
  AuthFlavor,
  MAX_AUTH_BYTES,
  nameOf,
  type AcceptStatValue,
  type AuthStatValue,
} from './rpc/constants.js';
export { AUTH_NONE, AUTH_TLS, authSys, decodeAuthSys, type OpaqueAuth, type AuthSysParams } from './rpc/auth.js';
export { decodeMessage, type RpcCall, type RpcReply, type RpcMessage } from './rpc/message.js';
export { procedure, defineProgram, ProgramRegistry } from './rpc/program.js';
export type {
  CallContext,
  CallInterceptor,
  CallOptions,
  CheckedProcedures,
  CheckedProgramDefinition,
  ConnectionSecurity,
  ConnectionStats,
  KeyUpdateOptions,
  ProcedureDefinition,
  ProcedureRef,
  ProgramDefinition,
  RawHandler,
  RpcConnectionEvents,
  RpcPeer,
  StreamUpgrade,
  TypedProcedure,
} from './rpc/peer.js';
export { RpcConnection, type ConnectionOptions, type AuthenticateHook } from './rpc/connection.js';
export { RpcClient, DEFAULT_CLIENT_RECORD_TIMEOUT_MS, type ClientOptions, type ReconnectOptions, type RpcClientEvents } from './rpc/client.js';
export {
  RpcServer,
  DEFAULT_RECORD_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_FIRST_BYTE_TIMEOUT_MS,
  DEFAULT_WRITE_TIMEOUT_MS,
  type ServerOptions,
  type ListenOptions,
  type RpcServerEvents,
} from './rpc/server.js';
export {
  UdpClient,
  DEFAULT_RETRANSMIT_TIMEOUT_MS,
  DEFAULT_MAX_RETRANSMIT_TIMEOUT_MS,
  type UdpClientOptions,
  type UdpClientStats,
} from './rpc/udp-client.js';
export type { UdpServerOptions, UdpServerStats } from './rpc/udp-server.js';
export {
  RpcbindClient,
  RPCBIND_PROGRAM,
  RPCBIND_PORT,
  IPPROTO_TCP,
  IPPROTO_UDP,
  toUniversalAddress,
  fromUniversalAddress,
  type PmapMapping,
  type RpcbEntry,
} from './rpc/rpcbind.js';

// ---- generated code's runtime and the .x compiler -----------------------------------------------------
export { handlerFailure, HandlerXdrError } from './runtime/stubs.js';
export type { RpcCaller, RawProgram, RawProcedure, RawProcedures } from './runtime/stubs.js';
export { compileXdr } from './gen/index.js';
export type { CompileOptions, StringMode } from './gen/index.js';

// ---- tls ---------------------------------------------------------------------------------------------
export { TlsContext, TlsStream, connectTlsStream, stopReading, TLS_CIPHERSUITES, kernelTlsAvailable } from './tls/index.js';
export type { TlsContextOptions, TlsContextStats, TlsStreamOptions, TlsInfo, TlsCounters, TlsCipherSuite, RekeyLimits } from './tls/index.js';
export { peerIdentityOf, type PeerIdentity, type OtherName } from './tls/index.js';

// ---- rpc-tls (RFC 9289) --------------------------------------------------------------------------------
export {
  STARTTLS_VERIFIER,
  offersStartTls,
  rpcTlsUpgrade,
  rpcTlsInterceptor,
  createTlsClient,
  createTlsServer,
  tlsInfoOf,
  type ProbeAnswer,
  type ProbeTarget,
  type CommonTlsOptions,
  type RpcTlsClientOptions,
  type RpcTlsServerOptions,
  type TlsClientOptions,
  type TlsServerOptions,
} from './rpc-tls/index.js';

// ---- agent ---------------------------------------------------------------------------------------------
export {
  HandshakeAgent, DoneStatus, PEER_ID_PLACEHOLDER, AgentConfigError, loadAgentConfig, parseAgentConfig, resolveConfigPath,
  DEFAULT_CONFIG_PATHS, probeKernel, capabilitiesLine, NetlinkError,
} from './agent/index.js';
export type {
  AgentOptions, HandshakeOutcome, HandshakeTransport, LogEntry, AgentConfig, SideCredentials, HandshakeRequest,
  KernelCapabilities, ProbeSources,
} from './agent/index.js';
