// The relay's rules and the login page's URL check, alone.
#include <doctest/doctest.h>

#include "relay/rules.h"

using namespace hut::relay;

TEST_CASE("relay rules: usernames and passwords") {
  CHECK(username_rule_broken("abc").empty());
  CHECK(username_rule_broken("a.b_c-9").empty());
  CHECK_FALSE(username_rule_broken("ab").empty());
  CHECK_FALSE(username_rule_broken("9abc").empty());
  CHECK_FALSE(username_rule_broken("abC").empty());
  CHECK(password_rule_broken("12345678").empty());
  CHECK_FALSE(password_rule_broken("1234567").empty());
  CHECK(password_rule_broken("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9").empty());
}

TEST_CASE("relay rules: a return URL must lie under the registered one") {
  const char* base = "https://Example.org/spaces/demo";
  CHECK(url_is_under("https://example.org/spaces/demo", base));
  CHECK(url_is_under("https://example.org:443/spaces/demo/room?x=1", base));
  CHECK_FALSE(url_is_under("https://example.org/spaces/demolition", base));
  CHECK_FALSE(url_is_under("http://example.org/spaces/demo", base));
  CHECK_FALSE(url_is_under("https://example.org:444/spaces/demo", base));
  CHECK_FALSE(url_is_under("https://evil.org/spaces/demo", base));
  CHECK_FALSE(url_is_under("https://example.org@evil.org/spaces/demo", base));
  CHECK_FALSE(url_is_under("https://example.org/spaces/demo/../../admin", base));
  CHECK_FALSE(url_is_under("https://example.org/spaces/demo/%2E%2E/x", base));
  CHECK_FALSE(url_is_under("//example.org/spaces/demo", base));
  CHECK_FALSE(url_is_under("https:\\\\example.org/spaces/demo", base));
  CHECK(url_is_under("http://[::1]:8080/a/b", "http://[::1]:8080/"));
}

TEST_CASE("relay rules: JSON bodies") {
  AccountBody a;
  BodyError e;
  CHECK(parse_body(R"({"username":"alice","password":"12345678","name":"Alice"})", &a, &e));
  CHECK(a.name.value_or("") == "Alice");
  CHECK_FALSE(parse_body(R"({"username":"alice","password":"1234"})", &a, &e));
  CHECK(e.code == "bad_password");
  CHECK_FALSE(parse_body(R"({"username":"al","username":"alice","password":"12345678"})", &a, &e));
  SpaceBody s;
  CHECK(parse_body(R"({"name":"Demo","url":"http://127.0.0.1:8080"})", &s, &e));
  CHECK(s.name == "Demo");
  CHECK_FALSE(parse_body(R"({"name":"Demo","url":"http://h/a/../b"})", &s, &e));
  CHECK(e.code == "bad_space");
  // The relay assigns ids: a chosen one is refused, not ignored.
  CHECK_FALSE(parse_body(R"({"id":"demo","name":"Demo","url":"http://127.0.0.1:8080"})", &s, &e));
  CHECK(e.message.find("assigns") != std::string::npos);
  SpacePatchBody patch;
  CHECK(parse_body(R"({"url":"https://example.org/s"})", &patch, &e));
  CHECK_FALSE(patch.name.has_value());
  CHECK(patch.url.value_or("") == "https://example.org/s");
  CHECK(parse_body(R"({})", &patch, &e));
  CHECK_FALSE(patch.url.has_value());
  CHECK_FALSE(parse_body(R"({"url":"ftp://x/"})", &patch, &e));
  CHECK_FALSE(parse_body(R"({"name":""})", &patch, &e));
  CHECK_FALSE(parse_body(R"({"name":5})", &patch, &e));
  CHECK_FALSE(parse_body(R"({"id":"x"})", &patch, &e));
}

TEST_CASE("relay rules: assigned space ids") {
  CHECK(space_id_from_bytes("") == "");
  // RFC 4648's test vectors, in lower case and without padding.
  CHECK(space_id_from_bytes("f") == "my");
  CHECK(space_id_from_bytes("foobar") == "mzxw6ytboi");
  std::string id = space_id_from_bytes(std::string(16, '\xff'));
  CHECK(id.size() == 26);
  CHECK(space_id_rule_broken(id).empty());
}
