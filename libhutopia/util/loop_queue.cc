#include "util/loop_queue.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>

namespace hut {

LoopQueue::~LoopQueue() { close(); }

Status LoopQueue::open(uv_loop_t* loop, bool keeps_loop_alive) {
  if (async_ != nullptr) return Status::failed_precondition("the loop queue is open already");
  auto* async = new uv_async_t;
  async->data = this;
  int rc = uv_async_init(loop, async, [](uv_async_t* h) {
    if (h->data != nullptr) static_cast<LoopQueue*>(h->data)->drain();
  });
  if (rc != 0) {
    delete async;
    return Status::internal(std::string("uv_async_init: ") + uv_strerror(rc));
  }
  if (!keeps_loop_alive) uv_unref(reinterpret_cast<uv_handle_t*>(async));
  async_ = async;
  std::lock_guard<std::mutex> lock(mu_);
  open_ = true;
  return Status();
}

bool LoopQueue::post(std::function<void()> fn) { return post(nullptr, std::move(fn), nullptr); }

bool LoopQueue::post(const void* owner, std::function<void()> fn, std::function<void()> on_drop) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) return false;
  queued_.push_back(Queued{owner, std::move(fn), std::move(on_drop)});
  uv_async_send(async_);
  return true;
}

void LoopQueue::drain() {
  std::vector<Queued> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queued_);
  }
  for (auto& q : batch) q.fn();
}

void LoopQueue::run_drops(std::vector<Queued>& dropped) {
  for (auto& q : dropped)
    if (q.on_drop) q.on_drop();
}

void LoopQueue::drop(const void* owner) {
  std::vector<Queued> dropped;  // run and destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto keep = std::stable_partition(queued_.begin(), queued_.end(),
                                      [&](const Queued& q) { return q.owner != owner; });
    std::move(keep, queued_.end(), std::back_inserter(dropped));
    queued_.erase(keep, queued_.end());
  }
  run_drops(dropped);
}

void LoopQueue::close() {
  std::vector<Queued> dropped;  // run and destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
    dropped.swap(queued_);
  }
  run_drops(dropped);
  if (async_ == nullptr) return;
  async_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
}

bool LoopQueue::is_open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

}  // namespace hut
