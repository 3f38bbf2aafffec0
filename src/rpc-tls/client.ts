import net from 'node:net';
import type { Duplex } from 'node:stream';
import { AUTH_TLS } from '../rpc/auth.js';
import { CLIENT_OPTIONS, type ClientOptions, RpcClient } from '../rpc/client.js';
import { InvalidOptionError, rejectUnknownOptions } from '../errors.js';
import type { RpcConnection, StreamUpgrade } from '../rpc/connection.js';
import type { RpcPeer } from '../rpc/peer.js';
import { TlsTakeoverError } from '../tls/errors.js';
import { type TlsInfo, TlsStream, type TlsStreamOptions } from '../tls/tls-stream.js';
import { channels, debug } from '../diagnostics.js';
import { StartTlsRefusedError } from './errors.js';
import { type RpcTlsClientOptions, validateClientTls } from './options.js';
import { NULL_PROCEDURE, offersStartTls } from './probe.js';

/** Which program/version the probe's NULL call goes to: the one the client will use (RFC 9289 4.1). */
export interface ProbeTarget {
  program: number;
  version: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * Runs the TLS handshake on a stream the channel handed over (reading stopped at a record boundary)
 * and resolves with the TLS stream and its session. Abandons it if the connection goes away meanwhile.
 */
export function handshake(stream: Duplex, options: TlsStreamOptions, signal: AbortSignal): Promise<StreamUpgrade> {
  if (!(stream instanceof net.Socket)) {
    stream.destroy();
    return Promise.reject(new TlsTakeoverError('the connection does not run on a TCP socket TLS can take over'));
  }
  const tls = new TlsStream(stream, options);
  return new Promise<StreamUpgrade>((resolve, reject) => {
    const abandon = (): void => {
      tls.destroy();
    };
    const onError = (error: Error): void => {
      signal.removeEventListener('abort', abandon);
      tls.destroy();
      reject(error);
    };
    signal.addEventListener('abort', abandon, { once: true });
    tls.once('error', onError);
    tls.once('close', () => onError(new TlsTakeoverError('the TLS stream closed during the handshake')));
    tls.once('secure', (info) => {
      signal.removeEventListener('abort', abandon);
      tls.off('error', onError);
      tls.removeAllListeners('close');
      resolve({ stream: tls, security: info });
    });
  });
}

/** The peer's address for logs, from the socket under the connection. */
export function peerName(connection: RpcPeer): string {
  return connection.remoteAddress === undefined ? 'the peer' : `${connection.remoteAddress}:${connection.remotePort}`;
}

/** TLS is up on `connection`: rpctls:tls:secure and a debug line saying kernel or userspace records. */
export function publishSecure(connection: RpcPeer, side: 'client' | 'server'): void {
  const security = connection.security as TlsInfo | null;
  if (security === null) return;
  if (channels.tlsSecure.hasSubscribers) channels.tlsSecure.publish({ connection, side, security });
  const records = security.offload.tx && security.offload.rx ? 'kernel TLS' : `userspace records${security.offload.reason ? ` (${security.offload.reason})` : ''}`;
  debug('TLS up with %s: %s %s, %s', peerName(connection), security.version, security.cipher, records);
}

/**
 * At the key-usage limit of the context's `rekey: 'reconnect'` policy the connection is replaced: a
 * client moves new calls to a fresh connection, a server closes it gracefully (its client reconnects).
 */
export function retireOnRekeyDue(connection: RpcPeer): void {
  const stream = connection.transport;
  if (stream instanceof TlsStream) stream.once('rekeyDue', () => connection.retire());
}

/**
 * The `upgrade` step for RpcClient: on each new connection, probe with AUTH_TLS; on an AUTH_NONE
 * "STARTTLS" verifier the channel hands its socket to TLS at that record boundary. Any other answer
 * rejects with StartTlsRefusedError before a single TLS byte is sent.
 */
export function rpcTlsUpgrade(tlsOptions: RpcTlsClientOptions, probe: ProbeTarget): (connection: RpcConnection) => Promise<void> {
  const { context, servername, probeTimeout, onProbeReply } = validateClientTls(tlsOptions);
  const options: TlsStreamOptions = servername === undefined ? { context } : { context, servername };
  return async (connection) => {
    const replied = connection.callForReply(probe.program, probe.version, NULL_PROCEDURE, EMPTY, { auth: AUTH_TLS, timeout: probeTimeout });
    // The probe's reply is the last plaintext record read, and nothing more is sent in clear: calls made
    // from now on wait for the TLS stream (RFC 9289 4.1: send nothing until the reply arrived).
    connection.prepareUpgrade();
    const reply = await replied;
    onProbeReply?.(reply);
    const offered = offersStartTls(reply);
    if (channels.tlsProbe.hasSubscribers) channels.tlsProbe.publish({ connection, side: 'client', answer: offered ? 'STARTTLS' : 'refused' });
    debug('probe of %s: %s', peerName(connection), offered ? 'STARTTLS' : 'refused');
    if (!offered) throw new StartTlsRefusedError(reply);
    try {
      await connection.upgrade((stream, signal) => handshake(stream, options, signal));
    } catch (error) {
      if (channels.tlsHandshakeError.hasSubscribers) channels.tlsHandshakeError.publish({ connection, side: 'client', error });
      debug('TLS handshake with %s failed: %s', peerName(connection), (error as Error).message);
      throw error;
    }
    publishSecure(connection, 'client');
    retireOnRekeyDue(connection);
  };
}

export interface TlsClientOptions extends ClientOptions {
  tls: RpcTlsClientOptions;
  /** Program/version for the probe; the client's own calls should use the same. */
  probe: ProbeTarget;
}

const TLS_CLIENT_OPTIONS: ReadonlySet<string> = new Set([...CLIENT_OPTIONS, 'tls', 'probe']);

/**
 * An RpcClient whose every connection is upgraded to TLS. The server name checked defaults to `host`
 * (as Node's tls.connect does), not to the address it resolved to.
 */
export function createTlsClient(options: TlsClientOptions): RpcClient {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
  rejectUnknownOptions(options, TLS_CLIENT_OPTIONS);
  const { tls, probe, ...clientOptions } = options;
  const servername = tls?.servername ?? (options.path === undefined ? options.host : undefined);
  const upgrade = rpcTlsUpgrade(servername === undefined ? tls : { ...tls, servername }, probe);
  return new RpcClient({ ...clientOptions, upgrade });
}
