#include "space/routes.h"

#include "plugins/runtime.h"

namespace hut::space {

std::optional<std::string> safe_asset_path(std::string_view path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/') return std::nullopt;
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\' || c == '%') return std::nullopt;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view seg =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg.empty() || seg == "." || seg == "..") return std::nullopt;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::string(path);
}

bool split_plugin_path(std::string_view after_prefix, std::string* plugin, std::string* rest) {
  size_t slash = after_prefix.find('/');
  *plugin = std::string(after_prefix.substr(0, slash));
  *rest = slash == std::string_view::npos ? std::string() : std::string(after_prefix.substr(slash + 1));
  return !plugin->empty();
}

std::optional<PluginApiTarget> plugin_api_target(std::string_view path, std::string_view query) {
  constexpr std::string_view kPrefix = "/api/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  PluginApiTarget t;
  std::string rest;
  if (!split_plugin_path(path.substr(kPrefix.size()), &t.plugin, &rest) || !valid_plugin_name(t.plugin))
    return std::nullopt;
  t.path = "/" + rest;
  t.query = std::string(query);
  return t;
}

std::string query_escape(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                 c == '_' || c == '.' || c == '~';
    if (plain) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace hut::space
