// The SQLite store on real files: schema, posts and their seqs, group commit,
// history, read markers, members, direct messages, plugin data, close.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <map>
#include <span>
#include <string>
#include <vector>

#include "store/sqlite_db.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "store_test_util.h"

namespace hut::test {
namespace {

UserRecord user(const std::string& id) { return UserRecord{id, "Name of " + id, ""}; }

MemberRecord member(const std::string& room, const std::string& id, Role role = Role::kMember) {
  MemberRecord m;
  m.room = room;
  m.user = user(id);
  m.role = role;
  m.joined_ts = 1000;
  return m;
}

RoomRecord room_named(const std::string& id, bool is_private = false) {
  RoomRecord r;
  r.id = id;
  r.topic = "about " + id;
  r.is_private = is_private;
  r.created_ts = 1700000000000;
  return r;
}

Status create(StoreFixture& f, const std::string& id, std::vector<MemberRecord> members = {}) {
  return f.wait_done([&](Store::DoneCallback cb) { f.store().create_room(room_named(id), members, cb); });
}

Result<PostResult> post(StoreFixture& f, const std::string& room, const std::string& from,
                        const std::string& text) {
  return f.wait<PostResult>([&](Store::Callback<PostResult> cb) {
    f.store().post(PostRequest{room, user(from), text, "", 0}, cb);
  });
}

Result<HistoryPage> history(StoreFixture& f, const std::string& room, uint64_t before, int limit) {
  return f.wait<HistoryPage>(
      [&](Store::Callback<HistoryPage> cb) { f.store().history(room, before, limit, cb); });
}

std::vector<uint64_t> seqs(const HistoryPage& page) {
  std::vector<uint64_t> out;
  for (const auto& m : page.messages) out.push_back(m.seq);
  return out;
}

std::vector<uint64_t> range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (uint64_t s = from; s <= to; ++s) out.push_back(s);
  return out;
}

// A second, independent connection to the file, as another program would open it.
struct RawDb {
  explicit RawDb(const std::string& path, bool read_only = true) {
    sqlite3_open_v2(path.c_str(), &db, read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, nullptr);
  }
  ~RawDb() { sqlite3_close(db); }
  int64_t integer(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      v = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return v;
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string v = "<no row>";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* p = sqlite3_column_text(stmt, 0);
      v = p ? reinterpret_cast<const char*>(p) : "<null>";
    }
    sqlite3_finalize(stmt);
    return v;
  }
  int exec(const std::string& sql) { return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); }
  sqlite3* db = nullptr;
};

}  // namespace

TEST_CASE("store: URLs name the backend; unknown schemes are refused clearly") {
  TempDir dir;
  uv_loop_t loop;
  uv_loop_init(&loop);
  // postgres:// opens PostgreSQL (store_pg_test.cc).
  auto other = open_store(&loop, "mysql://x");
  CHECK(other.status().code() == Status::Code::kNotSupported);
  CHECK(std::string(other.status().message()).find("mysql") != std::string::npos);
  CHECK(open_store(&loop, "space.db").status().code() == Status::Code::kInvalidArgument);
  CHECK(open_store(&loop, "sqlite://").status().code() == Status::Code::kInvalidArgument);
  uv_loop_close(&loop);

  // The directory of the file is created.
  StoreFixture f;
  std::string nested = dir.path() + "/a/b/c/space.db";
  auto opened = open_store(f.loop(), "sqlite://" + nested);
  REQUIRE(opened.ok());
  struct stat st {};
  CHECK(stat(nested.c_str(), &st) == 0);
  CHECK(f.close(**opened));
}

TEST_CASE("store: a new file gets the whole schema; it is in WAL mode") {
  StoreFixture f;
  REQUIRE(f.open().ok());
  RawDb raw(f.path());
  CHECK(raw.integer("PRAGMA user_version") == static_cast<int64_t>(sqlite_store_migrations().size()));
  CHECK(raw.integer("PRAGMA application_id") == kSqliteApplicationId);
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
  for (const char* table : {"users", "rooms", "members", "messages", "read_markers", "plugin_kv"}) {
    CHECK_MESSAGE(
        raw.integer(std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '") +
                    table + "'") == 1,
        table);
  }
}

TEST_CASE_TEMPLATE("store: reopening a file keeps its data", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby", {member("lobby", "ann", Role::kMaster)}).ok());
  REQUIRE(post(f, "lobby", "ann", "hello").ok());
  REQUIRE(post(f, "lobby", "ann", "again").ok());
  REQUIRE(f.close_store());

  REQUIRE(f.open().ok());
  auto state = f.store().load_state();
  REQUIRE(state.ok());
  REQUIRE(state->rooms.size() == 1);
  CHECK(state->rooms[0].id == "lobby");
  CHECK(state->rooms[0].topic == "about lobby");
  CHECK(state->rooms[0].last_seq == 2);
  REQUIRE(state->members.size() == 1);
  CHECK(state->members[0].role == Role::kMaster);
  auto page = history(f, "lobby", 0, 50);
  REQUIRE(page.ok());
  REQUIRE(page->messages.size() == 2);
  CHECK(page->messages[0].text == "hello");
  CHECK(page->messages[1].text == "again");
  CHECK(page->messages[1].from.name == "Name of ann");
  // A post after reopening continues the room's seq.
  auto third = post(f, "lobby", "ann", "third");
  REQUIRE(third.ok());
  CHECK(third->seq == 3);
}

TEST_CASE("store: a file of a newer schema, or not a store at all, is refused") {
  StoreFixture f;
  REQUIRE(f.open().ok());
  REQUIRE(f.close_store());
  int64_t newest = static_cast<int64_t>(sqlite_store_migrations().size());
  {
    RawDb raw(f.path(), false);
    REQUIRE(raw.exec("PRAGMA user_version = " + std::to_string(newest + 1)) == SQLITE_OK);
  }
  Status s = f.open();
  CHECK(s.code() == Status::Code::kFailedPrecondition);
  CHECK(std::string(s.message()).find("newer") != std::string::npos);
  // Nothing was changed by the refusal.
  RawDb raw(f.path());
  CHECK(raw.integer("PRAGMA user_version") == newest + 1);

  TempDir dir;
  { RawDb other(dir.file("other.db"), false); }
  sqlite3* db = nullptr;
  sqlite3_open(dir.file("other.db").c_str(), &db);
  sqlite3_exec(db, "CREATE TABLE notes (x)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto foreign = open_store(&loop, "sqlite://" + dir.file("other.db"));
  CHECK(foreign.status().code() == Status::Code::kFailedPrecondition);
  CHECK(std::string(foreign.status().message()).find("not a Hutopia store") != std::string::npos);
  uv_loop_close(&loop);
}

TEST_CASE("store: migrations run step by step, each in one transaction") {
  TempDir dir;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.file("m.db").c_str(), &db) == SQLITE_OK);
  const SqliteMigration steps[] = {
      {1, "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
      {2, "CREATE TABLE b (y INTEGER); INSERT INTO b SELECT x FROM a;"},
      {3, "CREATE TABLE c (z INTEGER); INSERT INTO no_such_table VALUES (1);"},
  };
  // Up to version 2.
  REQUIRE(sqlite_migrate(db, SqliteSchema{std::span(steps, 2), kSqliteApplicationId, "store"}).ok());
  RawDb raw(dir.file("m.db"));
  CHECK(raw.integer("PRAGMA user_version") == 2);
  CHECK(raw.integer("SELECT y FROM b") == 1);
  // Step 3 fails: the file stays at version 2 and holds nothing of step 3.
  Status s = sqlite_migrate(db, SqliteSchema{std::span(steps, 3), kSqliteApplicationId, "store"});
  CHECK_FALSE(s.ok());
  CHECK(std::string(s.message()).find("version 3") != std::string::npos);
  CHECK(raw.integer("PRAGMA user_version") == 2);
  CHECK(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'c'") == 0);
  // Running the same list again changes nothing.
  CHECK(sqlite_migrate(db, SqliteSchema{std::span(steps, 2), kSqliteApplicationId, "store"}).ok());
  CHECK(raw.integer("SELECT count(*) FROM a") == 1);
  sqlite3_close(db);
}

TEST_CASE("store: another database's schema keeps its own application_id and is told from a store") {
  TempDir dir;
  const SqliteMigration steps[] = {{1, "CREATE TABLE accounts (id TEXT PRIMARY KEY);"}};
  const int kOther = 0x52454c31;  // "REL1"
  {
    SqliteDb db;
    SqliteOpenOptions options;
    options.durable = true;
    options.name = "relay database";
    REQUIRE(db.open(dir.file("relay.db"), options).ok());
    REQUIRE(sqlite_migrate(db.db(), SqliteSchema{steps, kOther, "relay database"}).ok());
  }
  RawDb raw(dir.file("relay.db"));
  CHECK(raw.integer("PRAGMA application_id") == kOther);
  CHECK(raw.integer("PRAGMA user_version") == 1);
  CHECK(raw.text("PRAGMA journal_mode") == "wal");

  // A store file is refused as a relay database, with the relay's noun.
  StoreFixture f;
  REQUIRE(f.open().ok());
  REQUIRE(f.close_store());
  SqliteDb store_db;
  REQUIRE(store_db.open(f.path(), SqliteOpenOptions{}).ok());
  Status s = sqlite_migrate(store_db.db(), SqliteSchema{steps, kOther, "relay database"});
  CHECK(s.code() == Status::Code::kFailedPrecondition);
  CHECK(std::string(s.message()).find("not a Hutopia relay database") != std::string::npos);

  // A relay database newer than its steps is refused, naming the relay database.
  {
    RawDb w(dir.file("relay.db"), false);
    REQUIRE(w.exec("PRAGMA user_version = 7") == SQLITE_OK);
  }
  SqliteDb again;
  REQUIRE(again.open(dir.file("relay.db"), SqliteOpenOptions{}).ok());
  s = sqlite_migrate(again.db(), SqliteSchema{steps, kOther, "relay database"});
  CHECK(s.code() == Status::Code::kFailedPrecondition);
  CHECK(std::string(s.message()).find("the relay database's schema version 7 is newer") != std::string::npos);
}

TEST_CASE("store: SQLite helpers give errors as values and roll back what is not committed") {
  TempDir dir;
  SqliteDb db;
  REQUIRE(db.open(dir.file("h.db"), SqliteOpenOptions{}).ok());
  REQUIRE(db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)").ok());
  {
    SqliteQuery q(db, "INSERT INTO t (k, v) VALUES (?1, ?2)");
    CHECK(q.bind(1, std::string_view("a")).bind(2, int64_t{1}).run().ok());
  }
  {
    // The same key again: a conflict, as kAlreadyExists.
    SqliteQuery q(db, "INSERT INTO t (k, v) VALUES (?1, ?2)");
    Status s = q.bind(1, std::string_view("a")).bind(2, int64_t{2}).run();
    CHECK(s.code() == Status::Code::kAlreadyExists);
  }
  {
    // A NOT NULL column left empty: kInvalidArgument.
    SqliteQuery q(db, "INSERT INTO t (k, v) VALUES (?1, ?2)");
    Status s = q.bind(1, std::string_view("b")).bind_null(2).run();
    CHECK(s.code() == Status::Code::kInvalidArgument);
  }
  {
    Status prepared;
    CHECK(db.prepare("SELECT nothing FROM nowhere", &prepared) == nullptr);
    CHECK_FALSE(prepared.ok());
  }
  {
    SqliteTransaction txn(db);
    REQUIRE(txn.begin(SqliteTransaction::Kind::kImmediate).ok());
    SqliteQuery q(db, "INSERT INTO t (k, v) VALUES ('c', 3)");
    REQUIRE(q.run().ok());
    CHECK(db.in_transaction());
  }  // not committed: rolled back
  CHECK_FALSE(db.in_transaction());
  {
    SqliteTransaction txn(db);
    REQUIRE(txn.begin().ok());
    SqliteQuery q(db, "INSERT INTO t (k, v) VALUES ('d', 4)");
    REQUIRE(q.run().ok());
    REQUIRE(txn.commit().ok());
  }
  SqliteQuery count(db, "SELECT group_concat(k, ',') FROM (SELECT k FROM t ORDER BY k)");
  REQUIRE(count.step());
  CHECK(count.str(0) == "a,d");
  // With no error, a missing row is the status the caller names.
  CHECK(count.no_row(Status::not_found("x")).is_not_found());
}

TEST_CASE("store: posts queued at once get consecutive seqs per room in few transactions") {
  StoreFixture f;
  // The writer waits on the lock held below for as long as queueing takes,
  // which on a slow (sanitized, loaded) machine can pass the default 5 s.
  StoreOptions patient;
  patient.busy_timeout_ms = 120000;
  REQUIRE(f.open(patient).ok());
  REQUIRE(create(f, "r1").ok());
  REQUIRE(create(f, "r2").ok());
  uint64_t commits_before = f.store().stats().commits;
  // Another connection holds the write lock while the posts are queued, so
  // the writer (waiting on its busy timeout) finds them all queued at once.
  RawDb locker(f.path(), false);
  REQUIRE(locker.exec("BEGIN IMMEDIATE") == SQLITE_OK);

  const int kPosts = 3000;
  struct Done {
    std::string room;
    int index;
    uint64_t seq;
  };
  std::vector<Done> done;
  std::vector<std::string> rooms;
  for (int i = 0; i < kPosts; ++i) {
    std::string room = (i % 3 == 0) ? "r2" : "r1";
    rooms.push_back(room);
    f.store().post(PostRequest{room, user(i % 2 ? "ann" : "bob"), "m" + std::to_string(i), "", 0},
                   [&done, room, i](Result<PostResult> r) {
                     REQUIRE(r.ok());
                     done.push_back(Done{room, i, r->seq});
                   });
  }
  REQUIRE(locker.exec("COMMIT") == SQLITE_OK);
  REQUIRE(f.run_until([&] { return static_cast<int>(done.size()) == kPosts; }));
  // Callbacks in submission order, seqs counting up from 1 in each room.
  uint64_t next_r1 = 1, next_r2 = 1;
  for (int i = 0; i < kPosts; ++i) {
    CHECK(done[static_cast<size_t>(i)].index == i);
    uint64_t& next = rooms[static_cast<size_t>(i)] == "r1" ? next_r1 : next_r2;
    CHECK(done[static_cast<size_t>(i)].seq == next);
    ++next;
  }
  StoreStats stats = f.store().stats();
  uint64_t commits = stats.commits - commits_before;
  MESSAGE("3000 posts in " << commits << " commits; largest batch " << stats.largest_batch);
  CHECK(commits >= 1);
  CHECK(commits <= 3);  // the first post, then all the others together
  CHECK(stats.largest_batch > 1);
  CHECK(stats.pending_writes == 0);

  // History agrees with the seqs: the text of each message names its index.
  auto page = history(f, "r2", 0, 200);
  REQUIRE(page.ok());
  REQUIRE(page->messages.size() == 200);
  CHECK(page->messages.back().seq == 1000);
  CHECK(page->messages.back().text == "m2997");
}

TEST_CASE_TEMPLATE("store: a post's callback runs after its commit", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby").ok());
  RawSql raw(f);
  int seen = 0, checked = 0;
  for (int i = 0; i < 200; ++i) {
    f.store().post(PostRequest{"lobby", user("ann"), "t" + std::to_string(i), "", 0},
                   [&](Result<PostResult> r) {
                     REQUIRE(r.ok());
                     ++checked;
                     // Another connection sees the row, and the author's read marker moved.
                     std::string seq = std::to_string(r->seq);
                     if (raw.integer("SELECT count(*) FROM messages WHERE seq = " + seq) == 1 &&
                         raw.integer("SELECT seq FROM read_markers") >= static_cast<int64_t>(r->seq)) {
                       ++seen;
                     }
                   });
  }
  REQUIRE(f.run_until([&] { return checked == 200; }));
  CHECK(seen == 200);
}

TEST_CASE("store: the WAL stays bounded under a steady stream of posts") {
  StoreFixture f;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby").ok());
  // 6000 posts of 4 KiB, 32 in flight: about 25 MB through the WAL in small
  // transactions, as a busy room would write them.
  const int kPosts = 6000;
  const std::string text(4096, 'x');
  int submitted = 0, acked = 0;
  std::function<void()> submit = [&] {
    ++submitted;
    f.store().post(PostRequest{"lobby", user("ann"), text, "", 0}, [&](Result<PostResult> r) {
      REQUIRE(r.ok());
      ++acked;
      if (submitted < kPosts) submit();
    });
  };
  for (int i = 0; i < 32; ++i) submit();
  REQUIRE(f.run_until([&] { return acked == kPosts; }, 120));
  struct stat wal {
  }, db{};
  REQUIRE(stat((f.path() + "-wal").c_str(), &wal) == 0);
  REQUIRE(stat(f.path().c_str(), &db) == 0);
  MESSAGE("WAL " << wal.st_size / 1000000 << " MB, database " << db.st_size / 1000000 << " MB");
  CHECK(wal.st_size < 20 * 1000 * 1000);
  CHECK(db.st_size > 10 * 1000 * 1000);  // the checkpoints moved the messages into the database
}

TEST_CASE_TEMPLATE("store: a post to a missing room fails alone; the others in its transaction stay", T,
                   OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby").ok());
  std::vector<Status> results;
  for (const char* room : {"lobby", "nowhere", "lobby"}) {
    f.store().post(PostRequest{room, user("ann"), "x", "", 0},
                   [&](Result<PostResult> r) { results.push_back(r.status()); });
  }
  REQUIRE(f.run_until([&] { return results.size() == 3; }));
  CHECK(results[0].ok());
  CHECK(results[1].is_not_found());
  CHECK(results[2].ok());
  auto page = history(f, "lobby", 0, 10);
  REQUIRE(page.ok());
  CHECK(seqs(*page) == std::vector<uint64_t>{1, 2});
}

TEST_CASE("store: a transaction that cannot commit acknowledges none of its writes") {
  StoreFixture f;
  StoreOptions options;
  options.busy_timeout_ms = 200;
  REQUIRE(f.open(options).ok());
  REQUIRE(create(f, "lobby").ok());
  // Another process holds the write lock past the busy timeout.
  RawDb locker(f.path(), false);
  REQUIRE(locker.exec("BEGIN IMMEDIATE") == SQLITE_OK);
  std::vector<Status> results;
  for (int i = 0; i < 10; ++i) {
    f.store().post(PostRequest{"lobby", user("ann"), "lost", "", 0},
                   [&](Result<PostResult> r) { results.push_back(r.status()); });
  }
  REQUIRE(f.run_until([&] { return results.size() == 10; }));
  for (const auto& s : results) CHECK(s.code() == Status::Code::kUnavailable);
  CHECK(f.store().stats().failed_commits >= 1);
  REQUIRE(locker.exec("COMMIT") == SQLITE_OK);
  // Nothing of the failed writes landed: the next post is seq 1.
  auto next = post(f, "lobby", "ann", "kept");
  REQUIRE(next.ok());
  CHECK(next->seq == 1);
  auto page = history(f, "lobby", 0, 50);
  REQUIRE(page.ok());
  REQUIRE(page->messages.size() == 1);
  CHECK(page->messages[0].text == "kept");
}

TEST_CASE_TEMPLATE("store: message data and ts are kept as given", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby").ok());
  auto r = f.wait<PostResult>([&](Store::Callback<PostResult> cb) {
    f.store().post(
        PostRequest{"lobby", UserRecord{"ann", "Ann", "https://x/a.png"}, "hi", R"({"k":[1,2]})", 1234}, cb);
  });
  REQUIRE(r.ok());
  CHECK(r->ts == 1234);
  auto m = f.wait<MessageRecord>(
      [&](Store::Callback<MessageRecord> cb) { f.store().get_message("lobby", 1, cb); });
  REQUIRE(m.ok());
  CHECK(m->ts == 1234);
  CHECK(m->data_json == R"({"k":[1,2]})");
  CHECK(m->from.avatar == "https://x/a.png");
  CHECK(m->edited_ts == 0);
  // A post without ts gets the current time.
  auto now = post(f, "lobby", "ann", "later");
  REQUIRE(now.ok());
  CHECK(now->ts > 1700000000000);
}

TEST_CASE_TEMPLATE("store: edit and delete check the author; deleted messages never come back", T, OnSqlite,
                   OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby").ok());
  for (int i = 1; i <= 5; ++i) REQUIRE(post(f, "lobby", "ann", "m" + std::to_string(i)).ok());

  auto edit = [&](uint64_t seq, const std::string& author) {
    return f.wait<int64_t>(
        [&](Store::Callback<int64_t> cb) { f.store().edit("lobby", seq, "changed", 5555, author, cb); });
  };
  auto del = [&](uint64_t seq, const std::string& author) {
    return f.wait_done([&](Store::DoneCallback cb) { f.store().delete_message("lobby", seq, author, cb); });
  };
  CHECK(edit(2, "bob").status().code() == Status::Code::kPermissionDenied);
  auto edited = edit(2, "ann");
  REQUIRE(edited.ok());
  CHECK(*edited == 5555);
  CHECK(edit(99, "ann").status().is_not_found());

  CHECK(del(3, "bob").code() == Status::Code::kPermissionDenied);
  CHECK(del(3, "ann").ok());
  CHECK(del(4, "").ok());  // a moderator's delete names no author
  CHECK(del(3, "ann").is_not_found());
  CHECK(edit(3, "ann").status().is_not_found());

  auto page = history(f, "lobby", 0, 50);
  REQUIRE(page.ok());
  CHECK(seqs(*page) == std::vector<uint64_t>{1, 2, 5});
  CHECK(page->messages[1].text == "changed");
  CHECK(page->messages[1].edited_ts == 5555);
  auto gone = f.wait<MessageRecord>(
      [&](Store::Callback<MessageRecord> cb) { f.store().get_message("lobby", 3, cb); });
  CHECK(gone.status().is_not_found());
  // The deleted text is erased from the file, not only hidden.
  RawSql raw(f);
  CHECK(raw.integer("SELECT count(*) FROM messages WHERE text = 'm3'") == 0);
  // Seqs never repeat: the next post is 6.
  auto next = post(f, "lobby", "ann", "six");
  REQUIRE(next.ok());
  CHECK(next->seq == 6);
}

TEST_CASE_TEMPLATE("store: history pages both ways with before, limit and more", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby").ok());
  REQUIRE(create(f, "other").ok());
  for (int i = 1; i <= 120; ++i) {
    f.store().post(PostRequest{"lobby", user("ann"), "m" + std::to_string(i), "", 0}, nullptr);
  }
  REQUIRE(post(f, "other", "bob", "elsewhere").ok());

  auto newest = history(f, "lobby", 0, 50);
  REQUIRE(newest.ok());
  CHECK(seqs(*newest) == range(71, 120));
  CHECK(newest->more);
  auto middle = history(f, "lobby", 71, 50);
  REQUIRE(middle.ok());
  CHECK(seqs(*middle) == range(21, 70));
  CHECK(middle->more);
  auto oldest = history(f, "lobby", 21, 50);
  REQUIRE(oldest.ok());
  CHECK(seqs(*oldest) == range(1, 20));
  CHECK_FALSE(oldest->more);
  // Exactly the rest: no more.
  auto exact = history(f, "lobby", 51, 50);
  REQUIRE(exact.ok());
  CHECK(seqs(*exact) == range(1, 50));
  CHECK_FALSE(exact->more);
  auto one = history(f, "lobby", 0, 1);
  REQUIRE(one.ok());
  CHECK(seqs(*one) == std::vector<uint64_t>{120});
  CHECK(one->more);
  // A page never mixes rooms.
  auto other = history(f, "other", 0, 200);
  REQUIRE(other.ok());
  CHECK(seqs(*other) == std::vector<uint64_t>{1});

  // Deleted messages are skipped, and a page still fills up.
  for (uint64_t s : {118, 119}) {
    REQUIRE(f.wait_done([&](Store::DoneCallback cb) { f.store().delete_message("lobby", s, "", cb); }).ok());
  }
  auto skipped = history(f, "lobby", 0, 3);
  REQUIRE(skipped.ok());
  CHECK(seqs(*skipped) == std::vector<uint64_t>{116, 117, 120});

  auto far = history(f, "lobby", UINT64_MAX, 2);
  REQUIRE(far.ok());
  CHECK(seqs(*far) == std::vector<uint64_t>{117, 120});
  CHECK(history(f, "lobby", 0, 0).status().is_invalid_argument());
  CHECK(history(f, "lobby", 0, 201).status().is_invalid_argument());
  CHECK(history(f, "nowhere", 0, 50).status().is_not_found());
  auto empty_before = history(f, "lobby", 1, 50);
  REQUIRE(empty_before.ok());
  CHECK(empty_before->messages.empty());
  CHECK_FALSE(empty_before->more);
}

TEST_CASE_TEMPLATE("store: read markers never move back; unread counts", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby", {member("lobby", "ann"), member("lobby", "bob")}).ok());
  REQUIRE(create(f, "quiet", {member("quiet", "bob")}).ok());
  for (int i = 1; i <= 10; ++i) REQUIRE(post(f, "lobby", "ann", "m" + std::to_string(i)).ok());

  auto unread = [&](const std::string& who) {
    return f.wait<uint64_t>([&](Store::Callback<uint64_t> cb) { f.store().unread("lobby", who, cb); });
  };
  auto mark = [&](const std::string& who, uint64_t seq) {
    return f.wait<uint64_t>(
        [&](Store::Callback<uint64_t> cb) { f.store().mark_read("lobby", who, seq, cb); });
  };
  CHECK(unread("bob").value_or(999) == 10);
  CHECK(unread("ann").value_or(999) == 0);  // her own posts count as read
  CHECK(mark("bob", 4).value_or(999) == 6);
  CHECK(mark("bob", 2).value_or(999) == 6);  // does not move back
  CHECK(unread("bob").value_or(999) == 6);
  // A deleted message after the marker is not unread; one before it changes nothing.
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) { f.store().delete_message("lobby", 7, "", cb); }).ok());
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) { f.store().delete_message("lobby", 2, "", cb); }).ok());
  CHECK(unread("bob").value_or(999) == 5);
  // Bob posts: his marker moves to his post, past everything before it.
  REQUIRE(post(f, "lobby", "bob", "mine").ok());
  CHECK(unread("bob").value_or(999) == 0);
  CHECK(unread("ann").value_or(999) == 1);
  // A marker past the end stops at last_seq, so later posts still count.
  CHECK(mark("ann", 1000).value_or(999) == 0);
  REQUIRE(post(f, "lobby", "bob", "more").ok());
  CHECK(unread("ann").value_or(999) == 1);
  CHECK(unread("nobody").value_or(999) == 10);  // 12 posts, 2 of them deleted
  CHECK(mark("ann", 0).value_or(999) == 1);

  auto counts = f.wait<std::vector<RoomUnread>>(
      [&](Store::Callback<std::vector<RoomUnread>> cb) { f.store().unread_counts("ann", cb); });
  REQUIRE(counts.ok());
  REQUIRE(counts->size() == 1);
  CHECK((*counts)[0].room == "lobby");
  CHECK((*counts)[0].unread == 1);
  auto bob_counts = f.wait<std::vector<RoomUnread>>(
      [&](Store::Callback<std::vector<RoomUnread>> cb) { f.store().unread_counts("bob", cb); });
  REQUIRE(bob_counts.ok());
  REQUIRE(bob_counts->size() == 2);
  CHECK((*bob_counts)[0].room == "lobby");
  CHECK((*bob_counts)[0].unread == 0);
  CHECK((*bob_counts)[1].room == "quiet");
  CHECK((*bob_counts)[1].unread == 0);

  // The markers are durable and loaded at start-up.
  REQUIRE(f.close_store());
  REQUIRE(f.open().ok());
  auto state = f.store().load_state();
  REQUIRE(state.ok());
  REQUIRE(state->read_markers.size() == 2);
  CHECK(state->read_markers[0].user == "ann");
  CHECK(state->read_markers[0].seq == 11);
  CHECK(state->read_markers[1].user == "bob");
  CHECK(state->read_markers[1].seq == 12);
  // One room's markers, read again (what a node of a cluster does after an
  // outage): by user id.
  auto markers = f.wait<std::vector<ReadMarker>>([&](auto cb) { f.store().read_markers("lobby", cb); });
  REQUIRE(markers.ok());
  REQUIRE(markers->size() == 2);
  CHECK((*markers)[0].room == "lobby");
  CHECK((*markers)[0].user == "ann");
  CHECK((*markers)[0].seq == 11);
  CHECK((*markers)[1].user == "bob");
  CHECK((*markers)[1].seq == 12);
  CHECK(f.wait<std::vector<ReadMarker>>([&](auto cb) { f.store().read_markers("quiet", cb); })->empty());
  CHECK(f.wait<std::vector<ReadMarker>>([&](auto cb) { f.store().read_markers("nowhere", cb); })
            .status()
            .is_not_found());
  // After reopening, an older seq still leaves the marker where it is.
  CHECK(mark("bob", 3).value_or(999) == 0);
  CHECK(mark("nobody", 1).status().ok());
  CHECK(f.wait<uint64_t>([&](Store::Callback<uint64_t> cb) { f.store().mark_read("nowhere", "bob", 1, cb); })
            .status()
            .is_not_found());
}

TEST_CASE_TEMPLATE("store: members, roles, mutes and mute_all round trip", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby", {member("lobby", "ann", Role::kMaster)}).ok());
  CHECK(create(f, "lobby").code() == Status::Code::kAlreadyExists);

  auto done = [&](const std::function<void(Store::DoneCallback)>& fn) { return f.wait_done(fn); };
  CHECK(done([&](auto cb) { f.store().put_member(member("lobby", "bob"), cb); }).ok());
  CHECK(done([&](auto cb) { f.store().put_member(member("lobby", "cat"), cb); }).ok());
  CHECK(done([&](auto cb) { f.store().put_member(member("lobby", "dan"), cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_role("lobby", "bob", Role::kModerator, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_mute("lobby", "cat", 1700000060000, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_mute("lobby", "dan", kMuteForever, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_mute_all("lobby", true, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_topic("lobby", "new topic", cb); }).ok());
  // Missing rooms and non-members.
  CHECK(done([&](auto cb) { f.store().put_member(member("nowhere", "bob"), cb); }).is_not_found());
  CHECK(done([&](auto cb) { f.store().set_role("lobby", "eve", Role::kMaster, cb); }).is_not_found());
  CHECK(done([&](auto cb) { f.store().set_mute("lobby", "eve", kMuteForever, cb); }).is_not_found());
  CHECK(done([&](auto cb) { f.store().set_mute_all("nowhere", true, cb); }).is_not_found());
  CHECK(done([&](auto cb) { f.store().set_topic("nowhere", "x", cb); }).is_not_found());

  auto check_members = [&](const std::vector<MemberRecord>& ms) {
    REQUIRE(ms.size() == 4);
    std::map<std::string, MemberRecord> by_id;
    for (const auto& m : ms) by_id[m.user.id] = m;
    CHECK(by_id["ann"].role == Role::kMaster);
    CHECK(by_id["bob"].role == Role::kModerator);
    CHECK_FALSE(by_id["bob"].mute_until.has_value());
    CHECK(by_id["cat"].mute_until == std::optional<int64_t>(1700000060000));
    CHECK(by_id["dan"].mute_until == std::optional<int64_t>(kMuteForever));
    CHECK(by_id["cat"].user.name == "Name of cat");
    CHECK(by_id["cat"].joined_ts == 1000);
  };
  auto listed = f.wait<std::vector<MemberRecord>>(
      [&](Store::Callback<std::vector<MemberRecord>> cb) { f.store().members("lobby", cb); });
  REQUIRE(listed.ok());
  check_members(*listed);
  auto one = [&](const std::string& room, const std::string& user) {
    return f.wait<MemberRecord>([&](Store::Callback<MemberRecord> cb) { f.store().member(room, user, cb); });
  };
  auto cat = one("lobby", "cat");
  REQUIRE(cat.ok());
  CHECK(cat->user.id == "cat");
  CHECK(cat->room == "lobby");
  CHECK(cat->mute_until == std::optional<int64_t>(1700000060000));
  CHECK(one("lobby", "bob")->role == Role::kModerator);
  CHECK(one("lobby", "eve").status().is_not_found());
  CHECK(one("nowhere", "bob").status().is_not_found());

  REQUIRE(f.close_store());
  REQUIRE(f.open().ok());
  auto state = f.store().load_state();
  REQUIRE(state.ok());
  REQUIRE(state->rooms.size() == 1);
  CHECK(state->rooms[0].mute_all);
  CHECK(state->rooms[0].topic == "new topic");
  check_members(state->members);

  // Unmute, role back, leave.
  CHECK(done([&](auto cb) { f.store().set_mute("lobby", "dan", std::nullopt, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_mute_all("lobby", false, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().remove_member("lobby", "cat", cb); }).ok());
  CHECK(done([&](auto cb) { f.store().remove_member("lobby", "cat", cb); }).is_not_found());
  auto after = f.wait<std::vector<MemberRecord>>(
      [&](Store::Callback<std::vector<MemberRecord>> cb) { f.store().members("lobby", cb); });
  REQUIRE(after.ok());
  CHECK(after->size() == 3);
  for (const auto& m : *after) CHECK_FALSE(m.mute_until.has_value());
  auto room = f.wait<RoomRecord>([&](Store::Callback<RoomRecord> cb) { f.store().get_room("lobby", cb); });
  REQUIRE(room.ok());
  CHECK_FALSE(room->mute_all);

  // Deleting a room takes its members and messages with it.
  REQUIRE(post(f, "lobby", "ann", "bye").ok());
  CHECK(done([&](auto cb) { f.store().delete_room("lobby", cb); }).ok());
  CHECK(done([&](auto cb) { f.store().delete_room("lobby", cb); }).is_not_found());
  CHECK(history(f, "lobby", 0, 50).status().is_not_found());
  RawSql raw(f);
  CHECK(raw.integer("SELECT count(*) FROM messages") == 0);
  CHECK(raw.integer("SELECT count(*) FROM members") == 0);
  // A new room of the same name starts again from seq 1.
  REQUIRE(create(f, "lobby").ok());
  auto fresh = post(f, "lobby", "ann", "again");
  REQUIRE(fresh.ok());
  CHECK(fresh->seq == 1);
}

TEST_CASE_TEMPLATE("store: a leave keeps the mute, a ban removes and keeps out; both survive reopening", T,
                   OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  RoomRecord rec = room_named("hall");
  rec.creator = "ann";
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) {
             f.store().create_room(rec, {member("hall", "ann", Role::kMaster)}, cb);
           }).ok());
  auto done = [&](const std::function<void(Store::DoneCallback)>& fn) { return f.wait_done(fn); };
  CHECK(done([&](auto cb) { f.store().put_member(member("hall", "cat"), cb); }).ok());
  CHECK(done([&](auto cb) { f.store().put_member(member("hall", "bob"), cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_mute("hall", "cat", 1700000060000, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().remove_member("hall", "cat", cb); }).ok());
  // bob is banned while a member, dan before he ever came.
  CHECK(done([&](auto cb) { f.store().set_ban("hall", "bob", true, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_ban("hall", "dan", true, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().set_ban("nowhere", "dan", true, cb); }).is_not_found());
  CHECK(done([&](auto cb) { f.store().set_ban("hall", "eve", false, cb); }).is_not_found());

  REQUIRE(f.close_store());
  REQUIRE(f.open().ok());
  auto state = f.store().load_state();
  REQUIRE(state.ok());
  REQUIRE(state->rooms.size() == 1);
  CHECK(state->rooms[0].creator == "ann");
  REQUIRE(state->members.size() == 1);
  CHECK(state->members[0].user.id == "ann");
  std::map<std::string, SanctionRecord> by_user;
  for (const auto& sr : state->sanctions) by_user[sr.user] = sr;
  REQUIRE(by_user.size() == 3);
  CHECK(by_user["cat"].mute_until == std::optional<int64_t>(1700000060000));
  CHECK_FALSE(by_user["cat"].banned);
  CHECK(by_user["bob"].banned);
  CHECK_FALSE(by_user["bob"].mute_until.has_value());
  CHECK(by_user["dan"].banned);
  bool knows_cat = false;
  for (const auto& u : state->users) knows_cat = knows_cat || (u.id == "cat" && u.name == "Name of cat");
  CHECK(knows_cat);
  // One room's sanctions, read while the store serves (what a node of a
  // cluster reads before admitting someone): the same three.
  auto hall = f.wait<std::vector<SanctionRecord>>([&](auto cb) { f.store().sanctions("hall", cb); });
  REQUIRE(hall.ok());
  REQUIRE(hall->size() == 3);
  for (const SanctionRecord& sr : *hall) {
    CHECK(sr.room == "hall");
    CHECK(sr.banned == by_user[sr.user].banned);
    CHECK(sr.mute_until == by_user[sr.user].mute_until);
  }
  CHECK(f.wait<std::vector<SanctionRecord>>([&](auto cb) { f.store().sanctions("nowhere", cb); })
            .status()
            .is_not_found());

  // Lifting a ban leaves nothing; a member who leaves unmuted drops the kept mute.
  CHECK(done([&](auto cb) { f.store().set_ban("hall", "bob", false, cb); }).ok());
  MemberRecord back = member("hall", "cat");
  back.mute_until.reset();
  CHECK(done([&](auto cb) { f.store().put_member(back, cb); }).ok());
  CHECK(done([&](auto cb) { f.store().remove_member("hall", "cat", cb); }).ok());
  RawSql raw(f);
  CHECK(raw.integer("SELECT count(*) FROM sanctions") == 1);  // dan's ban
  CHECK(done([&](auto cb) { f.store().delete_room("hall", cb); }).ok());
  CHECK(raw.integer("SELECT count(*) FROM sanctions") == 0);
}

TEST_CASE_TEMPLATE("store: a direct-message room is found again for the same pair in either order", T,
                   OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  auto dm = [&](const std::string& a, const std::string& b, const std::string& id) {
    return f.wait<DmResult>(
        [&](Store::Callback<DmResult> cb) { f.store().open_dm(user(a), user(b), id, 0, cb); });
  };
  auto first = dm("ann", "bob", "dm-1");
  REQUIRE(first.ok());
  CHECK(first->created);
  CHECK(first->room.id == "dm-1");
  CHECK(first->room.is_private);
  CHECK(first->room.is_dm());
  auto again = dm("bob", "ann", "dm-2");
  REQUIRE(again.ok());
  CHECK_FALSE(again->created);
  CHECK(again->room.id == "dm-1");
  auto other = dm("ann", "cat", "dm-3");
  REQUIRE(other.ok());
  CHECK(other->created);
  CHECK(other->room.id == "dm-3");
  // An id taken by another room is refused.
  CHECK(dm("bob", "cat", "dm-1").status().code() == Status::Code::kAlreadyExists);
  CHECK(dm_key("a", "bc") != dm_key("ab", "c"));

  auto ms = f.wait<std::vector<MemberRecord>>(
      [&](Store::Callback<std::vector<MemberRecord>> cb) { f.store().members("dm-1", cb); });
  REQUIRE(ms.ok());
  REQUIRE(ms->size() == 2);
  REQUIRE(f.close_store());
  REQUIRE(f.open().ok());
  auto reopened = dm("bob", "ann", "dm-9");
  REQUIRE(reopened.ok());
  CHECK(reopened->room.id == "dm-1");
}

TEST_CASE_TEMPLATE("store: plugin key-value data per plugin", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  auto put = [&](const std::string& plugin, const std::string& key, const std::string& value) {
    return f.wait_done([&](Store::DoneCallback cb) { f.store().kv_put(plugin, key, value, cb); });
  };
  auto get = [&](const std::string& plugin, const std::string& key) {
    return f.wait<std::string>([&](Store::Callback<std::string> cb) { f.store().kv_get(plugin, key, cb); });
  };
  auto del = [&](const std::string& plugin, const std::string& key) {
    return f.wait_done([&](Store::DoneCallback cb) { f.store().kv_delete(plugin, key, cb); });
  };
  std::string binary("a\0b\xff", 4);
  CHECK(put("echo", "k", binary).ok());
  CHECK(put("poll", "k", "other").ok());
  CHECK(get("echo", "k").value_or("") == binary);
  CHECK(get("poll", "k").value_or("") == "other");
  CHECK(get("chat", "k").status().is_not_found());
  CHECK(put("echo", "k", "replaced").ok());
  CHECK(get("echo", "k").value_or("") == "replaced");
  CHECK(put("echo", "empty", "").ok());
  auto empty = get("echo", "empty");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  CHECK(del("echo", "k").ok());
  CHECK(get("echo", "k").status().is_not_found());
  CHECK(get("poll", "k").value_or("") == "other");
  CHECK(del("echo", "k").is_not_found());
  REQUIRE(f.close_store());
  REQUIRE(f.open().ok());
  CHECK(get("poll", "k").value_or("") == "other");
}

TEST_CASE_TEMPLATE("store: close commits every queued write before it calls back", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby").ok());
  const int kPosts = 500;
  int acked = 0;
  bool closed = false;
  bool acked_before_close = false;
  for (int i = 0; i < kPosts; ++i) {
    f.store().post(PostRequest{"lobby", user("ann"), "m", "", 0}, [&](Result<PostResult> r) {
      if (r.ok()) ++acked;
    });
  }
  f.store().close([&] {
    closed = true;
    acked_before_close = acked == kPosts;
  });
  std::optional<Status> late;
  f.store().post(PostRequest{"lobby", user("ann"), "late", "", 0},
                 [&](Result<PostResult> r) { late = r.status(); });
  REQUIRE(f.run_until([&] { return closed; }));
  CHECK(acked_before_close);
  REQUIRE(late.has_value());
  CHECK(late->code() == Status::Code::kFailedPrecondition);
  RawSql raw(f);
  CHECK(raw.integer("SELECT last_seq FROM rooms") == kPosts);
  CHECK(raw.integer("SELECT count(*) FROM messages") == kPosts);
}

TEST_CASE_TEMPLATE("store: destroying a store without close still commits and does not hang", T, OnSqlite,
                   OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  auto opened = open_store(f.loop(), f.url());
  REQUIRE(opened.ok());
  (*opened)->create_room(room_named("lobby"), {}, nullptr);
  for (int i = 0; i < 100; ++i) (*opened)->post(PostRequest{"lobby", user("ann"), "m", "", 0}, nullptr);
  opened->reset();
  RawSql raw(f);
  CHECK(raw.integer("SELECT count(*) FROM messages") == 100);
}

TEST_CASE_TEMPLATE("store: a resume credential is used once, keeps its user, expires, and survives reopening",
                   T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  UserRecord rita{"rita", "Rita R", "http://a/r.png"};
  constexpr int64_t kNow = 4102444800000;  // 2100: not expired by the clock of the pruning
  Status put =
      f.wait_done([&](Store::DoneCallback cb) { f.store().put_resume("h1", rita, kNow + 60000, cb); });
  REQUIRE_MESSAGE(put.ok(), put.message());
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) { f.store().put_resume("old", rita, kNow - 1, cb); }).ok());
  REQUIRE(f.close_store());
  REQUIRE(f.open().ok());
  auto redeem = [&](const std::string& hash, int64_t now, const std::string& next) {
    return f.wait<UserRecord>(
        [&](Store::Callback<UserRecord> cb) { f.store().redeem_resume(hash, now, next, now + 60000, cb); });
  };
  auto first = redeem("h1", kNow, "h2");
  REQUIRE(first.ok());
  CHECK(first->id == "rita");
  CHECK(first->name == "Rita R");
  CHECK(first->avatar == "http://a/r.png");
  // Used: gone, and nothing new was stored for the refused attempt.
  CHECK(redeem("h1", kNow, "h3").status().is_not_found());
  CHECK(redeem("h3", kNow, "h4").status().is_not_found());
  CHECK(redeem("unknown", kNow, "h5").status().is_not_found());
  // The expired one was dropped when h1 was stored after it or refused now.
  CHECK(redeem("old", kNow, "h6").status().is_not_found());
  // h2 expires at kNow + 60000.
  CHECK(redeem("h2", kNow + 60000, "h7").status().is_not_found());
  RawSql raw(f);
  CHECK(raw.integer("SELECT count(*) FROM resume WHERE hash IN ('h1', 'h3', 'h4', 'h5', 'h6', 'h7')") == 0);
}

TEST_CASE_TEMPLATE("store: a user keeps at most 32 resume credentials, the newest", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  int64_t far = 4102444800000;  // 2100
  for (int i = 0; i < 40; ++i) {
    REQUIRE(f.wait_done([&](Store::DoneCallback cb) {
               f.store().put_resume("k" + std::to_string(i), user("ann"), far + i, cb);
             }).ok());
  }
  RawSql raw(f);
  CHECK(raw.integer("SELECT count(*) FROM resume WHERE user_id = 'ann'") == 32);
  CHECK(raw.integer("SELECT count(*) FROM resume WHERE hash = 'k0'") == 0);
  CHECK(raw.integer("SELECT count(*) FROM resume WHERE hash = 'k39'") == 1);
}

TEST_CASE_TEMPLATE("store: history_after pages forward with more", T, OnSqlite, OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  REQUIRE(f.open().ok());
  REQUIRE(create(f, "lobby", {member("lobby", "ann")}).ok());
  for (int i = 0; i < 5; ++i) REQUIRE(post(f, "lobby", "ann", "m" + std::to_string(i)).ok());
  auto after = [&](uint64_t seq, int limit) {
    return f.wait<HistoryPage>(
        [&](Store::Callback<HistoryPage> cb) { f.store().history_after("lobby", seq, limit, cb); });
  };
  auto p = after(1, 2);
  REQUIRE(p.ok());
  CHECK(seqs(*p) == std::vector<uint64_t>{2, 3});
  CHECK(p->more);
  p = after(3, 5);
  REQUIRE(p.ok());
  CHECK(seqs(*p) == std::vector<uint64_t>{4, 5});
  CHECK_FALSE(p->more);
  CHECK(after(0, 500).status().code() == Status::Code::kInvalidArgument);
}

}  // namespace hut::test
