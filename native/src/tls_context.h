// Builds the OpenSSL context for one connection: TLS 1.3 only, the three suites KTLS can take.
#pragma once

#include <napi.h>
#include <openssl/ssl.h>

#include <string>

namespace rpctls {

enum class AlpnMode { kOffer, kRequire, kOff };

struct ContextOptions {
  bool isServer = false;
  bool rejectUnauthorized = true;
  bool requestCert = false;
  bool requireClientCert = false;
  AlpnMode alpn = AlpnMode::kOffer;
  std::string ciphersuites;
};

// Throws a JS error (Napi::Error) on bad PEM input.
SSL_CTX* CreateContext(Napi::Env env, const ContextOptions& options, Napi::Object pem);

}  // namespace rpctls
