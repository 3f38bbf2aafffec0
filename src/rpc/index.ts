/**
 * ONC-RPC v2 (RFC 5531): messages, auth, the symmetric connection, client, server and rpcbind. This layer
 * sees records (from src/transport) and never touches sockets' bytes or TLS directly.
 */
export * from './constants.js';
export * from './errors.js';
export * from './auth.js';
export * from './message.js';
export * from './program.js';
export * from './connection.js';
export * from './client.js';
export * from './server.js';
export * from './rpcbind.js';
