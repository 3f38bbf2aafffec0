// KernelRecords: the record layer when Linux kernel TLS holds the session. Data records come out of
// recvmsg decrypted; every non-data record is decided here, in one place (see HandleControlRecord):
//
//   alert, 2 bytes, close_notify      -> orderly end of the read side
//   alert, 2 bytes, anything else     -> ERR_TLS_ALERT (the peer's), connection closed
//   alert of another length           -> send decode_error, ERR_TLS_PROTOCOL "alert_length"
//   handshake: NewSessionTicket(s)    -> discarded and counted
//   handshake: KeyUpdate              -> ERR_TLS_KEY_UPDATE (this kernel path cannot take new keys)
//   handshake: any other message      -> send unexpected_message, ERR_TLS_PROTOCOL "handshake_type"
//   handshake: empty, or a message cut by the record end -> send decode_error, "handshake_length"
//   any other content type            -> send unexpected_message, ERR_TLS_PROTOCOL "record_type"
//   recvmsg EBADMSG/EMSGSIZE/EINVAL   -> ERR_TLS_BAD_RECORD (the kernel aborted the stream)
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

class KernelRecords final : public RecordLayer {
 public:
  KernelRecords(int fd, RecordCounters* counters) : fd_(fd), counters_(counters) {}

  bool kernel() const override { return true; }

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
      *got = static_cast<size_t>(n);
      counters_->bytesRead += *got;
      return ReadOutcome::kData;
    }
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
    int err = SendAlert(1, 0);
    if (err == EAGAIN || err == EWOULDBLOCK) return IoOutcome::kPending;
    if (err != 0) {
      *failure = SyscallFailure("sendmsg", err);
      return IoOutcome::kFailed;
    }
    counters_->closeNotifySent = true;
    return IoOutcome::kDone;
  }

 private:
  // Returns 0 or the errno of sendmsg.
  int SendAlert(uint8_t level, uint8_t description) {
    uint8_t alert[2] = {level, description};
    char control[CMSG_SPACE(sizeof(uint8_t))] = {};
    iovec iov{alert, sizeof(alert)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_TLS;
    c->cmsg_type = TLS_SET_RECORD_TYPE;
    c->cmsg_len = CMSG_LEN(sizeof(uint8_t));
    *CMSG_DATA(c) = kRecordAlert;
    ssize_t n;
    do {
      n = sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? errno : 0;
  }

  // A protocol violation by the peer: tell it with a fatal alert (best effort), then fail.
  ReadOutcome Violation(Failure* failure, const char* what, uint8_t alert) {
    failure->code = "ERR_TLS_PROTOCOL";
    failure->violation = what;
    if (SendAlert(kAlertFatal, alert) == 0) failure->sentAlert = alert;
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
    size_t offset = 0;
    uint64_t tickets = 0;
    while (offset < len) {
      if (offset + 4 > len) return Violation(failure, "handshake_length", kAlertDecodeError);
      uint8_t msgType = data[offset];
      size_t msgLen = size_t{data[offset + 1]} << 16 | size_t{data[offset + 2]} << 8 | data[offset + 3];
      failure->handshakeType = msgType;
      if (offset + 4 + msgLen > len) return Violation(failure, "handshake_length", kAlertDecodeError);
      if (msgType == kHandshakeKeyUpdate) {
        failure->code = "ERR_TLS_KEY_UPDATE";
        return ReadOutcome::kFailed;
      }
      if (msgType != kHandshakeNewSessionTicket) return Violation(failure, "handshake_type", kAlertUnexpectedMessage);
      tickets++;
      offset += 4 + msgLen;
    }
    counters_->ticketsDiscarded += tickets;
    return ReadOutcome::kContinue;
  }

  int fd_;
  RecordCounters* counters_;
};

}  // namespace

std::unique_ptr<RecordLayer> NewKernelRecords(int fd, RecordCounters* counters) {
  return std::make_unique<KernelRecords>(fd, counters);
}

}  // namespace rpctls
