#include <doctest/doctest.h>
#include <hutopia/log.h>
#include <hutopia/plugin.h>
#include <sys/stat.h>
#include <uv.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "store/sqlite_db.h"
#include "store/store.h"
#include "test_util.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/json.h"
#include "util/table.h"
#include "util/wire_error.h"

namespace {

// The text cJSON reads back from `json`, printed compactly: equal texts
// mean the writer produced what a parser sees.
std::string reparsed(const std::string& json) {
  hut::JsonPtr v(cJSON_Parse(json.c_str()));
  REQUIRE(v != nullptr);
  char* text = cJSON_PrintUnformatted(v.get());
  std::string out(text);
  cJSON_free(text);
  return out;
}

}  // namespace

TEST_CASE("json writer: members in order, strings escaped, raw JSON spliced as it is") {
  std::string plugin_data = R"({"n": [1, 2.5, "x"], "deep": {"k": null}})";
  std::string out = hut::JsonObject()
                        .str("op", "widget")
                        .str("plugin", "qu\"ote\\back\nline\x01")
                        .num("seq", uint64_t{18446744073709551615u})
                        .num("delta", int64_t{-3})
                        .boolean("on", false)
                        .null("none")
                        .raw("data", plugin_data)
                        .done();
  CHECK(
      out.starts_with(R"({"op":"widget","plugin":"qu\"ote\\back\nline\u0001","seq":18446744073709551615,)"));
  // The plugin's text is kept byte for byte, spaces included: no re-parse.
  CHECK(out.find(plugin_data) != std::string::npos);
  CHECK(out.ends_with(plugin_data + "}"));
  CHECK(hut::is_json(out));
  hut::JsonPtr v(cJSON_Parse(out.c_str()));
  REQUIRE(v != nullptr);
  CHECK(std::string(hut::get_string(v.get(), "plugin")) == "qu\"ote\\back\nline\x01");
  CHECK(cJSON_IsFalse(hut::get_field(v.get(), "on")));
  CHECK(cJSON_IsNull(hut::get_field(v.get(), "none")));
  CHECK(hut::get_field(v.get(), "data")->child != nullptr);
}

TEST_CASE("json writer: empty raw is null, members splice an object's inside, arrays") {
  CHECK(hut::JsonObject().raw("data", "").done() == R"({"data":null})");
  CHECK(hut::JsonObject().str("op", "ok").members(R"({"a":1,"b":[2]})").done() ==
        R"({"op":"ok","a":1,"b":[2]})");
  CHECK(hut::JsonObject().str("op", "ok").members("{}").done() == R"({"op":"ok"})");
  CHECK(hut::JsonObject().members(R"("room":"x")").done() == R"({"room":"x"})");
  CHECK(hut::JsonObject().done() == "{}");
  CHECK(hut::JsonArray().done() == "[]");
  CHECK(hut::JsonArray().str("a\"b").raw(R"({"k":1})").raw("").done() == R"(["a\"b",{"k":1},null])");
  // One writer, reused after done().
  hut::JsonObject w;
  CHECK(w.str("a", "1").done() == R"({"a":"1"})");
  CHECK(w.str("b", "2").done() == R"({"b":"2"})");
  CHECK(reparsed(hut::JsonArray().str("é ✓").done()) == "[\"é ✓\"]");
}

TEST_CASE("error table: names, HTTP statuses and the Status mapping the wire uses") {
  using hut::WireError;
  CHECK(hut::wire_error_name(WireError::kBadRequest) == "bad_request");
  CHECK(hut::wire_error_http_status(WireError::kBadRequest) == 400);
  CHECK(hut::wire_error_http_status(WireError::kUnauthenticated) == 401);
  CHECK(hut::wire_error_http_status(WireError::kNotFound) == 404);
  CHECK(hut::wire_error_http_status(WireError::kConflict) == 409);
  CHECK(hut::wire_error_http_status(WireError::kTooLarge) == 413);
  CHECK(hut::wire_error_http_status(WireError::kRateLimited) == 429);
  CHECK(hut::wire_error_http_status(WireError::kUnavailable) == 503);
  CHECK(hut::wire_error_http_status(WireError::kUnprocessable) == 422);
  for (WireError e :
       {WireError::kBadRequest, WireError::kUnauthenticated, WireError::kForbidden, WireError::kNotFound,
        WireError::kConflict, WireError::kMuted, WireError::kRateLimited, WireError::kTooLarge,
        WireError::kUnavailable, WireError::kInternal, WireError::kUnprocessable})
    CHECK(hut::wire_error_from_name(hut::wire_error_name(e)) == e);
  CHECK_FALSE(hut::wire_error_from_name("no_such_code").has_value());

  CHECK(hut::wire_error_of(hut::Status::not_found("x")) == WireError::kNotFound);
  CHECK(hut::wire_error_of(hut::Status::already_exists("x")) == WireError::kConflict);
  CHECK(hut::wire_error_of(hut::Status::permission_denied("x")) == WireError::kForbidden);
  CHECK(hut::wire_error_of(hut::Status::invalid_argument("x")) == WireError::kBadRequest);
  CHECK(hut::wire_error_of(hut::Status::resource_exhausted("x")) == WireError::kTooLarge);
  CHECK(hut::wire_error_of(hut::Status::failed_precondition("x")) == WireError::kUnavailable);
  CHECK(hut::wire_error_of(hut::Status::unavailable("x")) == WireError::kUnavailable);
  CHECK(hut::wire_error_of(hut::Status::io_error("x")) == WireError::kInternal);

  CHECK(hut::wire_error_of_plugin(HUT_EINVAL) == WireError::kBadRequest);
  CHECK(hut::wire_error_of_plugin(HUT_ENOENT) == WireError::kNotFound);
  CHECK(hut::wire_error_of_plugin(HUT_EPERM) == WireError::kForbidden);
  CHECK(hut::wire_error_of_plugin(HUT_EEXIST) == WireError::kConflict);
  CHECK(hut::wire_error_of_plugin(HUT_ETOOBIG) == WireError::kTooLarge);
  CHECK(hut::wire_error_of_plugin(HUT_EUNAVAIL) == WireError::kUnavailable);
  CHECK(hut::wire_error_of_plugin(HUT_EIO) == WireError::kInternal);

  CHECK(hut::http_error_body(WireError::kNotFound, "no \"such\" room") ==
        R"({"error":{"code":"not_found","message":"no \"such\" room"}})");
}

TEST_CASE("atomic write: replaces the whole file, mode 0600, leaves nothing beside it") {
  hut::test::TempDir dir;
  std::string path = dir.file("keys.json");
  REQUIRE(hut::util::write_file_atomic(path, "first").ok());
  CHECK(hut::test::read_file(path) == "first");
  std::string big(1 << 20, 'x');
  REQUIRE(hut::util::write_file_atomic(path, big).ok());
  CHECK(hut::test::read_file(path) == big);
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);

  // A folder that does not exist: an error naming the path, the old file untouched.
  hut::Status st2 = hut::util::write_file_atomic(dir.file("missing/keys.json"), "x");
  CHECK(st2.code() == hut::Status::Code::kIOError);
  CHECK(st2.message().find("missing/keys.json") != std::string::npos);
  CHECK(hut::test::read_file(path) == big);
}

TEST_CASE("clocks: the loop's clock moves forward, the wall clock is Unix time") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  uint64_t a = hut::loop_now_ms(&loop);
  uv_sleep(5);
  uint64_t b = hut::loop_now_ms(&loop);
  CHECK(b >= a + 5);
  CHECK(uv_loop_close(&loop) == 0);
  int64_t now = hut::wall_ms();
  CHECK(now > 1700000000000);  // after November 2023
  CHECK(now < 4102444800000);  // before 2100
}

TEST_CASE("pair tables: looked up either way; the name tables built on them") {
  constexpr std::pair<int, std::string_view> kTable[] = {{1, "one"}, {2, "two"}, {2, "again"}};
  CHECK(hut::util::second_of(kTable, 2) == std::optional<std::string_view>("two"));  // the first match
  CHECK_FALSE(hut::util::second_of(kTable, 3).has_value());
  CHECK(hut::util::first_of(kTable, std::string_view("again")) == std::optional<int>(2));
  CHECK_FALSE(hut::util::first_of(kTable, std::string_view("three")).has_value());

  for (hut::LogLevel l :
       {hut::LogLevel::kDebug, hut::LogLevel::kInfo, hut::LogLevel::kWarn, hut::LogLevel::kError}) {
    hut::LogLevel back = hut::LogLevel::kDebug;
    REQUIRE(hut::parse_log_level(hut::log_level_name(l), &back));
    CHECK(back == l);
  }
  hut::LogLevel untouched = hut::LogLevel::kWarn;
  CHECK_FALSE(hut::parse_log_level("verbose", &untouched));
  CHECK(untouched == hut::LogLevel::kWarn);

  for (hut::Role r : {hut::Role::kMember, hut::Role::kModerator, hut::Role::kMaster}) {
    hut::Role back = hut::Role::kMember;
    REQUIRE(hut::parse_role(hut::role_name(r), &back));
    CHECK(back == r);
  }
  CHECK(hut::role_name(hut::Role::kModerator) == "moderator");
  hut::Role role = hut::Role::kMaster;
  CHECK_FALSE(hut::parse_role("owner", &role));
  CHECK(role == hut::Role::kMaster);

  // with_context keeps the codes the store reports and prefixes the message.
  hut::Status kept = hut::with_context(hut::Status::not_found("no row"), "room x: ");
  CHECK(kept.code() == hut::Status::Code::kNotFound);
  CHECK(kept.message() == "room x: no row");
  CHECK(hut::with_context(hut::Status::corruption("bad"), "").code() == hut::Status::Code::kCorruption);
  CHECK(hut::with_context(hut::Status::permission_denied("no"), "").code() == hut::Status::Code::kInternal);
  CHECK(hut::with_context(hut::Status(), "x").ok());
}
