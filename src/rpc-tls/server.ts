import net from 'node:net';
import { AuthFlavor, AuthStat } from '../rpc/constants.js';
import type { CallInterceptor, RpcConnection, RpcPeer } from '../rpc/connection.js';
import { RpcServer, SERVER_OPTIONS, type ServerOptions } from '../rpc/server.js';
import { InvalidOptionError, rejectUnknownOptions } from '../errors.js';
import type { TlsStreamOptions } from '../tls/tls-stream.js';
import { handshake, peerName, publishSecure, retireOnRekeyDue } from './client.js';
import { channels, debug } from '../diagnostics.js';
import { type RpcTlsServerOptions, validateServerTls } from './options.js';
import { NULL_PROCEDURE, judgeProbe, startTlsReply } from './probe.js';

/**
 * The `interceptCall` for RpcServer (or any RpcConnection): answers AUTH_TLS probes per RFC 9289; on
 * STARTTLS the connection writes the reply through its channel and swaps its stream for TLS at that
 * record boundary. The connection emits 'secure' (TlsInfo) once TLS is up, and 'tlsError' (error)
 * right before it closes with that error when the handshake fails; the server itself is unaffected.
 */
export function rpcTlsInterceptor(tlsOptions: RpcTlsServerOptions, observer?: TlsObserver): CallInterceptor {
  const { context, requireTls, onProbe } = validateServerTls(tlsOptions);
  const options: TlsStreamOptions = { context };
  return (call, connection) => {
    if (call.cred.flavor === AuthFlavor.AUTH_TLS) {
      const answer = judgeProbe(call, connection.security !== null, connection.transport instanceof net.Socket);
      onProbe?.(call, answer);
      if (channels.tlsProbe.hasSubscribers) channels.tlsProbe.publish({ connection, side: 'server', answer });
      debug('probe from %s answered %s', peerName(connection), answer);
      if (answer !== 'STARTTLS') {
        connection.replyAuthError(call.xid, AuthStat[answer]);
        return true;
      }
      upgrade(connection, call.xid);
      return true;
    }
    if (requireTls && connection.security === null && call.procedure !== NULL_PROCEDURE) {
      connection.replyAuthError(call.xid, AuthStat.AUTH_TOOWEAK);
      return true;
    }
    return false;
  };

  function upgrade(connection: RpcPeer, xid: number): void {
    connection
      .upgrade(async (stream, signal) => {
        try {
          return await handshake(stream, options, signal);
        } catch (error) {
          // Reported before the connection closes with it; an abandoned handshake is no TLS failure, nor
          // is a client that left without starting one (a probe only, as rpcinfo makes): it is logged,
          // and the connection closes with ERR_TLS_NO_HANDSHAKE.
          if ((error as { code?: unknown }).code === 'ERR_TLS_NO_HANDSHAKE') {
            debug('%s left after STARTTLS without a TLS handshake (a probe only)', peerName(connection));
          } else if (!signal.aborted) {
            if (channels.tlsHandshakeError.hasSubscribers) channels.tlsHandshakeError.publish({ connection, side: 'server', error });
            debug('TLS handshake with %s failed: %s', peerName(connection), (error as Error).message);
            observer?.tlsError(error as Error, connection);
            connection.emit('tlsError', error as Error);
          }
          throw error;
        }
      }, startTlsReply(xid))
      .then(
        () => {
          retireOnRekeyDue(connection);
          if (connection.security === null) return;
          publishSecure(connection, 'server');
          observer?.secure(connection, connection.security);
          connection.emit('secure', connection.security);
        },
        () => undefined, // the connection closed with the error ('close' carries it)
      );
  }
}

/** @internal Hears every connection's TLS outcome before its listeners do: no listener per connection. */
interface TlsObserver {
  secure(connection: RpcPeer, info: NonNullable<RpcPeer['security']>): void;
  tlsError(error: Error, connection: RpcPeer): void;
}

export interface TlsServerOptions extends ServerOptions {
  tls: RpcTlsServerOptions;
}

const TLS_SERVER_OPTIONS: ReadonlySet<string> = new Set([...SERVER_OPTIONS, 'tls']);

/**
 * An RpcServer that answers AUTH_TLS probes. Besides RpcServer's events it emits 'secureConnection'
 * (connection, TlsInfo) and 'tlsClientError' (error, connection) for failed handshakes.
 */
export function createTlsServer(options: TlsServerOptions): RpcServer {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
  rejectUnknownOptions(options, TLS_SERVER_OPTIONS);
  const { tls, ...serverOptions } = options;
  const userIntercept = serverOptions.interceptCall;
  const tlsIntercept = rpcTlsInterceptor(tls, {
    secure: (connection, info) => server.emit('secureConnection', connection as RpcConnection, info),
    tlsError: (error, connection) => server.emit('tlsClientError', error, connection as RpcConnection),
  });
  const interceptCall: CallInterceptor =
    userIntercept === undefined ? tlsIntercept : (call, connection) => tlsIntercept(call, connection) || userIntercept(call, connection);
  const server = new RpcServer({ ...serverOptions, interceptCall });
  return server;
}
