// The relay's signing keys in <data_dir>/keys: <kid>.pem (PKCS#8, mode
// 0600), the file `current` naming the key that signs, and <kid>.retired
// holding the Unix time (seconds) at which a key stopped signing. A retired
// key stays published (jwks()) until every token it signed has expired.
//
// Thread safety: every method may be called from any thread; a mutex guards
// the cached key. Another process (`relayd rotate-key`) may rotate the keys
// of a running relay: signing_key() notices the new `current`.
#ifndef HUTOPIA_RELAY_SIGNING_KEYS_H_
#define HUTOPIA_RELAY_SIGNING_KEYS_H_

#include <hutopia/status.h>
#include <hutopia/token.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace hut::relay {

// Seconds a space accepts a token past its expiry (clock skew).
constexpr int64_t kTokenLeewayS = 30;

class SigningKeys {
 public:
  SigningKeys(std::string dir, int64_t token_ttl_s) : dir_(std::move(dir)), token_ttl_s_(token_ttl_s) {}
  // Creates the directory and a first key when there is none.
  Status ensure();
  // Makes a new key the current one and retires the old one; the new kid.
  Result<std::string> rotate(int64_t now_s);
  // The key that signs now (re-read from disk when `current` changed).
  Result<Key> signing_key();
  // The published set: the current key and the retired keys still needed.
  Result<std::string> jwks(int64_t now_s);

 private:
  Status reload_locked();
  std::string dir_;
  int64_t token_ttl_s_;
  std::mutex mu_;
  std::optional<Key> current_;
  std::string current_kid_;  // what `current` named when read
};

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_SIGNING_KEYS_H_
