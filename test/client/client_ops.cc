// Every op of the bus through hut::Client's typed calls, and the events they
// cause, between two users of a real spaced. Run by client_test.py, which
// starts the space and passes its URL and two app tokens:
//
//   client_ops SPACE_URL TOKEN_A TOKEN_B [CA_FILE]
//
// Prints one line per check that failed and ends with "client_ops: N checks passed, N failed".
#include <hutopia/client.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace {

int passed = 0;
int failed = 0;

void check(bool cond, const std::string& what) {
  if (cond) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL %s\n", what.c_str());
    std::fflush(stdout);
  }
}

uv_loop_t loop;

// Runs the loop until `done` or about `ms` passed.
bool run_until(const std::function<bool()>& done, int ms = 20000) {
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 20, 20);
  uint64_t end = uv_now(&loop) + static_cast<uint64_t>(ms);
  while (!done() && uv_now(&loop) < end) uv_run(&loop, UV_RUN_ONCE);
  uv_timer_stop(&tick);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(&loop, UV_RUN_NOWAIT);
  return done();
}

template <typename T>
hut::Result<T> call(const std::function<void(std::function<void(hut::Result<T>)>)>& start) {
  std::optional<hut::Result<T>> r;
  start([&](hut::Result<T> x) { r.emplace(std::move(x)); });
  if (!run_until([&] { return r.has_value(); })) return hut::Status::unavailable("no answer in time");
  return std::move(*r);
}

hut::Status call_status(const std::function<void(std::function<void(hut::Status)>)>& start) {
  std::optional<hut::Status> r;
  start([&](hut::Status x) { r.emplace(std::move(x)); });
  if (!run_until([&] { return r.has_value(); })) return hut::Status::unavailable("no answer in time");
  return *r;
}

struct Peer {
  std::unique_ptr<hut::Client> client;
  std::vector<hut::Event> events;
  hut::Welcome welcome;

  // The first event since `from` that matches.
  std::optional<hut::Event> wait(const std::function<bool(const hut::Event&)>& match,
                                 size_t* from = nullptr) {
    size_t start = from ? *from : 0;
    std::optional<hut::Event> found;
    run_until([&] {
      for (size_t i = start; i < events.size(); ++i) {
        if (match(events[i])) {
          found = events[i];
          if (from) *from = i + 1;
          return true;
        }
      }
      return false;
    });
    return found;
  }
};

bool connect(Peer* p, const std::string& url, const std::string& token, const std::string& ca) {
  hut::ClientOptions o;
  o.space_url = url;
  o.token = token;
  o.ca_file = ca;
  o.reconnect = false;
  auto c = hut::Client::create(o, &loop);
  if (!c.ok()) {
    std::printf("create: %s\n", c.status().to_string().c_str());
    return false;
  }
  p->client = std::move(*c);
  p->client->on_event([p](const hut::Event& e) { p->events.push_back(e); });
  auto w = call<hut::Welcome>([&](auto cb) { p->client->connect(cb); });
  if (!w.ok()) {
    std::printf("connect: %s\n", w.status().to_string().c_str());
    return false;
  }
  p->welcome = *w;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: client_ops SPACE_URL TOKEN_A TOKEN_B [CA_FILE]\n");
    return 2;
  }
  std::string url = argv[1];
  std::string ca = argc > 4 ? argv[4] : "";
  uv_loop_init(&loop);
  Peer a, b;
  bool ok = connect(&a, url, argv[2], ca) && connect(&b, url, argv[3], ca);
  check(ok, "both clients connect");
  if (!ok) {
    std::printf("client_ops: %d checks passed, %d failed\n", passed, failed + 1);
    return 1;
  }
  const std::string bid = b.welcome.user.id;
  check(a.welcome.user.id == "ops-a" && bid == "ops-b", "welcome names the users");
  check(!a.welcome.space_id.empty() && !a.welcome.session.empty(), "welcome names the space and session");

  check(call_status([&](auto cb) { a.client->ping(cb); }).ok(), "ping");
  auto created = call<std::string>([&](auto cb) { a.client->create_room("ops", false, "the ops room", cb); });
  check(created.ok() && *created == "ops", "create: " + created.status().to_string());
  auto again = call<std::string>([&](auto cb) { a.client->create_room("ops", false, "", cb); });
  check(!again.ok() && hut::wire_code(again.status()) == "conflict", "create twice: conflict");

  auto rooms = call<std::vector<hut::RoomInfo>>([&](auto cb) { a.client->rooms(cb); });
  bool listed = false;
  if (rooms.ok())
    for (auto& r : *rooms) listed |= r.room == "ops" && r.role == "master" && r.topic == "the ops room";
  check(listed, "rooms lists ops with role master and its topic");

  size_t ae = 0, be = 0;
  auto joined = call<hut::JoinResult>([&](auto cb) { b.client->join("ops", cb); });
  bool listed_b = false;
  if (joined.ok())
    for (auto& m : joined->members) listed_b |= m.id == bid && m.role == "member";
  check(joined.ok() && joined->role == "member" && listed_b, "join: " + joined.status().to_string());
  check(a.wait([&](const hut::Event& e) { return e.op == "joined" && e.room == "ops" && e.user.id == bid; },
               &ae)
            .has_value(),
        "joined event");

  auto posted = call<hut::PostResult>([&](auto cb) { b.client->post("ops", "hello 世界", "{\"k\":1}", cb); });
  check(posted.ok() && posted->seq >= 1 && posted->ts > 0, "post: " + posted.status().to_string());
  int64_t seq = posted.ok() ? posted->seq : 0;
  auto msg = a.wait([&](const hut::Event& e) { return e.op == "message" && e.seq == seq; }, &ae);
  check(msg && msg->message.text == "hello 世界" && msg->message.from.id == bid &&
            msg->message.data_json == "{\"k\":1}",
        "message event with text, author and data");
  check(b.wait([&](const hut::Event& e) { return e.op == "message" && e.seq == seq; }, &be).has_value(),
        "message event to the poster too");

  auto foreign = call_status([&](auto cb) { a.client->edit("ops", seq, "not mine", cb); });
  check(foreign.code() == hut::Status::Code::kPermissionDenied && hut::wire_code(foreign) == "forbidden",
        "edit of another's message: forbidden");
  check(call_status([&](auto cb) { b.client->edit("ops", seq, "hello again", cb); }).ok(), "edit");
  auto edited = a.wait([&](const hut::Event& e) { return e.op == "edited" && e.seq == seq; }, &ae);
  check(edited && edited->text == "hello again" && edited->edited_ts > 0, "edited event");

  check(call_status([&](auto cb) { a.client->typing("ops", cb); }).ok(), "typing");
  check(
      b.wait([&](const hut::Event& e) { return e.op == "typing" && e.user.id == "ops-a"; }, &be).has_value(),
      "typing event");

  auto page = call<hut::HistoryPage>([&](auto cb) { a.client->history("ops", 0, 0, 10, cb); });
  check(page.ok() && !page->messages.empty() && page->messages.back().seq == seq &&
            page->messages.back().text == "hello again" && page->messages.back().edited_ts > 0,
        "history: " + page.status().to_string());
  auto unread = call<int64_t>([&](auto cb) { a.client->read("ops", seq, cb); });
  check(unread.ok() && *unread == 0, "read: " + unread.status().to_string());
  auto mem = call<hut::MembersPage>([&](auto cb) { a.client->members("ops", "", 10, cb); });
  check(mem.ok() && mem->members.size() == 2, "members: " + mem.status().to_string());

  auto room = call<std::string>([&](auto cb) { a.client->dm(bid, cb); });
  check(room.ok() && !room->empty(), "dm: " + room.status().to_string());
  auto room2 = call<std::string>([&](auto cb) { a.client->dm(bid, cb); });
  check(room2.ok() && room.ok() && *room2 == *room, "dm: the same room each time");

  auto until = call<int64_t>([&](auto cb) { a.client->mute("ops", bid, 600, cb); });
  check(until.ok() && *until > 0, "mute: " + until.status().to_string());
  check(b.wait([&](const hut::Event& e) { return e.op == "muted" && e.user.id == bid && e.until > 0; }, &be)
            .has_value(),
        "muted event");
  auto muted_post = call<hut::PostResult>([&](auto cb) { b.client->post("ops", "shh", "", cb); });
  check(!muted_post.ok() && hut::wire_code(muted_post.status()) == "muted", "a muted member cannot post");
  check(call_status([&](auto cb) { a.client->unmute("ops", bid, cb); }).ok(), "unmute");
  check(b.wait([&](const hut::Event& e) { return e.op == "unmuted" && e.user.id == bid; }, &be).has_value(),
        "unmuted event");
  auto not_mod = call_status(
      [&](auto cb) { b.client->mute("ops", "ops-a", 0, [cb](hut::Result<int64_t> r) { cb(r.status()); }); });
  check(hut::wire_code(not_mod) == "forbidden", "a member cannot mute");

  check(call_status([&](auto cb) { a.client->mute_all("ops", true, cb); }).ok(), "mute_all on");
  check(b.wait([&](const hut::Event& e) { return e.op == "muted_all" && e.on; }, &be).has_value(),
        "muted_all event");
  check(call_status([&](auto cb) { a.client->mute_all("ops", false, cb); }).ok(), "mute_all off");
  check(b.wait([&](const hut::Event& e) { return e.op == "muted_all" && !e.on; }, &be).has_value(),
        "muted_all off event");

  check(call_status([&](auto cb) { a.client->set_role("ops", bid, "moderator", cb); }).ok(), "role");
  check(
      b.wait([&](const hut::Event& e) { return e.op == "role" && e.user.id == bid && e.role == "moderator"; },
             &be)
          .has_value(),
      "role event");
  check(call_status([&](auto cb) { a.client->set_role("ops", bid, "member", cb); }).ok(),
        "role back to member");

  check(call_status([&](auto cb) { b.client->delete_message("ops", seq, cb); }).ok(), "delete");
  check(a.wait([&](const hut::Event& e) { return e.op == "deleted" && e.seq == seq; }, &ae).has_value(),
        "deleted event");

  auto w = call<std::string>([&](auto cb) { a.client->widget("echo", "{\"ping\":42}", cb); });
  check(w.ok() && w->find("42") != std::string::npos, "widget to the echo plugin: " + w.status().to_string());
  auto raw = call<std::string>([&](auto cb) { a.client->request("rooms", "{}", cb); });
  check(raw.ok() && raw->find("\"ops\"") != std::string::npos, "request: any op");
  auto bad = call<std::string>([&](auto cb) { a.client->request("no_such_op", "{}", cb); });
  check(hut::wire_code(bad.status()) == "bad_request", "an unknown op: bad_request");

  check(call_status([&](auto cb) { b.client->leave("ops", cb); }).ok(), "leave");
  check(a.wait([&](const hut::Event& e) { return e.op == "left" && e.user.id == bid; }, &ae).has_value(),
        "left event on leave");
  check(call<hut::JoinResult>([&](auto cb) { b.client->join("ops", cb); }).ok(), "join again");
  check(call_status([&](auto cb) { a.client->kick("ops", bid, cb); }).ok(), "kick");
  auto kicked = b.wait([&](const hut::Event& e) { return e.op == "kicked" && e.room == "ops"; }, &be);
  check(kicked && kicked->by.id == "ops-a", "kicked event names who");
  check(a.wait([&](const hut::Event& e) { return e.op == "left" && e.user.id == bid; }, &ae).has_value(),
        "left event on kick");

  // Presence: b shares the dm room with a; its last session closing is news.
  bool b_closed = false;
  b.client->close([&] { b_closed = true; });
  run_until([&] { return b_closed; });
  auto off =
      a.wait([&](const hut::Event& e) { return e.op == "presence" && e.user.id == bid && !e.online; }, &ae);
  check(off.has_value(), "presence event when the other user goes");

  auto after_close = call_status([&](auto cb) { b.client->ping(cb); });
  check(after_close.code() == hut::Status::Code::kUnavailable, "calls after close: unavailable");

  bool a_closed = false;
  a.client->close([&] { a_closed = true; });
  run_until([&] { return a_closed; });
  a.client.reset();
  b.client.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  check(uv_loop_close(&loop) == 0, "the loop has nothing of the clients left");
  std::printf("client_ops: %d checks passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
