// Kernel TLS (KTLS) helpers: key derivation for TLS 1.3 and installing the record layer in the kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rpctls {

// Content types of TLS records and the handshake messages the data path has to recognise.
constexpr uint8_t kRecordAlert = 21;
constexpr uint8_t kRecordHandshake = 22;
constexpr uint8_t kRecordApplicationData = 23;
constexpr uint8_t kHandshakeNewSessionTicket = 4;
constexpr uint8_t kHandshakeKeyUpdate = 24;
constexpr size_t kMaxRecordPayload = 16384;
// KeyUpdates accepted in a row with no application data between them; more is a flood (BoringSSL
// draws the same line): each one costs us a key derivation and a setsockopt, the peer almost nothing.
constexpr uint32_t kMaxKeyUpdatesInARow = 32;

// IANA TLS 1.3 cipher suite ids (low 16 bits of SSL_CIPHER_get_id).
constexpr uint16_t kSuiteAes128Gcm = 0x1301;
constexpr uint16_t kSuiteAes256Gcm = 0x1302;
constexpr uint16_t kSuiteChacha20Poly1305 = 0x1303;

struct TrafficSecret {
  uint8_t bytes[64];
  size_t len = 0;
  void Wipe();
};

enum class KtlsOutcome {
  kInstalled,
  kUnavailable,  // nothing committed: the session may continue in userspace
  kFailed,       // a TLS_TX/TLS_RX is in place: the connection is unusable
};

struct KtlsResult {
  KtlsOutcome outcome;
  int err;           // errno of the failing step
  const char* step;  // "TCP_ULP", "TLS_TX_MAX_PAYLOAD_LEN", "TLS_TX", "TLS_RX", "HKDF"
};

// Derives key/iv from both traffic secrets and installs TX then RX on fd. A txMaxPayload (1..16383)
// bounds the plaintext of each record sent (the peer's record_size_limit); it is set before TLS_TX, so
// a kernel without TLS_TX_MAX_PAYLOAD_LEN leaves the socket to userspace records (kUnavailable).
KtlsResult InstallKernelTls(int fd, uint16_t suite, const TrafficSecret& tx, uint64_t txSeq,
                            const TrafficSecret& rx, uint64_t rxSeq, uint16_t txMaxPayload = 0);

// One direction's key from `secret` at record sequence `seq` on a socket that already has kernel TLS:
// a rekey (Linux >= 6.14; older kernels answer EBUSY). Returns 0 or the errno.
int InstallKernelKey(int fd, bool tx, uint16_t suite, const TrafficSecret& secret, uint64_t seq);

// The next generation of a TLS 1.3 traffic secret (RFC 8446 7.2, "traffic upd"), in place.
bool NextTrafficSecret(uint16_t suite, TrafficSecret* secret);

// Whether this kernel can take new TLS 1.3 keys on a live socket: its /proc/net/tls_stat has the rekey
// counters (Linux >= 6.14). Read once tls.ko is loaded; cached after the first true.
bool KernelTlsCanRekey();

// Record sequence numbers the kernel holds for fd; false if fd has no KTLS.
bool ReadKernelSequences(int fd, uint16_t suite, uint64_t* txSeq, uint64_t* rxSeq);

// Attaches the TLS ULP to a fresh loopback connection; returns 0 or the errno.
int ProbeKernelTls();

// TLS_TX_MAX_PAYLOAD_LEN (RFC 8449 record size limit, Linux >= 6.19; not in older uapi headers).
constexpr int kTlsTxMaxPayloadLen = 5;

// ProbeKernelTls, and when the ULP attached: *maxPayloadErr = 0 if getsockopt(TLS_TX_MAX_PAYLOAD_LEN)
// works on it, else its errno.
int ProbeKernelTlsFeatures(int* maxPayloadErr);

const char* ErrnoName(int err);

}  // namespace rpctls
