// libFuzzer target: any bytes through the one URL reader (hut::Url, on
// libcurl's URL API): the space URL a user gives, the relay URL a space
// announces at /.well-known/hutopia, the relay's space URLs. A URL it
// accepts has a host and a port in range, and the Host header it makes
// parses back to the same host and port; a URL the strict reading accepts
// the plain one accepts alike, with no dot segment in its path. The same
// bytes go through the form decoder.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "util/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)hut::parse_form(in);
  hut::Result<hut::Url> strict = hut::parse_strict_web_url(in);
  hut::Result<hut::Url> u = hut::Url::parse(in);
  if (strict.ok()) {
    if (!u.ok() || strict->host != u->host || strict->port != u->port || strict->path != u->path)
      std::abort();
    if (strict->path.find("/../") != std::string::npos || strict->path.find("/./") != std::string::npos)
      std::abort();
  }
  if (!u.ok()) return 0;
  if (u->host.empty() || u->port <= 0 || u->port > 65535 || u->path.empty() || u->path[0] != '/')
    std::abort();
  // Written again with its own scheme (curl normalizes hosts per scheme:
  // "0" stays "0" in redis:// and becomes 0.0.0.0 in http://).
  std::string again = u->scheme + "://" + u->host_header() + "/";
  hut::Result<hut::Url> v = hut::Url::parse(again);
  if (!v.ok() || v->host != u->host || v->port != u->port || v->tls() != u->tls()) std::abort();
  return 0;
}
