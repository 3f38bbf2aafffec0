// TLS layer of rpctls: owns the TLS 1.3 session (OpenSSL handshake in the addon, then Linux kernel TLS
// or userspace records) under an unchanged byte stream. It knows nothing of RPC framing or STARTTLS
// messages; callers hand it a connected socket at the right moment. One TlsContext per configuration
// (one SSL_CTX), shared by the TlsStreams made from it.
export { TlsContext, TLS_CIPHERSUITES } from './context.js';
export type { TlsContextOptions, TlsContextStats, TlsCipherSuite, RekeyLimits } from './context.js';
export { TlsStream, connectTlsStream, stopReading } from './tls-stream.js';
export type { TlsStreamOptions, TlsInfo, TlsCounters } from './tls-stream.js';
export { peerIdentityOf, type PeerIdentity, type OtherName } from './peer-identity.js';
export * from './errors.js';
export { kernelTlsAvailable, loadNative } from './native.js';
