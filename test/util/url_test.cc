// hut::Url, the strict reading on top of it, and the form decoder: what the
// client, the relay and the space take from a URL or a query.
#include <doctest/doctest.h>

#include "util/url.h"

using namespace hut;

TEST_CASE("url: the parts of http, https, ws and wss URLs") {
  Result<Url> u = Url::parse("HTTPS://Example.ORG:8443/a/b?x=1&y=%26#frag");
  REQUIRE(u.ok());
  CHECK(u->scheme == "https");
  CHECK(u->tls());
  CHECK(u->host == "example.org");
  CHECK(u->port == 8443);
  CHECK(u->path == "/a/b");
  CHECK(u->query == "x=1&y=%26");
  CHECK(u->target() == "/a/b?x=1&y=%26");
  CHECK(u->host_header() == "example.org:8443");

  u = Url::parse("ws://127.0.0.1");
  REQUIRE(u.ok());
  CHECK_FALSE(u->tls());
  CHECK(u->port == 80);
  CHECK(u->path == "/");
  CHECK(u->host_header() == "127.0.0.1");

  u = Url::parse("wss://h.example?q");
  REQUIRE(u.ok());
  CHECK(u->port == 443);
  CHECK(u->target() == "/?q");

  u = Url::parse("http://[::1]:9000/bus");
  REQUIRE(u.ok());
  CHECK(u->host == "::1");
  CHECK(u->host_text() == "[::1]");
  CHECK(u->host_header() == "[::1]:9000");

  // The path as written: the strict reading decides about dot segments.
  u = Url::parse("http://h/a/../b");
  REQUIRE(u.ok());
  CHECK(u->path == "/a/../b");
}

TEST_CASE("url: what is refused, with a reason") {
  for (const char* bad :
       {"", "example.org", "//example.org/x", "ftp://h/", "http:/h", "http:h", "http://", "http://:80/",
        "http://user@h/", "http://a:b@h/", "http://h:0/", "http://h:65536/", "http://h:8x/", "http://h%41/",
        "http://[::1/", "http://a b/", "http://h/\x01", "http://h\xc3\xa9/", "http://[fe80::1%25eth0]/"}) {
    CAPTURE(bad);
    Result<Url> u = Url::parse(bad);
    CHECK_FALSE(u.ok());
    if (!u.ok()) CHECK_FALSE(u.status().message().empty());
  }
}

TEST_CASE("url: the strict web reading") {
  CHECK(parse_strict_web_url("https://example.org/spaces/demo").ok());
  CHECK(parse_strict_web_url("http://[::1]:8080/a").ok());
  for (const char* bad :
       {"ws://example.org/", "HTTPS://example.org/", "https://example.org/a#b", "https:\\\\example.org/",
        "https://example.org/a/../b", "https://example.org/a/./b", "https://example.org/..",
        "https://example.org/%2e%2E/x", "https://example.org/a%2Fb", "https://example.org/a%5c"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_strict_web_url(bad).ok());
  }
}

TEST_CASE("url: form and query decoding") {
  CHECK(*form_decode("a+b%20c%2B%26") == "a b c+&");
  CHECK_FALSE(form_decode("%4").ok());
  CHECK_FALSE(form_decode("%zz").ok());
  auto fields = parse_form("space=s1&&return=http%3A%2F%2Fh%2F%3Fa%3D1%26b%3D2&flag&x=");
  REQUIRE(fields.ok());
  REQUIRE(fields->size() == 4);
  CHECK((*fields)[0] == std::make_pair(std::string("space"), std::string("s1")));
  CHECK((*fields)[1].second == "http://h/?a=1&b=2");
  CHECK((*fields)[2] == std::make_pair(std::string("flag"), std::string()));
  CHECK((*fields)[3] == std::make_pair(std::string("x"), std::string()));
  CHECK_FALSE(parse_form("a=1&b=%G0").ok());
}
