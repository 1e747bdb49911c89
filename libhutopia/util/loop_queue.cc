#include "util/loop_queue.h"

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

bool LoopQueue::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) return false;
  queued_.push_back(std::move(fn));
  uv_async_send(async_);
  return true;
}

void LoopQueue::drain() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queued_);
  }
  for (auto& fn : batch) fn();
}

void LoopQueue::close() {
  std::vector<std::function<void()>> dropped;  // destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
    dropped.swap(queued_);
  }
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
