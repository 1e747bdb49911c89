#include "pages.h"

#include <cstddef>
#include <string_view>

// Made by scripts/embed_assets.py from web/.
extern "C" {
extern const size_t relay_web_assets_count;
extern const char* const relay_web_assets_paths[];
extern const char* const relay_web_assets_types[];
extern const unsigned char* const relay_web_assets_data[];
extern const size_t relay_web_assets_sizes[];
}

namespace hut::relay {

namespace {

std::optional<net::HttpResponse> asset(std::string_view name, bool page) {
  for (size_t i = 0; i < relay_web_assets_count; ++i) {
    if (name != relay_web_assets_paths[i]) continue;
    net::HttpResponse r;
    r.content_type = relay_web_assets_types[i];
    r.body.assign(reinterpret_cast<const char*>(relay_web_assets_data[i]), relay_web_assets_sizes[i]);
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    if (page) {
      // Scripts and styles of the relay's own origin only; pictures may be
      // previews (blob:) before they are uploaded.
      r.headers.emplace_back(
          "Content-Security-Policy",
          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
          "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
      r.headers.emplace_back("X-Frame-Options", "DENY");
      r.headers.emplace_back("Referrer-Policy", "same-origin");
      r.headers.emplace_back("Cache-Control", "no-store");
    } else {
      r.headers.emplace_back("Cache-Control", "no-cache");
    }
    return r;
  }
  return std::nullopt;
}

}  // namespace

std::optional<net::HttpResponse> web_page(const std::string& method, const std::string& path) {
  if (method != "GET" && method != "HEAD") return std::nullopt;
  if (path == "/profile") return asset("profile.html", true);
  if (path == "/spaces" || path == "/") return asset("spaces.html", true);
  constexpr std::string_view kPrefix = "/web/";
  std::string_view p = path;
  if (p.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view name = p.substr(kPrefix.size());
  // Only the files themselves: no folders, no dot files, no HTML pages twice.
  if (name.empty() || name.find('/') != std::string_view::npos || name.front() == '.' ||
      name.find(".html") != std::string_view::npos)
    return std::nullopt;
  return asset(name, false);
}

}  // namespace hut::relay
