/**
 * The error catalogue's base. Every error rpctls throws or rejects with is a subclass carrying a stable
 * `code` (like Node's `ERR_*`), so callers switch on codes, never on messages. Wire values ride on the
 * subclasses as properties.
 */
export class RpctlsError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** The class name alone, as Node keeps `name` clean; the code is in `code`. */
  override get name(): string {
    return this.constructor.name;
  }
}

/** An option or argument failed validation; `option` names it as the caller spelled it. */
export class InvalidOptionError extends RpctlsError {
  readonly option: string;
  constructor(option: string, expectation: string, received: unknown) {
    super('ERR_RPC_INVALID_OPTION', `${option} must be ${expectation}; received ${describe(received)}`);
    this.option = option;
  }
}

/** A command line mistake (unknown flag, bad value, missing argument); the CLI exits with status 2. */
export class UsageError extends RpctlsError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || value === undefined || typeof value !== 'object') return String(value);
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  return `an instance of ${value.constructor?.name ?? 'Object'}`;
}

export function validateUint32(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new InvalidOptionError(option, 'an integer from 0 to 4294967295', value);
  }
  return value;
}

export function validateInteger(value: unknown, option: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}
