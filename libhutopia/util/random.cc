#include "util/random.h"

#include "util/base64.h"

#include <openssl/rand.h>

#include <cstdlib>
#include <string>

namespace hut {
namespace {

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::abort();  // no entropy: nothing secure can be done
  }
  return out;
}

}  // namespace

std::string random_hex(size_t bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string raw = random_bytes(bytes);
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string random_token(size_t bytes) { return util::base64url_encode(random_bytes(bytes)); }

}  // namespace hut
