#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "ktls.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace rpctls {
namespace {

// Generic netlink messages of the handshake family are small; 64 KiB holds any datagram the kernel
// sends (it never exceeds a page plus headers for this family).
constexpr size_t kReceiveSize = 64 * 1024;

Napi::Object ErrnoObject(Napi::Env env, const char* syscall, int err) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("code", Napi::String::New(env, "ERR_NETLINK_SYSCALL"));
  out.Set("message", Napi::String::New(env, std::string(syscall) + ": " + ErrnoName(err) + " (" + strerror(err) + ")"));
  out.Set("syscall", Napi::String::New(env, syscall));
  out.Set("errno", Napi::Number::New(env, err));
  out.Set("errnoName", Napi::String::New(env, ErrnoName(err)));
  return out;
}

[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int err) {
  Napi::Object info = ErrnoObject(env, syscall, err);
  Napi::Error error = Napi::Error::New(env, info.Get("message").As<Napi::String>().Utf8Value());
  error.Set("code", info.Get("code"));
  error.Set("syscall", info.Get("syscall"));
  error.Set("errno", info.Get("errno"));
  error.Set("errnoName", info.Get("errnoName"));
  throw error;
}

}  // namespace

Napi::Function NetlinkSocket::Init(Napi::Env env) {
  return DefineClass(env, "NetlinkSocket",
                     {
                         InstanceMethod<&NetlinkSocket::Send>("send"),
                         InstanceMethod<&NetlinkSocket::AddMembership>("addMembership"),
                         InstanceMethod<&NetlinkSocket::PortId>("portId"),
                         InstanceMethod<&NetlinkSocket::Close>("close"),
                     });
}

// new NetlinkSocket(protocol, onmessage(buffer | errorObject)). Starts reading at once.
NetlinkSocket::NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "NetlinkSocket(protocol, onmessage)");
  }
  int protocol = info[0].As<Napi::Number>().Int32Value();
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) ThrowErrno(env, "socket(AF_NETLINK)", errno);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    ThrowErrno(env, "bind(AF_NETLINK)", err);
  }
  // Tell the kernel to report errors of our requests with the request's header only (less to parse).
  int one = 1;
  setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  onmessage_ = Napi::Persistent(info[1].As<Napi::Function>());
  asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "RpcTlsNetlink", Value());
  buffer_ = static_cast<uint8_t*>(malloc(kReceiveSize));
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  if (uv_poll_init_socket(loop, &poll_, fd_) != 0) throw Napi::Error::New(env, "uv_poll_init_socket failed");
  poll_.data = this;
  pollOpen_ = true;
  uv_poll_start(&poll_, UV_READABLE, OnPoll);
  Ref();  // released when the poll handle is closed
}

NetlinkSocket::~NetlinkSocket() {
  if (fd_ >= 0) ::close(fd_);
  free(buffer_);
}

void NetlinkSocket::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<NetlinkSocket*>(handle->data);
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  for (int i = 0; i < 64 && self->fd_ >= 0; i++) {
    ssize_t n = recv(self->fd_, self->buffer_, kReceiveSize, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      // ENOBUFS: the socket overran and notifications were lost; the caller decides what to do.
      self->Deliver(ErrnoObject(env, "recv", errno));
      if (errno != ENOBUFS) return;
      continue;
    }
    self->Deliver(Napi::Buffer<uint8_t>::Copy(env, self->buffer_, static_cast<size_t>(n)));
  }
}

void NetlinkSocket::Deliver(Napi::Value arg) {
  if (onmessage_.IsEmpty()) return;
  try {
    onmessage_.MakeCallback(Value(), {arg}, *asyncContext_);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(Env(), e.Value());  // a throwing JS callback is an uncaught exception
  }
}

// send(buffer) -> true, or an error object. Netlink to the kernel never blocks for long: EAGAIN is
// reported, not queued.
Napi::Value NetlinkSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) return ErrnoObject(env, "send", EBADF);
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n = sendto(fd_, buf.Data(), buf.Length(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
  if (n < 0) return ErrnoObject(env, "sendto", errno);
  return Napi::Boolean::New(env, true);
}

Napi::Value NetlinkSocket::AddMembership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int group = info[0].As<Napi::Number>().Int32Value();
  if (setsockopt(fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) != 0) {
    ThrowErrno(env, "setsockopt(NETLINK_ADD_MEMBERSHIP)", errno);
  }
  return env.Undefined();
}

Napi::Value NetlinkSocket::PortId(const Napi::CallbackInfo& info) {
  sockaddr_nl local{};
  socklen_t len = sizeof(local);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
  return Napi::Number::New(info.Env(), local.nl_pid);
}

Napi::Value NetlinkSocket::Close(const Napi::CallbackInfo& info) {
  if (pollOpen_) {
    pollOpen_ = false;
    uv_poll_stop(&poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* handle) {
      static_cast<NetlinkSocket*>(handle->data)->Unref();
    });
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  onmessage_.Reset();
  return info.Env().Undefined();
}

// peerAddress(fd) -> { address, port, family } of a connected socket, or null.
Napi::Value PeerAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  sockaddr_storage peer{};
  socklen_t len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return env.Null();
  char text[INET6_ADDRSTRLEN] = {0};
  Napi::Object out = Napi::Object::New(env);
  if (peer.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&peer);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    out.Set("port", Napi::Number::New(env, ntohs(in->sin_port)));
    out.Set("family", Napi::String::New(env, "IPv4"));
  } else if (peer.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&peer);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    out.Set("port", Napi::Number::New(env, ntohs(in6->sin6_port)));
    out.Set("family", Napi::String::New(env, "IPv6"));
  } else {
    return env.Null();
  }
  out.Set("address", Napi::String::New(env, text));
  return out;
}

}  // namespace rpctls
