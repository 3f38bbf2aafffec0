// TLS layer of rpctls: owns the TLS 1.3 session (OpenSSL handshake in the addon, then Linux kernel TLS
// or userspace records) under an unchanged byte stream. It knows nothing of RPC framing or STARTTLS
// messages; callers hand it a connected socket at the right moment.
export { TlsStream, connectTlsStream, TLS_CIPHERSUITES } from './tls-stream.js';
export type { TlsStreamOptions, TlsInfo, TlsCounters, TlsCipherSuite } from './tls-stream.js';
export * from './errors.js';
export { kernelTlsAvailable, loadNative } from './native.js';
