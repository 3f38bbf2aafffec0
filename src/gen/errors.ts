import { RpctlsError } from '../errors.js';

/** Where in an .x source something was found; lines and columns count from 1. */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export function formatPosition(pos: SourcePosition): string {
  return `${pos.file}:${pos.line}:${pos.column}`;
}

/**
 * Any problem in an .x source (syntax, unknown name, unsupported construct). The message starts with
 * `file:line:column` so editors and terminals can jump to it.
 */
export class XdrCompileError extends RpctlsError {
  readonly file: string;
  readonly line: number;
  readonly column: number;

  constructor(pos: SourcePosition, message: string) {
    super('ERR_XDRGEN', `${formatPosition(pos)}: ${message}`);
    this.file = pos.file;
    this.line = pos.line;
    this.column = pos.column;
  }
}
