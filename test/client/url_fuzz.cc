// libFuzzer target: any bytes through the client's URL parser (the space URL
// a user gives, and the relay URL a space announces at /.well-known/hutopia).
// A URL it accepts has a host and a port in range, and the Host header it
// makes parses back to the same host and port.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "client/transport.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  hut::Result<hut::client::Url> u = hut::client::parse_url(in);
  if (!u.ok()) return 0;
  if (u->host.empty() || u->port <= 0 || u->port > 65535 || u->path.empty() || u->path[0] != '/')
    std::abort();
  std::string again = std::string(u->tls ? "https://" : "http://") + u->host_header() + "/";
  hut::Result<hut::client::Url> v = hut::client::parse_url(again);
  if (!v.ok() || v->host != u->host || v->port != u->port || v->tls != u->tls) std::abort();
  return 0;
}
