/**
 * The transport layer: record marking (record-marking.ts, RFC 5531 section 11) and the record channel
 * (channel.ts), the one owner of a connection's byte stream: reading records, writing them (one cork per
 * tick), backpressure, record and idle deadlines, and swapping the stream at a record boundary for an
 * upgrade; and the datagram channel (datagram.ts), the one owner of a UDP socket (one message per datagram,
 * a size cap, no framing). It knows nothing of what a record means and imports only xdr and errors;
 * src/index.ts lists its public API.
 */
export {};
