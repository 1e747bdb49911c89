// Helpers for the token tests: claims that pass every check, and tokens whose
// header and payload are written by hand.
#ifndef HUTOPIA_TEST_TOKEN_TOKEN_HELPERS_H_
#define HUTOPIA_TEST_TOKEN_TOKEN_HELPERS_H_

#include <hutopia/token.h>

#include <string>

namespace hut::test {

inline constexpr int64_t kNow = 1800000000;
inline constexpr const char* kSpace = "space-1";
inline constexpr const char* kRelay = "https://relay.example";

// The claims of a valid relay token issued at kNow.
inline Claims good_claims() {
  Claims c;
  c.iss = kRelay;
  c.sub = "user-42";
  c.aud = kSpace;
  c.jti = "jti-1";
  c.iat = kNow;
  c.exp = kNow + 60;
  c.name = "Ada";
  c.username = "ada";
  return c;
}

// header.payload.signature with `key` signing exactly these bytes.
inline std::string hand_token(const Key& key, const std::string& header, const std::string& payload) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(key.sign(input).value());
}

}  // namespace hut::test

#endif  // HUTOPIA_TEST_TOKEN_TOKEN_HELPERS_H_
