// Fuzzes the space's dispatch of /api/<plugin>/<route>?<query>
// (space::plugin_api_target): the input up to its first '?' is the path as
// the network layer decoded it, the rest the query. A request that is
// dispatched names a valid plugin, hands the plugin a route starting with
// "/" that, after /api/<plugin>, is the request's path, and the query
// unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "plugins/runtime.h"
#include "space/routes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t q = in.find('?');
  std::string_view path = in.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : in.substr(q + 1);

  auto target = hut::space::plugin_api_target(path, query);
  if (!target) {
    // Refused only when the path is not under /api/ or its plugin part is not a plugin name.
    if (path.substr(0, 5) == "/api/") {
      std::string_view after = path.substr(5);
      std::string_view name = after.substr(0, after.find('/'));
      if (hut::valid_plugin_name(name)) std::abort();
    }
    return 0;
  }
  if (!hut::valid_plugin_name(target->plugin)) std::abort();
  if (target->path.empty() || target->path.front() != '/') std::abort();
  if (target->query != query) std::abort();
  std::string base = "/api/" + target->plugin;
  if (path != base + target->path && !(target->path == "/" && path == base)) std::abort();
  return 0;
}
