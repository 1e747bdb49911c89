// The child of the store's kill test: opens the store named on the command
// line, creates room "kill" and posts to it as fast as the store takes posts
// (a window of posts in flight), printing the seq of each acknowledged post on
// its own line, flushed, the moment its callback runs. The text of post k
// (k from 1) is "m<k>". It stops by itself after `max_posts` posts or 60 s.
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "store/store.h"

namespace {

struct Poster {
  hut::Store* store = nullptr;
  uint64_t submitted = 0;
  uint64_t max_posts = 0;
  std::chrono::steady_clock::time_point deadline;
  bool failed = false;

  void submit() {
    ++submitted;
    hut::PostRequest req{"kill", hut::UserRecord{"writer", "Writer", ""}, "m" + std::to_string(submitted), "",
                         0};
    store->post(std::move(req), [this](hut::Result<hut::PostResult> r) {
      if (!r.ok()) {
        std::fprintf(stderr, "post failed: %s\n", r.status().to_string().c_str());
        failed = true;
        return;
      }
      std::printf("%llu\n", static_cast<unsigned long long>(r->seq));
      std::fflush(stdout);
      if (!failed && submitted < max_posts && std::chrono::steady_clock::now() < deadline) submit();
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <store url> [max posts]\n", argv[0]);
    return 2;
  }
  uv_loop_t* loop = uv_default_loop();
  auto opened = hut::open_store(loop, argv[1]);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().to_string().c_str());
    return 1;
  }
  hut::Store& store = **opened;
  hut::RoomRecord room;
  room.id = "kill";
  room.created_ts = 1;
  store.create_room(room, {}, [](hut::Status s) {
    if (!s.ok()) std::fprintf(stderr, "create: %s\n", s.to_string().c_str());
  });
  Poster poster;
  poster.store = &store;
  poster.max_posts = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
  poster.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int i = 0; i < 256 && poster.submitted < poster.max_posts; ++i) poster.submit();
  // Runs until the posts stop; then closes the store.
  while (store.stats().pending_writes > 0 && !poster.failed) uv_run(loop, UV_RUN_ONCE);
  bool closed = false;
  store.close([&] { closed = true; });
  while (!closed) uv_run(loop, UV_RUN_ONCE);
  opened->reset();
  uv_run(loop, UV_RUN_DEFAULT);
  return poster.failed ? 1 : 0;
}
