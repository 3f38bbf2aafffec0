import type { OpaqueAuth } from '../rpc/auth.js';
import { AcceptStat, AuthFlavor, AuthStat, RejectStat, ReplyStat, nameOf } from '../rpc/constants.js';
import { type RpcCall, type RpcReply, writeAcceptedHeader } from '../rpc/message.js';
import { XdrWriter } from '../xdr/writer.js';

/** RFC 9289 section 4: the AUTH_TLS probe, its STARTTLS answer, and the rules both sides judge it by. */

/** The verifier body a server answers an AUTH_TLS probe with when it offers TLS. */
export const STARTTLS_VERIFIER = Buffer.from('STARTTLS', 'latin1');
const STARTTLS_AUTH: Readonly<OpaqueAuth> = Object.freeze({ flavor: AuthFlavor.AUTH_NONE, body: STARTTLS_VERIFIER });

export const NULL_PROCEDURE = 0;

/** RFC 9289 5.1: the one answer that means "go ahead with TLS"; accept_stat does not matter. */
export function offersStartTls(reply: RpcReply): boolean {
  return (
    reply.replyStat === ReplyStat.MSG_ACCEPTED &&
    reply.verf !== undefined &&
    reply.verf.flavor === AuthFlavor.AUTH_NONE &&
    reply.verf.body.equals(STARTTLS_VERIFIER)
  );
}

export function describeReply(reply: RpcReply): string {
  if (reply.replyStat === ReplyStat.MSG_ACCEPTED) {
    const verf = reply.verf as OpaqueAuth;
    const body = verf.body.length > 0 ? ` body ${JSON.stringify(verf.body.toString('latin1'))}` : ' (empty body)';
    return `MSG_ACCEPTED ${nameOf(AcceptStat, reply.acceptStat as number)}, verifier ${nameOf(AuthFlavor, verf.flavor)}${body}`;
  }
  if (reply.rejectStat === RejectStat.AUTH_ERROR) return `MSG_DENIED AUTH_ERROR ${nameOf(AuthStat, reply.authStat as number)}`;
  return `MSG_DENIED RPC_MISMATCH (${reply.low}-${reply.high})`;
}

/** A server's answer to an AUTH_TLS probe: go ahead, or the auth_stat it is refused with. */
export type ProbeAnswer = 'STARTTLS' | 'AUTH_BADCRED' | 'AUTH_BADVERF' | 'AUTH_REJECTEDCRED';

/**
 * RFC 9289 4.1 for a server: AUTH_TLS only on NULL, with an empty body and an AUTH_NONE verifier, and
 * never inside TLS; `canUpgrade` is false when the stream is not one TLS can take over.
 */
export function judgeProbe(call: RpcCall, inTls: boolean, canUpgrade: boolean): ProbeAnswer {
  if (call.procedure !== NULL_PROCEDURE || inTls || call.cred.body.length > 0) return 'AUTH_BADCRED';
  if (call.verf.flavor !== AuthFlavor.AUTH_NONE) return 'AUTH_BADVERF';
  return canUpgrade ? 'STARTTLS' : 'AUTH_REJECTEDCRED';
}

/** The STARTTLS reply as a gather list whose first 4 bytes are the record mark's place. */
export function startTlsReply(xid: number): Buffer[] {
  const w = new XdrWriter(48);
  w.reserve4();
  writeAcceptedHeader(w, xid, STARTTLS_AUTH, AcceptStat.SUCCESS);
  return w.finish();
}
