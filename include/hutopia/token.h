// Tokens: compact JWS (RFC 7515) carrying JWT claims (RFC 7519), signed with
// EdDSA (Ed25519, RFC 8037) or HS256, the JWK set format for Ed25519 public
// keys, and the checks a space makes before it lets anyone in (contract
// section 1).
//
// Ownership: Key, KeySet, TokenVerifier and ReplayCache are values; Key shares
// its immutable OpenSSL key between copies, so copying one is cheap.
// Thread safety: const methods of Key, KeySet and TokenVerifier may be called
// from any thread at once. ReplayCache is not synchronized: one thread (the
// loop thread) owns it.
#ifndef HUTOPIA_TOKEN_H_
#define HUTOPIA_TOKEN_H_

#include <hutopia/export.h>
#include <hutopia/status.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hut {

enum class JwsAlg { kEdDSA, kHS256 };

// "EdDSA" or "HS256".
HUT_EXPORT std::string_view jws_alg_name(JwsAlg alg);

// base64url without padding (RFC 7515 section 2). decode refuses padding,
// whitespace and any character outside the alphabet.
HUT_EXPORT std::string base64url_encode(std::string_view bytes);
HUT_EXPORT Result<std::string> base64url_decode(std::string_view text);

// A signing or verifying key: an Ed25519 key pair or public key, or an HS256
// secret. A key carries its `kid` (may be empty) and the one algorithm it may
// be used with.
class HUT_EXPORT Key {
 public:
  // A new Ed25519 key pair from OpenSSL's random generator.
  static Result<Key> generate_ed25519(std::string kid);
  // An HS256 secret. Refuses an empty secret.
  static Result<Key> hs256(std::string_view secret, std::string kid = "");
  // A PEM private key (PKCS#8) or public key (SubjectPublicKeyInfo); Ed25519 only.
  static Result<Key> from_pem(std::string_view pem, std::string kid);
  static Result<Key> load_pem_file(const std::string& path, std::string kid);
  // A public Ed25519 JWK: {"kty":"OKP","crv":"Ed25519","x":...,"kid"?,"alg"?}.
  // A private JWK (with "d", RFC 8037 section 2) gives the key pair; its "x"
  // must match "d".
  static Result<Key> from_jwk(std::string_view json);

  // The private key as PKCS#8 PEM (the public key if this key has no private part).
  Result<std::string> to_pem() const;
  // Writes to_pem() to `path`, created with mode 0600, replaced atomically.
  Status save_pem_file(const std::string& path) const;
  // The public JWK as a JSON object text (Ed25519 only).
  Result<std::string> to_jwk() const;

  JwsAlg alg() const;
  const std::string& kid() const;
  bool has_private() const;
  // The same key without its private part (an HS256 key returns itself).
  Key public_key() const;

  // Signs `data` (the JWS signing input); the raw signature bytes.
  Result<std::string> sign(std::string_view data) const;
  // Verifies `sig` over `data` in constant time where it compares bytes.
  bool verify(std::string_view data, std::string_view sig) const;

  struct Impl;
  explicit Key(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

// A JWK set of Ed25519 public keys, looked up by `kid`.
class HUT_EXPORT KeySet {
 public:
  // {"keys":[...]}: keys other than OKP/Ed25519 are skipped; a key without
  // `kid`, or a malformed Ed25519 key, makes the whole set invalid.
  static Result<KeySet> parse_jwks(std::string_view json);
  // {"keys":[...]} with alg "EdDSA" and use "sig" on each key.
  std::string to_jwks() const;

  // Adds or replaces the key with the same kid (its public part only). An
  // HS256 secret is never added: a key set is meant to be published.
  void add(const Key& key);
  const Key* find(std::string_view kid) const;
  size_t size() const { return keys_.size(); }
  const std::vector<Key>& keys() const { return keys_; }

 private:
  std::vector<Key> keys_;
};

// A parsed, not yet verified, compact JWS. Nothing here is trusted.
struct Jws {
  std::string header_json;    // decoded protected header
  std::string payload_json;   // decoded payload
  std::string signature;      // raw signature bytes
  std::string signing_input;  // base64url(header) "." base64url(payload)
  std::string alg;            // header "alg"
  std::string kid;            // header "kid", empty when absent
  bool has_kid = false;
};

// Splits and decodes a compact JWS: three base64url parts, a JSON object
// header with a string `alg`, no `crit`. At most `max_size` bytes.
HUT_EXPORT Result<Jws> parse_jws(std::string_view compact, size_t max_size = 8192);

// The claims a Hutopia token carries (contract section 1).
struct Claims {
  std::string iss;
  std::string sub;
  std::string aud;
  std::string jti;
  int64_t iat = 0;  // seconds
  int64_t exp = 0;  // seconds
  std::optional<int64_t> nbf;
  std::string name;
  std::string username;
  std::string avatar;
};

// Signs `claims` with `key`: header {"alg","typ":"JWT","kid"?}. The kid is
// written when the key has one.
HUT_EXPORT Result<std::string> sign_token(const Key& key, const Claims& claims);
// Signs an arbitrary JSON object payload (tests and tools).
HUT_EXPORT Result<std::string> sign_jws(const Key& key, std::string_view payload_json);

// The checks a space makes, in order: parse; the key the header names (by
// `kid`, else the issuer's key that needs none); the header `alg` equals the
// key's; the signature; only then the claims: required claims present and
// typed, `iss` equals the key's issuer, `aud` equals the audience (a string,
// or an array that contains it), `exp`/`nbf`/`iat` within the leeway,
// `exp - iat` at most the maximum lifetime.
//
// Errors: kNotFound for a `kid` that no trusted key has (the caller may
// refresh its key set and try again); kUnauthenticated with a short reason
// ("expired", "bad signature", ...) for every other refusal.
class HUT_EXPORT TokenVerifier {
 public:
  struct Options {
    std::string audience;          // the space id
    int64_t leeway_s = 30;         // clamped to [0, 30]
    int64_t max_lifetime_s = 300;  // exp - iat at most this
  };

  explicit TokenVerifier(Options options);

  // Trusts `key` for tokens whose `iss` is `issuer`. A key with an empty kid
  // verifies tokens that carry no kid (the app secret); a key with a kid
  // verifies tokens that name it. Replaces a key with the same kid.
  void trust(const Key& key, std::string issuer);
  // Trusts every key of `keys` for `issuer`, replacing the Ed25519 keys that
  // were trusted for that issuer before (an HS256 secret stays trusted).
  void trust_set(const KeySet& keys, const std::string& issuer);

  Result<Claims> verify(std::string_view token, int64_t now_s) const;

  const Options& options() const { return options_; }

 private:
  struct Trusted {
    Key key;
    std::string issuer;
  };
  Options options_;
  std::vector<Trusted> keys_;
};

// Remembers the `jti`s of tokens that were accepted until those tokens
// expire, so that each token is accepted once. Bounded: when it is full of
// unexpired entries it refuses new ones (kResourceExhausted) rather than
// forgetting an entry that could then be replayed.
class HUT_EXPORT ReplayCache {
 public:
  explicit ReplayCache(size_t capacity = 1000000, int64_t leeway_s = 30);

  // Ok the first time (iss, jti) is seen; kAlreadyExists ("token already
  // used") while it is remembered; kResourceExhausted when full. Entries are
  // forgotten once now_s passes exp_s plus the leeway.
  Status use(std::string_view iss, std::string_view jti, int64_t exp_s, int64_t now_s);
  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  // The first 128 bits of the SHA-256 of the (iss, jti) pair: a fixed-size
  // key instead of two copies of both strings per remembered token.
  using Key = std::array<uint64_t, 2>;
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept { return static_cast<size_t>(k[0]); }
  };
  void expire(int64_t now_s);
  size_t capacity_;
  int64_t leeway_s_;
  std::unordered_map<Key, int64_t, KeyHash> entries_;  // key -> forget-after time
  std::vector<std::pair<int64_t, Key>> heap_;          // min-heap on time
};

}  // namespace hut

#endif  // HUTOPIA_TOKEN_H_
