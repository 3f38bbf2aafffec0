#include "tls_context.h"

#ifdef __linux__
#include "keys.h"
#endif

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <memory>

namespace rpctls {
namespace {

constexpr char kDefaultSuites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

uint32_t nextContextId = 1;

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

// C++ reports what failed (which option, OpenSSL's reason); src/tls/context.ts writes the message.
[[noreturn]] void ThrowConfig(Napi::Env env, const char* option, const char* problem) {
  unsigned long err = ERR_peek_last_error();
  const char* reason = err != 0 ? ERR_reason_error_string(err) : nullptr;
  ERR_clear_error();
  Napi::Error error = Napi::Error::New(env, std::string(option) + ": " + problem);
  error.Set("code", Napi::String::New(env, "ERR_TLS_INVALID_CONFIG"));
  error.Set("option", Napi::String::New(env, option));
  error.Set("problem", Napi::String::New(env, problem));
  if (reason != nullptr) error.Set("reason", Napi::String::New(env, reason));
  throw error;
}

std::unique_ptr<BIO, BioDeleter> PemBio(Napi::Value value) {
  if (value.IsBuffer()) {
    auto buf = value.As<Napi::Buffer<char>>();
    // BIO_new_mem_buf does not copy: the Buffer outlives the BIO (both live for this call only).
    return std::unique_ptr<BIO, BioDeleter>(BIO_new_mem_buf(buf.Data(), static_cast<int>(buf.Length())));
  }
  std::string text = value.As<Napi::String>().Utf8Value();
  BIO* bio = BIO_new(BIO_s_mem());
  BIO_write(bio, text.data(), static_cast<int>(text.size()));
  return std::unique_ptr<BIO, BioDeleter>(bio);
}

// OpenSSL's default PEM password callback prompts on the terminal ("Enter PEM pass phrase:") and blocks
// the loop: every PEM load here gets this callback instead. It hands over the configured passphrase or
// fails, and records that a passphrase was asked for (to tell "encrypted, none given" from a bad one).
struct Passphrase {
  bool given = false;
  std::string text;
  bool asked = false;
  ~Passphrase() { OPENSSL_cleanse(text.data(), text.size()); }
};

int PassphraseCallback(char* buf, int size, int, void* userdata) {
  auto* pass = static_cast<Passphrase*>(userdata);
  if (pass == nullptr) return -1;
  pass->asked = true;
  if (!pass->given || size <= 0) return -1;
  int len = static_cast<int>(pass->text.size());
  if (len > size) return -1;
  memcpy(buf, pass->text.data(), static_cast<size_t>(len));
  return len;
}

// Certificates are never encrypted: a prompt for one fails.
int NoPassphrase(char*, int, int, void*) { return -1; }

void LoadCertificateChain(Napi::Env env, SSL_CTX* ctx, Napi::Value pem) {
  auto bio = PemBio(pem);
  X509* leaf = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    X509_free(leaf);
    ThrowConfig(env, "cert", "no PEM certificate");
  }
  X509_free(leaf);
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      ThrowConfig(env, "cert", "bad chain certificate");
    }
  }
  ERR_clear_error();  // the loop ends on a "no start line" error
}

void LoadKey(Napi::Env env, SSL_CTX* ctx, Napi::Value pem, Passphrase* pass) {
  auto bio = PemBio(pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, PassphraseCallback, pass);
  if (key == nullptr && pass->asked) {
    ThrowConfig(env, pass->given ? "passphrase" : "key", pass->given ? "wrong passphrase" : "encrypted key without passphrase");
  }
  if (key == nullptr) ThrowConfig(env, "key", "no PEM private key");
  // SSL_CTX_use_PrivateKey already refuses a key that does not match the certificate loaded before.
  bool used = SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  if (!used) ThrowConfig(env, "key", "key does not match cert");
  if (SSL_CTX_check_private_key(ctx) != 1) ThrowConfig(env, "key", "key does not match cert");
}

void LoadCa(Napi::Env env, SSL_CTX* ctx, Napi::Value pem) {
  auto bio = PemBio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
    count++;
  }
  ERR_clear_error();
  if (count == 0) ThrowConfig(env, "ca", "no PEM certificate");
}

// Reads every CRL of `pem` into `store`; returns how many (0: none, or one OpenSSL cannot parse).
int LoadCrls(X509_STORE* store, Napi::Value pem) {
  auto bio = PemBio(pem);
  int count = 0;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, NoPassphrase, nullptr)) {
    X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    count++;
  }
  unsigned long err = ERR_peek_last_error();
  // The loop ends on "no start line" after the last block; any other error is a damaged CRL.
  bool clean = err == 0 || (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE);
  if (clean) ERR_clear_error();
  return clean ? count : 0;
}

int NoSanIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Records why a name check failed (see PeerLeafLacksSubjectAltName), then keeps OpenSSL's verdict.
void NoteNameFailure(X509_STORE_CTX* store) {
  int err = X509_STORE_CTX_get_error(store);
  if (err != X509_V_ERR_HOSTNAME_MISMATCH && err != X509_V_ERR_IP_ADDRESS_MISMATCH) return;
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (cert == nullptr || ssl == nullptr) return;
  if (X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) < 0) SSL_set_ex_data(ssl, NoSanIndex(), reinterpret_cast<void*>(1));
}

// With a CRL configured, X509_V_FLAG_CRL_CHECK_ALL asks for a CRL of every issuer in the chain. The
// leaf's issuer must have one (fail closed: a CRL of the wrong CA must not turn checking off); above
// the leaf, a CA certificate whose issuer has no CRL configured is accepted, so one CRL of the issuing
// CA is enough (gnutls, as tlshd uses it, checks the CRLs it has and needs none for the others).
bool ToleratedCrlGap(X509_STORE_CTX* store) {
  if (X509_STORE_CTX_get_error(store) != X509_V_ERR_UNABLE_TO_GET_CRL || X509_STORE_CTX_get_error_depth(store) == 0) return false;
  X509_STORE_CTX_set_error(store, X509_V_OK);
  return true;
}

int VerifyCertificate(int ok, X509_STORE_CTX* store) {
  if (!ok && ToleratedCrlGap(store)) return 1;
  if (!ok) NoteNameFailure(store);
  return ok;
}

// rejectUnauthorized=false: finish the handshake and let the caller read the verify result.
int AcceptAnyCertificate(int ok, X509_STORE_CTX* store) {
  if (!ok && ToleratedCrlGap(store)) return 1;
  if (!ok) NoteNameFailure(store);
  return 1;
}

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

int ContextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// TLS 1.3 external PSK (RFC 8446 2.2, as NVMe/TCP uses it): a session object carrying the key, bound to
// SHA-256 (TLS_AES_128_GCM_SHA256, as openssl s_server and GnuTLS bind an external PSK by default) or
// SHA-384 (TLS_AES_256_GCM_SHA384: NVMe's "NVMe?R02" PSKs).
SSL_SESSION* PskSession(SSL* ssl, const std::vector<unsigned char>& key, bool sha384) {
  static const unsigned char kAes128GcmSha256[] = {0x13, 0x01};
  static const unsigned char kAes256GcmSha384[] = {0x13, 0x02};
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, sha384 ? kAes256GcmSha384 : kAes128GcmSha256);
  if (cipher == nullptr) return nullptr;
  SSL_SESSION* session = SSL_SESSION_new();
  if (session == nullptr || SSL_SESSION_set1_master_key(session, key.data(), key.size()) != 1 ||
      SSL_SESSION_set_cipher(session, cipher) != 1 || SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(session);
    return nullptr;
  }
  return session;
}

// An NVMe/TCP PSK identity names its hash ("NVMe<version><type><hash> ...", hash 02 = SHA-384).
bool NvmeIdentityIsSha384(const std::string& identity) {
  return identity.size() >= 8 && identity.compare(0, 4, "NVMe") == 0 && identity.compare(6, 2, "02") == 0;
}

const SecureContext* ContextOf(SSL* ssl) {
  return static_cast<const SecureContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ContextIndex()));
}

// Client: offer the PSK in the ClientHello (when the hash asked for is SHA-256, or any).
int UsePskSession(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* idlen, SSL_SESSION** sess) {
  *sess = nullptr;
  const SecureContext* context = ContextOf(ssl);
  if (context == nullptr || !context->hasPsk()) return 1;
  if (md != nullptr && EVP_MD_get_type(md) != (context->pskSha384() ? NID_sha384 : NID_sha256)) return 1;
  SSL_SESSION* session = PskSession(ssl, context->pskKey(), context->pskSha384());
  if (session == nullptr) return 0;
  *id = reinterpret_cast<const unsigned char*>(context->pskIdentity().data());
  *idlen = context->pskIdentity().size();
  *sess = session;
  return 1;
}

int PskSerialIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

#ifdef __linux__
// Server, PSK from the session keyring (tlshd's server): a "psk" key (the NVMe keyring's type) whose
// description is the identity the client offers, else a "user" key (as tlshd's QUIC server also does).
int FindKeyringPskSession(SSL* ssl, const unsigned char* identity, size_t identityLen, SSL_SESSION** sess) {
  std::string id(reinterpret_cast<const char*>(identity), identityLen);
  if (id.empty() || id.find('\0') != std::string::npos) return 1;
  long serial = SearchKey(-3 /* KEY_SPEC_SESSION_KEYRING */, "psk", id.c_str());
  if (serial < 0) serial = SearchKey(-3, "user", id.c_str());
  if (serial < 0) return 1;
  std::vector<unsigned char> key;
  int err = 0;
  if (!ReadKeyPayload(static_cast<int>(serial), &key, &err)) return 1;
  *sess = key.empty() ? nullptr : PskSession(ssl, key, NvmeIdentityIsSha384(id));
  OPENSSL_cleanse(key.data(), key.size());
  if (*sess == nullptr) return 1;
  SSL_set_ex_data(ssl, PskSerialIndex(), reinterpret_cast<void*>(static_cast<intptr_t>(serial)));
  return 1;
}
#endif

// Server: the client's identity must be ours; anything else is "no PSK" (and fails without a certificate).
int FindPskSession(SSL* ssl, const unsigned char* identity, size_t identityLen, SSL_SESSION** sess) {
  *sess = nullptr;
  const SecureContext* context = ContextOf(ssl);
#ifdef __linux__
  if (context != nullptr && context->pskFromKeyring()) return FindKeyringPskSession(ssl, identity, identityLen, sess);
#endif
  if (context == nullptr || !context->hasPsk()) return 1;
  const std::string& ours = context->pskIdentity();
  if (identityLen != ours.size() || CRYPTO_memcmp(identity, ours.data(), identityLen) != 0) return 1;
  *sess = PskSession(ssl, context->pskKey(), context->pskSha384());
  return *sess == nullptr ? 0 : 1;
}

}  // namespace

bool PeerLeafLacksSubjectAltName(const SSL* ssl) { return SSL_get_ex_data(ssl, NoSanIndex()) != nullptr; }

namespace {

// RFC 8449 record_size_limit (extension 28). OpenSSL does not implement it, so it is a custom
// extension: both sides announce 2^14 + 1 (TLS 1.3's full record plus its content type: we receive
// any size), and the peer's value bounds the records we send (TLS_TX_MAX_PAYLOAD_LEN in the kernel,
// smaller SSL_write calls in userspace). A server answers only a client that announced it.
constexpr unsigned kRecordSizeLimitExtension = 28;
constexpr unsigned char kOurRecordSizeLimit[] = {0x40, 0x01};

int RecordLimitIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int AddRecordSizeLimit(SSL*, unsigned int, unsigned int, const unsigned char** out, size_t* outLen, X509*, size_t, int*, void*) {
  *out = kOurRecordSizeLimit;
  *outLen = sizeof(kOurRecordSizeLimit);
  return 1;
}

int ParseRecordSizeLimit(SSL* ssl, unsigned int, unsigned int, const unsigned char* in, size_t inLen, X509*, size_t, int* alert, void*) {
  if (inLen != 2) {
    *alert = SSL_AD_DECODE_ERROR;
    return 0;
  }
  unsigned limit = (unsigned{in[0]} << 8) | in[1];
  // RFC 8449 4: below 64 is illegal_parameter; above what TLS 1.3 allows means "no smaller limit".
  if (limit < 64) {
    *alert = SSL_AD_ILLEGAL_PARAMETER;
    return 0;
  }
  if (limit > 16385) limit = 16385;
  SSL_set_ex_data(ssl, RecordLimitIndex(), reinterpret_cast<void*>(static_cast<uintptr_t>(limit)));
  return 1;
}

}  // namespace

uint16_t PeerRecordSizeLimit(const SSL* ssl) {
  return static_cast<uint16_t>(reinterpret_cast<uintptr_t>(SSL_get_ex_data(ssl, RecordLimitIndex())));
}

int PskKeySerial(const SSL* ssl) {
  return static_cast<int>(reinterpret_cast<intptr_t>(SSL_get_ex_data(ssl, PskSerialIndex())));
}

Napi::Function SecureContext::Init(Napi::Env env) {
  Napi::Function cls = DefineClass(env, "SecureContext", {InstanceMethod<&SecureContext::Stats>("stats"),
                                                          InstanceMethod<&SecureContext::SetCrl>("setCrl")});
  auto* ref = new Napi::FunctionReference(Napi::Persistent(cls));
  env.SetInstanceData<Napi::FunctionReference>(ref);
  return cls;
}

SecureContext* SecureContext::FromValue(Napi::Env env, Napi::Value value) {
  Napi::FunctionReference* cls = env.GetInstanceData<Napi::FunctionReference>();
  if (cls == nullptr || !value.IsObject() || !value.As<Napi::Object>().InstanceOf(cls->Value())) return nullptr;
  return Napi::ObjectWrap<SecureContext>::Unwrap(value.As<Napi::Object>());
}

// new SecureContext({ role, cert?, key?, ca?, rejectUnauthorized, requestCert, requireClientCert, alpn,
// ciphersuites?, passphrase? }): the options were validated in JS; PEM problems throw here, before any connection.
SecureContext::SecureContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SecureContext>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "SecureContext(options)");
  Napi::Object options = info[0].As<Napi::Object>();
  auto flag = [&](const char* name, bool fallback) {
    Napi::Value v = options.Get(name);
    return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
  };
  auto text = [&](const char* name) {
    Napi::Value v = options.Get(name);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  };
  isServer_ = text("role") == "server";
  std::string alpn = text("alpn");
  alpn_ = alpn == "require" ? AlpnMode::kRequire : alpn == "off" ? AlpnMode::kOff : AlpnMode::kOffer;
  bool rejectUnauthorized = flag("rejectUnauthorized", true);
  bool requestCert = flag("requestCert", false);
  bool requireClientCert = flag("requireClientCert", false);
  std::string suites = text("ciphersuites");

  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(isServer_ ? TLS_server_method() : TLS_client_method()));
  if (!ctx) ThrowConfig(env, "context", "SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  if (SSL_CTX_set_ciphersuites(ctx.get(), suites.empty() ? kDefaultSuites : suites.c_str()) != 1) {
    ThrowConfig(env, "ciphersuites", "not accepted by OpenSSL");
  }
  // The kernel takes over exactly where OpenSSL stopped: OpenSSL must not read past the handshake.
  SSL_CTX_set_read_ahead(ctx.get(), 0);
  // No resumption (each ticket would also shift the kernel's TX sequence).
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  // RELEASE_BUFFERS: an idle connection gives its record buffers back (as node:tls does).
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_clear_mode(ctx.get(), SSL_MODE_AUTO_RETRY);
  // A TCP FIN without close_notify is reported by us as a truncation (records_openssl.cc). Without this
  // option OpenSSL 3 makes it a fatal error (and sends decode_error), so the replies to the calls read
  // just before it could no longer be written.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);

  Napi::Value cert = options.Get("cert");
  Napi::Value key = options.Get("key");
  Napi::Value ca = options.Get("ca");
  if (!cert.IsUndefined()) LoadCertificateChain(env, ctx.get(), cert);
  Passphrase pass;
  Napi::Value passphrase = options.Get("passphrase");
  if (passphrase.IsString()) {
    pass.given = true;
    pass.text = passphrase.As<Napi::String>().Utf8Value();
  }
  // Nothing loaded later through this SSL_CTX may prompt either.
  SSL_CTX_set_default_passwd_cb(ctx.get(), NoPassphrase);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), nullptr);
  if (!key.IsUndefined()) LoadKey(env, ctx.get(), key, &pass);
  if (!ca.IsUndefined()) {
    LoadCa(env, ctx.get(), ca);
    caPem_ = ca.IsBuffer() ? std::string(ca.As<Napi::Buffer<char>>().Data(), ca.As<Napi::Buffer<char>>().Length())
                           : ca.As<Napi::String>().Utf8Value();
    hasCa_ = true;
  } else if (!isServer_ || requestCert || requireClientCert) {
    // Once per configuration, not per connection: the system bundle costs milliseconds and memory.
    // A server that asks for no client certificate verifies nothing and does not load it at all.
    SSL_CTX_set_default_verify_paths(ctx.get());
  }

  int verifyMode = SSL_VERIFY_NONE;
  if (!isServer_) {
    verifyMode = SSL_VERIFY_PEER;
  } else if (requestCert || requireClientCert) {
    verifyMode = SSL_VERIFY_PEER | (requireClientCert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  }
  SSL_CTX_set_verify(ctx.get(), verifyMode, rejectUnauthorized ? VerifyCertificate : AcceptAnyCertificate);
  if (isServer_ && alpn_ != AlpnMode::kOff) SSL_CTX_set_alpn_select_cb(ctx.get(), SelectSunrpc, nullptr);
  if (isServer_ && alpn_ == AlpnMode::kRequire) SSL_CTX_set_client_hello_cb(ctx.get(), RequireAlpnClientHello, nullptr);
  SSL_CTX_set_keylog_callback(ctx.get(), KeylogCallback);
  // Fails only where OpenSSL handles the extension itself; then it is not ours to announce.
  SSL_CTX_add_custom_ext(ctx.get(), kRecordSizeLimitExtension, SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS,
                         AddRecordSizeLimit, nullptr, nullptr, ParseRecordSizeLimit, nullptr);
  ERR_clear_error();
  Napi::Value pskIdentity = options.Get("pskIdentity");
  Napi::Value pskKey = options.Get("pskKey");
  Napi::Value pskKeyring = options.Get("pskKeyring");
  pskKeyring_ = isServer_ && pskKeyring.IsBoolean() && pskKeyring.As<Napi::Boolean>().Value();
  if ((pskIdentity.IsString() && pskKey.IsBuffer()) || pskKeyring_) {
    if (!pskKeyring_) {
      pskIdentity_ = pskIdentity.As<Napi::String>().Utf8Value();
      auto key = pskKey.As<Napi::Buffer<unsigned char>>();
      pskKey_.assign(key.Data(), key.Data() + key.Length());
      Napi::Value sha384 = options.Get("pskSha384");
      pskSha384_ = sha384.IsBoolean() && sha384.As<Napi::Boolean>().Value();
    }
    SSL_CTX_set_ex_data(ctx.get(), ContextIndex(), this);
    if (isServer_) {
      SSL_CTX_set_psk_find_session_callback(ctx.get(), FindPskSession);
      // A PSK is taken as a resumed session, which OpenSSL refuses ("session id context uninitialized")
      // on a server that verifies peers (requestCert) unless a session id context is set.
      static const unsigned char kSessionIdContext[] = "rpctls-psk";
      SSL_CTX_set_session_id_context(ctx.get(), kSessionIdContext, sizeof(kSessionIdContext) - 1);
      // The suite is chosen before the PSK is looked at, and a PSK is ignored under a suite of another
      // hash (then the handshake needs a certificate): our order decides, the PSK's hash first. (A
      // keyring server learns the hash only from the identity: SHA-256 first there.)
      SSL_CTX_set_options(ctx.get(), SSL_OP_CIPHER_SERVER_PREFERENCE);
      if (suites.empty()) {
        SSL_CTX_set_ciphersuites(ctx.get(), pskSha384_ ? "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
                                                       : "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
      }
    } else {
      SSL_CTX_set_psk_use_session_callback(ctx.get(), UsePskSession);
    }
  }
  ERR_clear_error();
  ctx_ = ctx.release();
  id_ = nextContextId++;
  Napi::Value crl = options.Get("crl");
  if (!crl.IsUndefined()) {
    try {
      InstallCrl(env, crl);
    } catch (...) {
      // A constructor that throws gets no destructor call.
      SSL_CTX_free(ctx_);
      ctx_ = nullptr;
      throw;
    }
  }
}

// Peer certificates are verified against a store of the CAs plus `crl`, with CRL checking on; the
// SSL_CTX's own store (used to build our chain) stays as it was. The store is the SSL_CTX's verify
// store: each SSL takes a reference to it when created, so connections already made keep the CRL they
// started with and new ones get this one. An undefined `crl` goes back to the CAs alone.
void SecureContext::InstallCrl(Napi::Env env, Napi::Value crl) {
  if (crl.IsUndefined() || crl.IsNull()) {
    SSL_CTX_set1_verify_cert_store(ctx_, nullptr);
    return;
  }
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) ThrowConfig(env, "crl", "X509_STORE_new failed");
  struct StoreFree {
    X509_STORE* s;
    ~StoreFree() { X509_STORE_free(s); }  // SSL_CTX_set1_verify_cert_store takes its own reference
  } owner{store};
  if (hasCa_) {
    auto bio = std::unique_ptr<BIO, BioDeleter>(BIO_new_mem_buf(caPem_.data(), static_cast<int>(caPem_.size())));
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
      X509_STORE_add_cert(store, cert);
      X509_free(cert);
    }
    ERR_clear_error();
  } else {
    X509_STORE_set_default_paths(store);
  }
  if (LoadCrls(store, crl) == 0) ThrowConfig(env, "crl", "no PEM CRL");
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  if (SSL_CTX_set1_verify_cert_store(ctx_, store) != 1) ThrowConfig(env, "crl", "cannot install the store");
  ERR_clear_error();
}

// setCrl(pem | undefined): the CRLs for connections created from now on.
Napi::Value SecureContext::SetCrl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ERR_clear_error();
  InstallCrl(env, info.Length() > 0 ? info[0] : env.Undefined());
  return env.Undefined();
}

SecureContext::~SecureContext() {
  if (!pskKey_.empty()) OPENSSL_cleanse(pskKey_.data(), pskKey_.size());
  // Sockets still running hold their own reference through their SSL (SSL_new takes one); the PSK
  // callbacks must not find this object through it any more.
  if (ctx_ != nullptr) SSL_CTX_set_ex_data(ctx_, ContextIndex(), nullptr);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

// { id, liveSockets, socketsCreated }
Napi::Value SecureContext::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, id_));
  out.Set("liveSockets", Napi::Number::New(env, static_cast<double>(liveSockets_)));
  out.Set("socketsCreated", Napi::Number::New(env, static_cast<double>(socketsCreated_)));
  return out;
}

}  // namespace rpctls
