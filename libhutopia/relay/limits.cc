#include "relay/limits.h"

#include <algorithm>
#include <vector>

namespace hut::relay {

RateLimiter::RateLimiter(int64_t burst, int64_t window_ms, size_t max_keys)
    : interval_ms_(std::max<int64_t>(1, window_ms / std::max<int64_t>(1, burst))),
      tolerance_ms_(interval_ms_ * (std::max<int64_t>(1, burst) - 1)),
      max_keys_(std::max<size_t>(1, max_keys)) {}

int64_t RateLimiter::take(std::string_view key, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string k(key);
  auto it = full_at_.find(k);
  int64_t full_at = it == full_at_.end() ? now_ms : std::max(it->second, now_ms);
  if (full_at - now_ms > tolerance_ms_) return full_at - tolerance_ms_ - now_ms;
  if (it == full_at_.end()) {
    if (full_at_.size() >= max_keys_) shrink_locked(now_ms);
    full_at_.emplace(std::move(k), full_at + interval_ms_);
  } else {
    it->second = full_at + interval_ms_;
  }
  return 0;
}

void RateLimiter::set_budget(int64_t burst, int64_t window_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  interval_ms_ = std::max<int64_t>(1, window_ms / std::max<int64_t>(1, burst));
  tolerance_ms_ = interval_ms_ * (std::max<int64_t>(1, burst) - 1);
}

void RateLimiter::clear(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  full_at_.erase(std::string(key));
}

size_t RateLimiter::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return full_at_.size();
}

// Drops the keys whose budget is full again; if that is not enough to get
// under nine tenths of max_keys_, also the keys whose budget is closest to
// full, so that a key being held back is the last to be forgotten.
void RateLimiter::shrink_locked(int64_t now_ms) {
  std::erase_if(full_at_, [now_ms](const auto& e) { return e.second <= now_ms; });
  const size_t target = max_keys_ - max_keys_ / 10 - 1;
  if (full_at_.size() <= target) return;
  std::vector<int64_t> times;
  times.reserve(full_at_.size());
  for (const auto& e : full_at_) times.push_back(e.second);
  size_t drop = full_at_.size() - target;
  std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(drop - 1), times.end());
  const int64_t cut = times[drop - 1];
  for (auto it = full_at_.begin(); it != full_at_.end() && drop > 0;) {
    if (it->second <= cut) {
      it = full_at_.erase(it);
      --drop;
    } else {
      ++it;
    }
  }
}

int64_t retry_after_seconds(int64_t ms) { return std::max<int64_t>(1, (ms + 999) / 1000); }

}  // namespace hut::relay
