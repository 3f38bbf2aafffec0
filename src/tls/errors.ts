import { RpctlsError } from '../errors.js';

// Coded errors of the TLS layer. The addon reports plain { code, message, ...wire values } objects;
// this file owns the catalogue and turns them into classes callers can test with instanceof or `code`.

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
  constructor(code: string, message: string) {
    super(code, message);
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
    super('ERR_TLS_ALERT', `${message} (${alertName})`);
    this.level = Number(info.level);
    this.description = description;
    this.alertName = alertName;
    this.received = info.received !== false;
  }
}

export class TlsKeyUpdateError extends TlsError {
  constructor(message: string) {
    super('ERR_TLS_KEY_UPDATE', message);
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
  constructor(message: string) {
    super('ERR_TLS_PROTOCOL', message);
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

export class TlsTakeoverError extends TlsError {
  constructor(message: string) {
    super('ERR_TLS_TAKEOVER', message);
  }
}

/** Builds the error class for a native error description. */
export function tlsErrorFromNative(info: { code: string; message: string; [key: string]: unknown }): TlsError {
  switch (info.code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT': return new TlsHandshakeTimeoutError(info.message, info);
    case 'ERR_TLS_HANDSHAKE': return new TlsHandshakeError(info.message, info);
    case 'ERR_TLS_CERT_VERIFY': return new TlsCertVerifyError(info.message, info);
    case 'ERR_TLS_CERT_REQUIRED': return new TlsCertRequiredError(info.message);
    case 'ERR_TLS_ALERT': return new TlsAlertError(info.message, info);
    case 'ERR_TLS_KEY_UPDATE': return new TlsKeyUpdateError(info.message);
    case 'ERR_TLS_ALPN_REQUIRED': return new TlsAlpnRequiredError(info.message);
    case 'ERR_TLS_KTLS': return new TlsKtlsError(info.message, info);
    case 'ERR_TLS_BAD_RECORD': return new TlsBadRecordError(info.message, info);
    case 'ERR_TLS_PROTOCOL': return new TlsProtocolError(info.message);
    case 'ERR_TLS_SYSCALL': return new TlsSyscallError(info.message, info);
    default: return new TlsError(info.code, info.message);
  }
}
