// SecureContext: one OpenSSL SSL_CTX per TLS configuration (TLS 1.3 only, the three suites KTLS can
// take), built once from PEM and shared by every TlsSocket of that configuration. Per-connection
// settings (server name check, SNI) live on each SSL; callbacks find their socket through SSL app data.
#pragma once

#include <napi.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rpctls {

enum class AlpnMode { kOffer, kRequire, kOff };

// Defined in tls_socket.cc: the keylog callback (captures the traffic secrets for kernel TLS) and the
// ClientHello check for alpn 'require'; both reach their TlsSocket through SSL_get_app_data.
void KeylogCallback(const SSL* ssl, const char* line);
int RequireAlpnClientHello(SSL* ssl, int* alert, void* arg);

// Set by the verify callback when the peer's leaf certificate failed the name check and carries no
// subjectAltName at all (OpenSSL does not keep a certificate that failed verification for later).
bool PeerLeafLacksSubjectAltName(const SSL* ssl);

// RFC 8449 record_size_limit the peer announced in this handshake (its value: TLS 1.3 counts the inner
// content type byte), or 0 when it announced none. What we send must fit it.
uint16_t PeerRecordSizeLimit(const SSL* ssl);

// Server with the PSK looked up in the session keyring: the serial of the key that was used, or 0.
int PskKeySerial(const SSL* ssl);

class SecureContext : public Napi::ObjectWrap<SecureContext> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Returns the SecureContext wrapped by value, or nullptr when it is not one.
  static SecureContext* FromValue(Napi::Env env, Napi::Value value);

  explicit SecureContext(const Napi::CallbackInfo& info);
  ~SecureContext() override;

  SSL_CTX* ctx() const { return ctx_; }
  bool isServer() const { return isServer_; }
  AlpnMode alpn() const { return alpn_; }
  uint32_t id() const { return id_; }
  bool hasPsk() const { return !pskKey_.empty(); }
  bool pskFromKeyring() const { return pskKeyring_; }
  const std::string& pskIdentity() const { return pskIdentity_; }
  const std::vector<unsigned char>& pskKey() const { return pskKey_; }
  bool pskSha384() const { return pskSha384_; }
  // Sockets created from this context and not yet closed (for tests and diagnostics).
  void SocketOpened() {
    liveSockets_++;
    socketsCreated_++;
  }
  void SocketClosed() { liveSockets_--; }

 private:
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value SetCrl(const Napi::CallbackInfo& info);
  void InstallCrl(Napi::Env env, Napi::Value crl);

  SSL_CTX* ctx_ = nullptr;
  bool isServer_ = false;
  AlpnMode alpn_ = AlpnMode::kOffer;
  uint32_t id_ = 0;
  int64_t liveSockets_ = 0;
  int64_t socketsCreated_ = 0;
  // The configured CAs (PEM), kept to build the verify store again when the CRL changes.
  std::string caPem_;
  bool hasCa_ = false;
  // TLS 1.3 external PSK (empty key: none).
  std::string pskIdentity_;
  std::vector<unsigned char> pskKey_;
  // Server: look the client's PSK identity up in the session keyring instead (as tlshd does).
  bool pskKeyring_ = false;
  bool pskSha384_ = false;  // the PSK is bound to SHA-384 (TLS_AES_256_GCM_SHA384), else SHA-256
  friend class TlsSocket;
};

}  // namespace rpctls
