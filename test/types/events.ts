/**
 * Type-level test (compiled by test/types/typecheck.test.ts, never run): the events of RpcClient,
 * RpcServer and RpcConnection are typed, and `connection.security` is the TLS session.
 */
import type { RpcClient, RpcConnection, RpcServer } from '../../src/index.js';

export function listen(client: RpcClient, server: RpcServer, connection: RpcConnection): void {
  client.on('connect', (c) => void c.pendingCalls);
  client.on('disconnect', (error) => void error?.message);
  client.on('handlerError', (_error, context) => void context.xid);
  // @ts-expect-error no such event
  client.on('conect', () => undefined);
  // @ts-expect-error 'connect' hands a connection, not a string
  client.on('connect', (c: string) => void c);

  server.on('connection', (c, socket) => void [c.stats.callsReceived, socket.remoteAddress]);
  server.on('connectionError', (error, c) => void [error.message, c.closed]);
  server.on('secureConnection', (c, security) => void [c.closed, security.cipher, security.keyUpdates.sent]);
  server.on('tlsClientError', (error) => void error.message);
  server.on('replyTooLarge', (error) => void [error.size, error.max]);
  // @ts-expect-error no such event
  server.on('secureconnection', () => undefined);

  connection.on('close', (error) => void error?.message);
  connection.on('unmatchedReply', (xid) => void (xid + 1));
  connection.on('retire', () => undefined);
  connection.on('secure', (security) => void security.version);
  // @ts-expect-error the xid is a number
  connection.on('unmatchedReply', (xid: string) => void xid);

  // The TLS session, or null on plaintext.
  const security = connection.security;
  if (security !== null) {
    const cipher: string = security.cipher;
    const peerVerified: boolean = security.peerVerified;
    const kernel: boolean = security.offload.tx;
    void [cipher, peerVerified, kernel];
    // @ts-expect-error not a TlsInfo field
    void security.nonsense;
  }
}
