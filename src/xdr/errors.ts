import { RpctlsError } from '../errors.js';

/** Base of every XDR decoding or encoding failure; `offset` is where in the input it was found. */
export class XdrError extends RpctlsError {
  readonly offset: number;
  constructor(code: string, message: string, offset: number) {
    super(code, `${message} (at byte ${offset})`);
    this.offset = offset;
  }
}

/** The input ends before the item it declares. */
export class XdrShortInputError extends XdrError {
  readonly needed: number;
  readonly available: number;
  constructor(needed: number, available: number, offset: number) {
    super('ERR_XDR_SHORT_INPUT', `XDR item needs ${needed} bytes but only ${available} remain`, offset);
    this.needed = needed;
    this.available = available;
  }
}

/** A length prefix exceeds the maximum the type declares (or the writer was given too much). */
export class XdrLengthError extends XdrError {
  readonly length: number;
  readonly max: number;
  constructor(what: string, length: number, max: number, offset: number) {
    super('ERR_XDR_LENGTH_EXCEEDS_MAX', `${what} length ${length} exceeds its maximum ${max}`, offset);
    this.length = length;
    this.max = max;
  }
}

/** RFC 4506 section 3: padding bytes must be zero. */
export class XdrPaddingError extends XdrError {
  constructor(offset: number) {
    super('ERR_XDR_NONZERO_PADDING', 'XDR padding bytes are not zero', offset);
  }
}

/** A bool other than 0/1, an enum value not declared, or a union discriminant with no arm. */
export class XdrInvalidValueError extends XdrError {
  readonly value: number | bigint;
  constructor(what: string, value: number | bigint, offset: number) {
    super('ERR_XDR_INVALID_VALUE', `invalid ${what} value ${value}`, offset);
    this.value = value;
  }
}

/**
 * A string<> whose bytes are not valid UTF-8, where the decoder was asked to refuse that rather than
 * replace the bad sequences with U+FFFD (generated code's `utf8-strict` strings). `offset`: the string's
 * first byte.
 */
export class XdrInvalidUtf8Error extends XdrError {
  readonly length: number;
  constructor(length: number, offset: number) {
    super('ERR_XDR_INVALID_UTF8', `string of ${length} bytes is not valid UTF-8`, offset);
    this.length = length;
  }
}

/** Bytes left over after a complete item when the caller required the input to end there. */
export class XdrTrailingBytesError extends XdrError {
  readonly trailing: number;
  constructor(trailing: number, offset: number) {
    super('ERR_XDR_TRAILING_BYTES', `${trailing} unexpected bytes after the XDR item`, offset);
    this.trailing = trailing;
  }
}

/** A value handed to the encoder does not fit its XDR type. */
export class XdrEncodeError extends XdrError {
  constructor(message: string) {
    super('ERR_XDR_ENCODE', message, -1);
  }
}
