// The requests handed to plugins, each with its deadline (pending_requests.h).

#include "plugins/pending_requests.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <hutopia/plugin.h>

#include "util/clock.h"

namespace hut {

PendingRequests::PendingRequests(uv_loop_t* loop, int64_t timeout_ms)
    : loop_(loop), timeout_ms_(std::max<int64_t>(timeout_ms, 1)) {}

PendingRequests::~PendingRequests() {
  if (timer_ == nullptr) return;
  uv_timer_stop(timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void PendingRequests::set_timeout(int64_t timeout_ms) { timeout_ms_ = std::max<int64_t>(timeout_ms, 1); }

size_t PendingRequests::count(std::string_view owner) const {
  auto it = per_owner_.find(std::string(owner));
  return it == per_owner_.end() ? 0 : it->second;
}

RequestId PendingRequests::add(std::string_view plugin, std::string_view owner, bool http,
                               PluginAnswerFn answer) {
  RequestId id = next_id_++;
  pending_.emplace(
      id, Entry{std::string(plugin), std::string(owner), http,
                loop_now_ms(loop_) + static_cast<uint64_t>(timeout_ms_), timeout_ms_, std::move(answer)});
  per_owner_[std::string(owner)]++;
  arm();
  return id;
}

void PendingRequests::forget(std::unordered_map<RequestId, Entry>::iterator it) {
  auto o = per_owner_.find(it->second.owner);
  if (o != per_owner_.end() && --o->second == 0) per_owner_.erase(o);
  pending_.erase(it);
}

int PendingRequests::deliver(std::unordered_map<RequestId, Entry>::iterator it, PluginAnswer& a,
                             bool refusable) {
  RequestId id = it->first;
  Entry e = std::move(it->second);
  it->second.owner = e.owner;  // forget() counts by it
  forget(it);
  a.request_id = id;
  a.plugin = e.plugin;
  int rc = e.answer(a);
  if (rc != HUT_OK && refusable) {
    // Refused before anything was sent: pending again, as it was.
    per_owner_[e.owner]++;
    pending_.emplace(id, std::move(e));
    arm();
  }
  return rc;
}

int PendingRequests::answer(std::string_view plugin, RequestId id, PluginAnswer answer, bool valid) {
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second.plugin != plugin ||
      it->second.http != (answer.kind == PluginAnswer::Kind::kHttp))
    return HUT_ENOENT;
  if (!valid) return HUT_EINVAL;
  return deliver(it, answer, true);
}

void PendingRequests::cancel(RequestId id) {
  auto it = pending_.find(id);
  if (it != pending_.end()) forget(it);
}

void PendingRequests::drop_owner(std::string_view owner) {
  if (count(owner) == 0) return;
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto next = std::next(it);
    if (it->second.owner == owner) forget(it);
    it = next;
  }
}

void PendingRequests::plugin_stopped(std::string_view plugin, std::string_view message) {
  // Collected first: answering may run code that dispatches again.
  std::vector<RequestId> ids;
  for (const auto& [id, e] : pending_)
    if (e.plugin == plugin) ids.push_back(id);
  for (RequestId id : ids) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    PluginAnswer a;
    a.kind = PluginAnswer::Kind::kStopped;
    a.message = message;
    deliver(it, a, false);
  }
}

void PendingRequests::expire() {
  uint64_t now = loop_now_ms(loop_);
  std::vector<RequestId> ids;
  for (const auto& [id, e] : pending_)
    if (e.deadline_ms <= now) ids.push_back(id);
  for (RequestId id : ids) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;  // answered meanwhile
    std::string message =
        it->second.plugin + " did not answer within " + std::to_string(it->second.timeout_ms / 1000) + " s";
    PluginAnswer a;
    a.kind = PluginAnswer::Kind::kExpired;
    a.message = message;
    deliver(it, a, false);
  }
  if (pending_.empty() && timer_ != nullptr) uv_timer_stop(timer_);
}

// One repeating timer, unreferenced, ticks while requests are pending.
void PendingRequests::arm() {
  if (timer_ == nullptr) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  }
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) return;
  uint64_t tick = static_cast<uint64_t>(std::clamp<int64_t>(timeout_ms_ / 4, 20, 1000));
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<PendingRequests*>(t->data)->expire(); }, tick, tick);
}

}  // namespace hut
