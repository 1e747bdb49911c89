// Every route the relay serves on its main listener: Relay::handle refuses a
// request that matches none (404, or 405 when only the method differs)
// before any other route code runs. docs/openapi/relay.json documents each
// of them (test/openapi checks that). Thread safety: constant data.
#pragma once

#include <span>
#include <string_view>

#include "net/routes.h"

namespace hut::relay {

std::span<const net::Route> relay_routes();

// docs/openapi/relay.json as built into the program.
std::string_view relay_openapi_document();

}  // namespace hut::relay
