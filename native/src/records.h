// The record layer after the handshake, behind one interface: KernelRecords (Linux kernel TLS holds the
// keys; control records arrive through recvmsg cmsgs and are handled here) and OpenSslRecords (the same
// session kept in userspace by OpenSSL). TlsSocket picks one when the handshake completes and never
// asks which it has. Results are codes and data (Failure); src/tls/errors.ts writes the messages.
#pragma once

#include <napi.h>
#include <openssl/ssl.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ktls.h"

namespace rpctls {

// What went wrong, as data. `code` selects the JS error class (ERR_TLS_*); the rest rides along.
struct Failure {
  const char* code = nullptr;
  const char* syscall = nullptr;  // ERR_TLS_SYSCALL
  int err = 0;                    // errno (ERR_TLS_SYSCALL, ERR_TLS_BAD_RECORD, ERR_TLS_KTLS)
  int alertLevel = -1;            // ERR_TLS_ALERT
  int alertDescription = -1;
  bool alertReceived = true;
  int sentAlert = -1;             // the alert description we sent before closing, if any
  long verifyCode = -1;           // ERR_TLS_CERT_VERIFY: X509_V_ERR_*
  std::string reason;             // OpenSSL's reason string (or X509 verify text)
  const char* violation = nullptr;  // ERR_TLS_PROTOCOL in kernel mode: what the bad record was
  int recordType = -1;
  int handshakeType = -1;
  long length = -1;
  const char* step = nullptr;     // ERR_TLS_KTLS: the setsockopt that failed
  uint32_t count = 0;             // ERR_TLS_KEY_UPDATE_FLOOD: KeyUpdates in a row
  std::string offloadReason;      // ERR_TLS_KTLS with kernelTls 'require'
  uint32_t timeoutMs = 0;         // ERR_TLS_HANDSHAKE_TIMEOUT
};

struct PendingWrite {
  Napi::ObjectReference chunks;  // keeps the Buffers alive while the kernel has not taken them
  std::vector<iovec> iov;
  size_t index = 0;
  bool started = false;  // a record layer has taken part of it: nothing may come between its pieces
  std::unique_ptr<uint8_t[]> gathered;  // userspace: small pieces packed into full TLS records
};

struct RecordCounters {
  uint64_t ticketsDiscarded = 0;
  uint64_t bytesRead = 0;
  uint64_t bytesWritten = 0;
  // Records protected with the current keys, each direction (TX: an upper bound counted per write; RX:
  // exact in userspace, refreshed from the kernel's sequence number every few reads in kernel mode).
  uint64_t txRecords = 0;
  uint64_t rxRecords = 0;
  uint64_t keyUpdatesSent = 0;
  uint64_t keyUpdatesReceived = 0;
  uint32_t keyUpdatesInARow = 0;  // received with no application data between them (flood guard)
  uint64_t recordsSeen = 0;  // userspace: every record read since the handshake (progress of one SSL_read)
  // The peer's KeyUpdate asked for ours (update_requested) and the record layer does not answer by
  // itself (kernel mode): send one before the next data.
  bool keyUpdateOwed = false;
  bool closeNotifyReceived = false;
  bool closeNotifySent = false;
};

enum class ReadOutcome {
  kData,         // *got bytes of application data in the buffer
  kContinue,     // a control record was consumed (a ticket): read again
  kAgain,        // nothing more now; wait for readability
  kEnd,          // TCP FIN without close_notify
  kCloseNotify,  // the peer's close_notify: orderly end of the read side
  kFailed,       // see the Failure; the connection is done
};

enum class IoOutcome { kDone, kPending, kFailed };

class RecordLayer {
 public:
  virtual ~RecordLayer() = default;
  virtual bool kernel() const = 0;
  virtual ReadOutcome Read(uint8_t* buf, size_t cap, size_t* got, Failure* failure) = 0;
  // Decrypted bytes waiting where poll cannot see them (inside OpenSSL).
  virtual bool HasBuffered() const { return false; }
  // Whether small gathered chunks should be copied into one buffer (one TLS record per RPC record).
  virtual bool CopiesGathers() const { return false; }
  virtual IoOutcome Write(PendingWrite& write, Failure* failure) = 0;
  // close_notify, sent only after every pending write.
  virtual IoOutcome Shutdown(Failure* failure) = 0;
  // The last Write/Shutdown/Read is blocked on readability rather than writability.
  virtual bool WantsReadForWrite() const { return false; }
  // The last Read stopped because OpenSSL must write first (its answer to a KeyUpdate, with the socket
  // full): reading goes on once the socket is writable, even if nothing more arrives to wake poll.
  virtual bool ReadWantsWrite() const { return false; }
  // Whether UpdateKeys can work here (userspace always; kernel TLS on Linux >= 6.14).
  virtual bool CanUpdateKeys() const = 0;
  // Our KeyUpdate (asking the peer for its own when requestPeer), then TX on the next key; only between
  // writes, so no data record is sent under the wrong key. Pending: call again when writable.
  virtual IoOutcome UpdateKeys(bool requestPeer, Failure* failure) = 0;
};

// The traffic secrets kernel TLS was installed from, kept (in native memory only, wiped on every
// rotation and on close) where the kernel can take new keys, so KeyUpdates can be followed.
struct KernelKeys {
  uint16_t suite = 0;
  TrafficSecret tx;
  TrafficSecret rx;
  ~KernelKeys() {
    tx.Wipe();
    rx.Wipe();
  }
};

// Kernel TLS is installed on fd (ktls.cc did the setup); `counters` outlives the layer. Without `keys`
// (a kernel that cannot rekey) a KeyUpdate from the peer ends the connection with ERR_TLS_KEY_UPDATE.
std::unique_ptr<RecordLayer> NewKernelRecords(int fd, RecordCounters* counters, std::unique_ptr<KernelKeys> keys);
// OpenSSL keeps the session; `receivedAlert` is where the message callback stores the last alert
// (level << 8 | description, -1 for none).
std::unique_ptr<RecordLayer> NewOpenSslRecords(SSL* ssl, RecordCounters* counters, const int* receivedAlert);

// Failure for an SSL_* call that failed in the data phase (also used for the handshake's tail).
Failure SslDataFailure(int sslError, int savedErrno, int receivedAlert);
Failure SyscallFailure(const char* syscall, int err);
// OpenSSL's reason text for a packed error code ("unknown error" for 0).
std::string OpenSslReason(unsigned long err);

}  // namespace rpctls
