// rpctls_native: the parts of RPC-with-TLS that JavaScript cannot do (fd ownership, OpenSSL session on
// a raw fd, kernel TLS setsockopt/recvmsg). Links no libssl: OpenSSL symbols resolve from the node
// process, so the headers must match the OpenSSL that process carries.
#include <errno.h>
#include <fcntl.h>
#include <napi.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <unistd.h>

#include <string>

#include "buffer_pool.h"
#include "keys.h"
#include "ktls.h"
#include "netlink.h"
#include "tls_socket.h"

namespace rpctls {
namespace {

Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    Napi::Error error = Napi::Error::New(info.Env(), std::string("dup failed: ") + ErrnoName(errno));
    error.Set("code", Napi::String::New(info.Env(), "ERR_TLS_SYSCALL"));
    error.Set("errno", Napi::Number::New(info.Env(), errno));
    throw error;
  }
  return Napi::Number::New(info.Env(), copy);
}

// { available, reason }: whether setsockopt(TCP_ULP, "tls") works on this kernel.
Napi::Value KernelTlsAvailable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int err = ProbeKernelTls();
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", Napi::Boolean::New(env, err == 0));
  out.Set("reason", err == 0 ? env.Null()
                             : Napi::Value(Napi::String::New(env, std::string(ErrnoName(err)) +
                                                                      (err == ENOENT ? ": kernel has no TLS ULP" : ""))));
  return out;
}

// { ulp: null | errno name, txMaxPayloadLen: null (not probed: no ULP) | 'ok' | errno name }.
Napi::Value KernelTlsFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int maxPayloadErr = -1;
  int err = ProbeKernelTlsFeatures(&maxPayloadErr);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ulp", err == 0 ? env.Null() : Napi::Value(Napi::String::New(env, ErrnoName(err))));
  out.Set("txMaxPayloadLen", maxPayloadErr < 0 ? env.Null()
                             : Napi::Value(Napi::String::New(env, maxPayloadErr == 0 ? "ok" : ErrnoName(maxPayloadErr))));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  unsigned long runtime = OpenSSL_version_num();
  // Major version in the top nibble for OpenSSL >= 3 (0xMNN00PP0L): within 3.x the symbols used here are
  // stable. Proven on (2026-12): Node 20.20 with OpenSSL 3.0.19; the official Node 22.23, 24.22 and 26.12
  // builds (bundled OpenSSL 3.5.9; .ci/run); Debian trixie's nodejs 20.19 on the system OpenSSL 3.5 and sid's
  // nodejs 24.22 on the system OpenSSL 3.6.5 (npm run interop).
  if ((runtime >> 28) != (OPENSSL_VERSION_NUMBER >> 28)) {
    char message[256];
    snprintf(message, sizeof(message),
             "rpctls_native was built against OpenSSL headers 0x%lx but node runs OpenSSL 0x%lx (%s); "
             "rebuild the addon for this node (npm rebuild / node-gyp rebuild)",
             static_cast<unsigned long>(OPENSSL_VERSION_NUMBER), runtime, OpenSSL_version(OPENSSL_VERSION));
    Napi::Error error = Napi::Error::New(env, message);
    error.Set("code", Napi::String::New(env, "ERR_TLS_OPENSSL_MISMATCH"));
    throw error;
  }
  exports.Set("SecureContext", SecureContext::Init(env));
  exports.Set("TlsSocket", TlsSocket::Init(env));
  exports.Set("NetlinkSocket", NetlinkSocket::Init(env));
  exports.Set("peerAddress", Napi::Function::New(env, PeerAddress, "peerAddress"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("pooledBuffer", Napi::Function::New(env, PooledBuffer, "pooledBuffer"));
  exports.Set("blockPoolStats", Napi::Function::New(env, BlockPoolStats, "blockPoolStats"));
  exports.Set("kernelTlsAvailable", Napi::Function::New(env, KernelTlsAvailable, "kernelTlsAvailable"));
  exports.Set("kernelTlsFeatures", Napi::Function::New(env, KernelTlsFeatures, "kernelTlsFeatures"));
#ifdef __linux__
  InitKeys(env, exports);
#endif
  exports.Set("opensslVersion", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)));
  exports.Set("opensslHeaderVersion", Napi::String::New(env, OPENSSL_VERSION_TEXT));
  return exports;
}

}  // namespace
}  // namespace rpctls

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return rpctls::Init(env, exports); }

NODE_API_MODULE(rpctls_native, InitAddon)
