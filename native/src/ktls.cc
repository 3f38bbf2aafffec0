#include "ktls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

namespace rpctls {

void TrafficSecret::Wipe() {
  OPENSSL_cleanse(bytes, sizeof(bytes));
  len = 0;
}

namespace {

struct SuiteParams {
  const EVP_MD* md;
  size_t keyLen;
};

bool LookupSuite(uint16_t suite, SuiteParams* out) {
  switch (suite) {
    case kSuiteAes128Gcm: *out = {EVP_sha256(), 16}; return true;
    case kSuiteAes256Gcm: *out = {EVP_sha384(), 32}; return true;
    case kSuiteChacha20Poly1305: *out = {EVP_sha256(), 32}; return true;
    default: return false;
  }
}

// HKDF-Expand-Label(secret, label, "", outLen) from RFC 8446 7.1. Every output here is shorter than the
// hash, so HKDF-Expand is a single HMAC block T(1).
bool ExpandLabel(const EVP_MD* md, const TrafficSecret& secret, const char* label, uint8_t* out,
                 size_t outLen) {
  uint8_t info[64];
  size_t n = 0;
  size_t labelLen = strlen(label);
  info[n++] = static_cast<uint8_t>(outLen >> 8);
  info[n++] = static_cast<uint8_t>(outLen);
  info[n++] = static_cast<uint8_t>(6 + labelLen);
  memcpy(info + n, "tls13 ", 6);
  n += 6;
  memcpy(info + n, label, labelLen);
  n += labelLen;
  info[n++] = 0;  // empty context
  info[n++] = 1;  // HKDF-Expand block counter
  uint8_t block[EVP_MAX_MD_SIZE];
  unsigned blockLen = 0;
  bool ok = HMAC(md, secret.bytes, static_cast<int>(secret.len), info, n, block, &blockLen) != nullptr &&
            blockLen >= outLen;
  if (ok) memcpy(out, block, outLen);
  OPENSSL_cleanse(block, sizeof(block));
  return ok;
}

union CryptoInfo {
  struct tls_crypto_info base;
  struct tls12_crypto_info_aes_gcm_128 aes128;
  struct tls12_crypto_info_aes_gcm_256 aes256;
  struct tls12_crypto_info_chacha20_poly1305 chacha;
};

socklen_t CryptoInfoSize(uint16_t suite) {
  switch (suite) {
    case kSuiteAes128Gcm: return sizeof(tls12_crypto_info_aes_gcm_128);
    case kSuiteAes256Gcm: return sizeof(tls12_crypto_info_aes_gcm_256);
    default: return sizeof(tls12_crypto_info_chacha20_poly1305);
  }
}

void PutSequence(unsigned char* dst, uint64_t seq) {
  for (int i = 7; i >= 0; i--, seq >>= 8) dst[i] = static_cast<unsigned char>(seq);
}

uint64_t GetSequence(const unsigned char* src) {
  uint64_t seq = 0;
  for (int i = 0; i < 8; i++) seq = (seq << 8) | src[i];
  return seq;
}

bool BuildCryptoInfo(uint16_t suite, const TrafficSecret& secret, uint64_t seq, CryptoInfo* info) {
  SuiteParams params;
  if (!LookupSuite(suite, &params)) return false;
  uint8_t key[32];
  uint8_t iv[12];
  bool ok = ExpandLabel(params.md, secret, "key", key, params.keyLen) &&
            ExpandLabel(params.md, secret, "iv", iv, sizeof(iv));
  if (ok) {
    memset(info, 0, sizeof(*info));
    info->base.version = TLS_1_3_VERSION;
    // AES-GCM splits the 12-byte TLS 1.3 nonce base into a 4-byte salt and an 8-byte iv.
    switch (suite) {
      case kSuiteAes128Gcm:
        info->base.cipher_type = TLS_CIPHER_AES_GCM_128;
        memcpy(info->aes128.salt, iv, 4);
        memcpy(info->aes128.iv, iv + 4, 8);
        memcpy(info->aes128.key, key, 16);
        PutSequence(info->aes128.rec_seq, seq);
        break;
      case kSuiteAes256Gcm:
        info->base.cipher_type = TLS_CIPHER_AES_GCM_256;
        memcpy(info->aes256.salt, iv, 4);
        memcpy(info->aes256.iv, iv + 4, 8);
        memcpy(info->aes256.key, key, 32);
        PutSequence(info->aes256.rec_seq, seq);
        break;
      default:
        info->base.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
        memcpy(info->chacha.iv, iv, 12);
        memcpy(info->chacha.key, key, 32);
        PutSequence(info->chacha.rec_seq, seq);
        break;
    }
  }
  OPENSSL_cleanse(key, sizeof(key));
  OPENSSL_cleanse(iv, sizeof(iv));
  return ok;
}

}  // namespace

int InstallKernelKey(int fd, bool tx, uint16_t suite, const TrafficSecret& secret, uint64_t seq) {
  CryptoInfo info;
  if (!BuildCryptoInfo(suite, secret, seq, &info)) return EINVAL;
  int err = setsockopt(fd, SOL_TLS, tx ? TLS_TX : TLS_RX, &info, CryptoInfoSize(suite)) == 0 ? 0 : errno;
  OPENSSL_cleanse(&info, sizeof(info));
  return err;
}

bool NextTrafficSecret(uint16_t suite, TrafficSecret* secret) {
  SuiteParams params;
  if (!LookupSuite(suite, &params)) return false;
  size_t hashLen = static_cast<size_t>(EVP_MD_get_size(params.md));
  uint8_t next[EVP_MAX_MD_SIZE];
  bool ok = secret->len == hashLen && ExpandLabel(params.md, *secret, "traffic upd", next, hashLen);
  if (ok) memcpy(secret->bytes, next, hashLen);
  OPENSSL_cleanse(next, sizeof(next));
  return ok;
}

bool KernelTlsCanRekey() {
  static bool known = false;
  if (known) return true;
  FILE* stat = fopen("/proc/net/tls_stat", "re");
  if (stat == nullptr) return false;
  char line[128];
  while (fgets(line, sizeof(line), stat) != nullptr) {
    if (strncmp(line, "TlsRxRekeyOk", 12) == 0) known = true;
  }
  fclose(stat);
  return known;
}

KtlsResult InstallKernelTls(int fd, uint16_t suite, const TrafficSecret& tx, uint64_t txSeq,
                            const TrafficSecret& rx, uint64_t rxSeq, uint16_t txMaxPayload) {
  CryptoInfo txInfo;
  CryptoInfo rxInfo;
  if (!BuildCryptoInfo(suite, tx, txSeq, &txInfo) || !BuildCryptoInfo(suite, rx, rxSeq, &rxInfo)) {
    OPENSSL_cleanse(&txInfo, sizeof(txInfo));
    return {KtlsOutcome::kUnavailable, EINVAL, "HKDF"};
  }
  socklen_t size = CryptoInfoSize(suite);
  KtlsResult result{KtlsOutcome::kInstalled, 0, nullptr};
  if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
    result = {KtlsOutcome::kUnavailable, errno, "TCP_ULP"};
  } else if (txMaxPayload != 0 && setsockopt(fd, SOL_TLS, kTlsTxMaxPayloadLen, &txMaxPayload, sizeof(txMaxPayload)) != 0) {
    // As with TLS_TX below: nothing is keyed yet, the ULP passes data through, userspace goes on.
    result = {KtlsOutcome::kUnavailable, errno, "TLS_TX_MAX_PAYLOAD_LEN"};
  } else if (setsockopt(fd, SOL_TLS, TLS_TX, &txInfo, size) != 0) {
    // The ULP alone passes data through unchanged, so userspace TLS still works on this socket.
    result = {KtlsOutcome::kUnavailable, errno, "TLS_TX"};
  } else if (setsockopt(fd, SOL_TLS, TLS_RX, &rxInfo, size) != 0) {
    result = {KtlsOutcome::kFailed, errno, "TLS_RX"};
  }
  OPENSSL_cleanse(&txInfo, sizeof(txInfo));
  OPENSSL_cleanse(&rxInfo, sizeof(rxInfo));
  return result;
}

bool ReadKernelSequences(int fd, uint16_t suite, uint64_t* txSeq, uint64_t* rxSeq) {
  CryptoInfo info;
  socklen_t size = CryptoInfoSize(suite);
  const unsigned char* seq = suite == kSuiteAes128Gcm   ? info.aes128.rec_seq
                             : suite == kSuiteAes256Gcm ? info.aes256.rec_seq
                                                        : info.chacha.rec_seq;
  socklen_t len = size;
  if (getsockopt(fd, SOL_TLS, TLS_TX, &info, &len) != 0) return false;
  *txSeq = GetSequence(seq);
  len = size;
  if (getsockopt(fd, SOL_TLS, TLS_RX, &info, &len) != 0) return false;
  *rxSeq = GetSequence(seq);
  OPENSSL_cleanse(&info, sizeof(info));
  return true;
}

int ProbeKernelTls() { return ProbeKernelTlsFeatures(nullptr); }

int ProbeKernelTlsFeatures(int* maxPayloadErr) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int accepted = -1;
  int result = 0;
  sockaddr_in addr{};
  socklen_t addrLen = sizeof(addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener < 0 || client < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 1) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &addrLen) != 0 ||
      connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      (accepted = accept(listener, nullptr, nullptr)) < 0) {
    result = errno;
  } else if (setsockopt(client, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
    result = errno;
  } else if (maxPayloadErr != nullptr) {
    // Reading the option changes nothing; kernels without it (before 6.19) answer ENOPROTOOPT.
    uint16_t value = 0;
    socklen_t len = sizeof(value);
    *maxPayloadErr = getsockopt(client, SOL_TLS, kTlsTxMaxPayloadLen, &value, &len) == 0 ? 0 : errno;
  }
  // Reset instead of an orderly close: no TIME_WAIT left behind on loopback, whose 4-tuple (and ports) a
  // connection made right after could otherwise meet again.
  linger reset{1, 0};
  if (client >= 0) setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  if (accepted >= 0) setsockopt(accepted, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  if (client >= 0) close(client);
  if (accepted >= 0) close(accepted);
  if (listener >= 0) close(listener);
  return result;
}

const char* ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
#endif
  switch (err) {
    case ENOENT: return "ENOENT";
    case EAGAIN: return "EAGAIN";
    case EBADMSG: return "EBADMSG";
    case EMSGSIZE: return "EMSGSIZE";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case ENOTCONN: return "ENOTCONN";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    default: return "EUNKNOWN";
  }
}

}  // namespace rpctls
