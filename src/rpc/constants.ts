/** Wire constants of RFC 5531 (ONC-RPC v2) and RFC 9289 (AUTH_TLS). */

export const RPC_VERSION = 2;

export const MsgType = { CALL: 0, REPLY: 1 } as const;
export const ReplyStat = { MSG_ACCEPTED: 0, MSG_DENIED: 1 } as const;

export const AcceptStat = {
  SUCCESS: 0,
  PROG_UNAVAIL: 1,
  PROG_MISMATCH: 2,
  PROC_UNAVAIL: 3,
  GARBAGE_ARGS: 4,
  SYSTEM_ERR: 5,
} as const;

export const RejectStat = { RPC_MISMATCH: 0, AUTH_ERROR: 1 } as const;

export const AuthStat = {
  AUTH_OK: 0,
  AUTH_BADCRED: 1,
  AUTH_REJECTEDCRED: 2,
  AUTH_BADVERF: 3,
  AUTH_REJECTEDVERF: 4,
  AUTH_TOOWEAK: 5,
  AUTH_INVALIDRESP: 6,
  AUTH_FAILED: 7,
  AUTH_KERB_GENERIC: 8,
  AUTH_TIMEEXPIRE: 9,
  AUTH_TKT_FILE: 10,
  AUTH_DECODE: 11,
  AUTH_NET_ADDR: 12,
  RPCSEC_GSS_CREDPROBLEM: 13,
  RPCSEC_GSS_CTXPROBLEM: 14,
} as const;

export const AuthFlavor = {
  AUTH_NONE: 0,
  AUTH_SYS: 1,
  AUTH_SHORT: 2,
  AUTH_DH: 3,
  RPCSEC_GSS: 6,
  AUTH_TLS: 7,
} as const;

/** RFC 5531 section 8.2: the body of an opaque_auth is at most 400 bytes. */
export const MAX_AUTH_BYTES = 400;
/** AUTH_SYS limits (RFC 5531 appendix A). */
export const AUTH_SYS_MAX_MACHINENAME = 255;
export const AUTH_SYS_MAX_GIDS = 16;

export type AcceptStatValue = (typeof AcceptStat)[keyof typeof AcceptStat];
export type AuthStatValue = (typeof AuthStat)[keyof typeof AuthStat];

export function nameOf(table: Readonly<Record<string, number>>, value: number): string {
  for (const key in table) if (table[key] === value) return key;
  return `unknown(${value})`;
}
