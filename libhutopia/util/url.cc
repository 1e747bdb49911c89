#include "util/url.h"

#include <curl/curl.h>

#include <memory>

namespace hut {
namespace {

struct UrlFree {
  void operator()(CURLU* h) const { curl_url_cleanup(h); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlFree>;

// One part of a parsed URL; false when curl has none.
bool get_part(CURLU* h, CURLUPart part, std::string* out, unsigned int flags = 0) {
  char* text = nullptr;
  if (curl_url_get(h, part, &text, flags) != CURLUE_OK || text == nullptr) return false;
  *out = text;
  curl_free(text);
  return true;
}

int default_port(std::string_view scheme) {
  if (scheme == "redis") return 6379;
  return scheme == "https" || scheme == "wss" ? 443 : 80;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<Url> Url::parse(std::string_view text) {
  for (char c : text) {
    auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b >= 0x7f) return Status::invalid_argument("a URL is printable ASCII without spaces");
  }
  // curl also takes "http:/host"; the project asks for the two slashes.
  size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return Status::invalid_argument("not an absolute URL");
  Url u;
  for (char c : text.substr(0, sep)) u.scheme.push_back(lower(c));
  if (u.scheme != "http" && u.scheme != "https" && u.scheme != "ws" && u.scheme != "wss" &&
      u.scheme != "redis")
    return Status::invalid_argument("unsupported URL scheme: " + u.scheme);
  std::string_view rest = text.substr(sep + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos)
    return Status::invalid_argument("user information in URLs is not supported");
  if (authority.find('%') != std::string_view::npos) return Status::invalid_argument("bad host in URL");
  if (authority.empty() || authority.front() == ':') return Status::invalid_argument("URL without a host");

  UrlHandle h(curl_url());
  if (!h) return Status::resource_exhausted("cannot allocate a URL handle");
  std::string whole(text);
  // As written: no dot segment removed, no scheme curl does not know refused
  // (ws and wss are checked above).
  CURLUcode rc =
      curl_url_set(h.get(), CURLUPART_URL, whole.c_str(), CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS);
  if (rc != CURLUE_OK) return Status::invalid_argument(std::string("bad URL: ") + curl_url_strerror(rc));
  std::string host;
  if (!get_part(h.get(), CURLUPART_HOST, &host) || host.empty())
    return Status::invalid_argument("URL without a host");
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return Status::invalid_argument("bad IPv6 address in URL");
    host = host.substr(1, host.size() - 2);
  }
  for (char c : host) {
    // Names and addresses only; ':' only in an IPv6 address.
    if (c == '/' || c == '\\' || c == '[' || c == ']' || c == '%' || (c == ':' && authority.front() != '['))
      return Status::invalid_argument("bad host in URL");
    u.host.push_back(lower(c));
  }
  std::string port;
  if (get_part(h.get(), CURLUPART_PORT, &port)) {
    // curl took it as a decimal number up to 65535.
    int p = 0;
    for (char c : port) p = p * 10 + (c - '0');
    if (p <= 0 || p > 65535) return Status::invalid_argument("bad port in URL");
    u.port = p;
  } else {
    u.port = default_port(u.scheme);
  }
  if (!get_part(h.get(), CURLUPART_PATH, &u.path) || u.path.empty()) u.path = "/";
  get_part(h.get(), CURLUPART_QUERY, &u.query);
  return u;
}

std::string Url::host_text() const { return is_ipv6() ? "[" + host + "]" : host; }

std::string Url::host_header() const {
  std::string h = host_text();
  if (port != default_port(scheme)) h += ":" + std::to_string(port);
  return h;
}

Result<RedisAddress> parse_redis_address(std::string_view text) {
  RedisAddress a;
  constexpr std::string_view kUnix = "unix://";
  if (text.substr(0, kUnix.size()) == kUnix) {
    a.unix_path = std::string(text.substr(kUnix.size()));
    if (a.unix_path.empty() || a.unix_path.front() != '/')
      return Status::invalid_argument(
          "a unix:// Redis address needs an absolute path: unix:///run/redis.sock");
    if (a.unix_path.find('\0') != std::string::npos) return Status::invalid_argument("bad socket path");
    return a;
  }
  if (text.substr(0, 8) != "redis://")
    return Status::invalid_argument("must be redis://host:port or unix:///path/to/socket");
  Result<Url> u = Url::parse(text);
  if (!u.ok()) return u.status();
  if ((u->path != "/" && u->path != "") || !u->query.empty())
    return Status::invalid_argument("a redis:// address takes only a host and a port");
  a.host = u->host;
  a.port = u->port;
  return a;
}

std::string Url::target() const { return query.empty() ? path : path + "?" + query; }

Result<Url> parse_strict_web_url(std::string_view text) {
  if (text.find_first_of("\\#") != std::string_view::npos)
    return Status::invalid_argument("a backslash or '#' in the URL");
  // The scheme in lower case as written: a return address is compared with
  // the registered one as text by browsers and proxies alike.
  if (text.rfind("http://", 0) != 0 && text.rfind("https://", 0) != 0)
    return Status::invalid_argument("not an http(s) URL");
  Result<Url> u = Url::parse(text);
  if (!u.ok()) return u.status();
  std::string lowered;
  for (char c : u->path) lowered.push_back(lower(c));
  if (lowered.find("%2e") != std::string::npos || lowered.find("%2f") != std::string::npos ||
      lowered.find("%5c") != std::string::npos)
    return Status::invalid_argument("an encoded dot, slash or backslash in the URL's path");
  std::string_view path = u->path;
  for (size_t i = 0; i < path.size();) {
    size_t next = path.find('/', i + 1);
    std::string_view seg =
        path.substr(i + 1, next == std::string_view::npos ? std::string_view::npos : next - i - 1);
    if (seg == "." || seg == "..") return Status::invalid_argument("a '.' or '..' segment in the URL's path");
    if (next == std::string_view::npos) break;
    i = next;
  }
  return u;
}

Result<std::string> form_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%') {
      int h = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
      int l = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (h < 0 || l < 0) return Status::invalid_argument("a broken %-escape");
      out.push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_form(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view field = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (field.empty()) continue;
    size_t eq = field.find('=');
    Result<std::string> name = form_decode(field.substr(0, eq));
    if (!name.ok()) return name.status();
    Result<std::string> value =
        form_decode(eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1));
    if (!value.ok()) return value.status();
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

}  // namespace hut
