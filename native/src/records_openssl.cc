// OpenSslRecords: the record layer when the session stays in userspace (no kernel TLS, or kernelTls
// 'off'). OpenSSL reads and writes the records on the fd; control records are its business.
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ktls.h"
#include "records.h"
#include "tls_context.h"

namespace rpctls {
namespace {

// A write of more than one record goes through a staging buffer: OpenSSL hands its socket BIO one
// record at a time, so 1 MiB was 64 write(2) calls; staged, it is one or a few. Smaller writes (one
// record) go straight to the socket, and the staging BIO exists only while a large write is under way.
constexpr size_t kOneRecord = 16 * 1024;
// Control records (tickets, KeyUpdates) one read call goes through before it lets other sockets run.
constexpr size_t kMaxControlRecordsPerRead = 64;
constexpr size_t kStageSize = 1088 * 1024;  // a 1 MiB RPC record, its framing and record overhead
// Stages kept for reuse by each thread. A stage is 1 MiB: malloc maps it fresh, and a fresh one costs a
// page fault per 4 KiB touched (BIO_f_buffer allocated its buffer per write: TLS ECHO 1 MiB was about
// 6% slower with Node 24).
constexpr size_t kStagesKept = 2;

struct StageCache {
  std::vector<uint8_t*> free;
  ~StageCache() {
    for (uint8_t* stage : free) ::free(stage);
  }
};
thread_local StageCache stageCache;

uint8_t* TakeStage() {
  if (stageCache.free.empty()) return static_cast<uint8_t*>(malloc(kStageSize));
  uint8_t* stage = stageCache.free.back();
  stageCache.free.pop_back();
  return stage;
}

void GiveStage(uint8_t* stage) {
  if (stageCache.free.size() < kStagesKept) {
    stageCache.free.push_back(stage);
  } else {
    ::free(stage);
  }
}

// The staging BIO: a filter in front of the socket BIO that collects records and passes them on in
// as few writes as the socket takes.
struct Staged {
  uint8_t* data = nullptr;
  size_t used = 0;
  size_t sent = 0;
};

// Passes on what is staged: 1 when all of it went, else what the next BIO's write returned, with its
// retry flags (the socket is full: the rest goes on the next flush).
int StagePass(BIO* bio, Staged* staged) {
  BIO* next = BIO_next(bio);
  while (staged->sent < staged->used) {
    BIO_clear_retry_flags(bio);
    int n = BIO_write(next, staged->data + staged->sent, static_cast<int>(staged->used - staged->sent));
    if (n <= 0) {
      BIO_copy_next_retry(bio);
      return n;
    }
    staged->sent += static_cast<size_t>(n);
  }
  staged->used = staged->sent = 0;
  return 1;
}

int StageCreate(BIO* bio) {
  BIO_set_data(bio, new Staged());
  BIO_set_init(bio, 1);
  return 1;
}

int StageDestroy(BIO* bio) {
  auto* staged = static_cast<Staged*>(BIO_get_data(bio));
  if (staged != nullptr) {
    if (staged->data != nullptr) GiveStage(staged->data);
    delete staged;
  }
  BIO_set_data(bio, nullptr);
  return 1;
}

int StageWrite(BIO* bio, const char* in, size_t length, size_t* written) {
  auto* staged = static_cast<Staged*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  *written = 0;
  if (staged->data == nullptr) staged->data = TakeStage();
  if (staged->data == nullptr) {
    // No memory for a stage: straight through, one write(2) per record.
    int rc = BIO_write_ex(BIO_next(bio), in, length, written);
    BIO_copy_next_retry(bio);
    return rc;
  }
  if (staged->used == kStageSize && StagePass(bio, staged) <= 0) return 0;
  size_t take = std::min(length, kStageSize - staged->used);
  memcpy(staged->data + staged->used, in, take);
  staged->used += take;
  *written = take;
  return 1;
}

long StageCtrl(BIO* bio, int cmd, long num, void* ptr) {
  auto* staged = static_cast<Staged*>(BIO_get_data(bio));
  BIO* next = BIO_next(bio);
  switch (cmd) {
    case BIO_CTRL_FLUSH: {
      int passed = StagePass(bio, staged);
      if (passed <= 0) return passed;
      return next != nullptr ? BIO_ctrl(next, cmd, num, ptr) : 1;
    }
    case BIO_CTRL_WPENDING:
      return static_cast<long>(staged->used - staged->sent) + (next != nullptr ? BIO_ctrl(next, cmd, num, ptr) : 0);
    case BIO_CTRL_DUP:
      return 0;
    default:
      return next != nullptr ? BIO_ctrl(next, cmd, num, ptr) : 0;
  }
}

BIO_METHOD* StagingMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "rpctls write staging");
    if (m == nullptr) return m;
    BIO_meth_set_create(m, StageCreate);
    BIO_meth_set_destroy(m, StageDestroy);
    BIO_meth_set_write_ex(m, StageWrite);
    BIO_meth_set_ctrl(m, StageCtrl);
    return m;
  }();
  return method;
}

class OpenSslRecords final : public RecordLayer {
 public:
  OpenSslRecords(SSL* ssl, RecordCounters* counters, const int* receivedAlert)
      : ssl_(ssl), counters_(counters), receivedAlert_(receivedAlert) {
    // The peer's record_size_limit: each SSL_write makes its own records, so writing at most that much
    // per call keeps every record within it (SSL_set_max_send_fragment stops at 512; RFC 8449 at 64).
    uint16_t limit = PeerRecordSizeLimit(ssl);
    if (limit != 0 && limit - 1 < 16384) maxWrite_ = limit - 1u;
    // The handshake read exactly its own records (the kernel might have taken over after it); from
    // here on OpenSSL keeps the socket, so it may read whatever has arrived: one read(2) for several
    // records instead of two (header, then body) per record.
    SSL_set_read_ahead(ssl_, 1);
  }

  bool kernel() const override { return false; }
  bool CopiesGathers() const override { return true; }
  // SSL_has_pending also counts read-ahead bytes not yet decrypted, which poll(2) cannot see either.
  bool HasBuffered() const override { return SSL_has_pending(ssl_) == 1; }
  bool WantsReadForWrite() const override { return wantsRead_; }
  bool ReadWantsWrite() const override { return readWantsWrite_; }
  bool CanUpdateKeys() const override { return true; }

  // Fills the buffer as far as OpenSSL has data; an end or failure met after some data is reported at
  // the next call, so the data goes first.
  ReadOutcome Read(uint8_t* buf, size_t cap, size_t* got, Failure* failure) override {
    if (deferred_ != ReadOutcome::kData) {
      ReadOutcome outcome = deferred_;
      deferred_ = ReadOutcome::kData;
      *failure = deferredFailure_;
      return outcome;
    }
    size_t filled = 0;
    size_t controlRecords = 0;
    ReadOutcome outcome = ReadOutcome::kData;
    Failure found;
    wantsRead_ = false;
    readWantsWrite_ = false;
    while (filled < cap) {
      ERR_clear_error();
      size_t n = 0;
      uint64_t seenBefore = counters_->recordsSeen;
      int rc = SSL_read_ex(ssl_, buf + filled, cap - filled, &n);
      if (rc == 1) {
        filled += n;
        continue;
      }
      int savedErrno = errno;
      int error = SSL_get_error(ssl_, rc);
      switch (error) {
        case SSL_ERROR_WANT_WRITE:  // OpenSSL flushes on the next call, once the socket is writable
          readWantsWrite_ = true;
          outcome = ReadOutcome::kAgain;
          break;
        case SSL_ERROR_WANT_READ:
          // Without auto-retry SSL_read stops after each control record (a KeyUpdate), even when
          // read-ahead holds more that poll cannot see: go on while it consumed one and the
          // KeyUpdates are no flood yet. Not SSL_has_pending: OpenSSL >= 3.2 moves read-ahead bytes
          // to the next key's record layer where it does not count them, and the reading stalls.
          if (counters_->recordsSeen != seenBefore && counters_->keyUpdatesInARow <= kMaxKeyUpdatesInARow) {
            // Bounded per call: a peer streaming tickets as fast as they are read must not hold the
            // event loop. kContinue: the socket reads on after the others had their turn.
            if (++controlRecords > kMaxControlRecordsPerRead) {
              outcome = ReadOutcome::kContinue;
              break;
            }
            continue;
          }
          outcome = ReadOutcome::kAgain;
          break;
        case SSL_ERROR_ZERO_RETURN:
          // With SSL_OP_IGNORE_UNEXPECTED_EOF a bare FIN also reads as a zero return: only an alert
          // seen by the message callback is the peer's close_notify.
          if (*receivedAlert_ == 0x0100) {
            counters_->closeNotifyReceived = true;
            outcome = ReadOutcome::kCloseNotify;
          } else {
            outcome = ReadOutcome::kEnd;
          }
          break;
        default: {
          unsigned long err = ERR_peek_last_error();
          if (ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
              (error == SSL_ERROR_SYSCALL && savedErrno == 0 && err == 0)) {
            ERR_clear_error();
            outcome = ReadOutcome::kEnd;
          } else {
            found = SslDataFailure(error, savedErrno, *receivedAlert_);
            outcome = ReadOutcome::kFailed;
          }
          break;
        }
      }
      break;
    }
    // OpenSSL follows every KeyUpdate by itself; the message callback counts them (TlsSocket::OnMessage).
    if (counters_->keyUpdatesInARow > kMaxKeyUpdatesInARow && outcome != ReadOutcome::kFailed) {
      found = Failure();
      found.code = "ERR_TLS_KEY_UPDATE_FLOOD";
      found.count = counters_->keyUpdatesInARow;
      outcome = ReadOutcome::kFailed;
    }
    if (filled == 0) {
      *failure = found;
      return outcome == ReadOutcome::kData ? ReadOutcome::kAgain : outcome;
    }
    counters_->bytesRead += filled;
    *got = filled;
    if (outcome != ReadOutcome::kData && outcome != ReadOutcome::kAgain && outcome != ReadOutcome::kContinue) {
      deferred_ = outcome;
      deferredFailure_ = found;
    }
    return ReadOutcome::kData;
  }

  IoOutcome Write(PendingWrite& w, Failure* failure) override {
    wantsRead_ = false;
    // A read failure met together with data is reported after the data; a reply written meanwhile
    // must fail with that error, not with OpenSSL's now empty error queue ("unknown error").
    if (deferred_ == ReadOutcome::kFailed) {
      *failure = deferredFailure_;
      return IoOutcome::kFailed;
    }
    if (writeBuffer_ == nullptr) {
      size_t left = 0;
      for (size_t i = w.index; i < w.iov.size(); i++) left += w.iov[i].iov_len;
      if (left > kOneRecord) StartBuffering();
    }
    while (w.index < w.iov.size()) {
      iovec& v = w.iov[w.index];
      ERR_clear_error();
      size_t written = 0;
      // A retry after WANT_WRITE passes the same buffer and length: both follow from v alone.
      size_t length = maxWrite_ != 0 && v.iov_len > maxWrite_ ? maxWrite_ : v.iov_len;
      int rc = SSL_write_ex(ssl_, v.iov_base, length, &written);
      if (rc == 1) {
        counters_->bytesWritten += written;
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + written;
        v.iov_len -= written;
        if (v.iov_len == 0) w.index++;
        continue;
      }
      return Unfinished(rc, failure);
    }
    return FinishBuffering(failure);
  }

  // SSL_key_update only schedules the message; SSL_do_handshake sends it (and rotates TX) now.
  IoOutcome UpdateKeys(bool requestPeer, Failure* failure) override {
    wantsRead_ = false;
    if (deferred_ == ReadOutcome::kFailed) {
      *failure = deferredFailure_;
      return IoOutcome::kFailed;
    }
    IoOutcome flushed = FinishBuffering(failure);
    if (flushed != IoOutcome::kDone) return flushed;
    ERR_clear_error();
    if (!keyUpdateScheduled_) {
      if (SSL_key_update(ssl_, requestPeer ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
        *failure = SslDataFailure(SSL_ERROR_SSL, 0, *receivedAlert_);
        return IoOutcome::kFailed;
      }
      keyUpdateScheduled_ = true;
    }
    int rc = SSL_do_handshake(ssl_);
    if (rc != 1) return Unfinished(rc, failure);
    keyUpdateScheduled_ = false;
    return IoOutcome::kDone;
  }

  IoOutcome Shutdown(Failure* failure) override {
    wantsRead_ = false;
    if (deferred_ == ReadOutcome::kFailed) {
      *failure = deferredFailure_;
      return IoOutcome::kFailed;
    }
    IoOutcome flushed = FinishBuffering(failure);
    if (flushed != IoOutcome::kDone) return flushed;
    ERR_clear_error();
    // A KeyUpdate answer that SSL_read began but could not write yet (socket full) is finished first:
    // after close_notify the socket is shut for writing, and OpenSSL would try it on the next read.
    if (SSL_in_init(ssl_)) {
      int step = SSL_do_handshake(ssl_);
      if (step != 1) return Unfinished(step, failure);
    }
    int rc = SSL_shutdown(ssl_);
    if (rc < 0) return Unfinished(rc, failure);
    counters_->closeNotifySent = true;
    // Nothing may follow close_notify, and the socket is shut for writing next. OpenSSL would still
    // answer a KeyUpdate(update_requested) read later (EPIPE, failing the read side); RFC 8446 owes
    // that answer only before our next data, and there is none. Its writes go nowhere from here.
    BIO* sink = BIO_new(BIO_s_null());
    if (sink != nullptr) SSL_set0_wbio(ssl_, sink);
    return IoOutcome::kDone;
  }

 private:
  // Puts the staging BIO in front of the socket BIO for a large write.
  void StartBuffering() {
    BIO* socketBio = SSL_get_wbio(ssl_);
    BIO_METHOD* method = StagingMethod();
    BIO* buffer = method != nullptr ? BIO_new(method) : nullptr;
    if (socketBio == nullptr || buffer == nullptr) {
      BIO_free(buffer);
      return;  // unstaged still works, one write(2) per record
    }
    BIO_up_ref(socketBio);  // the chain's reference; SSL_set0_wbio drops the SSL's old one
    BIO_push(buffer, socketBio);
    SSL_set0_wbio(ssl_, buffer);
    writeBuffer_ = buffer;
  }

  // Sends what the buffer holds and takes it out again; pending while the socket is full.
  IoOutcome FinishBuffering(Failure* failure) {
    if (writeBuffer_ == nullptr) return IoOutcome::kDone;
    ERR_clear_error();
    errno = 0;
    if (BIO_flush(writeBuffer_) != 1) {
      if (BIO_should_retry(writeBuffer_)) return IoOutcome::kPending;
      *failure = SyscallFailure("write", errno != 0 ? errno : EIO);
      return IoOutcome::kFailed;
    }
    BIO* socketBio = BIO_pop(writeBuffer_);
    // The SSL takes the chain's reference to the socket BIO and frees the (now lone) buffer.
    SSL_set0_wbio(ssl_, socketBio);
    writeBuffer_ = nullptr;
    return IoOutcome::kDone;
  }

  // An SSL_write/SSL_shutdown that did not finish: pending until the fd is writable (or readable, when
  // OpenSSL must read first), else the failure.
  IoOutcome Unfinished(int rc, Failure* failure) {
    int savedErrno = errno;
    int error = SSL_get_error(ssl_, rc);
    if (error == SSL_ERROR_WANT_WRITE) return IoOutcome::kPending;
    if (error == SSL_ERROR_WANT_READ) {
      wantsRead_ = true;
      return IoOutcome::kPending;
    }
    *failure = SslDataFailure(error, savedErrno, *receivedAlert_);
    return IoOutcome::kFailed;
  }

  SSL* ssl_;
  RecordCounters* counters_;
  size_t maxWrite_ = 0;  // 0: no record_size_limit below a full record
  const int* receivedAlert_;
  bool wantsRead_ = false;
  bool keyUpdateScheduled_ = false;
  bool readWantsWrite_ = false;
  BIO* writeBuffer_ = nullptr;  // owned by the SSL as its wbio while set
  ReadOutcome deferred_ = ReadOutcome::kData;
  Failure deferredFailure_;
};

}  // namespace

std::unique_ptr<RecordLayer> NewOpenSslRecords(SSL* ssl, RecordCounters* counters, const int* receivedAlert) {
  return std::make_unique<OpenSslRecords>(ssl, counters, receivedAlert);
}

Failure SyscallFailure(const char* syscall, int err) {
  Failure failure;
  failure.code = "ERR_TLS_SYSCALL";
  failure.syscall = syscall;
  failure.err = err;
  return failure;
}

Failure SslDataFailure(int sslError, int savedErrno, int receivedAlert) {
  unsigned long err = ERR_peek_last_error();
  Failure failure;
  if (receivedAlert >= 0 && receivedAlert != 0x0100) {
    failure.code = "ERR_TLS_ALERT";
    failure.alertLevel = receivedAlert >> 8;
    failure.alertDescription = receivedAlert & 0xff;
    failure.alertReceived = true;
  } else if (sslError == SSL_ERROR_SYSCALL && savedErrno != 0) {
    failure = SyscallFailure("SSL_read/SSL_write", savedErrno);
  } else {
    failure.code = "ERR_TLS_PROTOCOL";
    failure.reason = OpenSslReason(err);
  }
  ERR_clear_error();
  return failure;
}

std::string OpenSslReason(unsigned long err) {
  if (err == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(err);
  if (reason != nullptr) return reason;
  char buf[256];
  ERR_error_string_n(err, buf, sizeof(buf));
  return buf;
}

}  // namespace rpctls
