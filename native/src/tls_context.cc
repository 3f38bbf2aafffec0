#include "tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <memory>

namespace rpctls {
namespace {

constexpr char kDefaultSuites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

[[noreturn]] void ThrowOpenSsl(Napi::Env env, const char* what) {
  char detail[256] = "";
  unsigned long err = ERR_peek_last_error();
  if (err != 0) ERR_error_string_n(err, detail, sizeof(detail));
  ERR_clear_error();
  Napi::Error error = Napi::Error::New(env, std::string(what) + (err ? ": " + std::string(detail) : ""));
  error.Set("code", Napi::String::New(env, "ERR_TLS_INVALID_PEM"));
  throw error;
}

std::unique_ptr<BIO, BioDeleter> PemBio(Napi::Value value) {
  if (value.IsBuffer()) {
    auto buf = value.As<Napi::Buffer<char>>();
    return std::unique_ptr<BIO, BioDeleter>(BIO_new_mem_buf(buf.Data(), static_cast<int>(buf.Length())));
  }
  std::string text = value.As<Napi::String>().Utf8Value();
  // BIO_new_mem_buf does not copy: keep the text in a memory BIO that owns its data.
  BIO* bio = BIO_new(BIO_s_mem());
  BIO_write(bio, text.data(), static_cast<int>(text.size()));
  return std::unique_ptr<BIO, BioDeleter>(bio);
}

void LoadCertificateChain(Napi::Env env, SSL_CTX* ctx, Napi::Value pem) {
  auto bio = PemBio(pem);
  X509* leaf = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    X509_free(leaf);
    ThrowOpenSsl(env, "cannot load certificate");
  }
  X509_free(leaf);
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      ThrowOpenSsl(env, "cannot add chain certificate");
    }
  }
  ERR_clear_error();  // the loop ends on a "no start line" error
}

void LoadKey(Napi::Env env, SSL_CTX* ctx, Napi::Value pem) {
  auto bio = PemBio(pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  bool ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok) ThrowOpenSsl(env, "cannot load private key");
}

void LoadCa(Napi::Env env, SSL_CTX* ctx, Napi::Value pem) {
  auto bio = PemBio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
    count++;
  }
  ERR_clear_error();
  if (count == 0) ThrowOpenSsl(env, "no certificate found in ca");
}

// rejectUnauthorized=false: finish the handshake and let the caller read the verify result.
int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

int SelectSunrpc(SSL*, const unsigned char** out, unsigned char* outLen, const unsigned char* in,
                 unsigned inLen, void*) {
  for (unsigned i = 0; i < inLen;) {
    unsigned len = in[i];
    if (len == 6 && i + 1 + len <= inLen && memcmp(in + i + 1, "sunrpc", 6) == 0) {
      *out = in + i + 1;
      *outLen = 6;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  // RFC 9289: a server selects only "sunrpc"; a client that offered only other protocols is refused.
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

SSL_CTX* CreateContext(Napi::Env env, const ContextOptions& options, Napi::Object pem) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(options.isServer ? TLS_server_method() : TLS_client_method()));
  if (!ctx) ThrowOpenSsl(env, "SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  const char* suites = options.ciphersuites.empty() ? kDefaultSuites : options.ciphersuites.c_str();
  if (SSL_CTX_set_ciphersuites(ctx.get(), suites) != 1) ThrowOpenSsl(env, "invalid ciphersuites");
  // The kernel takes over exactly where OpenSSL stopped: OpenSSL must not read past the handshake.
  SSL_CTX_set_read_ahead(ctx.get(), 0);
  // Tickets from a per-connection context could never be used, and each one shifts the TX sequence.
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_clear_mode(ctx.get(), SSL_MODE_AUTO_RETRY);

  Napi::Value cert = pem.Get("cert");
  Napi::Value key = pem.Get("key");
  Napi::Value ca = pem.Get("ca");
  if (!cert.IsUndefined()) LoadCertificateChain(env, ctx.get(), cert);
  if (!key.IsUndefined()) LoadKey(env, ctx.get(), key);
  if (!ca.IsUndefined()) {
    LoadCa(env, ctx.get(), ca);
  } else {
    SSL_CTX_set_default_verify_paths(ctx.get());
  }

  int verifyMode = SSL_VERIFY_NONE;
  if (!options.isServer) {
    verifyMode = SSL_VERIFY_PEER;
  } else if (options.requestCert || options.requireClientCert) {
    verifyMode = SSL_VERIFY_PEER | (options.requireClientCert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  }
  SSL_CTX_set_verify(ctx.get(), verifyMode, options.rejectUnauthorized ? nullptr : AcceptAnyCertificate);

  if (options.isServer && options.alpn != AlpnMode::kOff) {
    SSL_CTX_set_alpn_select_cb(ctx.get(), SelectSunrpc, nullptr);
  }
  ERR_clear_error();
  return ctx.release();
}

}  // namespace rpctls
