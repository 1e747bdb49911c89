// LoopQueue: functions posted from other threads run on the loop's thread,
// in order, until the queue is closed.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "util/loop_queue.h"

using namespace hut;

TEST_CASE("loop queue: posts from several threads run on the loop thread, in order per thread") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  LoopQueue queue;
  REQUIRE(queue.open(&loop, true).ok());
  CHECK_FALSE(queue.open(&loop, true).ok());  // one handle per queue
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::vector<int>> seen(kThreads);
  std::atomic<bool> off_loop{false};
  std::thread::id loop_thread;
  int ran = 0;
  std::thread runner([&] {
    loop_thread = std::this_thread::get_id();
    uv_run(&loop, UV_RUN_DEFAULT);
  });
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        bool ok = queue.post([&, t, i] {
          if (std::this_thread::get_id() != loop_thread) off_loop = true;
          seen[t].push_back(i);
          if (++ran == kThreads * kEach) queue.close();  // lets uv_run return
        });
        if (!ok) off_loop = true;
      }
    });
  }
  for (auto& p : posters) p.join();
  runner.join();  // bounded: returns once the last post closed the queue
  CHECK_FALSE(off_loop);
  CHECK(ran == kThreads * kEach);
  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(seen[t].size() == static_cast<size_t>(kEach));
    bool ordered = true;
    for (int i = 0; i < kEach; ++i) ordered = ordered && seen[t][static_cast<size_t>(i)] == i;
    CHECK(ordered);
  }
  CHECK_FALSE(queue.post([] {}));
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("loop queue: closing drops what was not run and refuses later posts") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  LoopQueue queue;
  CHECK_FALSE(queue.post([] {}));  // not open yet
  REQUIRE(queue.open(&loop, false).ok());
  CHECK(queue.is_open());
  // An open queue that does not keep the loop alive: uv_run returns at once.
  CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  int ran = 0;
  CHECK(queue.post([&] { ++ran; }));
  queue.drain();
  CHECK(ran == 1);
  CHECK(queue.post([&] { ++ran; }));
  queue.close();
  CHECK_FALSE(queue.is_open());
  CHECK_FALSE(queue.post([&] { ++ran; }));
  uv_run(&loop, UV_RUN_DEFAULT);  // the handle's close callback
  CHECK(ran == 1);
  queue.close();  // again: nothing
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("loop queue: an owner's queued functions are taken back, and their drop functions run instead") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  LoopQueue queue;
  REQUIRE(queue.open(&loop, false).ok());
  int a = 0, b = 0;
  std::vector<std::string> log;
  CHECK(queue.post(
      &a, [&] { log.push_back("a1 ran"); }, [&] { log.push_back("a1 dropped"); }));
  CHECK(queue.post(
      &b, [&] { log.push_back("b1 ran"); }, [&] { log.push_back("b1 dropped"); }));
  CHECK(queue.post(
      &a, [&] { log.push_back("a2 ran"); }, nullptr));
  CHECK(queue.post([&] { log.push_back("plain ran"); }));
  CHECK(queue.post(
      &a, [&] { log.push_back("a3 ran"); }, [&] { log.push_back("a3 dropped"); }));
  queue.drop(&a);
  CHECK(log == std::vector<std::string>{"a1 dropped", "a3 dropped"});
  log.clear();
  queue.drain();
  CHECK(log == std::vector<std::string>{"b1 ran", "plain ran"});
  log.clear();
  queue.drop(&b);  // nothing of b's is left
  CHECK(log.empty());
  // Closing drops the rest the same way.
  CHECK(queue.post(
      &b, [&] { log.push_back("b2 ran"); }, [&] { log.push_back("b2 dropped"); }));
  queue.close();
  CHECK(log == std::vector<std::string>{"b2 dropped"});
  uv_run(&loop, UV_RUN_DEFAULT);  // the handle's close callback
  CHECK(uv_loop_close(&loop) == 0);
}
