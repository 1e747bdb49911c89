// The relay's rate limits, free of I/O so that they can be tested alone.
//
// RateLimiter: a budget of events per key (an account, an address, a user):
// at most `burst` at once, refilled evenly so that `burst` more are allowed
// per `window_ms`. It is the generic cell rate algorithm, one number per
// key, so memory is bounded by the number of keys, and that is bounded too:
// keys whose budget is full again are dropped, and past `max_keys` the keys
// closest to a full budget go first (a key that is being held back is kept).
// Thread safety: every method may be called from any thread (a mutex).
#ifndef HUTOPIA_RELAY_LIMITS_H_
#define HUTOPIA_RELAY_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hut::relay {

class RateLimiter {
 public:
  RateLimiter(int64_t burst, int64_t window_ms, size_t max_keys = 100000);

  // Spends one event of `key`'s budget at `now_ms`: 0 when allowed (the
  // event counts), else the milliseconds until one is allowed again
  // (nothing is counted).
  int64_t take(std::string_view key, int64_t now_ms);
  // A reload's new budget; the keys keep what they spent.
  void set_budget(int64_t burst, int64_t window_ms);
  // Gives `key` its whole budget back.
  void clear(std::string_view key);
  size_t size() const;

 private:
  void shrink_locked(int64_t now_ms);

  int64_t interval_ms_;   // one event's share of the window (guarded by mu_)
  int64_t tolerance_ms_;  // how far ahead of now the budget may run (guarded by mu_)
  const size_t max_keys_;
  mutable std::mutex mu_;
  // key -> the time at which its budget is full again
  std::unordered_map<std::string, int64_t> full_at_;
};

// Seconds for a Retry-After header: `ms` rounded up, at least 1.
int64_t retry_after_seconds(int64_t ms);

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_LIMITS_H_
