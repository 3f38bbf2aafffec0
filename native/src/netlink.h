// A netlink socket for the handshake agent: open, bind, join multicast groups, send and receive whole
// datagrams on the event loop (uv_poll). Message encoding and decoding live in JS (src/agent).
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>

namespace rpctls {

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit NetlinkSocket(const Napi::CallbackInfo& info);
  ~NetlinkSocket() override;

 private:
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value AddMembership(const Napi::CallbackInfo& info);
  Napi::Value PortId(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Deliver(Napi::Value arg);

  int fd_ = -1;
  uint8_t* buffer_ = nullptr;
  uv_poll_t poll_;
  bool pollOpen_ = false;
  Napi::FunctionReference onmessage_;
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
};

Napi::Value PeerAddress(const Napi::CallbackInfo& info);

}  // namespace rpctls
