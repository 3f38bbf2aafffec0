import { RpcError } from '../rpc/errors.js';
import type { RpcReply } from '../rpc/message.js';
import { describeReply } from './probe.js';

/**
 * The server answered the AUTH_TLS probe with something other than an AUTH_NONE "STARTTLS" verifier:
 * it does not offer TLS on this connection. The reply's wire values ride along for diagnosis.
 */
export class StartTlsRefusedError extends RpcError {
  readonly replyStat: number;
  readonly acceptStat: number | undefined;
  readonly rejectStat: number | undefined;
  readonly authStat: number | undefined;
  readonly verifierFlavor: number | undefined;
  readonly verifierBody: Buffer | undefined;

  constructor(reply: RpcReply) {
    super('ERR_RPC_TLS_NOT_OFFERED', `server does not offer RPC-with-TLS: it answered the AUTH_TLS probe with ${describeReply(reply)}`);
    this.xid = reply.xid;
    this.replyStat = reply.replyStat;
    this.acceptStat = reply.acceptStat;
    this.rejectStat = reply.rejectStat;
    this.authStat = reply.authStat;
    this.verifierFlavor = reply.verf?.flavor;
    // Copy: the verifier is a view into a record buffer that may be reused.
    this.verifierBody = reply.verf ? Buffer.from(reply.verf.body) : undefined;
  }
}
