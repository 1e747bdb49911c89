#include "relay/web_pages.h"

#include <cstddef>
#include <optional>

#include "relay/answers.h"
#include "relay/handlers.h"
#include "util/assets.h"

// Made by scripts/embed_assets.py from web/ and docs/openapi/relay.json.
HUT_DECLARE_ASSETS(relay_web_assets)
extern "C" {
extern const size_t relay_openapi_count;
extern const unsigned char* const relay_openapi_data[];
extern const size_t relay_openapi_sizes[];
}

namespace hut::relay {

namespace {

std::optional<net::HttpResponse> asset(std::string_view name, bool page) {
  std::optional<EmbeddedFile> file = find_embedded(HUT_EMBEDDED_ASSETS(relay_web_assets), name);
  if (!file) return std::nullopt;
  net::HttpResponse r;
  r.content_type = std::string(file->type);
  r.body = std::string(file->data);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (page) {
    // Scripts and styles of the relay's own origin only; pictures may be
    // previews (blob:) before they are uploaded.
    r.headers.emplace_back("Content-Security-Policy",
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

std::optional<net::HttpResponse> web_page(std::string_view path) {
  if (path == "/profile") return asset("profile.html", true);
  if (path == "/spaces" || path == "/") return asset("spaces.html", true);
  constexpr std::string_view kPrefix = "/web/";
  if (!path.starts_with(kPrefix)) return std::nullopt;
  std::string_view name = path.substr(kPrefix.size());
  // Only the files themselves: no folders, no dot files, no HTML pages twice.
  if (name.empty() || name.find('/') != std::string_view::npos || name.front() == '.' ||
      name.find(".html") != std::string_view::npos)
    return std::nullopt;
  return asset(name, false);
}

}  // namespace

net::HttpResponse get_web_page(Call& call) {
  if (std::optional<net::HttpResponse> r = web_page(call.req.path)) return std::move(*r);
  return error(404, "not_found", "no such route");
}

net::HttpResponse get_openapi(Call&) {
  net::HttpResponse r;
  r.body = std::string(relay_openapi_document());
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("Access-Control-Allow-Origin", "*");
  return r;
}

std::string_view relay_openapi_document() {
  if (relay_openapi_count != 1) return "{}";
  return std::string_view(reinterpret_cast<const char*>(relay_openapi_data[0]), relay_openapi_sizes[0]);
}

}  // namespace hut::relay
