// KernelRecords: the record layer when Linux kernel TLS holds the session. Data records come out of
// recvmsg decrypted; every non-data record is decided here, in one place (see HandleControlRecord):
//
//   alert, 2 bytes, close_notify      -> orderly end of the read side
//   alert, 2 bytes, anything else     -> ERR_TLS_ALERT (the peer's), connection closed
//   alert of another length           -> send decode_error, ERR_TLS_PROTOCOL "alert_length"
//   handshake messages, walked as one stream across records (a message may be split over several):
//     NewSessionTicket                -> discarded and counted
//     KeyUpdate, kernel can rekey     -> next RX key installed; answered with our own when requested
//     KeyUpdate, kernel cannot        -> ERR_TLS_KEY_UPDATE (names the kernel that can)
//     KeyUpdate not ending its record -> send unexpected_message, "key_update_not_last" (RFC 8446 5.1)
//     KeyUpdate body not 1 byte / 0-1 -> send decode_error / illegal_parameter
//     more than 32 KeyUpdates in a row without data -> ERR_TLS_KEY_UPDATE_FLOOD
//     any other message               -> send unexpected_message, "handshake_type"
//     a message longer than 64 KiB, or another record type inside a split message -> violation
//   any other content type            -> send unexpected_message, ERR_TLS_PROTOCOL "record_type"
//   recvmsg EBADMSG/EMSGSIZE/EINVAL   -> ERR_TLS_BAD_RECORD (the kernel aborted the stream)
//
// Rekey (Linux >= 6.14): when a decrypted handshake record starts with a KeyUpdate byte the kernel stops
// decrypting (reads fail with EKEYEXPIRED) until TLS_RX gets a key. A KeyUpdate that does not start its
// record (after a ticket) leaves the kernel running, and one split over records stops it one record
// early: in that case the current key is installed again at the current sequence number to read the rest.
#include <errno.h>
#include <linux/tls.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>

#include "ktls.h"
#include "records.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace rpctls {
namespace {

constexpr int kMaxIov = 1024;
constexpr uint8_t kAlertFatal = 2;
constexpr uint8_t kAlertUnexpectedMessage = 10;
constexpr uint8_t kAlertDecodeError = 50;
constexpr uint8_t kAlertIllegalParameter = 47;
// A post-handshake message split over records is buffered up to this size (a ticket is far smaller).
constexpr size_t kMaxSplitHandshake = 64 * 1024;
// Kernel mode learns the exact RX record count from the kernel's sequence number every this many reads.
constexpr uint32_t kReadsPerSequenceCheck = 64;

class KernelRecords final : public RecordLayer {
 public:
  KernelRecords(int fd, RecordCounters* counters, std::unique_ptr<KernelKeys> keys)
      : fd_(fd), counters_(counters), keys_(std::move(keys)) {}

  bool kernel() const override { return true; }
  bool CanUpdateKeys() const override { return keys_ != nullptr; }

  ReadOutcome Read(uint8_t* buf, size_t cap, size_t* got, Failure* failure) override {
    char control[CMSG_SPACE(sizeof(uint8_t))];
    iovec iov{buf, cap};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n;
    do {
      n = recvmsg(fd_, &msg, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return ReadOutcome::kAgain;
      if (err == EBADMSG || err == EMSGSIZE || err == EINVAL) {
        failure->code = "ERR_TLS_BAD_RECORD";
        failure->err = err;
      } else {
        *failure = SyscallFailure("recvmsg", err);
      }
      return ReadOutcome::kFailed;
    }
    if (n == 0) return ReadOutcome::kEnd;
    uint8_t type = kRecordApplicationData;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE) type = *CMSG_DATA(c);
    }
    if (type == kRecordApplicationData) {
      // RFC 8446 5.1: no other record may come between the pieces of a split handshake message.
      if (!split_.empty()) return Violation(failure, "handshake_interleaved", kAlertUnexpectedMessage);
      counters_->keyUpdatesInARow = 0;
      *got = static_cast<size_t>(n);
      counters_->bytesRead += *got;
      CountReadRecords(*got);
      return ReadOutcome::kData;
    }
    counters_->rxRecords++;
    return HandleControlRecord(type, buf, static_cast<size_t>(n), failure);
  }

  IoOutcome Write(PendingWrite& w, Failure* failure) override {
    while (w.index < w.iov.size()) {
      msghdr msg{};
      msg.msg_iov = w.iov.data() + w.index;
      msg.msg_iovlen = std::min<size_t>(w.iov.size() - w.index, kMaxIov);
      ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return IoOutcome::kPending;
      if (n < 0) {
        *failure = SyscallFailure("sendmsg", errno);
        return IoOutcome::kFailed;
      }
      counters_->bytesWritten += static_cast<size_t>(n);
      // An upper bound: the kernel closes a record at the end of each sendmsg and every 16 KiB.
      counters_->txRecords += (static_cast<size_t>(n) + kMaxRecordPayload - 1) / kMaxRecordPayload;
      size_t left = static_cast<size_t>(n);
      while (left > 0 && w.index < w.iov.size()) {
        iovec& v = w.iov[w.index];
        size_t take = std::min(left, v.iov_len);
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + take;
        v.iov_len -= take;
        left -= take;
        if (v.iov_len == 0) w.index++;
      }
    }
    return IoOutcome::kDone;
  }

  // close_notify as a control record; the kernel encrypts it with the next TX sequence number.
  IoOutcome Shutdown(Failure* failure) override {
    const uint8_t alert[2] = {1, 0};
    int err = SendControl(kRecordAlert, alert, sizeof(alert));
    if (err == EAGAIN || err == EWOULDBLOCK) return IoOutcome::kPending;
    if (err != 0) {
      *failure = SyscallFailure("sendmsg", err);
      return IoOutcome::kFailed;
    }
    counters_->closeNotifySent = true;
    return IoOutcome::kDone;
  }

  // The KeyUpdate goes out under the current key, then TX moves on: the kernel does not hold data in
  // between, so the caller (TlsSocket) runs this only between writes.
  IoOutcome UpdateKeys(bool requestPeer, Failure* failure) override {
    if (!keys_) {
      failure->code = "ERR_TLS_KEY_UPDATE";
      failure->violation = "kernel_cannot_rekey";
      return IoOutcome::kFailed;
    }
    const uint8_t keyUpdate[5] = {kHandshakeKeyUpdate, 0, 0, 1, static_cast<uint8_t>(requestPeer ? 1 : 0)};
    int err = SendControl(kRecordHandshake, keyUpdate, sizeof(keyUpdate));
    if (err == EAGAIN || err == EWOULDBLOCK) return IoOutcome::kPending;
    if (err != 0) {
      *failure = SyscallFailure("sendmsg", err);
      return IoOutcome::kFailed;
    }
    // From here the peer expects the next key: failing to install it leaves the connection unusable.
    if (!NextTrafficSecret(keys_->suite, &keys_->tx)) return RekeyFailed(failure, "TLS_TX rekey", EINVAL);
    err = InstallKernelKey(fd_, true, keys_->suite, keys_->tx, 0);
    if (err != 0) return RekeyFailed(failure, "TLS_TX rekey", err);
    counters_->keyUpdatesSent++;
    counters_->txRecords = 0;
    counters_->keyUpdateOwed = false;
    return IoOutcome::kDone;
  }

 private:
  IoOutcome RekeyFailed(Failure* failure, const char* step, int err) {
    failure->code = "ERR_TLS_KTLS";
    failure->step = step;
    failure->err = err;
    return IoOutcome::kFailed;
  }

  void CountReadRecords(size_t bytes) {
    counters_->rxRecords += (bytes + kMaxRecordPayload - 1) / kMaxRecordPayload;
    if (++readsSinceCheck_ < kReadsPerSequenceCheck) return;
    readsSinceCheck_ = 0;
    uint64_t tx = 0;
    uint64_t rx = 0;
    if (keys_ && ReadKernelSequences(fd_, keys_->suite, &tx, &rx)) counters_->rxRecords = rx;
  }

  // Returns 0 or the errno of sendmsg.
  int SendControl(uint8_t recordType, const uint8_t* data, size_t len) {
    char control[CMSG_SPACE(sizeof(uint8_t))] = {};
    iovec iov{const_cast<uint8_t*>(data), len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_TLS;
    c->cmsg_type = TLS_SET_RECORD_TYPE;
    c->cmsg_len = CMSG_LEN(sizeof(uint8_t));
    *CMSG_DATA(c) = recordType;
    ssize_t n;
    do {
      n = sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    if (recordType != kRecordAlert) counters_->txRecords++;
    // A control record is taken whole or not at all; a short count would mean a torn record.
    return static_cast<size_t>(n) == len ? 0 : EIO;
  }

  // A protocol violation by the peer: tell it with a fatal alert (best effort), then fail.
  ReadOutcome Violation(Failure* failure, const char* what, uint8_t alert) {
    failure->code = "ERR_TLS_PROTOCOL";
    failure->violation = what;
    const uint8_t fatal[2] = {kAlertFatal, alert};
    if (SendControl(kRecordAlert, fatal, sizeof(fatal)) == 0) failure->sentAlert = alert;
    return ReadOutcome::kFailed;
  }

  ReadOutcome HandleControlRecord(uint8_t type, const uint8_t* data, size_t len, Failure* failure) {
    failure->recordType = type;
    failure->length = static_cast<long>(len);
    if (type == kRecordAlert) {
      if (len != 2) return Violation(failure, "alert_length", kAlertDecodeError);
      if (data[0] == 1 && data[1] == 0) {
        counters_->closeNotifyReceived = true;
        return ReadOutcome::kCloseNotify;
      }
      failure->code = "ERR_TLS_ALERT";
      failure->alertLevel = data[0];
      failure->alertDescription = data[1];
      failure->alertReceived = true;
      return ReadOutcome::kFailed;
    }
    if (type != kRecordHandshake) return Violation(failure, "record_type", kAlertUnexpectedMessage);
    if (len == 0) return Violation(failure, "handshake_length", kAlertDecodeError);
    // A rekey-capable kernel stops after this record iff it starts with a KeyUpdate byte (tls_sw.c
    // checks only the first byte), whether or not the record holds the whole message.
    bool kernelPaused = keys_ && data[0] == kHandshakeKeyUpdate;
    const uint8_t* stream = data;
    size_t streamLen = len;
    if (!split_.empty()) {
      if (split_.size() + len > kMaxSplitHandshake) return Violation(failure, "handshake_length", kAlertDecodeError);
      split_.insert(split_.end(), data, data + len);
      stream = split_.data();
      streamLen = split_.size();
    }
    size_t offset = 0;
    uint64_t tickets = 0;
    bool keyUpdate = false;
    bool requested = false;
    while (offset < streamLen) {
      if (keyUpdate) return Violation(failure, "key_update_not_last", kAlertUnexpectedMessage);
      if (offset + 4 > streamLen) break;  // the rest of the header is in the next record
      uint8_t msgType = stream[offset];
      size_t msgLen = size_t{stream[offset + 1]} << 16 | size_t{stream[offset + 2]} << 8 | stream[offset + 3];
      failure->handshakeType = msgType;
      if (msgLen > kMaxSplitHandshake) return Violation(failure, "handshake_length", kAlertDecodeError);
      if (msgType != kHandshakeNewSessionTicket && msgType != kHandshakeKeyUpdate) {
        return Violation(failure, "handshake_type", kAlertUnexpectedMessage);
      }
      if (msgType == kHandshakeKeyUpdate && msgLen != 1) return Violation(failure, "key_update_length", kAlertDecodeError);
      if (offset + 4 + msgLen > streamLen) break;  // continues in the next record
      if (msgType == kHandshakeKeyUpdate) {
        uint8_t request = stream[offset + 4];
        if (request > 1) return Violation(failure, "key_update_value", kAlertIllegalParameter);
        keyUpdate = true;
        requested = request == 1;
      } else {
        tickets++;
      }
      offset += 4 + msgLen;
    }
    counters_->ticketsDiscarded += tickets;
    if (offset < streamLen) {
      // A message split over records: keep the rest for the next record, which is under the same key.
      std::vector<uint8_t> rest(stream + offset, stream + streamLen);
      split_.swap(rest);
      return kernelPaused ? ResumeWithCurrentKey(failure) : ReadOutcome::kContinue;
    }
    split_.clear();
    if (keyUpdate) return FollowKeyUpdate(requested, failure);
    return kernelPaused ? ResumeWithCurrentKey(failure) : ReadOutcome::kContinue;
  }

  ReadOutcome FollowKeyUpdate(bool requested, Failure* failure) {
    if (!keys_) {
      failure->code = "ERR_TLS_KEY_UPDATE";
      return ReadOutcome::kFailed;
    }
    if (++counters_->keyUpdatesInARow > kMaxKeyUpdatesInARow) {
      failure->code = "ERR_TLS_KEY_UPDATE_FLOOD";
      failure->count = counters_->keyUpdatesInARow;
      const uint8_t fatal[2] = {kAlertFatal, kAlertUnexpectedMessage};
      if (SendControl(kRecordAlert, fatal, sizeof(fatal)) == 0) failure->sentAlert = kAlertUnexpectedMessage;
      return ReadOutcome::kFailed;
    }
    if (!NextTrafficSecret(keys_->suite, &keys_->rx)) return RxRekeyFailed(failure, EINVAL);
    int err = InstallKernelKey(fd_, false, keys_->suite, keys_->rx, 0);
    if (err != 0) return RxRekeyFailed(failure, err);
    counters_->keyUpdatesReceived++;
    counters_->rxRecords = 0;
    readsSinceCheck_ = 0;
    // "Multiple KeyUpdates received while silent are answered with a single update" (RFC 8446 4.6.3).
    if (requested) counters_->keyUpdateOwed = true;
    return ReadOutcome::kContinue;
  }

  // The kernel paused at a record that starts a split KeyUpdate; the rest is still under this key.
  ReadOutcome ResumeWithCurrentKey(Failure* failure) {
    uint64_t tx = 0;
    uint64_t rx = 0;
    if (!ReadKernelSequences(fd_, keys_->suite, &tx, &rx)) return RxRekeyFailed(failure, errno);
    int err = InstallKernelKey(fd_, false, keys_->suite, keys_->rx, rx);
    if (err != 0) return RxRekeyFailed(failure, err);
    return ReadOutcome::kContinue;
  }

  ReadOutcome RxRekeyFailed(Failure* failure, int err) {
    failure->code = "ERR_TLS_KTLS";
    failure->step = "TLS_RX rekey";
    failure->err = err;
    return ReadOutcome::kFailed;
  }

  int fd_;
  RecordCounters* counters_;
  std::unique_ptr<KernelKeys> keys_;
  std::vector<uint8_t> split_;  // the start of a handshake message whose end is in a later record
  uint32_t readsSinceCheck_ = 0;
};

}  // namespace

std::unique_ptr<RecordLayer> NewKernelRecords(int fd, RecordCounters* counters, std::unique_ptr<KernelKeys> keys) {
  return std::make_unique<KernelRecords>(fd, counters, std::move(keys));
}

}  // namespace rpctls
