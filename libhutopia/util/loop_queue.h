// Functions handed over from any thread to run on a libuv loop's thread: a
// uv_async_t and a mutex-guarded list, the one way the library brings work
// back to its loop (Space::post, the store's finished operations, plugin
// posts). A function may be posted for an owner (a plugin instance) with a
// function to run instead should it be dropped, so that the owner's queued
// work can be taken back when the owner ends.
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
  // As post(), for `owner`: drop(owner) takes it back, and `on_drop` (may be
  // empty) runs on the loop thread instead of `fn` when it is dropped.
  bool post(const void* owner, std::function<void()> fn, std::function<void()> on_drop);
  // Runs what is queued now (the handle does this on its own each time it
  // fires); a function posted meanwhile waits for the next turn.
  void drain();
  // Loop thread: takes back what is queued for `owner` and runs the on_drop
  // functions, in the order posted. A function the loop has already taken
  // into its current turn is not taken back.
  void drop(const void* owner);
  // Refuses further posts, drops what is queued (running the on_drop
  // functions, not the posted ones), and closes the handle. Calling it again
  // does nothing.
  void close();
  bool is_open() const;

 private:
  struct Queued {
    const void* owner;
    std::function<void()> fn;
    std::function<void()> on_drop;
  };
  static void run_drops(std::vector<Queued>& dropped);

  mutable std::mutex mu_;
  std::vector<Queued> queued_;   // guarded by mu_
  bool open_ = false;            // guarded by mu_
  uv_async_t* async_ = nullptr;  // heap; freed by its close callback
};

}  // namespace hut

#endif  // HUTOPIA_UTIL_LOOP_QUEUE_H_
