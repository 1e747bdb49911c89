// Route tables as data: the method and path pattern of every route a
// dispatcher serves. The dispatcher checks each request against its table
// first, so that the table is the whole list of what it serves; the OpenAPI
// documents in docs/openapi/ are tested against the same tables.
//
// A pattern is a path whose segments are literals or "{name}", which
// matches one non-empty segment. HEAD matches the GET routes.
// Thread safety: the tables are constant; any thread.
#ifndef HUTOPIA_NET_ROUTES_H_
#define HUTOPIA_NET_ROUTES_H_

#include <span>
#include <string>
#include <string_view>

namespace hut::net {

struct Route {
  const char* method;   // "GET", "POST", ...
  const char* pattern;  // "/api/v1/rooms/{room}"
};

// Whether `path` matches `pattern`.
bool path_matches(std::string_view pattern, std::string_view path);

enum class RouteMatch { kFound, kWrongMethod, kNone };

// Looks `method` and `path` up in `routes`. On kWrongMethod, `allowed` (when
// given) lists the methods the path has, as "GET or POST".
RouteMatch match_route(std::span<const Route> routes, std::string_view method, std::string_view path,
                       std::string* allowed = nullptr);

}  // namespace hut::net

#endif  // HUTOPIA_NET_ROUTES_H_
