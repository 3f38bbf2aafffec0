/**
 * Output helpers shared by the commands: colours (only on a TTY, never with NO_COLOR), aligned tables,
 * and coded errors rendered for humans and for --json from `err.code` and the wire values the error
 * classes carry.
 */
import type { RpcReply } from '../rpc/message.js';
import { AcceptStat, AuthFlavor, AuthStat, RejectStat, ReplyStat, nameOf } from '../rpc/constants.js';

/** https://no-color.org: any non-empty NO_COLOR turns colours off; so does a non-TTY or TERM=dumb. */
export function colorsEnabled(stream: NodeJS.WriteStream): boolean {
  const noColor = process.env.NO_COLOR;
  return stream.isTTY === true && (noColor === undefined || noColor === '') && process.env.TERM !== 'dumb';
}

export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  ok(s: string): string;
  bad(s: string): string;
  warn(s: string): string;
}

export function style(stream: NodeJS.WriteStream = process.stdout): Style {
  const on = colorsEnabled(stream);
  const wrap = (open: number, close: number) => (s: string): string => (on ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { bold: wrap(1, 22), dim: wrap(2, 22), ok: wrap(32, 39), bad: wrap(31, 39), warn: wrap(33, 39) };
}

/** Left-aligned columns, numbers right-aligned; `rows[0]` is the header. */
export function table(rows: readonly (readonly string[])[], numeric: readonly boolean[] = []): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (numeric[i] ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number))).join('  ').trimEnd())
    .join('\n');
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  return value < 10 ? `${value.toFixed(3)} ms` : `${value.toFixed(1)} ms`;
}

/** Rounds to 3 decimals for JSON (microsecond resolution is all a loopback timer gives). */
export const round3 = (n: number): number => Math.round(n * 1000) / 1000;

export function offloadText(offload: { tx: boolean; rx: boolean; reason: string | null; rekey?: boolean } | null | undefined): string {
  if (!offload) return 'n/a (no TLS)';
  const state = `TX ${offload.tx ? 'kernel' : 'userspace'}, RX ${offload.rx ? 'kernel' : 'userspace'}`;
  // Kernel TLS follows KeyUpdates only from Linux 6.14 on; userspace always does.
  const rekey = offload.tx && offload.rekey !== undefined ? `, KeyUpdate ${offload.rekey ? 'followed' : 'not followed (Linux < 6.14)'}` : '';
  return offload.reason ? `${state}${rekey} (${offload.reason})` : `${state}${rekey}`;
}

/** The kernel's five TLS rekey counters (Linux >= 6.14) as one line, or null where it has none. */
export function kernelRekeyText(counters: Readonly<Record<string, number>> | null): string | null {
  if (!counters) return null;
  return Object.entries(counters).map(([name, value]) => `${name} ${value}`).join(', ');
}

// ---- replies --------------------------------------------------------------------------------------

export interface ReplySummary {
  replyStat: string;
  acceptStat: string | null;
  rejectStat: string | null;
  authStat: string | null;
  verifier: { flavor: string; body: string } | null;
  /** One line, e.g. `MSG_ACCEPTED SUCCESS, verifier AUTH_NONE "STARTTLS"`. */
  text: string;
}

/** The reply to the AUTH_TLS probe with every wire value named, for the probe screen and JSON. */
export function summarizeReply(reply: Pick<RpcReply, 'replyStat' | 'acceptStat' | 'rejectStat' | 'authStat' | 'low' | 'high'> & { verf?: { flavor: number; body: Buffer } | undefined }): ReplySummary {
  const replyStat = nameOf(ReplyStat, reply.replyStat);
  const acceptStat = reply.acceptStat === undefined ? null : nameOf(AcceptStat, reply.acceptStat);
  const rejectStat = reply.rejectStat === undefined ? null : nameOf(RejectStat, reply.rejectStat);
  const authStat = reply.authStat === undefined ? null : nameOf(AuthStat, reply.authStat);
  const verifier = reply.verf ? { flavor: nameOf(AuthFlavor, reply.verf.flavor), body: printable(reply.verf.body) } : null;
  let text: string;
  if (reply.replyStat === ReplyStat.MSG_ACCEPTED) {
    text = `${replyStat} ${acceptStat}, verifier ${verifier?.flavor}${verifier && verifier.body !== '' ? ` ${JSON.stringify(verifier.body)}` : ' (empty)'}`;
  } else if (reply.rejectStat === RejectStat.AUTH_ERROR) {
    text = `${replyStat} ${rejectStat} ${authStat}`;
  } else {
    text = `${replyStat} ${rejectStat} (${reply.low}-${reply.high})`;
  }
  return { replyStat, acceptStat, rejectStat, authStat, verifier, text };
}

/**
 * A string from the network made safe for a terminal: control characters (C0, DEL, C1), bidirectional
 * overrides and backslash are written as escapes, so a peer cannot clear the screen, set the window
 * title, move the cursor or forge a table row.
 */
export function terminalSafe(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f\\\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\\') return '\\\\';
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Latin-1 text when printable, else hex: verifier bodies are usually "STARTTLS" or empty. */
function printable(body: Buffer): string {
  const text = body.toString('latin1');
  return /^[\x20-\x7e]*$/.test(text) ? text : `0x${body.toString('hex')}`;
}

// ---- errors ---------------------------------------------------------------------------------------

export interface ErrorJson {
  code: string;
  message: string;
  [wire: string]: unknown;
}

/** Named wire values for the numeric fields the error classes carry. */
const NAMED: Record<string, Readonly<Record<string, number>>> = {
  acceptStat: AcceptStat,
  rejectStat: RejectStat,
  authStat: AuthStat,
  replyStat: ReplyStat,
  verifierFlavor: AuthFlavor,
};

/** code, message and every primitive own field (the wire values), plus the cause's code. */
export function errorJson(error: unknown): ErrorJson {
  if (!(error instanceof Error)) return { code: 'ERR_UNKNOWN', message: String(error) };
  const out: ErrorJson = { code: String((error as { code?: unknown }).code ?? 'ERR_UNKNOWN'), message: error.message };
  for (const [key, value] of Object.entries(error)) {
    if (key === 'code' || value === undefined) continue;
    if (Buffer.isBuffer(value)) out[key] = printable(value);
    else if (typeof value === 'number' && NAMED[key]) out[key] = nameOf(NAMED[key] as Record<string, number>, value);
    else if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') out[key] = value;
  }
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (cause && typeof cause === 'object') out.cause = { code: cause.code ?? null, message: String(cause.message ?? cause) };
  const sent = notRpcHead(error);
  if (sent) {
    out.notOncRpc = true;
    // Escaped here already: JSON.stringify leaves DEL and C1 controls as they are.
    out.peerSent = terminalSafe(sent.toString('latin1'));
  }
  return out;
}

/**
 * The first bytes of a peer that does not speak ONC-RPC, or null: the first thing it sent did not parse
 * as a record mark but as a length over maxRecordSize (ASCII text always does: "SSH-" is 1397966893).
 */
function notRpcHead(error: Error): Buffer | null {
  for (const e of [error, error.cause] as { code?: unknown; firstRecord?: unknown; head?: unknown }[]) {
    if (e?.code === 'ERR_RPC_RECORD_TOO_LARGE' && e.firstRecord === true && Buffer.isBuffer(e.head)) return e.head;
  }
  return null;
}

/** What kind of server sent `peerSent` (escaped text), when its first bytes say so. */
function peerKind(peerSent: string): string {
  if (peerSent.startsWith('SSH-')) return ' (an SSH server?)';
  if (/^HTTP\/\d/.test(peerSent)) return ' (an HTTP server?)';
  // A TLS record (alert or handshake, version 3.x): TLS from the first byte, not RPC-with-TLS.
  if (/^\\x1[56]\\x03/.test(peerSent)) return ' (a TLS server that expects TLS from the first byte?)';
  return '';
}

/** Alerts by which a server refuses the client's certificate (RFC 8446 6.2). */
const CERT_ALERTS = new Set(['bad_certificate', 'unsupported_certificate', 'certificate_revoked', 'certificate_expired', 'certificate_unknown', 'unknown_ca']);

/** What to do about an error, by code; empty when the message says it all. */
function hint(error: ErrorJson): string {
  const causeCode = (error.cause as { code?: string } | undefined)?.code;
  if (error.notOncRpc === true) {
    return `the peer does not appear to speak ONC-RPC${peerKind(String(error.peerSent))}: it sent "${String(error.peerSent)}"; check the host and port`;
  }
  switch (error.code) {
    case 'ERR_RPC_CONNECT':
      if (causeCode === 'ECONNREFUSED') return 'nothing listens there: is the server running, and on this port?';
      if (causeCode === 'ENOTFOUND' || causeCode === 'EAI_AGAIN') return 'the host name does not resolve';
      if (causeCode === 'ERR_RPC_TIMEOUT') return 'no answer to the TCP connect: host down or a firewall drops it';
      return '';
    case 'ERR_RPC_TLS_NOT_OFFERED':
      return 'the server does not do RPC-with-TLS on this program (for rpctls serve: add --tls)';
    case 'ERR_TLS_CERT_VERIFY':
      return "pass --ca <file> with the CA that issued the server's certificate, and --servername <name> when the certificate is for another name";
    case 'ERR_TLS_CERT_REQUIRED':
      return 'the server wants a client certificate: pass --cert <file> --key <file>';
    case 'ERR_TLS_ALERT':
      if (error.received === false) return '';
      if (error.alertName === 'certificate_required') return 'the server wants a client certificate: pass --cert <file> --key <file>';
      if (CERT_ALERTS.has(String(error.alertName))) {
        return 'the server refused the client certificate (--cert): use one issued by a CA the server trusts, valid now, for client authentication';
      }
      return '';
    case 'ERR_TLS_SYSCALL':
      // A server that refuses the client certificate sends its alert and closes; a reset can overtake it.
      if (error.errnoName === 'ECONNRESET' || error.errnoName === 'EPIPE') {
        return 'the server reset the connection during or just after the TLS handshake: with --cert, it may not trust that client certificate';
      }
      return '';
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return 'the peer accepted STARTTLS but did not complete a TLS handshake in time';
    case 'ERR_RPC_AUTH_TOOWEAK':
      return 'the server requires TLS for this call: use --tls';
    case 'ERR_RPC_PROG_UNAVAIL':
    case 'ERR_RPC_PROG_MISMATCH':
      return 'the server does not serve this program/version: check --program and --version';
    case 'ERR_TLS_NATIVE_MISSING':
      return 'the native addon is missing (no prebuilt binary for this platform, and install could not compile one): TLS needs it, plain RPC does not';
    default:
      return '';
  }
}

/** Multi-line human rendering: message [code], the wire values, and a hint. */
export function formatError(error: unknown, s: Style = style(process.stderr)): string {
  const json = errorJson(error);
  // Messages may carry what a peer sent (a verifier, a certificate name, an OpenSSL reason): escaped.
  const lines = [`${s.bad('error')}: ${terminalSafe(json.message)} ${s.dim(`[${terminalSafe(String(json.code))}]`)}`];
  // notOncRpc/peerSent are told by the hint (peerSent is escaped already).
  const wire = Object.entries(json).filter(([k]) => !['code', 'message', 'cause', 'xid', 'notOncRpc', 'peerSent'].includes(k));
  if (wire.length) lines.push(`  ${wire.map(([k, v]) => `${k}=${terminalSafe(typeof v === 'string' ? v : JSON.stringify(v))}`).join(' ')}`);
  const cause = json.cause as { code: unknown; message: string } | undefined;
  if (cause) lines.push(`  cause: ${terminalSafe(cause.message)}${cause.code ? ` [${terminalSafe(String(cause.code))}]` : ''}`);
  const h = hint(json);
  if (h) lines.push(`  ${s.dim('hint:')} ${h}`);
  return lines.join('\n');
}
