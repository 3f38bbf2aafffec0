/**
 * The RPC layer (RFC 5531). It owns messages (message.ts), credentials (auth.ts), the outgoing call table
 * (call-table.ts: XIDs, queue, deadlines, settling), the incoming dispatcher (dispatcher.ts: rpcvers,
 * auth, program lookup, typed decode/encode, error -> accept_stat), the connection facade wiring them to a
 * record channel (connection.ts), client, server and rpcbind; over UDP, the client (udp-client.ts) and the
 * server side (udp-server.ts, duplicate-cache.ts) on the same call table and dispatcher. It sees records and
 * datagrams from src/transport, never reads a socket: the channels own them, and an upgrade swaps a stream. It imports only xdr,
 * transport, generated, runtime and errors (test/architecture.test.ts); src/index.ts lists its public API.
 */
export {};
