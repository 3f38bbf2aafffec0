/**
 * What rpctls publishes for tracing and metrics, in one place: `node:diagnostics_channel` channels (as
 * undici and fastify do) and `NODE_DEBUG=rpctls` logging through `util.debuglog`. Publishers check
 * `hasSubscribers` before building a message, so an unwatched channel costs one property read.
 * README "Diagnostics" lists each channel's message.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

export const channels = {
  /** `{ connection }`: an RpcConnection over a stream was made (client or server side). */
  connectionOpen: diagnosticsChannel.channel('rpctls:connection:open'),
  /** `{ connection, error }`: it closed; `error` is undefined for a clean close. */
  connectionClose: diagnosticsChannel.channel('rpctls:connection:close'),
  /** `{ call }`: an outgoing call was made; `call` is `{ xid, program, version, procedure, connection }`. */
  callStart: diagnosticsChannel.channel('rpctls:call:start'),
  /** `{ call }`: its successful reply arrived (the same `call` object as at the start). */
  callEnd: diagnosticsChannel.channel('rpctls:call:end'),
  /** `{ call, error }`: it failed (error reply, timeout, abort, connection lost). */
  callError: diagnosticsChannel.channel('rpctls:call:error'),
  /** `{ connection, side, answer }`: an AUTH_TLS probe was answered ('STARTTLS' or the auth_stat name). */
  tlsProbe: diagnosticsChannel.channel('rpctls:tls:probe'),
  /** `{ connection, side, security }`: TLS is up (security: TlsInfo, with `offload` saying kernel or userspace). */
  tlsSecure: diagnosticsChannel.channel('rpctls:tls:secure'),
  /** `{ connection, side, error }`: a handshake after STARTTLS failed. */
  tlsHandshakeError: diagnosticsChannel.channel('rpctls:tls:handshake-error'),
  /** `{ stream, keyUpdates }`: a TLS 1.3 KeyUpdate completed; `keyUpdates` is `{ sent, received }`. */
  tlsKeyUpdate: diagnosticsChannel.channel('rpctls:tls:key-update'),
  /** `{ stream }`: the key-usage limit was reached (the connection will be replaced). */
  tlsRekeyDue: diagnosticsChannel.channel('rpctls:tls:rekey-due'),
} as const;

/** `NODE_DEBUG=rpctls` logs connections, probes and handshakes to stderr (nothing per call). */
export const debug = debuglog('rpctls');
