// libFuzzer target: any bytes through the relay's request parsing: the JSON
// bodies of the account, session, profile and space (create and change) routes, form decoding,
// the login page's URL check and the avatar format checks. The first byte
// picks the parser; the URL check must never accept a URL whose scheme, host
// or port differ from the registered one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "relay/rules.h"
#include "util/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  hut::relay::BodyError error;
  switch (data[0] % 7) {
    case 0: {
      hut::relay::AccountBody body;
      if (hut::relay::parse_body(in, &body, &error)) {
        if (!hut::relay::username_rule_broken(body.username).empty()) std::abort();
        if (!hut::relay::password_rule_broken(body.password).empty()) std::abort();
      } else if (error.message.empty()) {
        std::abort();
      }
      break;
    }
    case 1: {
      hut::relay::CredentialsBody body;
      hut::relay::parse_body(in, &body, &error);
      break;
    }
    case 2: {
      hut::relay::ProfileBody body;
      if (hut::relay::parse_body(in, &body, &error) && body.name &&
          !hut::relay::name_rule_broken(*body.name).empty())
        std::abort();
      break;
    }
    case 3: {
      hut::relay::SpaceBody body;
      if (hut::relay::parse_body(in, &body, &error)) {
        hut::relay::ParsedUrl url;
        if (!hut::relay::parse_url(body.url, &url)) std::abort();
      }
      break;
    }
    case 5: {
      hut::relay::SpacePatchBody body;
      if (hut::relay::parse_body(in, &body, &error)) {
        hut::relay::ParsedUrl url;
        if (body.url && !hut::relay::parse_url(*body.url, &url)) std::abort();
        if (body.name && !hut::relay::name_rule_broken(*body.name).empty()) std::abort();
      }
      break;
    }
    case 4: {
      (void)hut::form_decode(in);
      (void)hut::parse_form(in);
      const std::string_view base = "http://127.0.0.1:9123/app";
      if (hut::relay::url_is_under(in, base)) {
        hut::relay::ParsedUrl u;
        if (!hut::relay::parse_url(in, &u)) std::abort();
        if (u.scheme != "http" || u.host != "127.0.0.1" || u.port != "9123") std::abort();
        if (u.path != "/app" && u.path.rfind("/app/", 0) != 0) std::abort();
      }
      break;
    }
    default:
      hut::relay::is_png(in);
      hut::relay::is_jpeg(in);
      break;
  }
  return 0;
}
