// base64url without padding (RFC 7515 section 2) on top of OpenSSL's base64.
#include <openssl/evp.h>

#include "util/base64.h"

#include <string>

namespace hut::util {

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
  }
  return out;
}

Result<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return Status::invalid_argument("bad base64url length");
  std::string std_text;
  std_text.reserve(text.size() + 3);
  for (char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      std_text += c;
    else if (c == '-')
      std_text += '+';
    else if (c == '_')
      std_text += '/';
    else
      return Status::invalid_argument("bad base64url character");
  }
  size_t pad = (4 - std_text.size() % 4) % 4;
  std_text.append(pad, '=');
  std::string out(std_text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(std_text.data()),
                          static_cast<int>(std_text.size()));
  if (n < 0) return Status::invalid_argument("bad base64url");
  out.resize(static_cast<size_t>(n) - pad);
  // Only the canonical encoding is accepted: unused low bits must be zero.
  if (base64url_encode(out) != text) return Status::invalid_argument("non-canonical base64url");
  return out;
}

}  // namespace hut::util
