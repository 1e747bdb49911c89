// ReplayCache: each (iss, jti) accepted once while its token may be valid.
#include <hutopia/token.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

namespace hut {

namespace {
using HeapEntry = std::pair<int64_t, std::array<uint64_t, 2>>;
// std::*_heap keep the greatest element first; this makes it the earliest time.
constexpr auto kLater = [](const HeapEntry& a, const HeapEntry& b) { return a.first > b.first; };
}  // namespace

ReplayCache::ReplayCache(size_t capacity, int64_t leeway_s)
    : capacity_(capacity), leeway_s_(std::max<int64_t>(leeway_s, 0)) {}

void ReplayCache::expire(int64_t now_s) {
  while (!heap_.empty() && heap_.front().first < now_s) {
    std::pop_heap(heap_.begin(), heap_.end(), kLater);
    entries_.erase(heap_.back().second);
    heap_.pop_back();
  }
}

Status ReplayCache::use(std::string_view iss, std::string_view jti, int64_t exp_s, int64_t now_s) {
  expire(now_s);
  // The length of iss first, so that no two (iss, jti) pairs hash the same
  // text.
  std::string text = std::to_string(iss.size());
  text += ':';
  text.append(iss);
  text.append(jti);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &digest_len, EVP_sha256(), nullptr) != 1)
    return Status::internal("cannot hash the token id");
  Key key;
  std::memcpy(key.data(), digest, sizeof key);
  if (entries_.count(key) != 0) return Status::already_exists("token already used");
  if (entries_.size() >= capacity_)
    return Status::resource_exhausted("too many tokens in use, try again later");
  int64_t forget_after = 0;
  if (__builtin_add_overflow(exp_s, leeway_s_, &forget_after))
    forget_after = std::numeric_limits<int64_t>::max();
  entries_.emplace(key, forget_after);
  heap_.emplace_back(forget_after, key);
  std::push_heap(heap_.begin(), heap_.end(), kLater);
  return Status::ok_status();
}

}  // namespace hut
