// Key: Ed25519 keys through OpenSSL's EVP_PKEY, HS256 secrets through EVP_MAC;
// PEM and JWK forms.
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hutopia/token.h>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "token/json.h"
#include "util/file.h"

namespace hut {

namespace {

constexpr size_t kEd25519KeyBytes = 32;
constexpr size_t kEd25519SigBytes = 64;
constexpr size_t kHs256Bytes = 32;
constexpr size_t kMaxPemBytes = 64 * 1024;
constexpr size_t kMaxJwkBytes = 16 * 1024;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// Fetched once; OpenSSL keeps it for the life of the process.
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

// Never prompts for a pass phrase: an encrypted key file is refused.
int no_password(char*, int, int, void*) { return -1; }

std::string raw_public(EVP_PKEY* pkey) {
  std::string out(kEd25519KeyBytes, '\0');
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(out.data()), &len) != 1 ||
      len != kEd25519KeyBytes) {
    ERR_clear_error();
    return {};
  }
  return out;
}

bool has_raw_private(EVP_PKEY* pkey) {
  unsigned char buf[kEd25519KeyBytes];
  size_t len = sizeof(buf);
  bool ok = EVP_PKEY_get_raw_private_key(pkey, buf, &len) == 1 && len == kEd25519KeyBytes;
  OPENSSL_cleanse(buf, sizeof(buf));
  ERR_clear_error();
  return ok;
}

}  // namespace

// The shared, immutable state of a Key. Either `pkey` (Ed25519) or `mac`
// (HS256, initialized with the secret) is set.
struct Key::Impl {
  JwsAlg alg = JwsAlg::kEdDSA;
  std::string kid;
  PkeyPtr pkey;
  bool has_private = false;
  MacCtxPtr mac;
};

Key::Key(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

namespace {

Result<Key> make_ed25519(PkeyPtr pkey, std::string kid) {
  if (pkey == nullptr || EVP_PKEY_id(pkey.get()) != EVP_PKEY_ED25519) {
    return Status::invalid_argument("not an Ed25519 key");
  }
  auto impl = std::make_shared<Key::Impl>();
  impl->alg = JwsAlg::kEdDSA;
  impl->kid = std::move(kid);
  impl->has_private = has_raw_private(pkey.get());
  impl->pkey = std::move(pkey);
  return Key(std::move(impl));
}

}  // namespace

std::string_view jws_alg_name(JwsAlg alg) { return alg == JwsAlg::kEdDSA ? "EdDSA" : "HS256"; }

Result<Key> Key::generate_ed25519(std::string kid) {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw == nullptr) {
    ERR_clear_error();
    return Status::internal("Ed25519 key generation failed");
  }
  return make_ed25519(PkeyPtr(raw), std::move(kid));
}

Result<Key> Key::hs256(std::string_view secret, std::string kid) {
  if (secret.empty()) return Status::invalid_argument("empty HS256 secret");
  EVP_MAC* mac = hmac_algorithm();
  if (mac == nullptr) return Status::internal("HMAC is not available");
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
  if (ctx == nullptr || EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                                     secret.size(), params) != 1) {
    ERR_clear_error();
    return Status::internal("HMAC setup failed");
  }
  auto impl = std::make_shared<Impl>();
  impl->alg = JwsAlg::kHS256;
  impl->kid = std::move(kid);
  impl->has_private = true;
  impl->mac = std::move(ctx);
  return Key(std::move(impl));
}

Result<Key> Key::from_pem(std::string_view pem, std::string kid) {
  if (pem.size() > kMaxPemBytes) return Status::invalid_argument("PEM too large");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return Status::internal("out of memory");
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  if (pkey == nullptr) {
    ERR_clear_error();
    bio.reset(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (bio == nullptr) return Status::internal("out of memory");
    pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_password, nullptr));
  }
  ERR_clear_error();
  if (pkey == nullptr) return Status::invalid_argument("no PEM private or public key found");
  return make_ed25519(std::move(pkey), std::move(kid));
}

Result<Key> Key::load_pem_file(const std::string& path, std::string kid) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error(path + ": " + std::strerror(errno));
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return Status::io_error(path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxPemBytes) {
      close(fd);
      return Status::invalid_argument(path + ": too large for a key file");
    }
  }
  close(fd);
  Result<Key> key = from_pem(text, std::move(kid));
  OPENSSL_cleanse(text.data(), text.size());
  if (!key.ok()) return Status::invalid_argument(path + ": " + std::string(key.status().message()));
  return key;
}

Result<Key> Key::from_jwk(std::string_view json) {
  if (json.size() > kMaxJwkBytes) return Status::invalid_argument("JWK too large");
  token_json::JsonPtr jwk = token_json::parse_strict(json);
  if (!cJSON_IsObject(jwk.get())) return Status::invalid_argument("JWK is not a JSON object");
  const char* kty = token_json::get_string(jwk.get(), "kty");
  const char* crv = token_json::get_string(jwk.get(), "crv");
  if (kty == nullptr || std::strcmp(kty, "OKP") != 0 || crv == nullptr || std::strcmp(crv, "Ed25519") != 0) {
    return Status::not_supported("only OKP Ed25519 JWKs are supported");
  }
  const cJSON* kid_item = cJSON_GetObjectItemCaseSensitive(jwk.get(), "kid");
  if (kid_item != nullptr && !cJSON_IsString(kid_item))
    return Status::invalid_argument("JWK kid is not a string");
  const cJSON* alg_item = cJSON_GetObjectItemCaseSensitive(jwk.get(), "alg");
  if (alg_item != nullptr &&
      (!cJSON_IsString(alg_item) || std::strcmp(alg_item->valuestring, "EdDSA") != 0)) {
    return Status::invalid_argument("JWK alg is not EdDSA");
  }
  const char* x_text = token_json::get_string(jwk.get(), "x");
  if (x_text == nullptr) return Status::invalid_argument("JWK has no x");
  Result<std::string> x = base64url_decode(x_text);
  if (!x.ok() || x->size() != kEd25519KeyBytes)
    return Status::invalid_argument("JWK x is not 32 base64url bytes");
  std::string kid = kid_item != nullptr ? kid_item->valuestring : "";

  const cJSON* d_item = cJSON_GetObjectItemCaseSensitive(jwk.get(), "d");
  if (d_item == nullptr) {
    PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                             reinterpret_cast<const unsigned char*>(x->data()), x->size()));
    ERR_clear_error();
    return make_ed25519(std::move(pkey), std::move(kid));
  }
  if (!cJSON_IsString(d_item)) return Status::invalid_argument("JWK d is not a string");
  Result<std::string> d = base64url_decode(d_item->valuestring);
  if (!d.ok() || d->size() != kEd25519KeyBytes)
    return Status::invalid_argument("JWK d is not 32 base64url bytes");
  PkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                            reinterpret_cast<const unsigned char*>(d->data()), d->size()));
  OPENSSL_cleanse(d->data(), d->size());
  ERR_clear_error();
  if (pkey == nullptr) return Status::invalid_argument("bad Ed25519 private key");
  std::string derived = raw_public(pkey.get());
  if (derived.size() != x->size() || CRYPTO_memcmp(derived.data(), x->data(), x->size()) != 0) {
    return Status::invalid_argument("JWK x does not match d");
  }
  return make_ed25519(std::move(pkey), std::move(kid));
}

Result<std::string> Key::to_pem() const {
  if (impl_->alg != JwsAlg::kEdDSA) return Status::not_supported("an HS256 secret has no PEM form");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return Status::internal("out of memory");
  int ok = impl_->has_private
               ? PEM_write_bio_PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr, nullptr)
               : PEM_write_bio_PUBKEY(bio.get(), impl_->pkey.get());
  if (ok != 1) {
    ERR_clear_error();
    return Status::internal("PEM encoding failed");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string out(data, static_cast<size_t>(len));
  // The memory BIO frees its buffer without wiping it.
  OPENSSL_cleanse(data, static_cast<size_t>(len));
  return out;
}

Status Key::save_pem_file(const std::string& path) const {
  Result<std::string> pem = to_pem();
  if (!pem.ok()) return pem.status();
  Status st = util::write_file_atomic(path, *pem);
  OPENSSL_cleanse(pem->data(), pem->size());
  return st;
}

Result<std::string> Key::to_jwk() const {
  if (impl_->alg != JwsAlg::kEdDSA) return Status::not_supported("an HS256 secret is never written as a JWK");
  std::string x = raw_public(impl_->pkey.get());
  if (x.empty()) return Status::internal("cannot read the public key");
  token_json::JsonPtr jwk(cJSON_CreateObject());
  if (jwk == nullptr) return Status::internal("out of memory");
  cJSON_AddStringToObject(jwk.get(), "kty", "OKP");
  cJSON_AddStringToObject(jwk.get(), "crv", "Ed25519");
  cJSON_AddStringToObject(jwk.get(), "x", base64url_encode(x).c_str());
  if (!impl_->kid.empty()) cJSON_AddStringToObject(jwk.get(), "kid", impl_->kid.c_str());
  cJSON_AddStringToObject(jwk.get(), "alg", "EdDSA");
  cJSON_AddStringToObject(jwk.get(), "use", "sig");
  std::string out = token_json::print(jwk.get());
  if (out.empty()) return Status::internal("out of memory");
  return out;
}

JwsAlg Key::alg() const { return impl_->alg; }
const std::string& Key::kid() const { return impl_->kid; }
bool Key::has_private() const { return impl_->has_private; }

Key Key::public_key() const {
  if (impl_->alg != JwsAlg::kEdDSA || !impl_->has_private) return *this;
  std::string x = raw_public(impl_->pkey.get());
  PkeyPtr pub(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                          reinterpret_cast<const unsigned char*>(x.data()), x.size()));
  ERR_clear_error();
  if (pub == nullptr) return *this;  // out of memory; the pair still verifies the same
  auto impl = std::make_shared<Impl>();
  impl->alg = JwsAlg::kEdDSA;
  impl->kid = impl_->kid;
  impl->pkey = std::move(pub);
  return Key(std::move(impl));
}

Result<std::string> Key::sign(std::string_view data) const {
  if (impl_->alg == JwsAlg::kHS256) {
    MacCtxPtr ctx(EVP_MAC_CTX_dup(impl_->mac.get()));
    std::string out(kHs256Bytes, '\0');
    size_t len = 0;
    if (ctx == nullptr ||
        EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
        EVP_MAC_final(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, out.size()) != 1 ||
        len != kHs256Bytes) {
      ERR_clear_error();
      return Status::internal("HMAC failed");
    }
    return out;
  }
  if (!impl_->has_private) return Status::failed_precondition("a public key cannot sign");
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  std::string out(kEd25519SigBytes, '\0');
  size_t len = out.size();
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      len != kEd25519SigBytes) {
    ERR_clear_error();
    return Status::internal("Ed25519 signing failed");
  }
  return out;
}

bool Key::verify(std::string_view data, std::string_view sig) const {
  if (impl_->alg == JwsAlg::kHS256) {
    if (sig.size() != kHs256Bytes) return false;
    Result<std::string> mac = sign(data);
    return mac.ok() && CRYPTO_memcmp(mac->data(), sig.data(), kHs256Bytes) == 0;
  }
  if (sig.size() != kEd25519SigBytes) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  bool ok = ctx != nullptr &&
            EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace hut
