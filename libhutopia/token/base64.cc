// The public base64url functions of <hutopia/token.h>.
#include <hutopia/token.h>

#include "util/base64.h"

namespace hut {

std::string base64url_encode(std::string_view bytes) { return util::base64url_encode(bytes); }

Result<std::string> base64url_decode(std::string_view text) { return util::base64url_decode(text); }

}  // namespace hut
