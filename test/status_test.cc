#include <hutopia/status.h>
#include <hutopia/version.h>

#include <doctest/doctest.h>

#include <cstring>
#include <string>

TEST_CASE("status: ok is cheap and says OK") {
  hut::Status s;
  CHECK(s.ok());
  CHECK(s.code() == hut::Status::Code::kOk);
  CHECK(s.message().empty());
  CHECK(s.to_string() == "OK");
}

TEST_CASE("status: errors carry code and message through copies") {
  hut::Status s = hut::Status::not_found("no such room");
  hut::Status copy = s;
  CHECK_FALSE(copy.ok());
  CHECK(copy.is_not_found());
  CHECK(copy.message() == "no such room");
  CHECK(copy.to_string() == "Not found: no such room");
  copy = hut::Status();
  CHECK(copy.ok());
  CHECK(s.message() == "no such room");
}

TEST_CASE("result: holds a value or an error, never an ok error") {
  hut::Result<int> good(42);
  REQUIRE(good.ok());
  CHECK(*good == 42);
  hut::Result<int> bad(hut::Status::invalid_argument("nope"));
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().is_invalid_argument());
  CHECK(bad.value_or(7) == 7);
  hut::Result<std::string> odd{hut::Status()};
  CHECK_FALSE(odd.ok());
  CHECK(odd.status().code() == hut::Status::Code::kInternal);
}

TEST_CASE("version: the library reports the version it was built as") {
  CHECK(std::strcmp(hut_version(), HUT_VERSION_STRING) == 0);
}
