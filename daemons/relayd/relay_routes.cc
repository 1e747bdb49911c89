#include "relay_routes.h"

#include <cstddef>
#include <string_view>

// Made by scripts/embed_assets.py from docs/openapi/relay.json.
extern "C" {
extern const size_t relay_openapi_count;
extern const unsigned char* const relay_openapi_data[];
extern const size_t relay_openapi_sizes[];
}

namespace hut::relay {

namespace {

constexpr net::Route kRoutes[] = {
    {"GET", "/"},
    {"GET", "/spaces"},
    {"GET", "/profile"},
    {"GET", "/web/{file}"},
    {"GET", "/.well-known/jwks.json"},
    {"GET", "/login"},
    {"POST", "/login"},
    {"GET", "/avatars/{user}"},
    {"GET", "/api/v1/openapi.json"},
    {"POST", "/api/v1/accounts"},
    {"POST", "/api/v1/sessions"},
    {"DELETE", "/api/v1/sessions"},
    {"GET", "/api/v1/me"},
    {"PATCH", "/api/v1/me"},
    {"PUT", "/api/v1/me/avatar"},
    {"GET", "/api/v1/users/{user}"},
    {"GET", "/api/v1/spaces"},
    {"POST", "/api/v1/spaces"},
    {"GET", "/api/v1/spaces/{space}"},
    {"PATCH", "/api/v1/spaces/{space}"},
    {"POST", "/api/v1/spaces/{space}/tokens"},
};

}  // namespace

std::span<const net::Route> relay_routes() { return kRoutes; }

std::string_view relay_openapi_document() {
  if (relay_openapi_count != 1) return "{}";
  return std::string_view(reinterpret_cast<const char*>(relay_openapi_data[0]), relay_openapi_sizes[0]);
}

}  // namespace hut::relay
