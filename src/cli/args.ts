/**
 * Flag parsing for the rpctls commands: `--name value`, `--name=value`, booleans, repeatable flags,
 * integers in decimal or 0x hex (program numbers are usually written in hex). Every mistake is a
 * UsageError with a precise message; commands turn it into exit status 2.
 */

import { UsageError } from '../errors.js';

export { UsageError };

export interface FlagSpec {
  type: 'string' | 'int' | 'number' | 'boolean';
  /** May be given several times; the value is an array. */
  multiple?: boolean;
  /** Bounds for 'int' and 'number'. */
  min?: number;
  max?: number;
  /** Placeholder shown in messages, e.g. "<file>". */
  value?: string;
}

export type FlagValue = string | number | boolean | string[] | number[];

export interface Parsed {
  flags: Record<string, FlagValue | undefined>;
  positionals: string[];
  help: boolean;
}

/** Integer from decimal or 0x-hex text, or NaN when it is neither. */
export function parseInteger(text: string): number {
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^-?\d+$/.test(text)) return Number.parseInt(text, 10);
  return Number.NaN;
}

function convert(command: string, flag: string, spec: FlagSpec, text: string): string | number {
  if (spec.type === 'string') {
    if (text === '') throw new UsageError(`rpctls ${command}: --${flag} needs a non-empty value`);
    return text;
  }
  const n = spec.type === 'int' ? parseInteger(text) : /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  const min = spec.min ?? (spec.type === 'int' ? 0 : 0);
  const max = spec.max ?? 0xffffffff;
  const kind = spec.type === 'int' ? 'an integer' : 'a number';
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`rpctls ${command}: --${flag} must be ${kind} from ${min} to ${max}; got ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * Parses argv against `specs`. `--help`/`-h` anywhere sets `help` (commands print usage and exit 0);
 * `--` ends the flags.
 */
export function parseArgs(
  command: string,
  argv: readonly string[],
  specs: Readonly<Record<string, FlagSpec>>,
  positionals: { max: number },
): Parsed {
  const flags: Record<string, FlagValue | undefined> = {};
  const rest: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      rest.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`rpctls ${command}: unknown flag ${arg} (flags are spelled --name)`);
    const eq = arg.indexOf('=');
    const flag = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = specs[flag];
    if (spec === undefined) throw new UsageError(`rpctls ${command}: unknown flag --${flag} (see rpctls ${command} --help)`);
    let value: string | number | boolean;
    if (spec.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`rpctls ${command}: --${flag} takes no value`);
      value = true;
    } else {
      let text: string | undefined;
      if (eq !== -1) text = arg.slice(eq + 1);
      else {
        text = argv[i + 1];
        // "--ca --cert x" is a missing value, not a file named "--cert".
        if (text === undefined || (text.startsWith('--') && text.length > 2)) {
          throw new UsageError(`rpctls ${command}: --${flag} needs a value${spec.value ? ` ${spec.value}` : ''}`);
        }
        i++;
      }
      value = convert(command, flag, spec, text);
    }
    if (spec.multiple) {
      const list = (flags[flag] as (string | number)[] | undefined) ?? [];
      list.push(value as string | number);
      flags[flag] = list as string[] | number[];
    } else {
      if (flags[flag] !== undefined) throw new UsageError(`rpctls ${command}: --${flag} given twice`);
      flags[flag] = value;
    }
  }
  if (!help && rest.length > positionals.max) {
    throw new UsageError(`rpctls ${command}: unexpected argument ${JSON.stringify(rest[positionals.max])}`);
  }
  return { flags, positionals: rest, help };
}

/** Typed accessors over Parsed.flags, so commands read `str('ca')` rather than casting. */
export function accessors(parsed: Parsed) {
  return {
    str: (name: string): string | undefined => parsed.flags[name] as string | undefined,
    num: (name: string, fallback: number): number => (parsed.flags[name] as number | undefined) ?? fallback,
    bool: (name: string): boolean => parsed.flags[name] === true,
    list: (name: string): string[] => (parsed.flags[name] as string[] | undefined) ?? [],
  };
}
