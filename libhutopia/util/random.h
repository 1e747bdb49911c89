// Random identifiers from OpenSSL's CSPRNG. Thread safety: any thread.
#ifndef HUTOPIA_UTIL_RANDOM_H_
#define HUTOPIA_UTIL_RANDOM_H_

#include <cstddef>
#include <string>

namespace hut {

// `bytes` random bytes as lower-case hex (2 * bytes characters).
std::string random_hex(size_t bytes);
// `bytes` random bytes, base64url without padding.
std::string random_token(size_t bytes);

}  // namespace hut

#endif  // HUTOPIA_UTIL_RANDOM_H_
