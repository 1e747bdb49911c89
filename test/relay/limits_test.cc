// The relay's rate limits, alone, on a clock the test moves.
#include <doctest/doctest.h>

#include <string>

#include "relay/limits.h"

using hut::relay::RateLimiter;
using hut::relay::retry_after_seconds;

TEST_CASE("relay limits: a burst, then the budget refills evenly over the window") {
  RateLimiter limit(3, 3000);  // 3 at once, one more each second
  int64_t t = 1000000;
  CHECK(limit.take("a", t) == 0);
  CHECK(limit.take("a", t) == 0);
  CHECK(limit.take("a", t) == 0);
  int64_t wait = limit.take("a", t);
  CHECK(wait == 1000);
  CHECK(limit.take("a", t + 999) > 0);  // a refusal spends nothing
  CHECK(limit.take("b", t) == 0);       // keys are apart
  CHECK(limit.take("a", t + 1000) == 0);
  CHECK(limit.take("a", t + 1000) > 0);
  // After a whole window the whole burst is back.
  for (int i = 0; i < 3; ++i) CHECK(limit.take("a", t + 5000) == 0);
  CHECK(limit.take("a", t + 5000) > 0);
  limit.clear("a");
  CHECK(limit.take("a", t + 5000) == 0);
}

TEST_CASE("relay limits: keys are bounded, and a held-back key is kept longest") {
  RateLimiter limit(2, 60000, 100);
  int64_t t = 5000000;
  CHECK(limit.take("victim", t) == 0);
  CHECK(limit.take("victim", t) == 0);
  CHECK(limit.take("victim", t) > 0);
  for (int i = 0; i < 1000; ++i) CHECK(limit.take("k" + std::to_string(i), t + 1) == 0);
  CHECK(limit.size() <= 100);
  CHECK(limit.take("victim", t + 2) > 0);  // still held back
  // Keys whose budget is full again are the first to go.
  CHECK(limit.take("late", t + 120000) == 0);
}

TEST_CASE("relay limits: Retry-After in whole seconds, at least one") {
  CHECK(retry_after_seconds(1) == 1);
  CHECK(retry_after_seconds(1000) == 1);
  CHECK(retry_after_seconds(1001) == 2);
  CHECK(retry_after_seconds(0) == 1);
}
