#include "tls_socket.h"

#include "buffer_pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <new>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace rpctls {
namespace {

constexpr size_t kReadSize = 64 * 1024;

// One read buffer for every socket of the thread, not one per connection: a read is copied out (or,
// when large, handed over) before anything else can read, so an idle connection holds no buffer at all.
// It is a pool block (buffer_pool.h): one handed over comes back when the GC frees it.
thread_local uint8_t* sharedReadBuffer = nullptr;

uint8_t* SharedReadBuffer(Napi::Env env) {
  if (sharedReadBuffer == nullptr) sharedReadBuffer = TakeBlock(env, kReadSize);
  return sharedReadBuffer;
}

constexpr size_t kMaxGather = 16 * 1024;  // one TLS record
constexpr int kMaxIov = 1024;

bool HexToSecret(const char* hex, size_t hexLen, TrafficSecret* out) {
  if (hexLen % 2 != 0 || hexLen / 2 > sizeof(out->bytes)) return false;
  for (size_t i = 0; i < hexLen / 2; i++) {
    int value = 0;
    for (int j = 0; j < 2; j++) {
      char c = hex[2 * i + j];
      int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (digit < 0) return false;
      value = value * 16 + digit;
    }
    out->bytes[i] = static_cast<uint8_t>(value);
  }
  out->len = hexLen / 2;
  return true;
}

// The plaintext bound of each record we send, from the peer's record_size_limit (TLS 1.3: minus the
// content type byte); 0 when the peer set none below a full record.
uint16_t TxMaxPayload(const SSL* ssl) {
  uint16_t limit = PeerRecordSizeLimit(ssl);
  return limit != 0 && limit - 1 < 16384 ? static_cast<uint16_t>(limit - 1) : 0;
}

bool IsIpLiteral(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

}  // namespace

Napi::Function TlsSocket::Init(Napi::Env env) {
  return DefineClass(env, "TlsSocket",
                     {
                         InstanceMethod<&TlsSocket::Start>("start"),
                         InstanceMethod<&TlsSocket::ReadStart>("readStart"),
                         InstanceMethod<&TlsSocket::ReadStop>("readStop"),
                         InstanceMethod<&TlsSocket::Write>("write"),
                         InstanceMethod<&TlsSocket::Shutdown>("shutdown"),
                         InstanceMethod<&TlsSocket::Close>("close"),
                         InstanceMethod<&TlsSocket::Counters>("counters"),
                         InstanceMethod<&TlsSocket::KernelState>("kernelState"),
                         InstanceMethod<&TlsSocket::UpdateKeys>("updateKeys"),
                         InstanceMethod<&TlsSocket::SetRef>("setRef"),
                     });
}

// new TlsSocket(fd, secureContext, options, onevent). Takes ownership of fd (closed by close()).
// options: { servername?, kernelTls, handshakeTimeoutMs, keylog, rekey?: { mode, records, bytes } }:
// what is per connection.
TlsSocket::TlsSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsSocket>(info) {
  Napi::Env env = info.Env();
  SecureContext* context = info.Length() >= 2 ? SecureContext::FromValue(env, info[1]) : nullptr;
  if (info.Length() < 4 || !info[0].IsNumber() || context == nullptr || !info[2].IsObject() || !info[3].IsFunction()) {
    throw Napi::TypeError::New(env, "TlsSocket(fd, secureContext, options, onevent)");
  }
  Napi::Object options = info[2].As<Napi::Object>();
  auto text = [&](const char* name) {
    Napi::Value v = options.Get(name);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  };
  std::string kernel = text("kernelTls");
  kernelPolicy_ = kernel == "off" ? KernelTlsPolicy::kOff
                  : kernel == "require" ? KernelTlsPolicy::kRequire
                                        : KernelTlsPolicy::kAuto;
  isServer_ = context->isServer();
  alpn_ = context->alpn();
  Napi::Value keylog = options.Get("keylog");
  keylog_ = keylog.IsBoolean() && keylog.As<Napi::Boolean>().Value();
  servername_ = text("servername");
  Napi::Value timeout = options.Get("handshakeTimeoutMs");
  if (timeout.IsNumber()) handshakeTimeoutMs_ = timeout.As<Napi::Number>().Uint32Value();
  Napi::Value rekey = options.Get("rekey");
  if (rekey.IsObject()) {
    Napi::Object r = rekey.As<Napi::Object>();
    Napi::Value mode = r.Get("mode");
    std::string m = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : std::string();
    rekeyMode_ = m == "update" ? RekeyMode::kUpdate : m == "reconnect" ? RekeyMode::kReconnect : RekeyMode::kOff;
    Napi::Value records = r.Get("records");
    Napi::Value bytes = r.Get("bytes");
    if (records.IsNumber()) rekeyRecords_ = static_cast<uint64_t>(records.As<Napi::Number>().DoubleValue());
    if (bytes.IsNumber()) rekeyBytes_ = static_cast<uint64_t>(bytes.As<Napi::Number>().DoubleValue());
    Napi::Value defaults = r.Get("cipherDefaults");
    rekeyCipherDefaults_ = defaults.IsBoolean() && defaults.As<Napi::Boolean>().Value();
  }

  // The SSL_CTX is shared; everything below is this connection's own.
  ssl_ = SSL_new(context->ctx());
  if (ssl_ == nullptr) throw Napi::Error::New(env, "SSL_new failed");
  SSL_set_app_data(ssl_, this);
  // Room for several records per read(2) once the session stays in userspace (records_openssl.cc turns
  // read-ahead on then). The handshake reads exactly its records whatever the size; RELEASE_BUFFERS
  // frees the buffer whenever it is empty, so an idle connection holds none.
  SSL_set_default_read_buffer_len(ssl_, 64 * 1024);
  SSL_set_msg_callback(ssl_, OnMessage);
  SSL_set_msg_callback_arg(ssl_, this);
  if (isServer_) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (alpn_ != AlpnMode::kOff) {
      static const unsigned char kSunrpc[] = {6, 's', 'u', 'n', 'r', 'p', 'c'};
      SSL_set_alpn_protos(ssl_, kSunrpc, sizeof(kSunrpc));
    }
    if (!servername_.empty()) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      // RFC 9525: names are matched in subjectAltName only; a certificate without one is refused
      // (never its subject CN).
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
      if (IsIpLiteral(servername_)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, servername_.c_str());
      } else {
        SSL_set1_host(ssl_, servername_.c_str());
        SSL_set_tlsext_host_name(ssl_, servername_.c_str());
      }
    }
  }
  fd_ = info[0].As<Napi::Number>().Int32Value();
  // SSL_set_fd wraps fd in a BIO_NOCLOSE socket BIO: SSL_free leaves the fd to close().
  if (SSL_set_fd(ssl_, fd_) != 1) throw Napi::Error::New(env, "SSL_set_fd failed");
  onevent_ = Napi::Persistent(info[3].As<Napi::Function>());
  asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "RpcTlsSocket", Value());
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  if (uv_poll_init_socket(loop, &poll_, fd_) != 0 || uv_timer_init(loop, &timer_) != 0) {
    throw Napi::Error::New(env, "uv_poll_init failed");
  }
  poll_.data = this;
  timer_.data = this;
  handlesOpen_ = true;
  openHandles_ = 2;
  Ref();  // released when both handles are closed
  context_ = context;
  contextId_ = context->id();
  contextRef_ = Napi::Persistent(info[1].As<Napi::Object>());
  context_->SocketOpened();
}

TlsSocket::~TlsSocket() {
  ReleaseSsl();
  if (fd_ >= 0) ::close(fd_);
}

void TlsSocket::ReleaseSsl() {
  clientSecret_.Wipe();
  serverSecret_.Wipe();
  if (ssl_ != nullptr) SSL_free(ssl_);
  ssl_ = nullptr;
}

// After close nothing may keep the JS objects alive: the event callback closes over the TlsStream,
// which holds this socket's wrapper, so a persistent reference here would be a cycle through a GC root.
void TlsSocket::ReleaseJsReferences() {
  if (emitting_ > 0) {
    releasePending_ = true;
    return;
  }
  releasePending_ = false;
  context_ = nullptr;
  contextRef_.Reset();
  onevent_.Reset();
  asyncContext_.reset();
}

// ---- JS methods --------------------------------------------------------------------------------

Napi::Value TlsSocket::Start(const Napi::CallbackInfo& info) {
  if (phase_ == Phase::kIdle) {
    phase_ = Phase::kHandshake;
    // libuv timers count from the loop's cached time: after a long synchronous stretch (seconds of
    // blocking work before the takeover) the limit would expire at once. Count from now.
    uv_update_time(timer_.loop);
    if (handshakeTimeoutMs_ > 0) uv_timer_start(&timer_, OnTimer, handshakeTimeoutMs_, 0);
    // The first step runs from the poll callback, so every event reaches JS asynchronously.
    sslWantsWrite_ = true;
    UpdatePoll();
  }
  return info.Env().Undefined();
}

Napi::Value TlsSocket::ReadStart(const Napi::CallbackInfo& info) {
  reading_ = true;
  if (phase_ == Phase::kOpen) {
    UpdatePoll();
    // Userspace: a partly consumed record sits in OpenSSL, where uv_poll cannot see it. Kernel TLS: a
    // record decrypted with the last data may wait unseen by poll (see ReadAvailable).
    if (records_ && (records_->HasBuffered() || !readDrained_)) uv_timer_start(&timer_, OnTimer, 0, 0);
  }
  return info.Env().Undefined();
}

Napi::Value TlsSocket::ReadStop(const Napi::CallbackInfo& info) {
  reading_ = false;
  UpdatePoll();
  return info.Env().Undefined();
}

// write([Buffer...]) -> true (all taken), false (pending: kEventWriteDone follows) or an error object.
Napi::Value TlsSocket::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (phase_ != Phase::kOpen || pendingWrite_ || shutdownPending_ || shutdownDone_) {
    return StateError("write");
  }
  Napi::Array chunks = info[0].As<Napi::Array>();
  auto pending = std::make_unique<PendingWrite>();
  uint32_t count = chunks.Length();
  pending->iov.reserve(count);
  size_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    auto buf = chunks.Get(i).As<Napi::Buffer<uint8_t>>();
    if (buf.Length() == 0) continue;
    pending->iov.push_back({buf.Data(), buf.Length()});
    total += buf.Length();
  }
  if (records_->CopiesGathers() && pending->iov.size() > 1) PackRecords(*pending);
  pendingWrite_ = std::move(pending);
  int result = ContinueWrite();
  if (result == 1) return Napi::Boolean::New(env, true);
  if (result < 0) return FailureObject(writeError_);
  pendingWrite_->chunks = Napi::Persistent(chunks.As<Napi::Object>());
  UpdatePoll();
  return Napi::Boolean::New(env, false);
}

// Userspace SSL_write makes one TLS record per call (up to 16 KiB): small pieces (a tick's RPC records,
// a header before its payload) are copied together into full records, so a tick of small replies is a
// few records, not one per piece; large pieces are referenced, after topping up the record before them.
void TlsSocket::PackRecords(PendingWrite& w) {
  size_t bound = 0;
  for (const iovec& v : w.iov) bound += v.iov_len < kMaxGather ? v.iov_len : kMaxGather;
  // Uninitialized (every byte used is copied in), and never grown below: the packed iovecs point into it.
  w.gathered.reset(new uint8_t[bound]);
  uint8_t* next = w.gathered.get();
  std::vector<iovec> packed;
  packed.reserve(w.iov.size());
  iovec open{nullptr, 0};
  auto copy = [&](uint8_t* from, size_t n) {
    if (open.iov_len == 0) open.iov_base = next;
    memcpy(next, from, n);
    next += n;
    open.iov_len += n;
    if (open.iov_len == kMaxGather) {
      packed.push_back(open);
      open = {nullptr, 0};
    }
  };
  for (const iovec& v : w.iov) {
    auto* p = static_cast<uint8_t*>(v.iov_base);
    size_t left = v.iov_len;
    if (left >= kMaxGather) {
      if (open.iov_len != 0) {
        size_t top = kMaxGather - open.iov_len;
        copy(p, top);
        p += top;
        left -= top;
      }
      if (left != 0) packed.push_back({p, left});
      continue;
    }
    while (left != 0) {
      size_t n = std::min(left, kMaxGather - open.iov_len);
      copy(p, n);
      p += n;
      left -= n;
    }
  }
  if (open.iov_len != 0) packed.push_back(open);
  w.iov = std::move(packed);
}

// shutdown() after all writes completed: close_notify then TCP FIN. Same return values as write().
Napi::Value TlsSocket::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (shutdownDone_) return Napi::Boolean::New(env, true);
  if (phase_ != Phase::kOpen || pendingWrite_) {
    return StateError("shutdown");
  }
  shutdownPending_ = true;
  int result = ContinueShutdown();
  if (result == 1) return Napi::Boolean::New(env, true);
  if (result < 0) return FailureObject(writeError_);
  UpdatePoll();
  return Napi::Boolean::New(env, false);
}

Napi::Value TlsSocket::Close(const Napi::CallbackInfo& info) {
  CloseAll();
  return info.Env().Undefined();
}

// An unreferenced socket does not keep the event loop alive (net.Socket.unref()): both handles follow.
Napi::Value TlsSocket::SetRef(const Napi::CallbackInfo& info) {
  if (handlesOpen_) {
    auto* poll = reinterpret_cast<uv_handle_t*>(&poll_);
    auto* timer = reinterpret_cast<uv_handle_t*>(&timer_);
    if (info[0].ToBoolean().Value()) {
      uv_ref(poll);
      uv_ref(timer);
    } else {
      uv_unref(poll);
      uv_unref(timer);
    }
  }
  return info.Env().Undefined();
}

Napi::Value TlsSocket::Counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("ticketsDiscarded", Napi::Number::New(env, static_cast<double>(counters_.ticketsDiscarded)));
  out.Set("bytesRead", Napi::Number::New(env, static_cast<double>(counters_.bytesRead)));
  out.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(counters_.bytesWritten)));
  out.Set("txSeqAtHandoff", Napi::Number::New(env, static_cast<double>(txSeqAtHandoff_)));
  out.Set("rxSeqAtHandoff", Napi::Number::New(env, static_cast<double>(rxSeqAtHandoff_)));
  out.Set("closeNotifyReceived", Napi::Boolean::New(env, counters_.closeNotifyReceived));
  out.Set("closeNotifySent", Napi::Boolean::New(env, counters_.closeNotifySent));
  out.Set("keyUpdatesSent", Napi::Number::New(env, static_cast<double>(counters_.keyUpdatesSent)));
  out.Set("keyUpdatesReceived", Napi::Number::New(env, static_cast<double>(counters_.keyUpdatesReceived)));
  out.Set("txRecords", Napi::Number::New(env, static_cast<double>(counters_.txRecords)));
  out.Set("rxRecords", Napi::Number::New(env, static_cast<double>(counters_.rxRecords)));
  out.Set("contextId", Napi::Number::New(env, contextId_));
  // Where the socket waits, for stall diagnostics: poll events armed, a write or KeyUpdate in progress.
  out.Set("pollEvents", Napi::Number::New(env, pollEvents_));
  out.Set("writePending", Napi::Boolean::New(env, pendingWrite_ != nullptr));
  out.Set("keyUpdateState", Napi::Number::New(env, static_cast<int>(keyUpdate_)));
  // For the security tests: our copies of the traffic secrets must be zeroed once the handshake is
  // over (counted byte by byte, not trusted from len), and in kernel mode OpenSSL's session is freed.
  size_t held = 0;
  for (uint8_t b : clientSecret_.bytes) held += b != 0;
  for (uint8_t b : serverSecret_.bytes) held += b != 0;
  out.Set("secretBytesHeld", Napi::Number::New(env, static_cast<double>(held)));
  out.Set("opensslSessionHeld", Napi::Boolean::New(env, ssl_ != nullptr));
  // Kernel TLS that can rekey keeps the current traffic secrets (native memory only) until close.
  out.Set("rekeySecretsHeld", Napi::Boolean::New(env, records_ && records_->kernel() && records_->CanUpdateKeys()));
  return out;
}

// Kernel record sequence numbers (getsockopt SOL_TLS), or null when the kernel does not hold the session.
Napi::Value TlsSocket::KernelState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t tx = 0;
  uint64_t rx = 0;
  if (!records_ || !records_->kernel() || fd_ < 0 || !ReadKernelSequences(fd_, suite_, &tx, &rx)) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("txSeq", Napi::Number::New(env, static_cast<double>(tx)));
  out.Set("rxSeq", Napi::Number::New(env, static_cast<double>(rx)));
  return out;
}

// updateKeys(requestPeer): our KeyUpdate, then TX on the next key, between two writes. Returns undefined
// (kEventKeysUpdated follows) or an error object.
Napi::Value TlsSocket::UpdateKeys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (phase_ != Phase::kOpen || shutdownPending_ || shutdownDone_) return StateError("updateKeys");
  if (!records_->CanUpdateKeys()) {
    Failure failure;
    failure.code = "ERR_TLS_KEY_UPDATE";
    failure.violation = "kernel_cannot_rekey";
    return FailureObject(failure);
  }
  keyUpdateWaiter_ = true;
  if (info.Length() > 0 && info[0].ToBoolean().Value()) keyUpdateRequestPeer_ = true;
  if (keyUpdate_ == KeyUpdate::kNone) keyUpdate_ = KeyUpdate::kDue;
  if (!pendingWrite_) {
    int result = StepKeyUpdate();
    if (result < 0) return FailureObject(writeError_);
  }
  UpdatePoll();
  return env.Undefined();
}

// ---- event loop plumbing ---------------------------------------------------------------------

void TlsSocket::UpdatePoll() {
  if (!handlesOpen_) return;
  int events = 0;
  switch (phase_) {
    case Phase::kHandshake: events = sslWantsWrite_ ? UV_WRITABLE : UV_READABLE; break;
    case Phase::kOpen:
      if (reading_ && !readEnded_) events |= UV_READABLE;
      if (reading_ && !readEnded_ && records_->ReadWantsWrite()) events |= UV_WRITABLE;
      if (pendingWrite_ || shutdownPending_ || keyUpdate_ == KeyUpdate::kSending) {
        events |= records_->WantsReadForWrite() ? UV_READABLE : UV_WRITABLE;
      }
      break;
    default: break;
  }
  if (events == pollEvents_) return;
  pollEvents_ = events;
  if (events == 0) {
    uv_poll_stop(&poll_);
  } else {
    uv_poll_start(&poll_, events, OnPoll);
  }
}

void TlsSocket::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<TlsSocket*>(handle->data);
  Napi::HandleScope scope(self->Env());
  if (status < 0) {
    // libuv reports EPOLLERR (e.g. a RST) as UV_EBADF and stops the watcher. Bytes queued before the
    // reset (often the peer's alert) are still readable, so let the normal path find the real cause.
    self->pollEvents_ = 0;
    if (++self->pollErrors_ > 2) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      self->Fail(SyscallFailure("poll", err != 0 ? err : -status));
      return;
    }
    events = UV_READABLE | UV_WRITABLE;
  } else {
    self->pollErrors_ = 0;
  }
  switch (self->phase_) {
    case Phase::kHandshake:
      self->StepHandshake();
      self->UpdatePoll();
      break;
    case Phase::kOpen: {
      if (self->pendingWrite_) {
        int result = self->ContinueWrite();
        if (result < 0) {
          self->Fail(self->writeError_);
          return;
        }
        if (result == 1) {
          self->UpdatePoll();
          self->Emit(kEventWriteDone, self->Env().Undefined());
        }
      } else if (self->keyUpdate_ == KeyUpdate::kSending) {
        if (self->StepKeyUpdate() < 0) {
          self->Fail(self->writeError_);
          return;
        }
      } else if (self->shutdownPending_) {
        int result = self->ContinueShutdown();
        if (result < 0) {
          self->Fail(self->writeError_);
          return;
        }
        if (result == 1) {
          self->UpdatePoll();
          self->Emit(kEventShutdownDone, self->Env().Undefined());
        }
      }
      if (self->phase_ == Phase::kOpen && self->reading_ &&
          ((events & UV_READABLE) || ((events & UV_WRITABLE) && self->records_->ReadWantsWrite()))) {
        self->ReadAvailable();
      }
      self->UpdatePoll();
      break;
    }
    default: break;
  }
}

void TlsSocket::OnTimer(uv_timer_t* handle) {
  auto* self = static_cast<TlsSocket*>(handle->data);
  Napi::HandleScope scope(self->Env());
  if (self->phase_ == Phase::kHandshake) {
    // libuv runs timers before polling: after the loop was busy, the peer's bytes may already be
    // waiting. Give the handshake one last non-blocking step before calling it a timeout.
    self->StepHandshake();
  }
  if (self->phase_ == Phase::kHandshake) {
    Failure failure;
    failure.code = "ERR_TLS_HANDSHAKE_TIMEOUT";
    failure.timeoutMs = self->handshakeTimeoutMs_;
    self->Fail(failure);
  } else if (self->phase_ == Phase::kOpen) {
    if (self->reportKeysUpdated_) {
      self->reportKeysUpdated_ = false;
      self->Emit(kEventKeysUpdated, self->Env().Undefined());
    }
    if (self->reportRekeyDue_ && self->phase_ == Phase::kOpen) {
      self->reportRekeyDue_ = false;
      self->Emit(kEventRekeyDue, self->Env().Undefined());
    }
    // Kicked by ReadStart for data buffered inside OpenSSL.
    if (self->phase_ == Phase::kOpen && self->reading_) self->ReadAvailable();
  }
}

void TlsSocket::OnHandleClosed(uv_handle_t* handle) {
  auto* self = static_cast<TlsSocket*>(handle->data);
  if (--self->openHandles_ == 0) self->Unref();
}

void TlsSocket::Emit(EventType type, Napi::Value arg) {
  Napi::Env env = Env();
  if (onevent_.IsEmpty() || !asyncContext_) return;  // closed: nobody listens any more
  emitting_++;
  try {
    onevent_.MakeCallback(Value(), {Napi::Number::New(env, type), arg}, *asyncContext_);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
  // close() from inside the callback defers dropping the callback and its async context to here.
  if (--emitting_ == 0 && releasePending_) ReleaseJsReferences();
}

void TlsSocket::Fail(const Failure& failure) {
  if (phase_ == Phase::kClosed || phase_ == Phase::kFailed) return;
  Fail(FailureObject(failure));
}

void TlsSocket::Fail(Napi::Object error) {
  if (phase_ == Phase::kClosed || phase_ == Phase::kFailed) return;
  phase_ = Phase::kFailed;
  UpdatePoll();
  if (handlesOpen_) uv_timer_stop(&timer_);
  Emit(kEventError, error);
}

void TlsSocket::CloseAll() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  pendingWrite_.reset();
  records_.reset();  // before the SSL it may use
  if (handlesOpen_) {
    handlesOpen_ = false;
    uv_poll_stop(&poll_);
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), OnHandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnHandleClosed);
  }
  ReleaseSsl();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (context_ != nullptr) context_->SocketClosed();  // contextRef_ keeps it alive until released
  ReleaseJsReferences();
}

// ---- OpenSSL callbacks -----------------------------------------------------------------------
// Set once on the shared SSL_CTX (tls_context.cc); each finds its socket through SSL app data.

void KeylogCallback(const SSL* ssl, const char* line) { TlsSocket::OnKeylog(ssl, line); }
int RequireAlpnClientHello(SSL* ssl, int* alert, void* arg) { return TlsSocket::OnClientHello(ssl, alert, arg); }

void TlsSocket::OnKeylog(const SSL* ssl, const char* line) {
  auto* self = static_cast<TlsSocket*>(SSL_get_app_data(ssl));
  if (self == nullptr) return;
  // "LABEL <client_random hex> <secret hex>"
  const char* firstSpace = strchr(line, ' ');
  const char* secondSpace = firstSpace ? strchr(firstSpace + 1, ' ') : nullptr;
  if (secondSpace != nullptr) {
    std::string label(line, firstSpace - line);
    const char* hex = secondSpace + 1;
    if (label == "CLIENT_TRAFFIC_SECRET_0") HexToSecret(hex, strlen(hex), &self->clientSecret_);
    if (label == "SERVER_TRAFFIC_SECRET_0") HexToSecret(hex, strlen(hex), &self->serverSecret_);
  }
  if (self->keylog_) self->keylogLines_.emplace_back(line);
}

// Counts records protected with the application traffic keys before the hand-off: they set the
// kernel's starting record sequence numbers.
void TlsSocket::OnMessage(int writeP, int, int contentType, const void* buf, size_t len, SSL*, void* arg) {
  auto* self = static_cast<TlsSocket*>(arg);
  const auto* bytes = static_cast<const uint8_t*>(buf);
  RecordCounters& counters = self->counters_;
  if (contentType == SSL3_RT_INNER_CONTENT_TYPE) {
    if (writeP && self->txAppKey_) {
      self->txRecordsAfterFinished_++;
      counters.txRecords++;
    }
    if (!writeP && self->rxAppKey_) {
      self->rxRecordsAfterFinished_++;
      counters.rxRecords++;
      counters.recordsSeen++;
      if (len > 0 && bytes[0] == SSL3_RT_APPLICATION_DATA) counters.keyUpdatesInARow = 0;
    }
  } else if (contentType == SSL3_RT_HANDSHAKE && len > 0 && bytes[0] == SSL3_MT_KEY_UPDATE) {
    // Userspace only (in kernel mode OpenSSL is gone by then): OpenSSL rotates, we count.
    if (writeP && counters.closeNotifySent) {
      // Answered after our close_notify: discarded unsent (records_openssl.cc), not counted.
    } else if (writeP) {
      counters.keyUpdatesSent++;
      counters.txRecords = 0;
    } else {
      counters.keyUpdatesReceived++;
      counters.keyUpdatesInARow++;
      counters.rxRecords = 0;
    }
  } else if (contentType == SSL3_RT_HANDSHAKE && len > 0) {
    // Our own Finished is the last record under our handshake key, the peer's likewise for reading.
    if (bytes[0] == SSL3_MT_FINISHED) (writeP ? self->txAppKey_ : self->rxAppKey_) = true;
    if (!writeP && bytes[0] == SSL3_MT_CERTIFICATE_REQUEST) self->certRequested_ = true;
    if (!writeP && bytes[0] == SSL3_MT_NEWSESSION_TICKET) self->counters_.ticketsDiscarded++;
  } else if (contentType == SSL3_RT_ALERT && len == 2) {
    (writeP ? self->sentAlert_ : self->receivedAlert_) = bytes[0] << 8 | bytes[1];
  }
}

int TlsSocket::OnClientHello(SSL* ssl, int* alert, void*) {
  auto* self = static_cast<TlsSocket*>(SSL_get_app_data(ssl));
  if (self == nullptr) return SSL_CLIENT_HELLO_SUCCESS;
  const unsigned char* ext = nullptr;
  size_t extLen = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &extLen) != 1) {
    self->alpnRejected_ = true;
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

void TlsSocket::FlushKeylog() {
  if (keylogLines_.empty()) return;
  std::vector<std::string> lines;
  lines.swap(keylogLines_);
  for (const std::string& line : lines) {
    if (phase_ == Phase::kClosed) return;
    Emit(kEventKeylog, Napi::String::New(Env(), line));
  }
}

// ---- handshake -------------------------------------------------------------------------------

void TlsSocket::StepHandshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  int savedErrno = errno;
  FlushKeylog();
  if (phase_ != Phase::kHandshake) return;  // closed from the keylog callback
  if (rc == 1) {
    FinishHandshake();
    return;
  }
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    sslWantsWrite_ = err == SSL_ERROR_WANT_WRITE;
    UpdatePoll();
    return;
  }
  Fail(HandshakeFailure(err, savedErrno));
}

void TlsSocket::FinishHandshake() {
  uv_timer_stop(&timer_);
  suite_ = static_cast<uint16_t>(SSL_CIPHER_get_id(SSL_get_current_cipher(ssl_)) & 0xffff);
  // RFC 8446 5.5: AES-GCM keys protect at most 2^24.5 full-size records; rotate at 2^24, well before.
  // ChaCha20-Poly1305's limit is beyond any connection's life.
  if (rekeyCipherDefaults_) rekeyRecords_ = suite_ == kSuiteChacha20Poly1305 ? 0 : uint64_t{1} << 24;
  const unsigned char* alpn = nullptr;
  unsigned alpnLen = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpnLen);
  if (alpn_ == AlpnMode::kRequire && !(alpnLen == 6 && memcmp(alpn, "sunrpc", 6) == 0)) {
    Failure failure;
    failure.code = "ERR_TLS_ALPN_REQUIRED";
    failure.violation = "not_selected";
    Fail(failure);
    return;
  }

  std::string reason;
  if (kernelPolicy_ == KernelTlsPolicy::kOff) {
    reason = "kernel TLS disabled by option";
  } else if (SSL_pending(ssl_) != 0 || SSL_has_pending(ssl_) != 0) {
    reason = "OpenSSL holds unprocessed bytes after the handshake";
  } else if (clientSecret_.len == 0 || serverSecret_.len == 0) {
    reason = "traffic secrets were not captured";
  } else {
    txSeqAtHandoff_ = txRecordsAfterFinished_;
    rxSeqAtHandoff_ = rxRecordsAfterFinished_;
    const TrafficSecret& tx = isServer_ ? serverSecret_ : clientSecret_;
    const TrafficSecret& rx = isServer_ ? clientSecret_ : serverSecret_;
    KtlsResult result = InstallKernelTls(fd_, suite_, tx, txSeqAtHandoff_, rx, rxSeqAtHandoff_, TxMaxPayload(ssl_));
    if (result.outcome == KtlsOutcome::kInstalled) {
      // Kept past the install only where the kernel can take the next ones (KeyUpdate).
      std::unique_ptr<KernelKeys> keys;
      if (KernelTlsCanRekey()) {
        keys = std::make_unique<KernelKeys>();
        keys->suite = suite_;
        keys->tx = tx;
        keys->rx = rx;
      }
      counters_.txRecords = txSeqAtHandoff_;
      counters_.rxRecords = rxSeqAtHandoff_;
      records_ = NewKernelRecords(fd_, &counters_, std::move(keys));
    } else if (result.outcome == KtlsOutcome::kFailed) {
      Failure failure;
      failure.code = "ERR_TLS_KTLS";
      failure.err = result.err;
      failure.step = result.step;
      Fail(failure);
      return;
    } else if (strcmp(result.step, "TCP_ULP") == 0 && result.err == ENOENT) {
      reason = std::string(ErrnoName(result.err)) + ": kernel has no TLS ULP (TCP_ULP \"tls\" unavailable)";
    } else if (strcmp(result.step, "TLS_TX_MAX_PAYLOAD_LEN") == 0) {
      reason = std::string(ErrnoName(result.err)) + ": the peer's record_size_limit (" + std::to_string(PeerRecordSizeLimit(ssl_)) +
               ") needs TLS_TX_MAX_PAYLOAD_LEN (Linux >= 6.19)";
    } else {
      reason = std::string(ErrnoName(result.err)) + ": setsockopt " + result.step + " failed (" + strerror(result.err) + ")";
    }
  }
  clientSecret_.Wipe();
  serverSecret_.Wipe();
  if (!records_ && kernelPolicy_ == KernelTlsPolicy::kRequire) {
    Failure failure;
    failure.code = "ERR_TLS_KTLS";
    failure.offloadReason = reason;
    Fail(failure);
    return;
  }
  bool kernel = records_ != nullptr;
  if (!kernel) records_ = NewOpenSslRecords(ssl_, &counters_, &receivedAlert_);
  Napi::Object info = BuildInfo(kernel ? nullptr : reason.c_str());
  if (kernel) {
    // The kernel owns the record layer now; SSL_free sends nothing and leaves the fd open.
    ReleaseSsl();
  }
  phase_ = Phase::kOpen;
  sslWantsWrite_ = false;
  UpdatePoll();
  Emit(kEventSecure, info);
}

Napi::Object TlsSocket::BuildInfo(const char* offloadReason) {
  Napi::Env env = Env();
  Napi::Object info = Napi::Object::New(env);
  info.Set("version", Napi::String::New(env, SSL_get_version(ssl_)));
  info.Set("cipher", Napi::String::New(env, SSL_CIPHER_standard_name(SSL_get_current_cipher(ssl_))));
  const unsigned char* alpn = nullptr;
  unsigned alpnLen = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpnLen);
  info.Set("alpn", alpnLen ? Napi::String::New(env, reinterpret_cast<const char*>(alpn), alpnLen) : env.Null());
  uint16_t recordSizeLimit = PeerRecordSizeLimit(ssl_);
  info.Set("recordSizeLimit", recordSizeLimit != 0 ? Napi::Number::New(env, recordSizeLimit) : env.Null());
  X509* peer = SSL_get0_peer_certificate(ssl_);
  long verifyResult = SSL_get_verify_result(ssl_);
  bool peerVerified = peer != nullptr && verifyResult == X509_V_OK;
  info.Set("peerVerified", Napi::Boolean::New(env, peerVerified));
  if (peer != nullptr && verifyResult != X509_V_OK) {
    info.Set("verifyError", Napi::String::New(env, X509_verify_cert_error_string(verifyResult)));
  }
  if (peer != nullptr) {
    int len = i2d_X509(peer, nullptr);
    auto der = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(len));
    uint8_t* p = der.Data();
    i2d_X509(peer, &p);
    info.Set("peerCertificate", der);
  } else {
    info.Set("peerCertificate", env.Null());
  }
  // mtls: the client's certificate was verified (server side), or we sent one on request (client side).
  bool mutual = isServer_ ? peerVerified : certRequested_ && SSL_get_certificate(ssl_) != nullptr;
  info.Set("authMode", Napi::String::New(env, mutual ? "mtls" : "tls"));
  // An external PSK was accepted (TLS 1.3: a resumed session is one, and this engine never resumes).
  info.Set("psk", Napi::Boolean::New(env, SSL_session_reused(ssl_) == 1));
  // The session keyring's key that gave the PSK (server with psk { keyring: 'session' }), else null.
  int pskKey = PskKeySerial(ssl_);
  info.Set("pskKeySerial", pskKey != 0 ? Napi::Value(Napi::Number::New(env, pskKey)) : env.Null());
  Napi::Object offload = Napi::Object::New(env);
  bool kernel = records_ && records_->kernel();
  offload.Set("tx", Napi::Boolean::New(env, kernel));
  offload.Set("rx", Napi::Boolean::New(env, kernel));
  offload.Set("reason", offloadReason ? Napi::Value(Napi::String::New(env, offloadReason)) : env.Null());
  // Kernel mode: whether this kernel can follow a KeyUpdate (Linux >= 6.14). Userspace always can.
  offload.Set("rekey", Napi::Boolean::New(env, !kernel || records_->CanUpdateKeys()));
  info.Set("offload", offload);
  return info;
}

// ---- read path -------------------------------------------------------------------------------

void TlsSocket::ReadAvailable() {
  // Bounded so one busy connection cannot hold the loop. What is left is read on the next readable
  // poll, except when the kernel decrypted a KeyUpdate record together with the last data: it keeps
  // that record aside and poll says "not readable" until the new key is in (Linux 6.14-7.2, tls_sk_poll),
  // so reading resumes from a timer until a read finds nothing.
  readDrained_ = false;
  for (int i = 0; i < 16 && phase_ == Phase::kOpen && reading_ && !readEnded_; i++) {
    size_t got = 0;
    Failure failure;
    ReadOutcome outcome = records_->Read(SharedReadBuffer(Env()), kReadSize, &got, &failure);
    if (outcome == ReadOutcome::kData) {
      DeliverData(got);
      continue;
    }
    if (outcome == ReadOutcome::kContinue) continue;
    if (outcome == ReadOutcome::kAgain) {
      readDrained_ = true;
      break;
    }
    if (outcome == ReadOutcome::kFailed) {
      Fail(failure);
      return;
    }
    readEnded_ = true;
    Emit(kEventEnd, Napi::Boolean::New(Env(), outcome == ReadOutcome::kCloseNotify));
    break;
  }
  if (phase_ == Phase::kOpen) KeyUpdateAfterRead();
  if (phase_ == Phase::kOpen && reading_ && !readEnded_ && !readDrained_ && handlesOpen_) {
    uv_timer_start(&timer_, OnTimer, 0, 0);
  }
  UpdatePoll();
}

// The peer's KeyUpdate may ask for ours, and the RX limit may call for one: send it now when the
// connection is between writes (else the next write sends it first).
void TlsSocket::KeyUpdateAfterRead() {
  CheckRekeyLimits();
  if (keyUpdate_ != KeyUpdate::kDue || pendingWrite_ || shutdownPending_ || shutdownDone_) return;
  if (StepKeyUpdate() < 0) Fail(writeError_);
}

void TlsSocket::DeliverData(size_t len) {
  Napi::Env env = Env();
  Napi::Buffer<uint8_t> chunk;
  if (len >= kReadSize / 2) {
    // Large reads go to JS as they are (the block returns to the pool when the GC frees the Buffer); the
    // next read takes another block.
    chunk = BlockBuffer(env, sharedReadBuffer, len);
    sharedReadBuffer = nullptr;
  } else {
    chunk = Napi::Buffer<uint8_t>::Copy(env, sharedReadBuffer, len);
  }
  Emit(kEventData, chunk);
}

// ---- write path ------------------------------------------------------------------------------

int TlsSocket::ContinueWrite() {
  // A due KeyUpdate goes out before the next data record, never inside a write.
  if (!pendingWrite_->started) {
    int step = StepKeyUpdate();
    if (step <= 0) return step;
    pendingWrite_->started = true;
  }
  Failure failure;
  IoOutcome outcome = records_->Write(*pendingWrite_, &failure);
  if (outcome == IoOutcome::kPending) return 0;
  pendingWrite_.reset();
  if (outcome == IoOutcome::kDone) {
    CheckRekeyLimits();
    return 1;
  }
  writeError_ = failure;
  return -1;
}

// Sets keyUpdate_ when the peer is owed one or a limit is reached. Only counters are compared here.
void TlsSocket::CheckRekeyLimits() {
  if (counters_.keyUpdatesSent != keyUpdatesSentSeen_) {
    keyUpdatesSentSeen_ = counters_.keyUpdatesSent;
    txBytesAtRekey_ = counters_.bytesWritten;
  }
  if (counters_.keyUpdatesReceived != keyUpdatesReceivedSeen_) {
    keyUpdatesReceivedSeen_ = counters_.keyUpdatesReceived;
    rxBytesAtRekey_ = counters_.bytesRead;
    peerUpdateAsked_ = false;
  }
  if (counters_.keyUpdateOwed && keyUpdate_ == KeyUpdate::kNone) keyUpdate_ = KeyUpdate::kDue;
  if (rekeyMode_ == RekeyMode::kOff || keyUpdate_ != KeyUpdate::kNone) return;
  bool tx = (rekeyRecords_ != 0 && counters_.txRecords >= rekeyRecords_) ||
            (rekeyBytes_ != 0 && counters_.bytesWritten - txBytesAtRekey_ >= rekeyBytes_);
  // The peer's key: asked for only at 1.5x the limit, so a peer with its own policy rotates first and
  // a rotation is not done twice.
  bool rx = !peerUpdateAsked_ &&
            ((rekeyRecords_ != 0 && counters_.rxRecords >= rekeyRecords_ + rekeyRecords_ / 2) ||
             (rekeyBytes_ != 0 && counters_.bytesRead - rxBytesAtRekey_ >= rekeyBytes_ + rekeyBytes_ / 2));
  if (!tx && !rx) return;
  if (rekeyMode_ == RekeyMode::kUpdate && records_->CanUpdateKeys()) {
    keyUpdate_ = KeyUpdate::kDue;
    // Our TX moves with any KeyUpdate we send; the peer's only when asked.
    if (rx) {
      keyUpdateRequestPeer_ = true;
      peerUpdateAsked_ = true;
    }
  } else if (!rekeyDueReported_) {
    rekeyDueReported_ = true;
    reportRekeyDue_ = true;
    if (handlesOpen_) uv_timer_start(&timer_, OnTimer, 0, 0);
  }
}

int TlsSocket::StepKeyUpdate() {
  if (keyUpdate_ == KeyUpdate::kNone) CheckRekeyLimits();
  if (keyUpdate_ == KeyUpdate::kNone) return 1;
  Failure failure;
  IoOutcome outcome = records_->UpdateKeys(keyUpdateRequestPeer_, &failure);
  if (outcome == IoOutcome::kPending) {
    keyUpdate_ = KeyUpdate::kSending;
    return 0;
  }
  keyUpdate_ = KeyUpdate::kNone;
  keyUpdateRequestPeer_ = false;
  if (outcome == IoOutcome::kFailed) {
    writeError_ = failure;
    return -1;
  }
  counters_.keyUpdateOwed = false;
  CheckRekeyLimits();
  if (keyUpdateWaiter_) {
    keyUpdateWaiter_ = false;
    reportKeysUpdated_ = true;
    if (handlesOpen_) uv_timer_start(&timer_, OnTimer, 0, 0);
  }
  return 1;
}

int TlsSocket::ContinueShutdown() {
  Failure failure;
  IoOutcome outcome = records_->Shutdown(&failure);
  if (outcome == IoOutcome::kPending) return 0;
  shutdownPending_ = false;
  if (outcome == IoOutcome::kFailed) {
    writeError_ = failure;
    return -1;
  }
  shutdownDone_ = true;
  ::shutdown(fd_, SHUT_WR);
  return 1;
}

// ---- errors ----------------------------------------------------------------------------------
// Codes and data only: src/tls/errors.ts picks the class and writes the message.

Napi::Object TlsSocket::FailureObject(const Failure& f) {
  Napi::Env env = Env();
  Napi::Object out = Napi::Object::New(env);
  auto number = [&](const char* name, double value) { out.Set(name, Napi::Number::New(env, value)); };
  out.Set("code", Napi::String::New(env, f.code != nullptr ? f.code : "ERR_TLS"));
  if (f.syscall != nullptr) out.Set("syscall", Napi::String::New(env, f.syscall));
  if (f.err != 0) {
    number("errno", f.err);
    out.Set("errnoName", Napi::String::New(env, ErrnoName(f.err)));
    out.Set("errnoText", Napi::String::New(env, strerror(f.err)));
  }
  if (f.alertDescription >= 0) {
    number("level", f.alertLevel);
    number("description", f.alertDescription);
    out.Set("received", Napi::Boolean::New(env, f.alertReceived));
  }
  if (f.sentAlert >= 0) number("sentAlert", f.sentAlert);
  if (f.verifyCode >= 0) number("verifyCode", static_cast<double>(f.verifyCode));
  if (!f.reason.empty()) out.Set("reason", Napi::String::New(env, f.reason));
  if (f.violation != nullptr) out.Set("violation", Napi::String::New(env, f.violation));
  if (f.recordType >= 0) number("recordType", f.recordType);
  if (f.handshakeType >= 0) number("handshakeType", f.handshakeType);
  if (f.length >= 0) number("length", static_cast<double>(f.length));
  if (f.step != nullptr) out.Set("step", Napi::String::New(env, f.step));
  if (!f.offloadReason.empty()) out.Set("offloadReason", Napi::String::New(env, f.offloadReason));
  if (f.timeoutMs != 0) number("timeoutMs", f.timeoutMs);
  if (f.count != 0) number("count", f.count);
  return out;
}

Napi::Object TlsSocket::StateError(const char* operation) {
  Failure failure;
  failure.code = "ERR_TLS_INVALID_STATE";
  failure.violation = operation;
  return FailureObject(failure);
}

Failure TlsSocket::HandshakeFailure(int sslError, int savedErrno) {
  unsigned long err = ERR_peek_last_error();
  int reason = ERR_GET_REASON(err);
  long verifyResult = ssl_ ? SSL_get_verify_result(ssl_) : X509_V_OK;
  Failure failure;
  bool peerLeft = sslError == SSL_ERROR_ZERO_RETURN || sslError == SSL_ERROR_SYSCALL || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING;
  if (SSL_is_server(ssl_) && peerLeft && BIO_number_read(SSL_get_rbio(ssl_)) == 0) {
    // Not one byte of TLS came before the client closed (or reset) the connection: it never started a
    // handshake (rpcinfo, a probe-only client). A code of its own, so callers need not count it a failure.
    failure.code = "ERR_TLS_NO_HANDSHAKE";
    if (sslError == SSL_ERROR_SYSCALL && savedErrno != 0) {
      failure.syscall = "handshake";
      failure.err = savedErrno;
    }
  } else if (alpnRejected_) {
    failure.code = "ERR_TLS_ALPN_REQUIRED";
    failure.violation = "not_offered";
  } else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && verifyResult != X509_V_OK) {
    failure.code = "ERR_TLS_CERT_VERIFY";
    failure.verifyCode = verifyResult;
    failure.reason = X509_verify_cert_error_string(verifyResult);
    if (verifyResult == X509_V_ERR_HOSTNAME_MISMATCH || verifyResult == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      if (PeerLeafLacksSubjectAltName(ssl_)) failure.violation = "no_subject_alt_name";
    }
  } else if (receivedAlert_ >= 0) {
    failure.code = "ERR_TLS_ALERT";
    failure.alertLevel = receivedAlert_ >> 8;
    failure.alertDescription = receivedAlert_ & 0xff;
    failure.alertReceived = true;
  } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    failure.code = "ERR_TLS_CERT_REQUIRED";
  } else if (sslError == SSL_ERROR_SYSCALL && savedErrno != 0) {
    failure = SyscallFailure("handshake", savedErrno);
  } else {
    failure.code = "ERR_TLS_HANDSHAKE";
    failure.reason = OpenSslReason(err);
  }
  if (failure.reason.empty() && err != 0) failure.reason = OpenSslReason(err);
  if (sentAlert_ >= 0) failure.sentAlert = sentAlert_ & 0xff;
  ERR_clear_error();
  return failure;
}

}  // namespace rpctls
