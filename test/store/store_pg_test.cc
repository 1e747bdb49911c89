// What the PostgreSQL store adds to the store contract (store_test.cc runs
// the contract on both backends): a newer schema is refused, several
// processes post into one room with distinct consecutive seqs, and a server
// restart under load never acknowledges a post it did not store.
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/pg_conn.h"
#include "store/store.h"
#include "store_test_util.h"

namespace hut::test {
namespace {

UserRecord user(const std::string& id) { return UserRecord{id, "Name of " + id, ""}; }

Status create_lobby(StoreFixture& f) {
  RoomRecord r;
  r.id = "lobby";
  r.created_ts = 1700000000000;
  return f.wait_done([&](Store::DoneCallback cb) { f.store().create_room(r, {}, cb); });
}

Result<HistoryPage> page_after(StoreFixture& f, Store& store, uint64_t after) {
  return f.wait<HistoryPage>(
      [&](Store::Callback<HistoryPage> cb) { store.history_after("lobby", after, 200, cb); });
}

// Every message of the lobby, oldest first.
std::vector<MessageRecord> all_messages(StoreFixture& f) {
  std::vector<MessageRecord> out;
  for (;;) {
    auto page = page_after(f, f.store(), out.empty() ? 0 : out.back().seq);
    REQUIRE(page.ok());
    out.insert(out.end(), page->messages.begin(), page->messages.end());
    if (!page->more) return out;
  }
}

}  // namespace

TEST_CASE("store on PostgreSQL: a database of a newer schema is refused") {
  StoreFixture f(Backend::kPostgres);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create_lobby(f).ok());
  REQUIRE(f.close_store());
  auto version = PgServer::get()->query(f.url(), "SELECT version FROM hut_schema");
  REQUIRE(version.has_value());
  REQUIRE(PgServer::get()->exec(f.url(), "UPDATE hut_schema SET version = 99"));
  Status s = f.open();
  CHECK(s.code() == Status::Code::kFailedPrecondition);
  CHECK(std::string(s.message()).find("newer") != std::string::npos);
  // The database is left as it was.
  REQUIRE(PgServer::get()->exec(f.url(), "UPDATE hut_schema SET version = " + *version));
  REQUIRE(f.open().ok());
  auto state = f.store().load_state();
  REQUIRE(state.ok());
  CHECK(state->rooms.size() == 1);
}

TEST_CASE("store on PostgreSQL: a bad URL or an unreachable server is a clear error") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto none = open_store(&loop, "postgresql:///nothing?host=/nonexistent-dir&connect_timeout=2");
  CHECK(none.status().code() == Status::Code::kUnavailable);
  CHECK(std::string(none.status().message()).find("PostgreSQL") != std::string::npos);
  uv_loop_close(&loop);
}

TEST_CASE("store on PostgreSQL: posts queued together keep their order, text and data, and fail alone") {
  StoreFixture f(Backend::kPostgres);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  for (const char* id : {"lobby", "side"}) {
    RoomRecord r;
    r.id = id;
    r.created_ts = 1700000000000;
    REQUIRE(f.wait_done([&](Store::DoneCallback cb) { f.store().create_room(r, {}, cb); }).ok());
  }
  // Texts that an array literal must quote; data that is JSON with quotes.
  const std::vector<std::string> texts = {
      "plain", "", "a \"quoted\" word", "back\\slash", "{braces,commas}", "NULL", "line\nbreak", "üñí ✓",
  };
  struct Sent {
    std::string room;
    std::string text;
    std::string data;
    std::string from;
  };
  std::vector<Sent> sent;
  for (size_t i = 0; i < 40; ++i) {
    std::string room = i % 5 == 4 ? "nowhere" : (i % 2 ? "side" : "lobby");
    std::string data = i % 3 == 0 ? "" : R"({"n":)" + std::to_string(i) + R"(,"s":"x\"y"})";
    sent.push_back({room, texts[i % texts.size()] + " " + std::to_string(i), data, i % 4 ? "ann" : "bob"});
  }
  // Not valid UTF-8: PostgreSQL refuses it, which breaks a statement shared
  // with the others.
  sent[7].text = "bad \xff\xfe";
  std::vector<Result<PostResult>> results;
  size_t topic_at = 0;
  for (size_t i = 0; i < sent.size(); ++i) {
    if (i == 20) {
      // Another write between the posts: it stays between them.
      f.store().set_topic("lobby", "mid", [&](Status s) {
        CHECK(s.ok());
        topic_at = results.size();
      });
    }
    f.store().post(PostRequest{sent[i].room, user(sent[i].from), sent[i].text, sent[i].data, 0},
                   [&](Result<PostResult> r) { results.push_back(std::move(r)); });
  }
  REQUIRE(f.run_until([&] { return results.size() == sent.size(); }));
  CHECK(topic_at == 20);
  std::map<std::string, uint64_t> next = {{"lobby", 1}, {"side", 1}};
  for (size_t i = 0; i < sent.size(); ++i) {
    CAPTURE(i);
    if (sent[i].room == "nowhere") {
      CHECK(results[i].status().is_not_found());
    } else if (i == 7) {
      CHECK_FALSE(results[i].ok());
    } else {
      REQUIRE(results[i].ok());
      CHECK(results[i]->seq == next[sent[i].room]++);
    }
  }
  // History holds what was acknowledged, as it was sent.
  for (const char* room : {"lobby", "side"}) {
    auto page =
        f.wait<HistoryPage>([&](Store::Callback<HistoryPage> cb) { f.store().history(room, 0, 200, cb); });
    REQUIRE(page.ok());
    size_t k = 0;
    for (size_t i = 0; i < sent.size(); ++i) {
      if (sent[i].room != room || !results[i].ok()) continue;
      REQUIRE(k < page->messages.size());
      const MessageRecord& m = page->messages[k++];
      CHECK(m.seq == results[i]->seq);
      CHECK(m.text == sent[i].text);
      CHECK(m.data_json == sent[i].data);
      CHECK(m.from.id == sent[i].from);
      CHECK(m.ts == results[i]->ts);
    }
    CHECK(k == page->messages.size());
  }
  // A poster's read marker is at their newest post: bob posted last at 36 in
  // the lobby, after which ann posted 38.
  auto unread = [&](const char* room, const char* who) {
    return f.wait<uint64_t>([&](Store::Callback<uint64_t> cb) { f.store().unread(room, who, cb); });
  };
  CHECK(*unread("lobby", "ann") == 0);
  CHECK(*unread("lobby", "bob") == 1);
}

TEST_CASE("store on PostgreSQL: a room deleted and created again by another store takes posts here") {
  StoreFixture f(Backend::kPostgres);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create_lobby(f).ok());
  auto other = open_store(f.loop(), f.url());
  REQUIRE(other.ok());
  auto post = [&](Store& store, const std::string& text) {
    return f.wait<PostResult>([&](Store::Callback<PostResult> cb) {
      store.post(PostRequest{"lobby", user("ann"), text, "", 0}, cb);
    });
  };
  // This store knows the room (its writer keeps the room's row id).
  REQUIRE(post(f.store(), "before").ok());
  // The other one deletes it and creates it again: a new row.
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) { (*other)->delete_room("lobby", cb); }).ok());
  RoomRecord again;
  again.id = "lobby";
  again.created_ts = 1700000000001;
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) { (*other)->create_room(again, {}, cb); }).ok());
  // One post alone, then three queued together: all reach the new room.
  auto one = post(f.store(), "after 1");
  REQUIRE_MESSAGE(one.ok(), one.status().to_string());
  CHECK(one->seq == 1);
  std::vector<Result<PostResult>> results;
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) { (*other)->delete_room("lobby", cb); }).ok());
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) { (*other)->create_room(again, {}, cb); }).ok());
  for (const char* text : {"after 2", "after 3", "after 4"})
    f.store().post(PostRequest{"lobby", user("ann"), text, "", 0},
                   [&](Result<PostResult> r) { results.push_back(std::move(r)); });
  REQUIRE(f.run_until([&] { return results.size() == 3; }));
  for (size_t i = 0; i < 3; ++i) {
    REQUIRE_MESSAGE(results[i].ok(), results[i].status().to_string());
    CHECK(results[i]->seq == i + 1);
  }
  auto messages = all_messages(f);
  REQUIRE(messages.size() == 3);
  CHECK(messages[0].text == "after 2");
  REQUIRE(f.close(**other));
}

TEST_CASE(
    "store on PostgreSQL: posts queued in several turns while a commit is under way go in one statement") {
  StoreFixture f(Backend::kPostgres);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create_lobby(f).ok());
  // Another connection locks the rooms table: the writer's first post waits
  // on it, as it would on a slow commit.
  auto locker = pg::Conn::connect(f.url());
  REQUIRE(locker.ok());
  REQUIRE((*locker)->exec("BEGIN").ok());
  REQUIRE((*locker)->exec("LOCK TABLE rooms IN EXCLUSIVE MODE").ok());
  std::vector<Result<PostResult>> results;
  auto post = [&](int i) {
    f.store().post(PostRequest{"lobby", user("bob"), "p" + std::to_string(i), "", 0},
                   [&](Result<PostResult> r) { results.push_back(std::move(r)); });
  };
  post(0);
  auto waiting = [&] {
    pg::Query q(**locker, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'rooms'::regclass");
    return q.step() && q.i64(0) > 0;
  };
  REQUIRE(f.run_until(waiting));
  // Each of the next posts is read in a loop turn of its own.
  const int kPosts = 7;
  for (int i = 1; i < kPosts; ++i) {
    post(i);
    uv_run(f.loop(), UV_RUN_NOWAIT);
  }
  REQUIRE((*locker)->exec("COMMIT").ok());
  REQUIRE(f.run_until([&] { return results.size() == kPosts; }));
  for (int i = 0; i < kPosts; ++i) {
    CAPTURE(i);
    REQUIRE(results[static_cast<size_t>(i)].ok());
    CHECK(results[static_cast<size_t>(i)]->seq == static_cast<uint64_t>(i) + 1);
  }
  auto messages = all_messages(f);
  REQUIRE(messages.size() == kPosts);
  for (int i = 0; i < kPosts; ++i) CHECK(messages[static_cast<size_t>(i)].text == "p" + std::to_string(i));
  // The room's row was last written by the first statement (command 0) of
  // its transaction: the six posts went in one statement, not one each.
  pg::Query cmin(**locker, "SELECT cmin::text::bigint FROM rooms WHERE id = 'lobby'");
  REQUIRE(cmin.step());
  CHECK(cmin.i64(0) == 0);
}

TEST_CASE("store on PostgreSQL: two stores posting into one room get distinct consecutive seqs") {
  StoreFixture f(Backend::kPostgres);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create_lobby(f).ok());
  // A second store on the same database: another process, as far as the
  // server can tell (its own connections, its own writer thread).
  auto other = open_store(f.loop(), f.url());
  REQUIRE(other.ok());
  const int kEach = 400;
  std::vector<uint64_t> seqs[2];
  int failed = 0;
  Store* stores[2] = {&f.store(), other->get()};
  for (int i = 0; i < kEach; ++i) {
    for (int s = 0; s < 2; ++s) {
      stores[s]->post(
          PostRequest{"lobby", user(s ? "bob" : "ann"), std::to_string(s) + ":" + std::to_string(i), "", 0},
          [&seqs, &failed, s](Result<PostResult> r) {
            if (r.ok()) {
              seqs[s].push_back(r->seq);
            } else {
              ++failed;
            }
          });
    }
  }
  REQUIRE(f.run_until([&] { return seqs[0].size() + seqs[1].size() + failed == 2 * kEach; }, 120));
  CHECK(failed == 0);
  std::set<uint64_t> all;
  for (int s = 0; s < 2; ++s) {
    // Each store's posts count up in submission order.
    for (size_t i = 1; i < seqs[s].size(); ++i) CHECK(seqs[s][i] > seqs[s][i - 1]);
    all.insert(seqs[s].begin(), seqs[s].end());
  }
  CHECK(all.size() == 2 * kEach);
  CHECK(*all.begin() == 1);
  CHECK(*all.rbegin() == 2 * kEach);
  // History holds each post once, under the seq its author was told.
  auto messages = all_messages(f);
  REQUIRE(messages.size() == 2 * kEach);
  for (size_t i = 0; i < messages.size(); ++i) CHECK(messages[i].seq == i + 1);
  CHECK(f.close(**other));
}

TEST_CASE("store on PostgreSQL: a restart under load acknowledges only what is stored, then serves again") {
  StoreFixture f(Backend::kPostgres);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create_lobby(f).ok());
  PgServer* pg = PgServer::get();

  // Posts with 8 in flight; each acknowledged one is remembered by its text.
  std::vector<std::pair<uint64_t, std::string>> acked;
  int unavailable = 0, other_errors = 0, in_flight = 0, sent = 0;
  bool posting = true;
  std::function<void()> submit = [&] {
    while (posting && in_flight < 8) {
      ++in_flight;
      std::string text = "p" + std::to_string(sent++);
      f.store().post(PostRequest{"lobby", user("ann"), text, "", 0}, [&, text](Result<PostResult> r) {
        --in_flight;
        if (r.ok()) {
          acked.emplace_back(r->seq, text);
        } else if (r.status().code() == Status::Code::kUnavailable) {
          ++unavailable;
        } else {
          ++other_errors;
          MESSAGE(r.status().to_string());
        }
        submit();
      });
    }
  };
  submit();
  REQUIRE(f.run_until([&] { return acked.size() >= 100; }, 60));
  REQUIRE(pg->stop());
  size_t acked_at_stop = acked.size();
  REQUIRE(f.run_until([&] { return unavailable >= 50; }, 60));
  // While the server is down nothing is acknowledged.
  CHECK(acked.size() <= acked_at_stop + 8);
  REQUIRE(pg->start());
  // Service resumes by itself.
  size_t acked_at_start = acked.size();
  CHECK(f.run_until([&] { return acked.size() >= acked_at_start + 100; }, 60));
  posting = false;
  REQUIRE(f.run_until([&] { return in_flight == 0; }, 60));
  CHECK(other_errors == 0);

  // Every acknowledged post is stored under its seq.
  auto messages = all_messages(f);
  std::map<uint64_t, std::string> stored;
  for (const auto& m : messages) stored[m.seq] = m.text;
  for (const auto& [seq, text] : acked) {
    auto it = stored.find(seq);
    REQUIRE(it != stored.end());
    CHECK(it->second == text);
  }
  // Seqs still count up from 1 without a gap.
  for (size_t i = 0; i < messages.size(); ++i) CHECK(messages[i].seq == i + 1);
}

}  // namespace hut::test
