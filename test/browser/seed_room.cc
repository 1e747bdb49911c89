// Writes a room of many messages into a space's SQLite store before spaced
// starts, with the store's own code (hut::open_store), for the browser test
// of a long room (big_room.py):
//
//   seed_room <store file> <room> <count> <member id> <member name>
//
// The room is public; the member is its master. Message i (1..count) says
// "big <i>" (zero-padded to six digits), from "seeder", one minute apart.
// Prints "seeded N messages" and exits 0, or says why and exits 1.
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "store/store.h"

namespace {

int fail(const char* what, const hut::Status& s) {
  std::fprintf(stderr, "seed_room: %s: %s\n", what, std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: seed_room <store file> <room> <count> <member id> <member name>\n");
    return 1;
  }
  const std::string path = argv[1], room_id = argv[2], member_id = argv[4], member_name = argv[5];
  const long count = std::strtol(argv[3], nullptr, 10);
  if (count < 1 || count > 10000000) {
    std::fprintf(stderr, "seed_room: count must be 1 to 10000000\n");
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto opened = hut::open_store(&loop, "sqlite://" + path);
  if (!opened.ok()) return fail("open", opened.status());
  std::unique_ptr<hut::Store> store = std::move(*opened);

  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  hut::Status error;
  bool created = false;
  hut::RoomRecord room;
  room.id = room_id;
  room.topic = "A very long history";
  room.created_ts = now - count * 60000 - 60000;
  hut::MemberRecord master;
  master.room = room_id;
  master.user = hut::UserRecord{member_id, member_name, ""};
  master.role = hut::Role::kMaster;
  master.joined_ts = room.created_ts;
  store->create_room(room, {master}, [&](hut::Status s) {
    error = s;
    created = true;
  });
  while (!created) uv_run(&loop, UV_RUN_ONCE);
  if (!error.ok()) return fail("create the room", error);

  // Every post queued at once: the writer commits them in groups.
  long done = 0;
  const hut::UserRecord seeder{"seeder", "Archivist", ""};
  for (long i = 1; i <= count; ++i) {
    hut::PostRequest req;
    req.room = room_id;
    req.from = seeder;
    char text[32];
    std::snprintf(text, sizeof text, "big %06ld", i);
    req.text = text;
    req.ts = now - (count - i + 1) * 60000;
    store->post(std::move(req), [&](hut::Result<hut::PostResult> r) {
      if (!r.ok() && error.ok()) error = r.status();
      ++done;
    });
  }
  while (done < count) uv_run(&loop, UV_RUN_ONCE);
  bool closed = false;
  store->close([&] { closed = true; });
  while (!closed) uv_run(&loop, UV_RUN_ONCE);
  store.reset();
  uv_loop_close(&loop);
  if (!error.ok()) return fail("post", error);
  std::printf("seeded %ld messages\n", count);
  return 0;
}
