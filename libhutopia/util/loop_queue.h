// Functions handed over from any thread to run on a libuv loop's thread: a
// uv_async_t and a mutex-guarded list, the one way the library brings work
// back to its loop (Space::post, the store's finished operations, plugin
// posts).
//
// Thread: post() from any thread; everything else on the loop thread (or
// before the loop runs). Ownership: one owner; the uv_async_t is on the heap
// and freed by its close callback, so the LoopQueue may go as soon as it is
// closed.
#ifndef HUTOPIA_UTIL_LOOP_QUEUE_H_
#define HUTOPIA_UTIL_LOOP_QUEUE_H_

#include <functional>
#include <mutex>
#include <vector>

#include <hutopia/status.h>

#include <uv.h>

namespace hut {

class LoopQueue {
 public:
  LoopQueue() = default;
  // As close().
  ~LoopQueue();
  LoopQueue(const LoopQueue&) = delete;
  LoopQueue& operator=(const LoopQueue&) = delete;

  // Starts taking posts on `loop`. With `keeps_loop_alive` false, an open
  // queue alone does not keep uv_run() going.
  Status open(uv_loop_t* loop, bool keeps_loop_alive);
  // Any thread: queues `fn` to run on the loop thread, in the order posted;
  // false (and `fn` dropped) when the queue is not open.
  bool post(std::function<void()> fn);
  // Runs what is queued now (the handle does this on its own each time it
  // fires); a function posted meanwhile waits for the next turn.
  void drain();
  // Refuses further posts, drops what is queued without running it, and
  // closes the handle. Calling it again does nothing.
  void close();
  bool is_open() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::function<void()>> queued_;  // guarded by mu_
  bool open_ = false;                          // guarded by mu_
  uv_async_t* async_ = nullptr;                // heap; freed by its close callback
};

}  // namespace hut

#endif  // HUTOPIA_UTIL_LOOP_QUEUE_H_
