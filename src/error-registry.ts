/**
 * The catalogue of every error code rpctls throws, rejects with or reports: code -> class, layer, message
 * shape and the properties that carry wire values (Node core keeps one such table in
 * lib/internal/errors.js). README's error table is generated from it (`npm run errors:table`) and
 * test/errors/registry.test.ts fails when the two differ, when an exported error class is missing here,
 * when a registered class is not an RpctlsError, or when a code is registered twice.
 *
 * This module only reads the layers' error classes; nothing in src/ imports it.
 */
import { InvalidOptionError, RpctlsError, UsageError } from './errors.js';
import { XdrCompileError } from './gen/errors.js';
import { HandlerXdrError } from './runtime/stubs.js';
import { AgentConfigError } from './agent/config.js';
import { KeyringError } from './agent/keyring.js';
import { NetlinkError } from './agent/netlink.js';
import {
  AuthBadCredError,
  AuthBadVerfError,
  AuthFailedError,
  AuthGssCredProblemError,
  AuthGssCtxProblemError,
  AuthInvalidRespError,
  AuthRejectedCredError,
  AuthRejectedVerfError,
  AuthTooWeakError,
  ConnectError,
  ConnectionClosedError,
  GarbageArgsError,
  MalformedMessageError,
  ProcUnavailError,
  ProgMismatchError,
  ProgUnavailError,
  NotSecureError,
  QueueFullError,
  ResultDecodeError,
  RpcAbortError,
  RpcAcceptedError,
  RpcAuthError,
  RpcDeniedError,
  RpcError,
  RpcMismatchError,
  RpcTimeoutError,
  SystemErrError,
  UnknownAcceptStatError,
} from './rpc/errors.js';
import { CallAuthTooLongError } from './rpc/message.js';
import { StartTlsRefusedError } from './rpc-tls/errors.js';
import {
  TlsAlertError,
  TlsAlpnRequiredError,
  TlsBadRecordError,
  TlsCertRequiredError,
  TlsCertVerifyError,
  TlsError,
  TlsHandshakeError,
  TlsHandshakeTimeoutError,
  TlsKeyUpdateError,
  TlsKeyUpdateFloodError,
  TlsTruncatedError,
  TlsNoHandshakeError,
  TlsKtlsError,
  TlsProtocolError,
  TlsSyscallError,
  TlsCertificateParseError,
  TlsTakeoverError,
  TlsNativeMissingError,
} from './tls/errors.js';
import {
  RecordTimeoutError,
  RecordTooLargeError,
  TooManyFragmentsError,
  TransportError,
  TruncatedRecordError,
  UnexpectedBytesError,
  UpgradeError,
  WriteTimeoutError,
  DatagramTooLargeError,
} from './transport/errors.js';
import {
  XdrEncodeError,
  XdrError,
  XdrInvalidUtf8Error,
  XdrInvalidValueError,
  XdrLengthError,
  XdrPaddingError,
  XdrShortInputError,
  XdrTrailingBytesError,
} from './xdr/errors.js';

/** Where an error comes from: a folder of src/ ('core' is src/errors.ts, shared by all layers). */
export type ErrorLayer = 'core' | 'xdr' | 'transport' | 'rpc' | 'rpc-tls' | 'tls' | 'agent' | 'gen' | 'cli';

/** An error class of the catalogue (abstract, so that bases that are never thrown as such fit too). */
export type ErrorClass = abstract new (...args: never[]) => RpctlsError;

export interface ErrorCodeEntry {
  /** The stable `code`. */
  readonly code: string;
  /** The class its errors are instances of: its own, or the layer's base where the code has none. */
  readonly class: ErrorClass;
  readonly layer: ErrorLayer;
  /** The message's shape on one line; `<name>` stands for a value. */
  readonly message: string;
  /** Properties carrying wire values or data, besides `code`, `message`, `cause` and the call target
   * (`xid`, `program`, `version`, `procedure`) that every RpcError has (listed once, with RpcError). */
  readonly fields: readonly string[];
  /** What else to know: what `cause` holds, what the peer is answered. */
  readonly note?: string;
  /** Narrower classes thrown with the same code (they add properties, not meaning). */
  readonly subclasses?: readonly ErrorClass[];
  /** Where the code surfaces when it is not thrown or rejected with. */
  readonly reportedIn?: string;
}

/** A class callers catch a family by; it has no code of its own unless an entry names it. */
export interface ErrorBaseEntry {
  readonly class: ErrorClass;
  readonly layer: ErrorLayer;
  readonly description: string;
  /** Properties every error of the family carries. */
  readonly fields: readonly string[];
}

const XDR = ['offset'] as const;
const ACCEPTED = ['acceptStat'] as const;
const AUTH = ['rejectStat', 'authStat'] as const;

function auth(code: string, Class: ErrorClass, message: string): ErrorCodeEntry {
  return { code, class: Class, layer: 'rpc', message, fields: AUTH, note: 'or the message an authenticate hook gave' };
}

/** Every code, grouped by layer from the bottom up. */
export const ERROR_CODES: readonly ErrorCodeEntry[] = [
  // ---- core ------------------------------------------------------------------------------------
  { code: 'ERR_RPC_INVALID_OPTION', class: InvalidOptionError, layer: 'core', message: '<option> must be <expectation>; received <value>', fields: ['option'] },

  // ---- xdr -------------------------------------------------------------------------------------
  { code: 'ERR_XDR_SHORT_INPUT', class: XdrShortInputError, layer: 'xdr', message: 'XDR item needs <needed> bytes but only <available> remain (at byte <offset>)', fields: [...XDR, 'needed', 'available'] },
  { code: 'ERR_XDR_LENGTH_EXCEEDS_MAX', class: XdrLengthError, layer: 'xdr', message: '<what> length <length> exceeds its maximum <max> (at byte <offset>)', fields: [...XDR, 'length', 'max'] },
  { code: 'ERR_XDR_NONZERO_PADDING', class: XdrPaddingError, layer: 'xdr', message: 'XDR padding bytes are not zero (at byte <offset>)', fields: XDR },
  { code: 'ERR_XDR_INVALID_VALUE', class: XdrInvalidValueError, layer: 'xdr', message: 'invalid <what> value <value> (at byte <offset>)', fields: [...XDR, 'value'] },
  { code: 'ERR_XDR_INVALID_UTF8', class: XdrInvalidUtf8Error, layer: 'xdr', message: 'string of <length> bytes is not valid UTF-8 (at byte <offset>)', fields: [...XDR, 'length'], note: 'only strings generated with the utf8-strict mode check; the default replaces invalid sequences with U+FFFD' },
  { code: 'ERR_XDR_TRAILING_BYTES', class: XdrTrailingBytesError, layer: 'xdr', message: '<trailing> unexpected bytes after the XDR item (at byte <offset>)', fields: [...XDR, 'trailing'] },
  { code: 'ERR_XDR_ENCODE', class: XdrEncodeError, layer: 'xdr', message: '<why the value does not fit its XDR type> (at byte -1)', fields: XDR },

  // ---- transport -------------------------------------------------------------------------------
  { code: 'ERR_RPC_RECORD_TOO_LARGE', class: RecordTooLargeError, layer: 'transport', message: 'record of at least <size> bytes exceeds maxRecordSize <max>', fields: ['size', 'max', 'head', 'firstRecord'], note: '`head`: its first bytes (a peer that does not speak ONC-RPC, e.g. an SSH or HTTP server, lands here: its text reads as a huge length)' },
  { code: 'ERR_RPC_TOO_MANY_FRAGMENTS', class: TooManyFragmentsError, layer: 'transport', message: 'record has more than maxFragments <max> fragments', fields: ['max'] },
  { code: 'ERR_RPC_TRUNCATED_RECORD', class: TruncatedRecordError, layer: 'transport', message: 'stream ended inside a record after <received> bytes', fields: ['received'] },
  { code: 'ERR_RPC_RECORD_TIMEOUT', class: RecordTimeoutError, layer: 'transport', message: 'a record was not completed within <timeoutMs> ms (<received> bytes received)', fields: ['received', 'timeoutMs'] },
  { code: 'ERR_RPC_UNEXPECTED_BYTES', class: UnexpectedBytesError, layer: 'transport', message: '<received> bytes arrived after the record that ended plaintext', fields: ['received'], note: 'RFC 9289: nothing may follow the probe (server) or its reply (client) before the handshake' },
  { code: 'ERR_RPC_WRITE_TIMEOUT', class: WriteTimeoutError, layer: 'transport', message: 'the peer read nothing for <timeoutMs> ms (<unsent> bytes waiting to be sent)', fields: ['unsent', 'timeoutMs'], note: 'server default writeTimeout 30000 ms' },
  { code: 'ERR_RPC_DATAGRAM_TOO_LARGE', class: DatagramTooLargeError, layer: 'transport', message: 'message of <size> bytes exceeds maxDatagramSize <max>', fields: ['size', 'max'], note: 'UDP: a call is refused before it is sent; a server answers SYSTEM_ERR instead of a reply this large and emits `replyTooLarge`' },
  { code: 'ERR_RPC_UPGRADE', class: UpgradeError, layer: 'transport', message: 'the stream upgrade could not start or finish: <why>', fields: [], note: '`cause`: why the connection closed, when it did' },

  // ---- rpc: MSG_ACCEPTED with a status other than SUCCESS --------------------------------------
  { code: 'ERR_RPC_PROG_UNAVAIL', class: ProgUnavailError, layer: 'rpc', message: 'remote does not export this program (PROG_UNAVAIL)', fields: ACCEPTED },
  { code: 'ERR_RPC_PROG_MISMATCH', class: ProgMismatchError, layer: 'rpc', message: 'program version not supported; remote supports <low>..<high> (PROG_MISMATCH)', fields: [...ACCEPTED, 'low', 'high'] },
  { code: 'ERR_RPC_PROC_UNAVAIL', class: ProcUnavailError, layer: 'rpc', message: 'remote does not implement this procedure (PROC_UNAVAIL)', fields: ACCEPTED },
  { code: 'ERR_RPC_GARBAGE_ARGS', class: GarbageArgsError, layer: 'rpc', message: 'remote could not decode the arguments (GARBAGE_ARGS)', fields: ACCEPTED },
  { code: 'ERR_RPC_SYSTEM_ERR', class: SystemErrError, layer: 'rpc', message: 'remote failed while executing the call (SYSTEM_ERR)', fields: ACCEPTED },
  { code: 'ERR_RPC_UNKNOWN_ACCEPT_STAT', class: UnknownAcceptStatError, layer: 'rpc', message: 'reply has unknown accept_stat <acceptStat>', fields: ACCEPTED },

  // ---- rpc: MSG_DENIED -------------------------------------------------------------------------
  { code: 'ERR_RPC_MISMATCH', class: RpcMismatchError, layer: 'rpc', message: 'RPC version not supported; remote supports <low>..<high> (RPC_MISMATCH)', fields: ['rejectStat', 'low', 'high'] },
  auth('ERR_RPC_AUTH_BADCRED', AuthBadCredError, 'bad credential (AUTH_BADCRED)'),
  auth('ERR_RPC_AUTH_REJECTEDCRED', AuthRejectedCredError, 'credential rejected; begin a new session (AUTH_REJECTEDCRED)'),
  auth('ERR_RPC_AUTH_BADVERF', AuthBadVerfError, 'bad verifier (AUTH_BADVERF)'),
  auth('ERR_RPC_AUTH_REJECTEDVERF', AuthRejectedVerfError, 'verifier expired or replayed (AUTH_REJECTEDVERF)'),
  auth('ERR_RPC_AUTH_TOOWEAK', AuthTooWeakError, 'rejected for security reasons (AUTH_TOOWEAK)'),
  auth('ERR_RPC_AUTH_INVALIDRESP', AuthInvalidRespError, 'bogus response verifier (AUTH_INVALIDRESP)'),
  auth('ERR_RPC_AUTH_FAILED', AuthFailedError, 'authentication failed for an unknown reason (AUTH_FAILED)'),
  auth('ERR_RPC_RPCSEC_GSS_CREDPROBLEM', AuthGssCredProblemError, 'RPCSEC_GSS credential problem (RPCSEC_GSS_CREDPROBLEM)'),
  auth('ERR_RPC_RPCSEC_GSS_CTXPROBLEM', AuthGssCtxProblemError, 'RPCSEC_GSS context problem (RPCSEC_GSS_CTXPROBLEM)'),
  { code: 'ERR_RPC_AUTH_ERROR', class: RpcAuthError, layer: 'rpc', message: 'authentication failed: <AUTH_STAT name>', fields: AUTH, note: 'any other auth_stat' },

  // ---- rpc: local failures ---------------------------------------------------------------------
  { code: 'ERR_RPC_TIMEOUT', class: RpcTimeoutError, layer: 'rpc', message: 'no reply within <timeout> ms', fields: ['timeout'] },
  { code: 'ERR_RPC_ABORTED', class: RpcAbortError, layer: 'rpc', message: 'the call was aborted', fields: [], note: '`cause`: the abort reason' },
  { code: 'ERR_RPC_CONNECTION_CLOSED', class: ConnectionClosedError, layer: 'rpc', message: 'the connection closed before a reply arrived', fields: [], note: '`cause`: why, when known' },
  { code: 'ERR_RPC_CONNECT', class: ConnectError, layer: 'rpc', message: 'cannot connect to <address>:<port> (<system error code>)', fields: ['address', 'port'], note: '`cause`: the system error (`code`, `errno`, `syscall`)' },
  { code: 'ERR_RPC_NOT_SECURE', class: NotSecureError, layer: 'rpc', message: '<operation> needs a connection whose stream can rotate its keys (RPC-with-TLS); this one has none', fields: [] },
  { code: 'ERR_RPC_QUEUE_FULL', class: QueueFullError, layer: 'rpc', message: 'more than <limit> calls are waiting for a slot', fields: ['limit'] },
  { code: 'ERR_RPC_MALFORMED_MESSAGE', class: MalformedMessageError, layer: 'rpc', message: '<why the record is not a valid RPC message>', fields: [], subclasses: [CallAuthTooLongError], note: 'CallAuthTooLongError (a CALL whose opaque_auth exceeds 400 bytes) carries `call` and is answered AUTH_BADCRED' },
  { code: 'ERR_RPC_RESULT_DECODE', class: ResultDecodeError, layer: 'rpc', message: "cannot decode the reply's results: <XDR error message>", fields: [], note: '`cause`: the XdrError' },
  { code: 'ERR_RPC_RPCBIND_REFUSED', class: RpcError, layer: 'rpc', message: 'rpcbind refused to register program <program> version <version> (<netid>)', fields: [] },

  // ---- rpc-tls (RFC 9289) ----------------------------------------------------------------------
  { code: 'ERR_RPC_TLS_NOT_OFFERED', class: StartTlsRefusedError, layer: 'rpc-tls', message: 'server does not offer RPC-with-TLS: it answered the AUTH_TLS probe with <reply>', fields: ['replyStat', 'acceptStat', 'rejectStat', 'authStat', 'verifierFlavor', 'verifierBody'] },

  // ---- tls -------------------------------------------------------------------------------------
  { code: 'ERR_TLS_HANDSHAKE_TIMEOUT', class: TlsHandshakeTimeoutError, layer: 'tls', message: 'TLS handshake timed out after <timeoutMs> ms', fields: ['timeoutMs'] },
  { code: 'ERR_TLS_HANDSHAKE', class: TlsHandshakeError, layer: 'tls', message: 'TLS handshake failed: <OpenSSL reason>', fields: ['reason', 'sentAlert'] },
  { code: 'ERR_TLS_NO_HANDSHAKE', class: TlsNoHandshakeError, layer: 'tls', message: 'the client closed the connection | reset the connection (<errnoName>) without starting the TLS handshake', fields: ['errnoName'], note: 'server side, no byte of TLS received after STARTTLS (rpcinfo, a probe-only client): no tlsError/tlsClientError, the connection closes with it' },
  { code: 'ERR_TLS_CERT_VERIFY', class: TlsCertVerifyError, layer: 'tls', message: 'peer certificate verification failed: <X509 verify error>', fields: ['verifyCode', 'reason'] },
  { code: 'ERR_TLS_CERT_REQUIRED', class: TlsCertRequiredError, layer: 'tls', message: 'the peer did not send the required certificate', fields: [] },
  { code: 'ERR_TLS_ALERT', class: TlsAlertError, layer: 'tls', message: 'received|sent TLS alert <description text> (<alertName>)', fields: ['level', 'description', 'alertName', 'received'] },
  { code: 'ERR_TLS_KEY_UPDATE', class: TlsKeyUpdateError, layer: 'tls', message: 'the peer sent a TLS 1.3 KeyUpdate, which kernel TLS on Linux <release> cannot follow (Linux >= 6.14 can) | kernel TLS on Linux <release> cannot take new keys', fields: ['kernelRelease'], note: 'kernel mode before Linux 6.14 only; `tlsInfo.offload.rekey` says in advance' },
  { code: 'ERR_TLS_KEY_UPDATE_FLOOD', class: TlsKeyUpdateFloodError, layer: 'tls', message: 'the peer sent <count> TLS KeyUpdates in a row with no data between them', fields: ['count', 'sentAlert'], note: 'more than 32 in a row (as BoringSSL); both modes' },
  { code: 'ERR_TLS_TRUNCATED', class: TlsTruncatedError, layer: 'tls', message: 'the peer closed the connection without a TLS close_notify: what it sent may be truncated', fields: [], note: 'a TCP FIN without close_notify, both modes; the data before it was delivered (and answered) first' },
  { code: 'ERR_TLS_ALPN_REQUIRED', class: TlsAlpnRequiredError, layer: 'tls', message: 'the peer|client did not negotiate|offer ALPN "sunrpc"', fields: [] },
  { code: 'ERR_TLS_KTLS', class: TlsKtlsError, layer: 'tls', message: 'kernel TLS required but unavailable: <reason> | setsockopt <step> failed after the kernel took the session: <errno>', fields: ['errno', 'errnoName', 'step'] },
  { code: 'ERR_TLS_BAD_RECORD', class: TlsBadRecordError, layer: 'tls', message: 'kernel TLS rejected a record: <errno name> (<strerror>)', fields: ['errno', 'errnoName'] },
  { code: 'ERR_TLS_PROTOCOL', class: TlsProtocolError, layer: 'tls', message: 'a record or message TLS does not allow here: <what>', fields: ['reason', 'violation', 'recordType', 'handshakeType', 'sentAlert'], note: 'kernel mode: `violation` names what was wrong with a control record and `sentAlert` the alert sent before closing' },
  { code: 'ERR_TLS_INVALID_CONFIG', class: TlsError, layer: 'tls', message: 'OpenSSL refused the TLS configuration (<option>: <problem>) (OpenSSL: <reason>)', fields: [], note: 'bad PEM, a key that does not match its certificate and unknown suites are InvalidOptionErrors naming the option; this is for what is left' },
  { code: 'ERR_TLS_SYSCALL', class: TlsSyscallError, layer: 'tls', message: '<syscall> failed: <errno name> (<strerror>)', fields: ['syscall', 'errno', 'errnoName'] },
  { code: 'ERR_TLS_CERTIFICATE_PARSE', class: TlsCertificateParseError, layer: 'tls', message: 'certificate DER: <truncated | bad length | bad otherName>', fields: [], note: '`peerIdentityOf` on bytes that are no certificate' },
  { code: 'ERR_TLS_TAKEOVER', class: TlsTakeoverError, layer: 'tls', message: '<why the socket cannot be handed to TLS>', fields: [], note: 'no fd, unread bytes, queued writes' },
  { code: 'ERR_TLS_INVALID_PEM', class: TlsError, layer: 'tls', message: '<what> is not valid PEM: <OpenSSL reason>', fields: [] },
  { code: 'ERR_TLS_INVALID_STATE', class: TlsError, layer: 'tls', message: 'write|shutdown while not open or with a write pending', fields: [] },
  { code: 'ERR_TLS_OPENSSL_MISMATCH', class: TlsError, layer: 'tls', message: 'the addon was built against another OpenSSL than the one loaded; rebuild it', fields: [] },
  { code: 'ERR_TLS_NATIVE_MISSING', class: TlsNativeMissingError, layer: 'tls', message: 'rpctls\'s native addon (needed for TLS) is not built or prebuilt for <platform>-<arch> (<where it looked>) | does not load (<path> does not load: <why>); build it with "npx node-gyp rebuild --directory=node_modules/rpctls/native" (...)', fields: [], note: 'no prebuilt binary for this platform and install could not build one; everything but TLS works' },
  { code: 'ERR_STREAM_DESTROYED', class: TlsError, layer: 'tls', message: 'TLS stream destroyed', fields: [], note: 'a write that was pending when the stream was destroyed' },

  // ---- agent -----------------------------------------------------------------------------------
  { code: 'ERR_AGENT_CONFIG', class: AgentConfigError, layer: 'agent', message: '<file>[:<line>]: <what is wrong>', fields: ['file', 'line'] },
  { code: 'ERR_AGENT_UNSUPPORTED', class: RpctlsError, layer: 'agent', message: 'unknown auth-mode <n>', fields: [], reportedIn: 'the handshake outcome and log (the kernel gets DONE EINVAL)' },
  { code: 'ERR_AGENT_PSK', class: RpctlsError, layer: 'agent', message: 'PSK ClientHello request without a PSK identity | PSK key <serial>: <why its identity or key cannot be used>', fields: [], reportedIn: 'the handshake outcome and log (the kernel gets DONE EIO)' },
  { code: 'ERR_KEYRING', class: KeyringError, layer: 'agent', message: '<operation: KEYCTL_READ, KEYCTL_DESCRIBE, KEYCTL_LINK, KEYCTL_UNLINK, KEYCTL_SEARCH or add_key> [<serial>]: <errno name> (<strerror>) | key <serial> is not a DER certificate (...) | key <serial> is not a DER private key (...)', fields: ['operation', 'serial', 'errno', 'errnoName'], note: 'the agent reports it in the handshake outcome (DONE EACCES) when a keyring identity cannot be read' },
  { code: 'ERR_AGENT', class: RpctlsError, layer: 'agent', message: '<the message of a handshake error that had no code>', fields: [], reportedIn: 'the handshake outcome and log (the kernel gets DONE EACCES)' },
  { code: 'ERR_NETLINK_MALFORMED', class: NetlinkError, layer: 'agent', message: 'a netlink message or attribute is truncated or lacks a field: <what>', fields: ['errno', 'errnoName'] },
  { code: 'ERR_NETLINK_REQUEST', class: NetlinkError, layer: 'agent', message: 'kernel answered <errno name>', fields: ['errno', 'errnoName'] },
  { code: 'ERR_NETLINK_TIMEOUT', class: NetlinkError, layer: 'agent', message: 'no netlink answer within <timeoutMs> ms', fields: ['errno', 'errnoName'] },
  { code: 'ERR_NETLINK_CLOSED', class: NetlinkError, layer: 'agent', message: 'netlink socket closed', fields: ['errno', 'errnoName'] },
  { code: 'ERR_NETLINK_NO_FAMILY', class: NetlinkError, layer: 'agent', message: 'this kernel has no generic netlink family "<name>" | family "<name>" has no multicast group "<group>"', fields: ['errno', 'errnoName'] },
  { code: 'ERR_NETLINK_SYSCALL', class: NetlinkError, layer: 'agent', message: '<syscall>: <errno name> (<strerror>)', fields: ['errno', 'errnoName'] },

  // ---- gen -------------------------------------------------------------------------------------
  { code: 'ERR_XDRGEN', class: XdrCompileError, layer: 'gen', message: '<file>:<line>:<column>: <what is wrong in the .x source>', fields: ['file', 'line', 'column'] },
  { code: 'ERR_RPC_HANDLER_XDR', class: HandlerXdrError, layer: 'gen', message: 'procedure implementation failed: <XDR error message>', fields: [], note: '`cause`: the XdrError; the peer is answered SYSTEM_ERR, not GARBAGE_ARGS' },

  // ---- cli -------------------------------------------------------------------------------------
  { code: 'ERR_USAGE', class: UsageError, layer: 'cli', message: 'rpctls <command>: <what is wrong with the command line>', fields: [], note: 'exit status 2' },
];

/** The families: catch one of these to catch every code under it. */
export const ERROR_BASES: readonly ErrorBaseEntry[] = [
  { class: RpctlsError, layer: 'core', description: 'every error rpctls throws or rejects with', fields: ['code'] },
  { class: XdrError, layer: 'xdr', description: 'XDR decoding or encoding', fields: XDR },
  { class: TransportError, layer: 'transport', description: 'the byte stream under RPC: framing, caps, deadlines', fields: [] },
  { class: RpcError, layer: 'rpc', description: 'one call or connection; set on every error a call rejects with', fields: ['xid', 'program', 'version', 'procedure'] },
  { class: RpcAcceptedError, layer: 'rpc', description: 'MSG_ACCEPTED with a status other than SUCCESS', fields: ACCEPTED },
  { class: RpcDeniedError, layer: 'rpc', description: 'MSG_DENIED', fields: ['rejectStat'] },
  { class: RpcAuthError, layer: 'rpc', description: 'MSG_DENIED / AUTH_ERROR, from the wire or an authenticate hook', fields: AUTH },
  { class: TlsError, layer: 'tls', description: 'the TLS session: handshake, certificates, alerts, kernel TLS', fields: [] },
  { class: NetlinkError, layer: 'agent', description: "the kernel's handshake netlink exchange", fields: ['errno', 'errnoName'] },
];
