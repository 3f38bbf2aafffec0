// Coded errors of the transport layer: record marking and the byte stream's read deadlines. Codes keep
// the ERR_RPC_ prefix they were published with.
import { RpctlsError } from '../errors.js';

/** Base of every error about the byte stream under RPC: framing, caps, deadlines. */
export class TransportError extends RpctlsError {}

/**
 * A record-marking header announced more than maxRecordSize; the connection is closed. A peer that does
 * not speak ONC-RPC (an SSH or HTTP server, anything sending text) ends here: its first bytes read as a
 * huge length. `head` and `firstRecord` let a caller tell that case apart.
 */
export class RecordTooLargeError extends TransportError {
  readonly size: number;
  readonly max: number;
  /** The record's first bytes as received, header included (at most 64; only those of that read). */
  readonly head: Buffer | undefined;
  /** True when no record came before this one on the stream: its first bytes were these. */
  readonly firstRecord: boolean | undefined;
  constructor(size: number, max: number, seen?: { head: Buffer; firstRecord: boolean }) {
    super('ERR_RPC_RECORD_TOO_LARGE', `record of at least ${size} bytes exceeds maxRecordSize ${max}`);
    this.size = size;
    this.max = max;
    this.head = seen?.head;
    this.firstRecord = seen?.firstRecord;
  }
}

/** A record arrived in more fragments than maxFragments; the connection is closed. */
export class TooManyFragmentsError extends TransportError {
  readonly max: number;
  constructor(max: number) {
    super('ERR_RPC_TOO_MANY_FRAGMENTS', `record has more than maxFragments ${max} fragments`);
    this.max = max;
  }
}

/** The byte stream ended in the middle of a record. */
export class TruncatedRecordError extends TransportError {
  readonly received: number;
  constructor(received: number) {
    super('ERR_RPC_TRUNCATED_RECORD', `stream ended inside a record after ${received} bytes`);
    this.received = received;
  }
}

/** A peer started a record and did not finish it within `recordTimeout` (a slowloris sender). */
export class RecordTimeoutError extends TransportError {
  readonly received: number;
  readonly timeoutMs: number;
  constructor(received: number, timeoutMs: number) {
    super('ERR_RPC_RECORD_TIMEOUT', `a record was not completed within ${timeoutMs} ms (${received} bytes received)`);
    this.received = received;
    this.timeoutMs = timeoutMs;
  }
}

/** Bytes arrived after the record that ended this stream's plaintext (RFC 9289 forbids them). */
export class UnexpectedBytesError extends TransportError {
  readonly received: number;
  constructor(received: number) {
    super('ERR_RPC_UNEXPECTED_BYTES', `${received} bytes arrived after the record that ended plaintext`);
    this.received = received;
  }
}

/** A stream upgrade (STARTTLS) could not start or finish: the channel was closed, busy or mid-record. */
export class UpgradeError extends TransportError {
  constructor(message: string, cause?: unknown) {
    super('ERR_RPC_UPGRADE', message, cause === undefined ? undefined : { cause });
  }
}

/** Written records sat unsent for `timeoutMs` with no progress: the peer does not read its replies. */
export class WriteTimeoutError extends TransportError {
  readonly unsent: number;
  readonly timeoutMs: number;
  constructor(unsent: number, timeoutMs: number) {
    super('ERR_RPC_WRITE_TIMEOUT', `the peer read nothing for ${timeoutMs} ms (${unsent} bytes waiting to be sent)`);
    this.unsent = unsent;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A message does not fit one datagram of `max` bytes: an outgoing call is refused before it is sent; a
 * server's reply is replaced by SYSTEM_ERR and reported with this error.
 */
export class DatagramTooLargeError extends TransportError {
  readonly size: number;
  readonly max: number;
  constructor(size: number, max: number) {
    super('ERR_RPC_DATAGRAM_TOO_LARGE', `message of ${size} bytes exceeds maxDatagramSize ${max}`);
    this.size = size;
    this.max = max;
  }
}
