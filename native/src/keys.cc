// Kernel keyrings (keyctl(2), add_key(2)) for the handshake agent: the kernel hands identities to tlshd
// as key serials (certificates, private keys, PSKs). Called through the syscall directly, so the addon
// needs no libkeyutils. Payloads may be private keys or PSKs: every native copy is wiped before it is
// freed; the JS side gets one Buffer it wipes itself after use.
#include <errno.h>
#include <napi.h>
#include <openssl/crypto.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "keys.h"
#include "ktls.h"

namespace rpctls {
namespace {

// uapi/linux/keyctl.h (the header is not installed everywhere).
constexpr int kKeyctlDescribe = 6;
constexpr int kKeyctlLink = 8;
constexpr int kKeyctlUnlink = 9;
constexpr int kKeyctlSearch = 10;
constexpr int kKeyctlRead = 11;

// A certificate or key is a few KiB; a keyring with thousands of keys still fits. More is refused
// rather than allocated on the kernel's word.
constexpr long kMaxPayload = 1 << 20;

[[noreturn]] void ThrowKeyError(Napi::Env env, const char* what, int serial, int err) {
  std::string message = std::string(what) + (serial != 0 ? " " + std::to_string(serial) : std::string()) + ": " +
                        ErrnoName(err) + " (" + strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_KEYRING"));
  error.Set("operation", Napi::String::New(env, what));
  error.Set("serial", Napi::Number::New(env, serial));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("errnoName", Napi::String::New(env, ErrnoName(err)));
  throw error;
}

long Keyctl(int op, unsigned long a2, unsigned long a3 = 0, unsigned long a4 = 0, unsigned long a5 = 0) {
  return syscall(SYS_keyctl, op, a2, a3, a4, a5);
}

int SerialArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "key serial must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// The payload in a wiped vector; the size is asked first, and asked again if the key grew meanwhile.
bool ReadPayload(int serial, std::vector<char>* out, int* err) {
  for (int attempt = 0; attempt < 3; attempt++) {
    long size = Keyctl(kKeyctlRead, static_cast<unsigned long>(serial), 0, 0);
    if (size < 0) {
      *err = errno;
      return false;
    }
    if (size > kMaxPayload) {
      *err = EFBIG;
      return false;
    }
    std::vector<char> buf(static_cast<size_t>(size) + 1);
    long got = Keyctl(kKeyctlRead, static_cast<unsigned long>(serial), reinterpret_cast<unsigned long>(buf.data()),
                      buf.size());
    if (got < 0) {
      *err = errno;
      OPENSSL_cleanse(buf.data(), buf.size());
      return false;
    }
    if (static_cast<size_t>(got) <= buf.size()) {
      buf.resize(static_cast<size_t>(got));
      out->swap(buf);
      return true;
    }
    OPENSSL_cleanse(buf.data(), buf.size());
  }
  *err = EAGAIN;
  return false;
}

// keyRead(serial): Buffer with the key's payload (KEYCTL_READ; a keyring reads as its u32 serials).
Napi::Value KeyRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int serial = SerialArg(info, 0);
  std::vector<char> payload;
  int err = 0;
  if (!ReadPayload(serial, &payload, &err)) ThrowKeyError(env, "KEYCTL_READ", serial, err);
  Napi::Buffer<char> result = Napi::Buffer<char>::Copy(env, payload.data(), payload.size());
  OPENSSL_cleanse(payload.data(), payload.size());
  return result;
}

// keyDescribe(serial): "type;uid;gid;perm;description" (KEYCTL_DESCRIBE).
Napi::Value KeyDescribe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int serial = SerialArg(info, 0);
  std::vector<char> buf(256);
  for (;;) {
    long size = Keyctl(kKeyctlDescribe, static_cast<unsigned long>(serial), reinterpret_cast<unsigned long>(buf.data()),
                       buf.size());
    if (size < 0) ThrowKeyError(env, "KEYCTL_DESCRIBE", serial, errno);
    if (static_cast<size_t>(size) <= buf.size()) {
      // The kernel counts the terminating NUL.
      return Napi::String::New(env, buf.data(), size > 0 ? static_cast<size_t>(size) - 1 : 0);
    }
    if (size > kMaxPayload) ThrowKeyError(env, "KEYCTL_DESCRIBE", serial, EFBIG);
    buf.resize(static_cast<size_t>(size));
  }
}

// keyLink(serial, keyring) / keyUnlink(serial, keyring): keyring may be a special id (-3: session).
Napi::Value KeyLink(const Napi::CallbackInfo& info) {
  int serial = SerialArg(info, 0);
  int ring = SerialArg(info, 1);
  if (Keyctl(kKeyctlLink, static_cast<unsigned long>(serial), static_cast<unsigned long>(ring)) < 0) {
    ThrowKeyError(info.Env(), "KEYCTL_LINK", serial, errno);
  }
  return info.Env().Undefined();
}

Napi::Value KeyUnlink(const Napi::CallbackInfo& info) {
  int serial = SerialArg(info, 0);
  int ring = SerialArg(info, 1);
  if (Keyctl(kKeyctlUnlink, static_cast<unsigned long>(serial), static_cast<unsigned long>(ring)) < 0) {
    ThrowKeyError(info.Env(), "KEYCTL_UNLINK", serial, errno);
  }
  return info.Env().Undefined();
}

// keySearch(keyring, type, description): the serial of a matching key reachable from keyring, or
// null (ENOKEY). Other errors throw.
Napi::Value KeySearch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ring = SerialArg(info, 0);
  std::string type = info[1].As<Napi::String>().Utf8Value();
  std::string description = info[2].As<Napi::String>().Utf8Value();
  long serial = Keyctl(kKeyctlSearch, static_cast<unsigned long>(ring), reinterpret_cast<unsigned long>(type.c_str()),
                       reinterpret_cast<unsigned long>(description.c_str()), 0);
  if (serial < 0) {
    if (errno == ENOKEY || errno == EKEYREVOKED || errno == EKEYEXPIRED) return env.Null();
    ThrowKeyError(env, "KEYCTL_SEARCH", ring, errno);
  }
  return Napi::Number::New(env, static_cast<double>(serial));
}

// keyAdd(type, description, payload, keyring): serial (add_key(2)). The payload Buffer is the caller's.
Napi::Value KeyAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string type = info[0].As<Napi::String>().Utf8Value();
  std::string description = info[1].As<Napi::String>().Utf8Value();
  if (!info[2].IsBuffer()) throw Napi::TypeError::New(env, "payload must be a Buffer");
  auto payload = info[2].As<Napi::Buffer<char>>();
  int ring = SerialArg(info, 3);
  long serial = syscall(SYS_add_key, type.c_str(), description.c_str(), payload.Data(), payload.Length(), ring);
  if (serial < 0) ThrowKeyError(env, "add_key", 0, errno);
  return Napi::Number::New(env, static_cast<double>(serial));
}

}  // namespace

long SearchKey(int keyring, const char* type, const char* description) {
  return Keyctl(kKeyctlSearch, static_cast<unsigned long>(keyring), reinterpret_cast<unsigned long>(type),
                reinterpret_cast<unsigned long>(description), 0);
}

bool ReadKeyPayload(int serial, std::vector<unsigned char>* out, int* err) {
  std::vector<char> payload;
  if (!ReadPayload(serial, &payload, err)) return false;
  out->assign(payload.begin(), payload.end());
  OPENSSL_cleanse(payload.data(), payload.size());
  return true;
}

void InitKeys(Napi::Env env, Napi::Object exports) {
  Napi::Object keys = Napi::Object::New(env);
  keys.Set("read", Napi::Function::New(env, KeyRead, "keyRead"));
  keys.Set("describe", Napi::Function::New(env, KeyDescribe, "keyDescribe"));
  keys.Set("link", Napi::Function::New(env, KeyLink, "keyLink"));
  keys.Set("unlink", Napi::Function::New(env, KeyUnlink, "keyUnlink"));
  keys.Set("search", Napi::Function::New(env, KeySearch, "keySearch"));
  keys.Set("add", Napi::Function::New(env, KeyAdd, "keyAdd"));
  exports.Set("keys", keys);
}

}  // namespace rpctls
