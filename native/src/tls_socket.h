// One TLS 1.3 connection on a file descriptor the addon owns: handshake on the event-loop thread
// (uv_poll + uv_timer), then kernel TLS when the kernel has it, else the same session in userspace.
#pragma once

#include <napi.h>
#include <openssl/ssl.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "ktls.h"
#include "records.h"
#include "tls_context.h"

namespace rpctls {

// Event numbers passed to the JS `onevent(type, arg)` callback.
enum EventType {
  kEventSecure = 1,    // arg: info object
  kEventData = 2,      // arg: Buffer
  kEventEnd = 3,       // arg: true when the peer sent close_notify, false on a bare TCP FIN
  kEventError = 4,     // arg: { code, message, ...wire values }
  kEventWriteDone = 5,
  kEventShutdownDone = 6,
  kEventKeylog = 7,    // arg: SSLKEYLOGFILE line
  kEventKeysUpdated = 8,  // an updateKeys() call completed (arg: undefined)
  kEventRekeyDue = 9,     // the rekey limits were reached and this socket does not rotate by itself
};

enum class KernelTlsPolicy { kOff, kAuto, kRequire };

// What reaching the rekey limits does: nothing, our own KeyUpdate, or tell JS (which reconnects).
enum class RekeyMode { kOff, kUpdate, kReconnect };

class TlsSocket : public Napi::ObjectWrap<TlsSocket> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit TlsSocket(const Napi::CallbackInfo& info);
  ~TlsSocket() override;

 private:
  enum class Phase { kIdle, kHandshake, kOpen, kFailed, kClosed };


  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value ReadStart(const Napi::CallbackInfo& info);
  Napi::Value ReadStop(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Counters(const Napi::CallbackInfo& info);
  Napi::Value KernelState(const Napi::CallbackInfo& info);
  Napi::Value UpdateKeys(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnTimer(uv_timer_t* handle);
  static void OnHandleClosed(uv_handle_t* handle);
  friend void KeylogCallback(const SSL* ssl, const char* line);
  friend int RequireAlpnClientHello(SSL* ssl, int* alert, void* arg);
  static void OnKeylog(const SSL* ssl, const char* line);
  static void OnMessage(int writeP, int version, int contentType, const void* buf, size_t len, SSL* ssl,
                        void* arg);
  static int OnClientHello(SSL* ssl, int* alert, void* arg);
  void ReleaseJsReferences();

  void UpdatePoll();
  void StepHandshake();
  void FinishHandshake();
  Napi::Object BuildInfo(const char* offloadReason);
  void ReadAvailable();
  void DeliverData(size_t len);
  static void PackRecords(PendingWrite& w);
  int ContinueWrite();         // 1 done, 0 pending, -1 failed (error stored in writeError_)
  int ContinueShutdown();
  int StepKeyUpdate();         // 1 nothing (more) to do, 0 pending, -1 failed (writeError_)
  void CheckRekeyLimits();
  void KeyUpdateAfterRead();
  void Fail(const Failure& failure);
  void Fail(Napi::Object error);
  void FlushKeylog();
  void Emit(EventType type, Napi::Value arg);
  void ReleaseSsl();
  void CloseAll();

  Napi::Object FailureObject(const Failure& failure);
  Napi::Object StateError(const char* operation);
  Failure HandshakeFailure(int sslError, int savedErrno);

  int fd_ = -1;
  bool isServer_ = false;
  Phase phase_ = Phase::kIdle;
  // Set when the handshake completes: kernel TLS or OpenSSL records, chosen once.
  std::unique_ptr<RecordLayer> records_;
  RecordCounters counters_;
  KernelTlsPolicy kernelPolicy_ = KernelTlsPolicy::kAuto;
  AlpnMode alpn_ = AlpnMode::kOffer;
  bool keylog_ = false;
  uint32_t handshakeTimeoutMs_ = 10000;
  std::string servername_;

  SecureContext* context_ = nullptr;  // kept alive by contextRef_ until close
  Napi::ObjectReference contextRef_;
  uint32_t contextId_ = 0;
  SSL* ssl_ = nullptr;
  uint16_t suite_ = 0;
  TrafficSecret clientSecret_;
  TrafficSecret serverSecret_;
  std::vector<std::string> keylogLines_;

  // Filled by the OpenSSL message callback.
  bool txAppKey_ = false;
  bool rxAppKey_ = false;
  uint64_t txRecordsAfterFinished_ = 0;
  uint64_t rxRecordsAfterFinished_ = 0;
  bool certRequested_ = false;
  bool alpnRejected_ = false;
  int receivedAlert_ = -1;  // level << 8 | description
  int sentAlert_ = -1;

  uv_poll_t poll_;
  uv_timer_t timer_;
  bool handlesOpen_ = false;
  int openHandles_ = 0;
  int pollEvents_ = 0;
  int pollErrors_ = 0;
  bool sslWantsWrite_ = false;

  bool reading_ = false;
  bool readEnded_ = false;
  bool readDrained_ = true;  // the last read pass ended on "nothing more" (not on a bound or a stop)
  std::unique_ptr<PendingWrite> pendingWrite_;
  bool shutdownPending_ = false;
  bool shutdownDone_ = false;
  Failure writeError_;

  // Key updates: requested by JS or by the peer (counters_.keyUpdateOwed), or due by the limits.
  enum class KeyUpdate { kNone, kDue, kSending };
  KeyUpdate keyUpdate_ = KeyUpdate::kNone;
  bool keyUpdateRequestPeer_ = false;
  bool keyUpdateWaiter_ = false;     // JS awaits kEventKeysUpdated
  bool reportKeysUpdated_ = false;   // emitted from the timer, never from inside a JS call
  bool reportRekeyDue_ = false;
  bool rekeyDueReported_ = false;
  bool peerUpdateAsked_ = false;     // our KeyUpdate asked the peer for its own; not answered yet
  RekeyMode rekeyMode_ = RekeyMode::kOff;
  uint64_t rekeyRecords_ = 0;        // 0: no record limit
  uint64_t rekeyBytes_ = 0;          // 0: no byte limit
  bool rekeyCipherDefaults_ = false; // the limits come from the negotiated cipher
  uint64_t txBytesAtRekey_ = 0;
  uint64_t rxBytesAtRekey_ = 0;
  uint64_t keyUpdatesSentSeen_ = 0;
  uint64_t keyUpdatesReceivedSeen_ = 0;

  uint64_t txSeqAtHandoff_ = 0;
  uint64_t rxSeqAtHandoff_ = 0;

  int emitting_ = 0;
  bool releasePending_ = false;
  Napi::FunctionReference onevent_;
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
};

}  // namespace rpctls
