// Helpers of the public HTTP routes that deserve their own tests.
// Thread: pure functions; any thread.
#ifndef HUTOPIA_SPACE_ROUTES_H_
#define HUTOPIA_SPACE_ROUTES_H_

#include <optional>
#include <string>
#include <string_view>

namespace hut::space {

// The asset path of a request for /plugins/<plugin>/<path>, or nullopt when
// it must be refused. `path` is what follows "/plugins/<plugin>/", as the
// network layer decoded it (percent-decoding was applied once). Refused: an
// empty path, an absolute one, a "." or ".." segment, an empty segment, a
// backslash, a NUL or other control character, and any "%" (which after one
// decoding can only be a second encoding, as in %252e%252e).
std::optional<std::string> safe_asset_path(std::string_view path);

// Splits "/<prefix>/<plugin>/<rest>" given the part after the prefix:
// "echo/x/y" -> ("echo", "x/y"); "echo" -> ("echo", ""). False when the
// plugin part is empty.
bool split_plugin_path(std::string_view after_prefix, std::string* plugin, std::string* rest);

// Where a request for /api/<plugin>/<route>?<query> goes: the plugin, the
// route as the plugin sees it ("/" and what follows the plugin's name) and
// the query unchanged. nullopt when the path does not start with /api/ or
// the plugin part is not a valid plugin name (the request is a 404).
struct PluginApiTarget {
  std::string plugin;
  std::string path;
  std::string query;
};
std::optional<PluginApiTarget> plugin_api_target(std::string_view path, std::string_view query);

// Percent-encodes a string for use as a query value.
std::string query_escape(std::string_view text);

}  // namespace hut::space

#endif  // HUTOPIA_SPACE_ROUTES_H_
