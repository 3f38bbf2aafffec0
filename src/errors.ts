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

/**
 * Rejects an option name not in `known` (a typo like `timeuot` would otherwise be ignored silently),
 * naming the nearest known one. `prefix` is how the caller reaches these options (`tls.`).
 */
export function rejectUnknownOptions(options: object, known: ReadonlySet<string>, prefix = ''): void {
  for (const name of Object.keys(options)) {
    if (known.has(name)) continue;
    const nearest = nearestName(name, known);
    const hint = nearest === undefined ? '' : ` (did you mean ${prefix}${nearest}?)`;
    throw new InvalidOptionError(`${prefix}${name}`, `a known option${hint}`, (options as Record<string, unknown>)[name]);
  }
}

/** The known name fewest single-character edits away, if it is close enough to be a typo of `name`. */
export function nearestName(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  const lower = name.toLowerCase();
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, adjacent transpositions counting one edit (`timeuot` is one from `timeout`). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] as number[];
    const above = rows[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (above[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row[j] = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j] as number, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
    }
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** The names of every property of T, checked at compile time: listing one too few or an unknown one fails. */
export function optionNames<T>(): <const K extends readonly (keyof T & string)[]>(
  ...names: [Exclude<keyof T, K[number]>] extends [never] ? K : ['missing option names', Exclude<keyof T, K[number]>]
) => ReadonlySet<string> {
  return (...names) => new Set(names as readonly string[]);
}
