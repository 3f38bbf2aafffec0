import { release } from 'node:os';

import { RpctlsError } from '../errors.js';

// Coded errors of the TLS layer. The addon reports plain { code, ...data } objects (errno, syscall, alert
// numbers, verify codes, OpenSSL's reason; no prose); this file owns the catalogue, writes the messages
// and turns them into classes callers can test with instanceof or `code`, as Node core does.

/** TLS alert descriptions (RFC 8446 6) by number. */
export const ALERT_NAMES: Readonly<Record<number, string>> = {
  0: 'close_notify', 10: 'unexpected_message', 20: 'bad_record_mac', 22: 'record_overflow',
  40: 'handshake_failure', 42: 'bad_certificate', 43: 'unsupported_certificate', 44: 'certificate_revoked',
  45: 'certificate_expired', 46: 'certificate_unknown', 47: 'illegal_parameter', 48: 'unknown_ca',
  49: 'access_denied', 50: 'decode_error', 51: 'decrypt_error', 70: 'protocol_version',
  71: 'insufficient_security', 80: 'internal_error', 86: 'inappropriate_fallback', 90: 'user_canceled',
  109: 'missing_extension', 110: 'unsupported_extension', 112: 'unrecognized_name',
  113: 'bad_certificate_status_response', 115: 'unknown_psk_identity', 116: 'certificate_required',
  120: 'no_application_protocol',
};

/** Wire values the addon attaches to an error (numbers and strings). */
export type WireFields = Readonly<Record<string, unknown>>;

export class TlsError extends RpctlsError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export class TlsHandshakeTimeoutError extends TlsError {
  readonly timeoutMs: number;
  constructor(message: string, info: WireFields) {
    super('ERR_TLS_HANDSHAKE_TIMEOUT', message);
    this.timeoutMs = Number(info.timeoutMs);
  }
}

export class TlsHandshakeError extends TlsError {
  /** OpenSSL's reason string. */
  readonly reason: string;
  readonly sentAlert: number | undefined;
  constructor(message: string, info: WireFields) {
    super('ERR_TLS_HANDSHAKE', message);
    this.reason = String(info.reason ?? info.opensslError ?? '');
    this.sentAlert = typeof info.sentAlert === 'number' ? info.sentAlert : undefined;
  }
}

/**
 * Server side: the client closed (or reset) the connection without sending one byte of TLS after
 * STARTTLS: it never started a handshake (rpcinfo, a probe-only client). Not a TLS failure.
 */
export class TlsNoHandshakeError extends TlsError {
  /** ECONNRESET etc. when the client reset the connection; undefined for a plain close (FIN). */
  readonly errnoName: string | undefined;
  constructor(message: string, info: WireFields) {
    super('ERR_TLS_NO_HANDSHAKE', message);
    this.errnoName = typeof info.errnoName === 'string' ? info.errnoName : undefined;
  }
}

export class TlsCertVerifyError extends TlsError {
  /** X509_V_ERR_* number and its OpenSSL text, e.g. 62 "hostname mismatch". */
  readonly verifyCode: number;
  readonly reason: string;
  constructor(message: string, info: WireFields) {
    super('ERR_TLS_CERT_VERIFY', message);
    this.verifyCode = Number(info.verifyCode);
    this.reason = String(info.reason);
  }
}

export class TlsCertRequiredError extends TlsError {
  constructor(message: string) {
    super('ERR_TLS_CERT_REQUIRED', message);
  }
}

export class TlsAlertError extends TlsError {
  readonly level: number;
  readonly description: number;
  readonly alertName: string;
  /** true when the peer sent it. */
  readonly received: boolean;
  constructor(message: string, info: WireFields) {
    const description = Number(info.description);
    const alertName = ALERT_NAMES[description] ?? `alert_${description}`;
    super('ERR_TLS_ALERT', `${message} ${alertName} (level ${Number(info.level)}, description ${description})`);
    this.level = Number(info.level);
    this.description = description;
    this.alertName = alertName;
    this.received = info.received !== false;
  }
}

/**
 * A TLS 1.3 KeyUpdate this kernel's TLS cannot follow or send (kernel TLS before Linux 6.14 cannot take
 * new keys on a live socket). `kernelRelease` names the running kernel.
 */
export class TlsKeyUpdateError extends TlsError {
  readonly kernelRelease: string;
  /** Linux version from which kernel TLS follows KeyUpdates. */
  static readonly REKEY_KERNEL = '6.14';
  constructor(message: string) {
    super('ERR_TLS_KEY_UPDATE', message);
    this.kernelRelease = release();
  }
}

/** More KeyUpdates in a row, with no application data between them, than any peer needs. */
export class TlsKeyUpdateFloodError extends TlsError {
  /** KeyUpdates received in a row when the connection was closed. */
  readonly count: number;
  readonly sentAlert: number | undefined;
  constructor(message: string, info: WireFields) {
    super('ERR_TLS_KEY_UPDATE_FLOOD', message);
    this.count = Number(info.count);
    this.sentAlert = typeof info.sentAlert === 'number' ? info.sentAlert : undefined;
  }
}

/**
 * The peer closed the TCP connection (FIN) without a close_notify first (RFC 8446 6.1): what arrived
 * may be cut short by an attacker or a crash. Everything received before it was delivered.
 */
export class TlsTruncatedError extends TlsError {
  constructor(message = 'the peer closed the connection without a TLS close_notify: what it sent may be truncated') {
    super('ERR_TLS_TRUNCATED', message);
  }
}

export class TlsAlpnRequiredError extends TlsError {
  constructor(message: string) {
    super('ERR_TLS_ALPN_REQUIRED', message);
  }
}

export class TlsKtlsError extends TlsError {
  readonly errnoName: string | undefined;
  readonly errno: number | undefined;
  readonly step: string | undefined;
  constructor(message: string, info: WireFields) {
    super('ERR_TLS_KTLS', message);
    this.errno = typeof info.errno === 'number' ? info.errno : undefined;
    this.errnoName = typeof info.errnoName === 'string' ? info.errnoName : undefined;
    this.step = typeof info.step === 'string' ? info.step : undefined;
  }
}

export class TlsBadRecordError extends TlsError {
  readonly errno: number;
  readonly errnoName: string;
  constructor(message: string, info: WireFields) {
    super('ERR_TLS_BAD_RECORD', message);
    this.errno = Number(info.errno);
    this.errnoName = String(info.errnoName);
  }
}

export class TlsProtocolError extends TlsError {
  /** OpenSSL's reason (userspace records), when it gave one. */
  readonly reason: string | undefined;
  /** Kernel mode: what was wrong with the control record ("alert_length", "record_type", ...). */
  readonly violation: string | undefined;
  readonly recordType: number | undefined;
  readonly handshakeType: number | undefined;
  /** The alert description sent to the peer before closing, if one went out. */
  readonly sentAlert: number | undefined;
  constructor(message: string, info: WireFields = {}) {
    super('ERR_TLS_PROTOCOL', message);
    this.reason = typeof info.reason === 'string' ? info.reason : undefined;
    this.violation = typeof info.violation === 'string' ? info.violation : undefined;
    this.recordType = typeof info.recordType === 'number' ? info.recordType : undefined;
    this.handshakeType = typeof info.handshakeType === 'number' ? info.handshakeType : undefined;
    this.sentAlert = typeof info.sentAlert === 'number' ? info.sentAlert : undefined;
  }
}

export class TlsSyscallError extends TlsError {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;
  constructor(message: string, info: WireFields) {
    super('ERR_TLS_SYSCALL', message);
    this.syscall = String(info.syscall);
    this.errno = Number(info.errno);
    this.errnoName = String(info.errnoName);
  }
}

/**
 * The native addon TLS runs on is not there (never built: no compiler at install time) or does not load
 * (built for another Node). Everything but TLS works without it.
 */
export class TlsNativeMissingError extends TlsError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(
      'ERR_TLS_NATIVE_MISSING',
      `rpctls's native addon (needed for TLS) ${reason}; build it with "npx node-gyp rebuild --directory=node_modules/rpctls/native" ` +
        '(needs make, a C++ compiler and the OpenSSL 3 headers)',
      options,
    );
  }
}

/** A certificate's DER could not be read for its identity (truncated, or a malformed extension). */
export class TlsCertificateParseError extends TlsError {
  constructor(what: string) {
    super('ERR_TLS_CERTIFICATE_PARSE', `certificate DER: ${what}`);
  }
}

export class TlsTakeoverError extends TlsError {
  constructor(message: string) {
    super('ERR_TLS_TAKEOVER', message);
  }
}

const alertName = (description: unknown): string => ALERT_NAMES[Number(description)] ?? `alert_${String(description)}`;
const errnoText = (info: WireFields): string => `${String(info.errnoName)} (${String(info.errnoText ?? 'unknown error')})`;

/** Kernel-mode control-record violations, by the addon's `violation` tag (native/src/records_kernel.cc). */
function violationText(info: WireFields): string {
  switch (info.violation) {
    case 'alert_length': return `malformed alert record of ${String(info.length)} bytes`;
    case 'record_type': return `unexpected TLS record type ${String(info.recordType)} after the handshake`;
    case 'handshake_type': return `unexpected post-handshake message ${String(info.handshakeType)}`;
    case 'handshake_length': return `malformed post-handshake record (${String(info.length)} bytes, a message too long or empty)`;
    case 'handshake_interleaved': return 'a record of another type arrived inside a split post-handshake message (RFC 8446 5.1)';
    case 'key_update_not_last': return 'a KeyUpdate not at the end of its record (RFC 8446 5.1: no message may span a key change)';
    case 'key_update_length': return 'a KeyUpdate whose body is not 1 byte';
    case 'key_update_value': return 'a KeyUpdate with a request_update value other than 0 or 1';
    default: return `TLS error: ${String(info.reason ?? 'unknown error')}`;
  }
}

/** The message of a native error description. */
export function nativeErrorMessage(info: WireFields & { code: string }): string {
  const sent = typeof info.sentAlert === 'number' ? `; sent alert ${alertName(info.sentAlert)}` : '';
  switch (info.code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT': return `TLS handshake timed out after ${String(info.timeoutMs)} ms`;
    case 'ERR_TLS_HANDSHAKE': return `TLS handshake failed: ${String(info.reason ?? 'unknown error')}${sent}`;
    case 'ERR_TLS_NO_HANDSHAKE':
      return `the client ${typeof info.errnoName === 'string' ? `reset the connection (${info.errnoName})` : 'closed the connection'} without starting the TLS handshake`;
    case 'ERR_TLS_CERT_VERIFY':
      return info.violation === 'no_subject_alt_name'
        ? `peer certificate verification failed: ${String(info.reason)} (the certificate has no subjectAltName; ` +
          'a name in its subject CN is not accepted, RFC 9525)'
        : `peer certificate verification failed: ${String(info.reason)}`;
    case 'ERR_TLS_CERT_REQUIRED': return 'the peer did not send the required certificate';
    case 'ERR_TLS_ALERT': return `${info.received === false ? 'sent' : 'received'} TLS alert`;
    case 'ERR_TLS_KEY_UPDATE':
      return info.violation === 'kernel_cannot_rekey'
        ? `kernel TLS on Linux ${release()} cannot take new keys (TLS 1.3 KeyUpdate needs Linux >= ${TlsKeyUpdateError.REKEY_KERNEL})`
        : `the peer sent a TLS 1.3 KeyUpdate, which kernel TLS on Linux ${release()} cannot follow (Linux >= ${TlsKeyUpdateError.REKEY_KERNEL} can)`;
    case 'ERR_TLS_KEY_UPDATE_FLOOD': return `the peer sent ${String(info.count)} TLS KeyUpdates in a row with no data between them${sent}`;
    case 'ERR_TLS_ALPN_REQUIRED':
      return info.violation === 'not_offered' ? 'the client did not offer ALPN "sunrpc"' : 'the peer did not negotiate ALPN "sunrpc"';
    case 'ERR_TLS_KTLS':
      return typeof info.offloadReason === 'string'
        ? `kernel TLS required but unavailable: ${info.offloadReason}`
        : `setsockopt ${String(info.step)} failed after the kernel took the session: ${errnoText(info)}`;
    case 'ERR_TLS_BAD_RECORD': return `kernel TLS rejected a record: ${errnoText(info)}`;
    case 'ERR_TLS_PROTOCOL': return `${violationText(info)}${sent}`;
    case 'ERR_TLS_SYSCALL': return `${String(info.syscall)} failed: ${errnoText(info)}`;
    case 'ERR_TLS_INVALID_STATE': return `${String(info.violation)} while not open or with a write pending`;
    default: return typeof info.message === 'string' ? info.message : `TLS error ${info.code}`;
  }
}

/** Builds the error class (and its message) for a native error description. */
export function tlsErrorFromNative(info: { code: string; [key: string]: unknown }): TlsError {
  const message = nativeErrorMessage(info);
  switch (info.code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT': return new TlsHandshakeTimeoutError(message, info);
    case 'ERR_TLS_HANDSHAKE': return new TlsHandshakeError(message, info);
    case 'ERR_TLS_NO_HANDSHAKE': return new TlsNoHandshakeError(message, info);
    case 'ERR_TLS_CERT_VERIFY': return new TlsCertVerifyError(message, info);
    case 'ERR_TLS_CERT_REQUIRED': return new TlsCertRequiredError(message);
    case 'ERR_TLS_ALERT': return new TlsAlertError(message, info);
    case 'ERR_TLS_KEY_UPDATE': return new TlsKeyUpdateError(message);
    case 'ERR_TLS_KEY_UPDATE_FLOOD': return new TlsKeyUpdateFloodError(message, info);
    case 'ERR_TLS_ALPN_REQUIRED': return new TlsAlpnRequiredError(message);
    case 'ERR_TLS_KTLS': return new TlsKtlsError(message, info);
    case 'ERR_TLS_BAD_RECORD': return new TlsBadRecordError(message, info);
    case 'ERR_TLS_PROTOCOL': return new TlsProtocolError(message, info);
    case 'ERR_TLS_SYSCALL': return new TlsSyscallError(message, info);
    default: return new TlsError(info.code, message);
  }
}
