// The asset path rules of /plugins/<plugin>/<path>.
#include <doctest/doctest.h>

#include "plugins/runtime.h"
#include "space/routes.h"

using hut::space::safe_asset_path;

TEST_CASE("space routes: asset paths") {
  CHECK(safe_asset_path("widget.js") == std::optional<std::string>("widget.js"));
  CHECK(safe_asset_path("img/logo.svg").has_value());
  const char* refused[] = {"",         "/etc/passwd", "../x", "a/../../b", "a/./b", "a//b", "a\\..\\b",
                           "%2e%2e/x", "%252e",       "a/..", "..",        "a/",    "x\ty"};
  for (const char* p : refused) {
    CAPTURE(p);
    CHECK_FALSE(safe_asset_path(p).has_value());
  }
  CHECK_FALSE(safe_asset_path(std::string_view("a\0b", 3)).has_value());
  CHECK(hut::valid_plugin_name("echo_2-x"));
  CHECK_FALSE(hut::valid_plugin_name("Echo"));
  CHECK_FALSE(hut::valid_plugin_name(".."));
  CHECK(hut::space::query_escape("http://a/b?c=d e") == "http%3A%2F%2Fa%2Fb%3Fc%3Dd%20e");
}
