/**
 * rpctls: ONC-RPC v2 for Node.js. Layers, bottom up: xdr (data) -> transport (record marking) -> tls
 * (the byte stream swapped in after STARTTLS) -> rpc
 * (messages, connection, client, server, rpcbind) -> gen (XDR language compiler); agent (the kernel's
 * TLS handshake agent) sits beside rpc on the tls layer.
 */
export { RpctlsError, InvalidOptionError } from './errors.js';
export * from './xdr/index.js';
export * from './transport/index.js';
export * from './rpc/index.js';
export { handlerFailure, HandlerXdrError } from './runtime/stubs.js';
export type { RpcCaller, RawProgram, RawProcedure, RawProcedures } from './runtime/stubs.js';
export { compileXdr } from './gen/index.js';
export * from './tls/index.js';
export * from './rpc-tls/index.js';
export * from './agent/index.js';
