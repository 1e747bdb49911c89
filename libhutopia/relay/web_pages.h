// The relay's own web pages besides the login form: the space directory
// (/ and /spaces), the profile page (/profile), their scripts and style
// (/web/{file}), embedded from web/; and its OpenAPI document.
// Thread safety: any thread (the assets are constant data).
#ifndef HUTOPIA_RELAY_WEB_PAGES_H_
#define HUTOPIA_RELAY_WEB_PAGES_H_

#include <string_view>

#include "net/server.h"
#include "relay/relay_state.h"

namespace hut::relay {

// docs/openapi/relay.json as built into the library.
std::string_view relay_openapi_document();

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_WEB_PAGES_H_
