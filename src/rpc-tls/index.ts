/**
 * RPC-with-TLS (RFC 9289): the AUTH_TLS probe on both sides, the AUTH_TLS rules, requireTls /
 * AUTH_TOOWEAK, and `createTlsServer` / `createTlsClient`. The only layer that knows both RPC (src/rpc)
 * and TLS (src/tls): it asks the connection to swap its byte stream at the probe's record boundary and
 * hands the socket to the TLS engine. See shared/reference/rpc-with-tls.md for the rules followed.
 */
import type { RpcPeer } from '../rpc/peer.js';
import type { TlsInfo } from '../tls/tls-stream.js';

declare module '../rpc/peer.js' {
  /** On a TLS connection, `connection.security` is the TLS session. */
  interface ConnectionSecurity extends TlsInfo {}
}

export { StartTlsRefusedError } from './errors.js';
export { STARTTLS_VERIFIER, offersStartTls, judgeProbe, startTlsReply, type ProbeAnswer } from './probe.js';
export type { CommonTlsOptions, RpcTlsClientOptions, RpcTlsServerOptions } from './options.js';
export { rpcTlsUpgrade, createTlsClient, type ProbeTarget, type TlsClientOptions } from './client.js';
export { rpcTlsInterceptor, createTlsServer, type TlsServerOptions } from './server.js';

/** The TLS session of a connection, or null on plaintext. */
export function tlsInfoOf(connection: RpcPeer): TlsInfo | null {
  return (connection.security as TlsInfo | null) ?? null;
}
