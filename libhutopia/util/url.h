// URLs, read once by libcurl's URL API (curl_url()) with the project's
// policy on top, and application/x-www-form-urlencoded decoding. The one
// place the library takes URLs and query strings apart: the client's space
// and relay URLs, the relay's space URLs and login return URLs.
//
// Thread: any. Pure functions.
#ifndef HUTOPIA_UTIL_URL_H_
#define HUTOPIA_UTIL_URL_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <hutopia/status.h>

namespace hut {

// An absolute http://, https://, ws://, wss:// (or redis://) URL taken apart.
struct Url {
  std::string scheme;  // lower case
  std::string host;    // lower case; an IPv6 address without its brackets
  int port = 0;        // as given, else the scheme's default
  std::string path;    // "/" at least, as written (no dot segment removed, nothing decoded)
  std::string query;   // without the '?'; may be empty

  // Parses `text`: printable ASCII, the scheme followed by "://", a host
  // (no user information, no percent sign, no IPv6 zone), a port from 1 to
  // 65535 when given. A fragment is dropped.
  static Result<Url> parse(std::string_view text);

  bool tls() const { return scheme == "https" || scheme == "wss"; }
  bool is_ipv6() const { return host.find(':') != std::string::npos; }
  // The host as a URL writes it: IPv6 addresses in brackets.
  std::string host_text() const;
  // "host" or "host:port" when the port is not the scheme's default.
  std::string host_header() const;
  // The path with "?query" when there is one.
  std::string target() const;
};

// The stricter reading behind the relay's space URLs and login return URLs:
// "http://" or "https://" in lower case only, no backslash, no '#', no "." or ".." path segment and
// no encoded dot, slash or backslash in the path.
Result<Url> parse_strict_web_url(std::string_view text);

// Where a Redis server listens: `redis://host[:port]` (port 6379 when not
// given) or `unix:///absolute/path` (a Unix socket).
struct RedisAddress {
  std::string host;  // empty for a Unix socket
  int port = 0;
  std::string unix_path;  // empty for TCP
};
Result<RedisAddress> parse_redis_address(std::string_view text);

// Decodes one application/x-www-form-urlencoded name or value: '+' is a
// space, %XX a byte. kInvalidArgument on a broken escape.
Result<std::string> form_decode(std::string_view text);

// Splits a query string or a form body at '&' into decoded name/value
// pairs, in order (a field without '=' has an empty value; empty fields are
// skipped). kInvalidArgument on a broken escape.
Result<std::vector<std::pair<std::string, std::string>>> parse_form(std::string_view text);

}  // namespace hut

#endif  // HUTOPIA_UTIL_URL_H_
