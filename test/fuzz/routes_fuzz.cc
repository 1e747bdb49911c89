// Fuzzes the checks of the space's public HTTP routes: the asset path of
// /plugins/<plugin>/<path> (after the one percent-decoding lws applied), the
// split of a plugin route, and the query escaping of the login redirect.
// An accepted asset path never climbs out of the plugin's folder; an escaped
// value decodes back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "space/routes.h"
#include "util/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto safe = hut::space::safe_asset_path(in)) {
    if (*safe != in || safe->empty() || safe->front() == '/') std::abort();
    if (safe->find('\\') != std::string::npos || safe->find('%') != std::string::npos) std::abort();
    size_t start = 0;
    for (;;) {  // no empty, "." or ".." segment
      size_t slash = safe->find('/', start);
      std::string_view seg =
          std::string_view(*safe).substr(start, slash == std::string::npos ? slash : slash - start);
      if (seg.empty() || seg == "." || seg == "..") std::abort();
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    for (unsigned char c : *safe)
      if (c < 0x20 || c == 0x7f) std::abort();
  }

  std::string plugin, rest;
  if (hut::space::split_plugin_path(in, &plugin, &rest)) {
    if (plugin.empty() || plugin.find('/') != std::string::npos) std::abort();
    if (plugin + (in.size() > plugin.size() ? "/" + rest : "") != in) std::abort();
  }

  std::string escaped = hut::space::query_escape(in);
  for (char c : escaped) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == '~' || c == '%';
    if (!ok) std::abort();
  }
  hut::Result<std::string> decoded = hut::form_decode(escaped);
  if (!decoded.ok() || *decoded != in) std::abort();
  return 0;
}
