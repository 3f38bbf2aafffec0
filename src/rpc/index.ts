/**
 * The RPC layer (RFC 5531). It owns messages (message.ts), credentials (auth.ts), the outgoing call table
 * (call-table.ts: XIDs, queue, deadlines, settling), the incoming dispatcher (dispatcher.ts: rpcvers,
 * auth, program lookup, typed decode/encode, error -> accept_stat), the connection facade wiring them to a
 * record channel (connection.ts), client, server and rpcbind. It sees records from src/transport and
 * never a socket: the channel owns the stream, and an upgrade swaps it underneath. It imports only xdr,
 * transport, generated, runtime and errors (test/architecture.test.ts); src/index.ts lists its public API.
 */
export {};
