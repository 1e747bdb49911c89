// base64url without padding (RFC 7515 section 2), for every part; the public
// hut::base64url_encode/decode of <hutopia/token.h> call these.
//
// Thread: pure functions; any thread.
#ifndef HUTOPIA_UTIL_BASE64_H_
#define HUTOPIA_UTIL_BASE64_H_

#include <hutopia/status.h>

#include <string>
#include <string_view>

namespace hut::util {

std::string base64url_encode(std::string_view bytes);
// Refuses padding, other alphabets and non-canonical encodings.
Result<std::string> base64url_decode(std::string_view text);

}  // namespace hut::util

#endif  // HUTOPIA_UTIL_BASE64_H_
