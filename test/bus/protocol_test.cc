// The bus frame parser and the vocabulary (libhutopia/bus/protocol.h).
#include <doctest/doctest.h>

#include "bus/protocol.h"

using namespace hut::bus;

TEST_CASE("bus protocol: envelope checks") {
  auto ok = parse_client_frame(R"({"op":"ping","ref":7})");
  REQUIRE(ok.ok);
  CHECK(ok.frame.op == Op::kPing);
  CHECK(ok.frame.ref_json == "7");

  auto sref = parse_client_frame(R"({"op":"widget","ref":"abc","plugin":"echo","extra":1})");
  REQUIRE(sref.ok);
  CHECK(sref.frame.op == Op::kWidget);
  CHECK(sref.frame.ref_json == "\"abc\"");

  struct Bad {
    const char* text;
    const char* ref;  // expected ref in the error, "" for none
  };
  const Bad bad[] = {
      {"not json", ""},
      {"[1,2]", ""},
      {"\"op\"", ""},
      {"{}", ""},
      {R"({"op":5,"ref":1})", "1"},
      {R"({"op":"fly","ref":"x"})", "\"x\""},
      {R"({"op":"ping","ref":{"a":1}})", ""},
      {R"({"op":"ping","ref":true})", ""},
      {R"({"op":"ping"} trailing)", ""},
  };
  for (const auto& b : bad) {
    CAPTURE(b.text);
    auto r = parse_client_frame(b.text);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.message.empty());
    CHECK(r.ref_json == b.ref);
  }
}

TEST_CASE("bus protocol: ref length counts characters") {
  std::string ref64(64, 'r');
  CHECK(parse_client_frame(R"({"op":"ping","ref":")" + ref64 + "\"}").ok);
  CHECK_FALSE(parse_client_frame(R"({"op":"ping","ref":")" + ref64 + "r\"}").ok);
  // 64 two-byte characters are 64 characters.
  std::string wide;
  for (int i = 0; i < 64; ++i) wide += "\xc3\xa9";
  CHECK(parse_client_frame(R"({"op":"ping","ref":")" + wide + "\"}").ok);
}

TEST_CASE("bus protocol: names and builders") {
  CHECK(op_name(Op::kMuteAll) == "mute_all");
  CHECK(op_from_name("history") == Op::kHistory);
  CHECK_FALSE(op_from_name("nope").has_value());
  CHECK(error_code_name(ErrorCode::kRateLimited) == "rate_limited");
  CHECK(static_cast<int>(CloseCode::kTooSlow) == 4008);
  CHECK(make_ok("1") == R"({"op":"ok","ref":1})");
  CHECK(make_ok("", R"("data":null)") == R"({"op":"ok","data":null})");
  CHECK(make_error("\"a\"", ErrorCode::kNotFound, "no \"x\"") ==
        R"({"op":"error","ref":"a","code":"not_found","message":"no \"x\""})");
  CHECK(make_widget_event("p", R"({"v":1})") == R"({"op":"widget","plugin":"p","data":{"v":1}})");
  CHECK(make_notify_event("p", "T", "", "") == R"({"op":"notify","plugin":"p","title":"T"})");
  CHECK(is_json(" [1] "));
  CHECK_FALSE(is_json("[1] x"));
}
