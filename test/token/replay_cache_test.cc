// ReplayCache: once per token, forgotten after expiry, bounded.
#include <doctest/doctest.h>

#include <hutopia/token.h>
#include <string>

namespace hut {
namespace {

constexpr int64_t kNow = 1800000000;

TEST_CASE("replay cache: accept once, refuse again") {
  ReplayCache cache(100, 30);
  CHECK(cache.use("relay", "j1", kNow + 60, kNow).ok());
  Status again = cache.use("relay", "j1", kNow + 60, kNow + 1);
  CHECK(again.code() == Status::Code::kAlreadyExists);
  CHECK(again.message() == "token already used");
  // The same jti from another issuer is another token.
  CHECK(cache.use("app", "j1", kNow + 60, kNow).ok());
  CHECK(cache.size() == 2);
  // Issuer and jti are kept apart: ("ab", "c") is not ("a", "bc").
  CHECK(cache.use("ab", "c", kNow + 60, kNow).ok());
  CHECK(cache.use("a", "bc", kNow + 60, kNow).ok());
}

TEST_CASE("replay cache: long ids that differ only in their last character are different tokens") {
  ReplayCache cache(100, 30);
  std::string iss(300, 'i');
  std::string jti(500, 'j');
  REQUIRE(cache.use(iss, jti, kNow + 60, kNow).ok());
  CHECK(cache.use(iss, jti.substr(0, jti.size() - 1) + "k", kNow + 60, kNow).ok());
  CHECK(cache.use(iss.substr(0, iss.size() - 1) + "k", jti, kNow + 60, kNow).ok());
  CHECK(cache.use(iss, jti, kNow + 60, kNow + 1).code() == Status::Code::kAlreadyExists);
  CHECK(cache.size() == 3);
}

TEST_CASE("replay cache: forgets a token after exp plus the leeway, not before") {
  ReplayCache cache(100, 30);
  REQUIRE(cache.use("relay", "j1", kNow + 60, kNow).ok());
  CHECK(cache.use("relay", "j1", kNow + 60, kNow + 90).code() == Status::Code::kAlreadyExists);
  CHECK(cache.use("relay", "j2", kNow + 600, kNow + 91).ok());
  CHECK(cache.size() == 1);  // j1 is gone
  CHECK(cache.use("relay", "j1", kNow + 60, kNow + 91).ok());
}

TEST_CASE("replay cache: bounded, refuses new entries while full of live ones") {
  ReplayCache cache(3, 30);
  CHECK(cache.capacity() == 3);
  for (int i = 0; i < 3; ++i) REQUIRE(cache.use("relay", "j" + std::to_string(i), kNow + 60 + i, kNow).ok());
  Status full = cache.use("relay", "j3", kNow + 60, kNow);
  CHECK(full.code() == Status::Code::kResourceExhausted);
  CHECK(cache.size() == 3);
  // The live ones are still remembered.
  for (int i = 0; i < 3; ++i) {
    CHECK(cache.use("relay", "j" + std::to_string(i), kNow + 60, kNow + 1).code() ==
          Status::Code::kAlreadyExists);
  }
  // Once the earliest expires, there is room again.
  CHECK(cache.use("relay", "j3", kNow + 150, kNow + 91).ok());
  CHECK(cache.use("relay", "j4", kNow + 150, kNow + 91).code() == Status::Code::kResourceExhausted);
  CHECK(cache.size() == 3);
  CHECK(cache.use("relay", "j4", kNow + 150, kNow + 93).ok());
  CHECK(cache.size() == 2);  // j3 and j4
}

}  // namespace
}  // namespace hut
