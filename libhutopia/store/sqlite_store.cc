#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "store/sqlite_db.h"
#include "util/log.h"

namespace hut {
namespace {

// ---------------------------------------------------------------------------
// Schema.

constexpr SqliteMigration kMigrations[] = {
    {1, R"sql(
CREATE TABLE users (
  uid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  avatar TEXT
);
CREATE TABLE rooms (
  rid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL DEFAULT '',
  private INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1)),
  created_ts INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
  mute_all INTEGER NOT NULL DEFAULT 0 CHECK (mute_all IN (0, 1)),
  dm_key TEXT UNIQUE
);
CREATE TABLE members (
  rid INTEGER NOT NULL REFERENCES rooms(rid) ON DELETE CASCADE,
  uid INTEGER NOT NULL REFERENCES users(uid),
  role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'moderator', 'master')),
  mute_until INTEGER,
  joined_ts INTEGER NOT NULL,
  PRIMARY KEY (rid, uid)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(uid);
CREATE TABLE messages (
  rid INTEGER NOT NULL REFERENCES rooms(rid) ON DELETE CASCADE,
  seq INTEGER NOT NULL CHECK (seq >= 1),
  ts INTEGER NOT NULL,
  uid INTEGER NOT NULL REFERENCES users(uid),
  text TEXT NOT NULL,
  data TEXT,
  edited_ts INTEGER,
  deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
  PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX messages_deleted ON messages(rid, seq) WHERE deleted = 1;
CREATE TABLE read_markers (
  rid INTEGER NOT NULL REFERENCES rooms(rid) ON DELETE CASCADE,
  uid INTEGER NOT NULL REFERENCES users(uid),
  seq INTEGER NOT NULL CHECK (seq >= 0),
  PRIMARY KEY (rid, uid)
) WITHOUT ROWID;
CREATE TABLE plugin_kv (
  plugin TEXT NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (plugin, key)
) WITHOUT ROWID;
)sql"},
    {2, R"sql(
CREATE TABLE resume (
  hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  name TEXT NOT NULL,
  avatar TEXT,
  expires_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX resume_by_user ON resume(user_id, expires_ts);
)sql"},
    {3, R"sql(
CREATE TABLE sanctions (
  rid INTEGER NOT NULL REFERENCES rooms(rid) ON DELETE CASCADE,
  user_id TEXT NOT NULL,
  mute_until INTEGER,
  banned INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
  PRIMARY KEY (rid, user_id)
) WITHOUT ROWID;
ALTER TABLE rooms ADD COLUMN creator TEXT;
)sql"},
};

// The WAL size (in pages) past which the checkpoint thread is woken (SQLite's
// own default), and the size past which the writer checkpoints by itself.
// Under a steady stream of commits the checkpoint thread never catches up with
// the last frame, so the WAL would never start over and would keep growing;
// the writer's own checkpoint finds most frames copied already, and the WAL
// starts over at its next transaction.
constexpr int kCheckpointFrames = 1000;
constexpr int kInlineCheckpointFrames = 4000;
// The checkpoint thread's pause between two checkpoints.
constexpr auto kCheckpointPause = std::chrono::milliseconds(50);
// How long kv_get_now() (on the loop thread) waits for a lock, in ms.
constexpr int kLoopReadBusyMs = 50;

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------------------
// A store connection: the shared SQLite connection with the writer thread's
// caches and WAL hook. Used by one thread at a time.

class Conn : public SqliteDb {
 public:
  enum class Mode { kRead, kWrite, kDurableWrite };
  static Result<std::unique_ptr<Conn>> connect(const std::string& path, Mode mode, int busy_ms) {
    auto conn = std::make_unique<Conn>();
    SqliteOpenOptions options;
    options.read_only = mode == Mode::kRead;
    options.durable = mode == Mode::kDurableWrite;
    options.busy_timeout_ms = busy_ms;
    HUT_RETURN_IF_ERROR(conn->open(path, options));
    return conn;
  }

  // Frames in the WAL after the last commit (set by the WAL hook).
  int wal_frames = 0;
  static int on_wal_commit(void* self, sqlite3*, const char*, int frames) {
    static_cast<Conn*>(self)->wal_frames = frames;
    return SQLITE_OK;
  }

  // Writer-thread caches of room and user row ids. Dropped whenever a write
  // is rolled back, since the rows they name may have gone with it.
  std::unordered_map<std::string, int64_t> rids;
  struct CachedUser {
    int64_t uid;
    std::string name;
    std::string avatar;
  };
  std::unordered_map<std::string, CachedUser> users;
  void clear_caches() {
    rids.clear();
    users.clear();
  }
};

// ---------------------------------------------------------------------------
// Row readers and lookups shared by both threads.

RoomRecord read_room(const SqliteQuery& q, int first = 0) {
  RoomRecord r;
  r.id = q.str(first);
  r.topic = q.str(first + 1);
  r.is_private = q.i64(first + 2) != 0;
  r.created_ts = q.i64(first + 3);
  r.last_seq = static_cast<uint64_t>(q.i64(first + 4));
  r.mute_all = q.i64(first + 5) != 0;
  r.dm_key = q.str(first + 6);
  return r;
}

// Columns: room id, user id, name, avatar, role, mute_until, joined_ts.
MemberRecord read_member(const SqliteQuery& q) {
  MemberRecord m;
  m.room = q.str(0);
  m.user.id = q.str(1);
  m.user.name = q.str(2);
  m.user.avatar = q.str(3);
  if (!parse_role(q.str(4), &m.role)) m.role = Role::kMember;
  if (!q.is_null(5)) m.mute_until = q.i64(5);
  m.joined_ts = q.i64(6);
  return m;
}

// Columns: seq, ts, user id, name, avatar, text, data, edited_ts.
MessageRecord read_message(const SqliteQuery& q, const std::string& room) {
  MessageRecord m;
  m.room = room;
  m.seq = static_cast<uint64_t>(q.i64(0));
  m.ts = q.i64(1);
  m.from.id = q.str(2);
  m.from.name = q.str(3);
  m.from.avatar = q.str(4);
  m.text = q.str(5);
  m.data_json = q.str(6);
  m.edited_ts = q.is_null(7) ? 0 : q.i64(7);
  return m;
}

Status room_missing(std::string_view room) {
  return Status::not_found("no room '" + std::string(room) + "'");
}

// The room's row id and last_seq, read without the cache.
Result<std::pair<int64_t, uint64_t>> lookup_room(Conn& c, const std::string& room) {
  SqliteQuery q(c, "SELECT rid, last_seq FROM rooms WHERE id = ?1");
  q.bind(1, room);
  if (q.step()) return std::make_pair(q.i64(0), static_cast<uint64_t>(q.i64(1)));
  if (!q.status().ok()) return q.status();
  return room_missing(room);
}

// Deleted messages of a room after `seq` (by the partial index).
Result<uint64_t> deleted_after(Conn& c, int64_t rid, uint64_t seq) {
  SqliteQuery q(c, "SELECT count(*) FROM messages WHERE rid = ?1 AND seq > ?2 AND deleted = 1");
  q.bind(1, rid).bind(2, static_cast<int64_t>(seq));
  if (q.step()) return static_cast<uint64_t>(q.i64(0));
  return q.status().ok() ? Status::internal("count returned no row") : q.status();
}

// ---------------------------------------------------------------------------
// Writer-thread helpers (they use and fill the caches).

Result<int64_t> writer_rid(Conn& c, const std::string& room) {
  auto it = c.rids.find(room);
  if (it != c.rids.end()) return it->second;
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  c.rids.emplace(room, found->first);
  return found->first;
}

// The user's row id. With a name, the cache entry (name, avatar) is refreshed
// when it differs; without one, a missing user is added with an empty name.
Result<int64_t> writer_uid(Conn& c, const UserRecord& user) {
  if (user.id.empty()) return Status::invalid_argument("empty user id");
  auto it = c.users.find(user.id);
  if (it != c.users.end() &&
      (user.name.empty() || (it->second.name == user.name && it->second.avatar == user.avatar))) {
    return it->second.uid;
  }
  if (!user.name.empty()) {
    SqliteQuery q(
        c,
        "INSERT INTO users (id, name, avatar) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, avatar = excluded.avatar RETURNING uid");
    q.bind(1, user.id).bind(2, user.name).bind_or_null(3, user.avatar);
    if (!q.step()) return q.status().ok() ? Status::internal("user upsert returned no row") : q.status();
    int64_t uid = q.i64(0);
    c.users[user.id] = Conn::CachedUser{uid, user.name, user.avatar};
    return uid;
  }
  {
    SqliteQuery ins(c, "INSERT INTO users (id) VALUES (?1) ON CONFLICT (id) DO NOTHING");
    HUT_RETURN_IF_ERROR(ins.bind(1, user.id).run());
  }
  SqliteQuery q(c, "SELECT uid, name, avatar FROM users WHERE id = ?1");
  q.bind(1, user.id);
  if (!q.step()) return q.status().ok() ? Status::internal("user vanished") : q.status();
  int64_t uid = q.i64(0);
  c.users[user.id] = Conn::CachedUser{uid, q.str(1), q.str(2)};
  return uid;
}

// The row id of a user that must exist already (no insert).
Result<int64_t> existing_uid(Conn& c, const std::string& user) {
  auto it = c.users.find(user);
  if (it != c.users.end()) return it->second.uid;
  SqliteQuery q(c, "SELECT uid FROM users WHERE id = ?1");
  q.bind(1, user);
  if (q.step()) return q.i64(0);
  if (!q.status().ok()) return q.status();
  return Status::not_found("no user '" + user + "'");
}

Status upsert_member(Conn& c, int64_t rid, const MemberRecord& m) {
  auto uid = writer_uid(c, m.user);
  if (!uid.ok()) return uid.status();
  SqliteQuery q(
      c,
      "INSERT INTO members (rid, uid, role, mute_until, joined_ts) VALUES (?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT (rid, uid) DO UPDATE SET role = excluded.role, mute_until = excluded.mute_until, "
      "joined_ts = excluded.joined_ts");
  return q.bind(1, rid)
      .bind(2, *uid)
      .bind(3, role_name(m.role))
      .bind(4, m.mute_until)
      .bind(5, m.joined_ts)
      .run();
}

Result<int64_t> insert_room(Conn& c, const RoomRecord& room, const std::string& key) {
  if (room.id.empty()) return Status::invalid_argument("empty room id");
  {
    SqliteQuery q(c, "SELECT 1 FROM rooms WHERE id = ?1");
    q.bind(1, room.id);
    if (q.step()) return Status::already_exists("room '" + room.id + "' exists");
    HUT_RETURN_IF_ERROR(q.status());
  }
  SqliteQuery q(c,
                "INSERT INTO rooms (id, topic, private, created_ts, mute_all, dm_key, creator) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING rid");
  q.bind(1, room.id)
      .bind(2, room.topic)
      .bind(3, int64_t{room.is_private ? 1 : 0})
      .bind(4, room.created_ts ? room.created_ts : now_ms())
      .bind(5, int64_t{room.mute_all ? 1 : 0})
      .bind_or_null(6, key)
      .bind_or_null(7, room.creator);
  if (!q.step()) return q.status().ok() ? Status::internal("room insert returned no row") : q.status();
  int64_t rid = q.i64(0);
  c.rids[room.id] = rid;
  return rid;
}

// Removes a member, keeping their mute (or its absence) in `sanctions` so
// that leaving and joining again does not end it. false: not a member.
Result<bool> remove_keeping_mute(Conn& c, int64_t rid, const std::string& user) {
  auto uid = existing_uid(c, user);
  if (!uid.ok()) return uid.status().is_not_found() ? Result<bool>(false) : Result<bool>(uid.status());
  std::optional<int64_t> mute;
  {
    SqliteQuery q(c, "DELETE FROM members WHERE rid = ?1 AND uid = ?2 RETURNING mute_until");
    q.bind(1, rid).bind(2, *uid);
    if (!q.step()) {
      HUT_RETURN_IF_ERROR(q.status());
      return false;
    }
    if (!q.is_null(0)) mute = q.i64(0);
    while (q.step()) {
    }
    HUT_RETURN_IF_ERROR(q.status());
  }
  if (mute.has_value()) {
    SqliteQuery q(c,
                  "INSERT INTO sanctions (rid, user_id, mute_until) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (rid, user_id) DO UPDATE SET mute_until = excluded.mute_until");
    HUT_RETURN_IF_ERROR(q.bind(1, rid).bind(2, user).bind(3, mute).run());
  } else {
    SqliteQuery q(c, "UPDATE sanctions SET mute_until = NULL WHERE rid = ?1 AND user_id = ?2");
    HUT_RETURN_IF_ERROR(q.bind(1, rid).bind(2, user).run());
    SqliteQuery d(c, "DELETE FROM sanctions WHERE rid = ?1 AND user_id = ?2 AND banned = 0");
    HUT_RETURN_IF_ERROR(d.bind(1, rid).bind(2, user).run());
  }
  return true;
}

// The author check of edit and delete: the message must exist, not be
// deleted, and be `author`'s when that is not empty.
Status check_message(Conn& c, int64_t rid, const std::string& room, uint64_t seq, const std::string& author) {
  SqliteQuery q(c,
                "SELECT u.id, m.deleted FROM messages m JOIN users u ON u.uid = m.uid "
                "WHERE m.rid = ?1 AND m.seq = ?2");
  q.bind(1, rid).bind(2, static_cast<int64_t>(seq));
  if (!q.step()) {
    HUT_RETURN_IF_ERROR(q.status());
    return Status::not_found("no message " + std::to_string(seq) + " in room '" + room + "'");
  }
  if (q.i64(1) != 0)
    return Status::not_found("message " + std::to_string(seq) + " in room '" + room + "' is deleted");
  if (!author.empty() && q.str(0) != author) {
    return Status::permission_denied("message " + std::to_string(seq) + " is not by " + author);
  }
  return Status();
}

// ---------------------------------------------------------------------------
// Operations queued to a worker thread.

struct Unit {};

class Op {
 public:
  virtual ~Op() = default;
  virtual void run(Conn& c) = 0;    // on a worker thread
  virtual bool failed() const = 0;  // after run() or fail()
  virtual void fail(Status s) = 0;  // replaces the result
  virtual void finish() = 0;        // on the loop thread, once
};

template <typename T>
class FnOp final : public Op {
 public:
  FnOp(std::function<Result<T>(Conn&)> fn, std::function<void(Result<T>)> cb)
      : fn_(std::move(fn)), cb_(std::move(cb)) {}
  void run(Conn& c) override { result_ = fn_(c); }
  bool failed() const override { return !result_.ok(); }
  void fail(Status s) override { result_ = std::move(s); }
  void finish() override {
    if (cb_) cb_(std::move(result_));
  }

 private:
  std::function<Result<T>(Conn&)> fn_;
  std::function<void(Result<T>)> cb_;
  Result<T> result_{Status::internal("the store did not run this operation")};
};

// One worker thread with its queue and connection.
struct Worker {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Op>> queue;  // guarded by mu
  bool stop = false;                      // guarded by mu
  std::unique_ptr<Conn> conn;             // used by the thread only
  std::thread thread;
};

// Stores a resume credential's hash and drops the user's expired ones and
// all but the newest kResumePerUser.
constexpr int64_t kResumePerUser = 32;
Status insert_resume(Conn& c, const std::string& hash, const UserRecord& user, int64_t expires_ts) {
  {
    SqliteQuery q(c,
                  "INSERT INTO resume (hash, user_id, name, avatar, expires_ts) VALUES (?1, ?2, ?3, ?4, ?5)");
    HUT_RETURN_IF_ERROR(q.bind(1, hash)
                            .bind(2, user.id)
                            .bind(3, user.name)
                            .bind_or_null(4, user.avatar)
                            .bind(5, expires_ts)
                            .run());
  }
  SqliteQuery q(
      c,
      "DELETE FROM resume WHERE user_id = ?1 AND (expires_ts <= ?2 OR hash IN (SELECT hash FROM resume "
      "WHERE user_id = ?1 ORDER BY expires_ts DESC LIMIT -1 OFFSET ?3))");
  return q.bind(1, user.id).bind(2, now_ms()).bind(3, kResumePerUser).run();
}

// ---------------------------------------------------------------------------

// Owns the writer, reader and checkpoint threads, their connections and a
// uv_async_t that brings finished operations back to the loop thread. Methods
// of Store run on the loop thread; the threads touch only their Worker, the
// completion list and the counters.
class SqliteStore final : public Store {
 public:
  SqliteStore(uv_loop_t* loop, std::string path, const StoreOptions& options)
      : loop_(loop), path_(std::move(path)), options_(options) {}

  ~SqliteStore() override {
    if (!threads_joined_) stop_and_join();
    if (async_ != nullptr) {
      // The handle outlives the store until the loop runs its close callback.
      async_->data = nullptr;
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(async_))) {
        uv_close(reinterpret_cast<uv_handle_t*>(async_), on_async_closed);
      }
    }
  }

  Status start(std::unique_ptr<Conn> writer, std::unique_ptr<Conn> reader, std::unique_ptr<Conn> checkpointer,
               std::unique_ptr<Conn> loop_reader) {
    loop_reader_ = std::move(loop_reader);
    async_ = new uv_async_t;
    int rc = uv_async_init(loop_, async_, [](uv_async_t* h) {
      if (h->data) static_cast<SqliteStore*>(h->data)->on_async();
    });
    if (rc != 0) {
      delete async_;
      async_ = nullptr;
      return Status::internal(std::string("uv_async_init: ") + uv_strerror(rc));
    }
    async_->data = this;
    writer_.conn = std::move(writer);
    reader_.conn = std::move(reader);
    writer_.thread = std::thread([this] { writer_main(); });
    reader_.thread = std::thread([this] { reader_main(); });
    checkpointer_.conn = std::move(checkpointer);
    checkpointer_.thread = std::thread([this] { checkpointer_main(); });
    return Status();
  }

  Result<StoreState> load_state() override {
    auto conn = Conn::connect(path_, Conn::Mode::kRead, options_.busy_timeout_ms);
    if (!conn.ok()) return conn.status();
    Conn& c = **conn;
    HUT_RETURN_IF_ERROR(c.exec("BEGIN"));
    StoreState state;
    {
      SqliteQuery q(
          c,
          "SELECT id, topic, private, created_ts, last_seq, mute_all, dm_key, creator FROM rooms ORDER "
          "BY id");
      while (q.step()) {
        state.rooms.push_back(read_room(q));
        state.rooms.back().creator = q.str(7);
      }
      HUT_RETURN_IF_ERROR(q.status());
    }
    {
      SqliteQuery q(
          c,
          "SELECT r.id, s.user_id, s.mute_until, s.banned FROM sanctions s JOIN rooms r ON r.rid = s.rid "
          "ORDER BY r.id, s.user_id");
      while (q.step()) {
        SanctionRecord sr;
        sr.room = q.str(0);
        sr.user = q.str(1);
        if (!q.is_null(2)) sr.mute_until = q.i64(2);
        sr.banned = q.i64(3) != 0;
        state.sanctions.push_back(std::move(sr));
      }
      HUT_RETURN_IF_ERROR(q.status());
    }
    {
      SqliteQuery q(c, "SELECT id, name, avatar FROM users ORDER BY id");
      while (q.step()) state.users.push_back(UserRecord{q.str(0), q.str(1), q.str(2)});
      HUT_RETURN_IF_ERROR(q.status());
    }
    {
      SqliteQuery q(
          c,
          "SELECT r.id, u.id, u.name, u.avatar, m.role, m.mute_until, m.joined_ts FROM members m "
          "JOIN rooms r ON r.rid = m.rid JOIN users u ON u.uid = m.uid ORDER BY r.id, m.joined_ts, u.id");
      while (q.step()) state.members.push_back(read_member(q));
      HUT_RETURN_IF_ERROR(q.status());
    }
    {
      SqliteQuery q(c,
                    "SELECT r.id, u.id, k.seq FROM read_markers k JOIN rooms r ON r.rid = k.rid "
                    "JOIN users u ON u.uid = k.uid ORDER BY r.id, u.id");
      while (q.step()) {
        state.read_markers.push_back(ReadMarker{q.str(0), q.str(1), static_cast<uint64_t>(q.i64(2))});
      }
      HUT_RETURN_IF_ERROR(q.status());
    }
    {
      // The partial index messages_deleted holds exactly these rows.
      SqliteQuery q(c,
                    "SELECT r.id, m.seq FROM messages m JOIN rooms r ON r.rid = m.rid WHERE m.deleted = 1 "
                    "ORDER BY r.id, m.seq");
      while (q.step()) state.deleted.push_back(MessageRef{q.str(0), static_cast<uint64_t>(q.i64(1))});
      HUT_RETURN_IF_ERROR(q.status());
    }
    HUT_RETURN_IF_ERROR(c.exec("COMMIT"));
    return state;
  }

  // --- Writes ---

  void put_user(UserRecord user, DoneCallback done) override {
    write<Unit>(
        [user = std::move(user)](Conn& c) -> Result<Unit> {
          if (user.name.empty()) return Status::invalid_argument("a user needs a name");
          auto uid = writer_uid(c, user);
          if (!uid.ok()) return uid.status();
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void create_room(RoomRecord room, std::vector<MemberRecord> members, DoneCallback done) override {
    write<Unit>(
        [room = std::move(room), members = std::move(members)](Conn& c) -> Result<Unit> {
          auto rid = insert_room(c, room, "");
          if (!rid.ok()) return rid.status();
          for (const auto& m : members) HUT_RETURN_IF_ERROR(upsert_member(c, *rid, m));
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void delete_room(std::string room, DoneCallback done) override {
    write<Unit>(
        [room = std::move(room)](Conn& c) -> Result<Unit> {
          auto rid = writer_rid(c, room);
          if (!rid.ok()) return rid.status();
          SqliteQuery q(c, "DELETE FROM rooms WHERE rid = ?1");
          HUT_RETURN_IF_ERROR(q.bind(1, *rid).run());
          c.rids.erase(room);
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void open_dm(UserRecord a, UserRecord b, std::string new_room_id, int64_t ts,
               Callback<DmResult> done) override {
    write<DmResult>(
        [a = std::move(a), b = std::move(b), id = std::move(new_room_id), ts](Conn& c) -> Result<DmResult> {
          std::string key = dm_key(a.id, b.id);
          {
            SqliteQuery q(c,
                          "SELECT id, topic, private, created_ts, last_seq, mute_all, dm_key FROM rooms "
                          "WHERE dm_key = ?1");
            q.bind(1, key);
            if (q.step()) return DmResult{read_room(q), false};
            HUT_RETURN_IF_ERROR(q.status());
          }
          RoomRecord room;
          room.id = id;
          room.is_private = true;
          room.created_ts = ts ? ts : now_ms();
          room.dm_key = key;
          auto rid = insert_room(c, room, key);
          if (!rid.ok()) return rid.status();
          for (const UserRecord* u : {&a, &b}) {
            MemberRecord m;
            m.user = *u;
            m.joined_ts = room.created_ts;
            HUT_RETURN_IF_ERROR(upsert_member(c, *rid, m));
          }
          return DmResult{std::move(room), true};
        },
        std::move(done));
  }

  void set_topic(std::string room, std::string topic, DoneCallback done) override {
    write<Unit>(
        [room = std::move(room), topic = std::move(topic)](Conn& c) -> Result<Unit> {
          SqliteQuery q(c, "UPDATE rooms SET topic = ?2 WHERE id = ?1");
          HUT_RETURN_IF_ERROR(q.bind(1, room).bind(2, topic).run());
          if (c.changes() == 0) return room_missing(room);
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void set_mute_all(std::string room, bool on, DoneCallback done) override {
    write<Unit>(
        [room = std::move(room), on](Conn& c) -> Result<Unit> {
          SqliteQuery q(c, "UPDATE rooms SET mute_all = ?2 WHERE id = ?1");
          HUT_RETURN_IF_ERROR(q.bind(1, room).bind(2, int64_t{on ? 1 : 0}).run());
          if (c.changes() == 0) return room_missing(room);
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void put_member(MemberRecord member, DoneCallback done) override {
    write<Unit>(
        [member = std::move(member)](Conn& c) -> Result<Unit> {
          auto rid = writer_rid(c, member.room);
          if (!rid.ok()) return rid.status();
          HUT_RETURN_IF_ERROR(upsert_member(c, *rid, member));
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void remove_member(std::string room, std::string user, DoneCallback done) override {
    write<Unit>(
        [room = std::move(room), user = std::move(user)](Conn& c) -> Result<Unit> {
          auto rid = writer_rid(c, room);
          if (!rid.ok()) return rid.status();
          auto removed = remove_keeping_mute(c, *rid, user);
          if (!removed.ok()) return removed.status();
          if (!*removed) return Status::not_found("'" + user + "' is not a member of room '" + room + "'");
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void set_ban(std::string room, std::string user, bool banned, DoneCallback done) override {
    write<Unit>(
        [room = std::move(room), user = std::move(user), banned](Conn& c) -> Result<Unit> {
          if (user.empty()) return Status::invalid_argument("empty user id");
          auto rid = writer_rid(c, room);
          if (!rid.ok()) return rid.status();
          if (banned) {
            auto removed = remove_keeping_mute(c, *rid, user);
            if (!removed.ok()) return removed.status();
            SqliteQuery q(c,
                          "INSERT INTO sanctions (rid, user_id, banned) VALUES (?1, ?2, 1) "
                          "ON CONFLICT (rid, user_id) DO UPDATE SET banned = 1");
            HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, user).run());
            return Unit{};
          }
          {
            SqliteQuery q(c,
                          "UPDATE sanctions SET banned = 0 WHERE rid = ?1 AND user_id = ?2 AND banned = 1");
            HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, user).run());
            if (c.changes() == 0)
              return Status::not_found("'" + user + "' is not banned from room '" + room + "'");
          }
          SqliteQuery q(c, "DELETE FROM sanctions WHERE rid = ?1 AND user_id = ?2 AND mute_until IS NULL");
          HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, user).run());
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void set_role(std::string room, std::string user, Role role, DoneCallback done) override {
    member_update(
        std::move(room), std::move(user), "UPDATE members SET role = ?3 WHERE rid = ?1 AND uid = ?2",
        [role](SqliteQuery& q) { q.bind(3, role_name(role)); }, std::move(done));
  }

  void set_mute(std::string room, std::string user, std::optional<int64_t> until,
                DoneCallback done) override {
    member_update(
        std::move(room), std::move(user), "UPDATE members SET mute_until = ?3 WHERE rid = ?1 AND uid = ?2",
        [until](SqliteQuery& q) { q.bind(3, until); }, std::move(done));
  }

  void post(PostRequest request, Callback<PostResult> done) override {
    write<PostResult>(
        [req = std::move(request)](Conn& c) -> Result<PostResult> {
          auto rid = writer_rid(c, req.room);
          if (!rid.ok()) return rid.status();
          auto uid = writer_uid(c, req.from);
          if (!uid.ok()) return uid.status();
          PostResult out;
          out.ts = req.ts ? req.ts : now_ms();
          {
            SqliteQuery q(c, "UPDATE rooms SET last_seq = last_seq + 1 WHERE rid = ?1 RETURNING last_seq");
            q.bind(1, *rid);
            if (!q.step()) return q.status().ok() ? room_missing(req.room) : q.status();
            out.seq = static_cast<uint64_t>(q.i64(0));
          }
          {
            SqliteQuery q(
                c, "INSERT INTO messages (rid, seq, ts, uid, text, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
            q.bind(1, *rid)
                .bind(2, static_cast<int64_t>(out.seq))
                .bind(3, out.ts)
                .bind(4, *uid)
                .bind(5, req.text)
                .bind_or_null(6, req.data_json);
            HUT_RETURN_IF_ERROR(q.run());
          }
          {
            SqliteQuery q(c,
                          "INSERT INTO read_markers (rid, uid, seq) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT (rid, uid) DO UPDATE SET seq = MAX(seq, excluded.seq)");
            HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, *uid).bind(3, static_cast<int64_t>(out.seq)).run());
          }
          return out;
        },
        std::move(done));
  }

  void edit(std::string room, uint64_t seq, std::string text, int64_t edited_ts, std::string author,
            Callback<int64_t> done) override {
    write<int64_t>(
        [room = std::move(room), seq, text = std::move(text), edited_ts,
         author = std::move(author)](Conn& c) -> Result<int64_t> {
          auto rid = writer_rid(c, room);
          if (!rid.ok()) return rid.status();
          HUT_RETURN_IF_ERROR(check_message(c, *rid, room, seq, author));
          int64_t when = edited_ts ? edited_ts : now_ms();
          SqliteQuery q(c, "UPDATE messages SET text = ?3, edited_ts = ?4 WHERE rid = ?1 AND seq = ?2");
          HUT_RETURN_IF_ERROR(
              q.bind(1, *rid).bind(2, static_cast<int64_t>(seq)).bind(3, text).bind(4, when).run());
          return when;
        },
        std::move(done));
  }

  void delete_message(std::string room, uint64_t seq, std::string author, DoneCallback done) override {
    write<Unit>(
        [room = std::move(room), seq, author = std::move(author)](Conn& c) -> Result<Unit> {
          auto rid = writer_rid(c, room);
          if (!rid.ok()) return rid.status();
          HUT_RETURN_IF_ERROR(check_message(c, *rid, room, seq, author));
          SqliteQuery q(c,
                        "UPDATE messages SET deleted = 1, text = '', data = NULL, edited_ts = NULL "
                        "WHERE rid = ?1 AND seq = ?2");
          HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, static_cast<int64_t>(seq)).run());
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void mark_read(std::string room, std::string user, uint64_t seq, Callback<uint64_t> done) override {
    write<uint64_t>(
        [room = std::move(room), user = std::move(user), seq](Conn& c) -> Result<uint64_t> {
          auto found = lookup_room(c, room);
          if (!found.ok()) return found.status();
          auto [rid, last_seq] = *found;
          auto uid = writer_uid(c, UserRecord{user, "", ""});
          if (!uid.ok()) return uid.status();
          SqliteQuery q(c,
                        "INSERT INTO read_markers (rid, uid, seq) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (rid, uid) DO UPDATE SET seq = MAX(seq, excluded.seq) RETURNING seq");
          q.bind(1, rid).bind(2, *uid).bind(3, static_cast<int64_t>(std::min(seq, last_seq)));
          if (!q.step())
            return q.status().ok() ? Status::internal("marker upsert returned no row") : q.status();
          uint64_t marker = static_cast<uint64_t>(q.i64(0));
          auto deleted = deleted_after(c, rid, marker);
          if (!deleted.ok()) return deleted.status();
          return last_seq - marker - *deleted;
        },
        std::move(done));
  }

  void kv_put(std::string plugin, std::string key, std::string value, DoneCallback done) override {
    write<Unit>(
        [plugin = std::move(plugin), key = std::move(key),
         value = std::move(value)](Conn& c) -> Result<Unit> {
          SqliteQuery q(c,
                        "INSERT INTO plugin_kv (plugin, key, value) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value");
          HUT_RETURN_IF_ERROR(q.bind(1, plugin).bind(2, key).bind_blob(3, value).run());
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void kv_delete(std::string plugin, std::string key, DoneCallback done) override {
    write<Unit>(
        [plugin = std::move(plugin), key = std::move(key)](Conn& c) -> Result<Unit> {
          SqliteQuery q(c, "DELETE FROM plugin_kv WHERE plugin = ?1 AND key = ?2");
          HUT_RETURN_IF_ERROR(q.bind(1, plugin).bind(2, key).run());
          if (c.changes() == 0) return Status::not_found("plugin " + plugin + " holds no key '" + key + "'");
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void put_resume(std::string hash, UserRecord user, int64_t expires_ts, DoneCallback done) override {
    write<Unit>(
        [hash = std::move(hash), user = std::move(user), expires_ts](Conn& c) -> Result<Unit> {
          HUT_RETURN_IF_ERROR(insert_resume(c, hash, user, expires_ts));
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  void redeem_resume(std::string hash, int64_t now, std::string new_hash, int64_t new_expires_ts,
                     Callback<UserRecord> done) override {
    write<UserRecord>(
        [hash = std::move(hash), now, new_hash = std::move(new_hash),
         new_expires_ts](Conn& c) -> Result<UserRecord> {
          UserRecord user;
          int64_t expires = 0;
          {
            SqliteQuery q(c,
                          "DELETE FROM resume WHERE hash = ?1 RETURNING user_id, name, avatar, expires_ts");
            q.bind(1, hash);
            if (!q.step()) {
              HUT_RETURN_IF_ERROR(q.status());
              return Status::not_found("unknown or used resume credential");
            }
            user.id = q.str(0);
            user.name = q.str(1);
            user.avatar = q.str(2);
            expires = q.i64(3);
            while (q.step()) {
            }
            HUT_RETURN_IF_ERROR(q.status());
          }
          if (expires <= now) return Status::not_found("expired resume credential");
          HUT_RETURN_IF_ERROR(insert_resume(c, new_hash, user, new_expires_ts));
          return user;
        },
        std::move(done));
  }

  // --- Reads ---

  void history(std::string room, uint64_t before_seq, int limit, Callback<HistoryPage> done) override {
    static constexpr uint64_t kNewest = std::numeric_limits<int64_t>::max();
    if (limit < 1 || limit > 200) {
      reject<HistoryPage>(Status::invalid_argument("history limit must be 1..200"), std::move(done));
      return;
    }
    read<HistoryPage>(
        [room = std::move(room), before_seq, limit](Conn& c) -> Result<HistoryPage> {
          auto found = lookup_room(c, room);
          if (!found.ok()) return found.status();
          HistoryPage page;
          SqliteQuery q(c,
                        "SELECT m.seq, m.ts, u.id, u.name, u.avatar, m.text, m.data, m.edited_ts "
                        "FROM messages m JOIN users u ON u.uid = m.uid "
                        "WHERE m.rid = ?1 AND m.seq < ?2 AND m.deleted = 0 ORDER BY m.seq DESC LIMIT ?3");
          q.bind(1, found->first)
              .bind(2, static_cast<int64_t>(before_seq == 0 ? kNewest : std::min(before_seq, kNewest)))
              .bind(3, int64_t{limit} + 1);
          while (q.step()) {
            if (static_cast<int>(page.messages.size()) == limit) {
              page.more = true;
              break;
            }
            page.messages.push_back(read_message(q, room));
          }
          HUT_RETURN_IF_ERROR(q.status());
          std::reverse(page.messages.begin(), page.messages.end());
          return page;
        },
        std::move(done));
  }

  void history_after(std::string room, uint64_t after_seq, int limit, Callback<HistoryPage> done) override {
    if (limit < 1 || limit > 200) {
      reject<HistoryPage>(Status::invalid_argument("history limit must be 1..200"), std::move(done));
      return;
    }
    read<HistoryPage>(
        [room = std::move(room), after_seq, limit](Conn& c) -> Result<HistoryPage> {
          auto found = lookup_room(c, room);
          if (!found.ok()) return found.status();
          HistoryPage page;
          SqliteQuery q(c,
                        "SELECT m.seq, m.ts, u.id, u.name, u.avatar, m.text, m.data, m.edited_ts "
                        "FROM messages m JOIN users u ON u.uid = m.uid "
                        "WHERE m.rid = ?1 AND m.seq > ?2 AND m.deleted = 0 ORDER BY m.seq ASC LIMIT ?3");
          q.bind(1, found->first)
              .bind(2,
                    static_cast<int64_t>(std::min<uint64_t>(after_seq, std::numeric_limits<int64_t>::max())))
              .bind(3, int64_t{limit} + 1);
          while (q.step()) {
            if (static_cast<int>(page.messages.size()) == limit) {
              page.more = true;
              break;
            }
            page.messages.push_back(read_message(q, room));
          }
          HUT_RETURN_IF_ERROR(q.status());
          return page;
        },
        std::move(done));
  }

  void get_message(std::string room, uint64_t seq, Callback<MessageRecord> done) override {
    read<MessageRecord>(
        [room = std::move(room), seq](Conn& c) -> Result<MessageRecord> {
          auto found = lookup_room(c, room);
          if (!found.ok()) return found.status();
          SqliteQuery q(c,
                        "SELECT m.seq, m.ts, u.id, u.name, u.avatar, m.text, m.data, m.edited_ts "
                        "FROM messages m JOIN users u ON u.uid = m.uid "
                        "WHERE m.rid = ?1 AND m.seq = ?2 AND m.deleted = 0");
          q.bind(1, found->first).bind(2, static_cast<int64_t>(seq));
          if (q.step()) return read_message(q, room);
          HUT_RETURN_IF_ERROR(q.status());
          return Status::not_found("no message " + std::to_string(seq) + " in room '" + room + "'");
        },
        std::move(done));
  }

  void list_rooms(Callback<std::vector<RoomRecord>> done) override {
    read<std::vector<RoomRecord>>(
        [](Conn& c) -> Result<std::vector<RoomRecord>> {
          std::vector<RoomRecord> rooms;
          SqliteQuery q(
              c, "SELECT id, topic, private, created_ts, last_seq, mute_all, dm_key FROM rooms ORDER BY id");
          while (q.step()) rooms.push_back(read_room(q));
          HUT_RETURN_IF_ERROR(q.status());
          return rooms;
        },
        std::move(done));
  }

  void get_room(std::string room, Callback<RoomRecord> done) override {
    read<RoomRecord>(
        [room = std::move(room)](Conn& c) -> Result<RoomRecord> {
          SqliteQuery q(
              c,
              "SELECT id, topic, private, created_ts, last_seq, mute_all, dm_key FROM rooms WHERE id = ?1");
          q.bind(1, room);
          if (q.step()) return read_room(q);
          HUT_RETURN_IF_ERROR(q.status());
          return room_missing(room);
        },
        std::move(done));
  }

  void members(std::string room, Callback<std::vector<MemberRecord>> done) override {
    read<std::vector<MemberRecord>>(
        [room = std::move(room)](Conn& c) -> Result<std::vector<MemberRecord>> {
          auto found = lookup_room(c, room);
          if (!found.ok()) return found.status();
          std::vector<MemberRecord> out;
          SqliteQuery q(c,
                        "SELECT ?2, u.id, u.name, u.avatar, m.role, m.mute_until, m.joined_ts FROM members m "
                        "JOIN users u ON u.uid = m.uid WHERE m.rid = ?1 ORDER BY m.joined_ts, u.id");
          q.bind(1, found->first).bind(2, room);
          while (q.step()) out.push_back(read_member(q));
          HUT_RETURN_IF_ERROR(q.status());
          return out;
        },
        std::move(done));
  }

  void unread(std::string room, std::string user, Callback<uint64_t> done) override {
    read<uint64_t>(
        [room = std::move(room), user = std::move(user)](Conn& c) -> Result<uint64_t> {
          auto found = lookup_room(c, room);
          if (!found.ok()) return found.status();
          auto [rid, last_seq] = *found;
          uint64_t marker = 0;
          {
            SqliteQuery q(c,
                          "SELECT k.seq FROM read_markers k JOIN users u ON u.uid = k.uid "
                          "WHERE k.rid = ?1 AND u.id = ?2");
            q.bind(1, rid).bind(2, user);
            if (q.step()) marker = static_cast<uint64_t>(q.i64(0));
            HUT_RETURN_IF_ERROR(q.status());
          }
          auto deleted = deleted_after(c, rid, marker);
          if (!deleted.ok()) return deleted.status();
          return last_seq - marker - *deleted;
        },
        std::move(done));
  }

  void unread_counts(std::string user, Callback<std::vector<RoomUnread>> done) override {
    read<std::vector<RoomUnread>>(
        [user = std::move(user)](Conn& c) -> Result<std::vector<RoomUnread>> {
          std::vector<RoomUnread> out;
          SqliteQuery q(c,
                        "SELECT r.id, r.last_seq - COALESCE(k.seq, 0) - "
                        "(SELECT count(*) FROM messages d WHERE d.rid = r.rid AND d.seq > COALESCE(k.seq, 0) "
                        "AND d.deleted = 1) "
                        "FROM users u JOIN members m ON m.uid = u.uid JOIN rooms r ON r.rid = m.rid "
                        "LEFT JOIN read_markers k ON k.rid = m.rid AND k.uid = m.uid "
                        "WHERE u.id = ?1 ORDER BY r.id");
          q.bind(1, user);
          while (q.step()) out.push_back(RoomUnread{q.str(0), static_cast<uint64_t>(q.i64(1))});
          HUT_RETURN_IF_ERROR(q.status());
          return out;
        },
        std::move(done));
  }

  void kv_get(std::string plugin, std::string key, Callback<std::string> done) override {
    read<std::string>(
        [plugin = std::move(plugin), key = std::move(key)](Conn& c) -> Result<std::string> {
          SqliteQuery q(c, "SELECT value FROM plugin_kv WHERE plugin = ?1 AND key = ?2");
          q.bind(1, plugin).bind(2, key);
          if (q.step()) return q.blob(0);
          HUT_RETURN_IF_ERROR(q.status());
          return Status::not_found("plugin " + plugin + " holds no key '" + key + "'");
        },
        std::move(done));
  }

  // --- For the plugin runtime ---

  Status kv_get_now(std::string_view plugin, std::string_view key, std::string* value) override {
    if (closing_ || loop_reader_ == nullptr) return Status::failed_precondition("the store is closed");
    // Two statements: a presence test does not read the value. The SqliteQuery's
    // reset ends the read transaction, so the next call sees newer commits.
    SqliteQuery q(*loop_reader_, value != nullptr
                                     ? "SELECT value FROM plugin_kv WHERE plugin = ?1 AND key = ?2"
                                     : "SELECT 1 FROM plugin_kv WHERE plugin = ?1 AND key = ?2");
    q.bind(1, plugin).bind(2, key);
    if (q.step()) {
      if (value != nullptr) *value = q.blob(0);
      return Status();
    }
    HUT_RETURN_IF_ERROR(q.status());
    return Status::not_found("plugin " + std::string(plugin) + " holds no key '" + std::string(key) + "'");
  }

  Result<uint64_t> import_plugin_kv(const std::string& file) override {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) return Status::not_found("no file " + file);
    auto conn = Conn::connect(path_, Conn::Mode::kDurableWrite, options_.busy_timeout_ms);
    if (!conn.ok()) return conn.status();
    Conn& c = **conn;
    {
      // Opened read-write, so that SQLite folds a WAL left by a crash into
      // the file before it is read.
      SqliteQuery q(c, "ATTACH DATABASE ?1 AS old");
      HUT_RETURN_IF_ERROR(with_context(q.bind(1, file).run(), "cannot open " + file + ": "));
    }
    {
      SqliteQuery q(c, "SELECT count(*) FROM old.sqlite_schema WHERE type = 'table' AND name = 'plugin_kv'");
      if (!q.step()) return with_context(q.status(), "cannot read " + file + ": ");
      if (q.i64(0) == 0) return uint64_t{0};  // an older version that never stored a value
    }
    HUT_RETURN_IF_ERROR(c.exec("BEGIN IMMEDIATE"));
    Status s;
    uint64_t added = 0;
    {
      SqliteQuery q(c,
                    "INSERT INTO main.plugin_kv (plugin, key, value) "
                    "SELECT plugin, key, value FROM old.plugin_kv WHERE true "
                    "ON CONFLICT (plugin, key) DO NOTHING");
      s = q.run();
      if (s.ok()) added = static_cast<uint64_t>(c.changes());
    }
    if (s.ok()) s = c.exec("COMMIT");
    if (!s.ok()) {
      if (!sqlite3_get_autocommit(c.db())) (void)c.exec("ROLLBACK");
      return with_context(s, "cannot import " + file + ": ");
    }
    return added;
  }

  // --- Life ---

  void close(std::function<void()> done) override {
    if (closing_ && async_ == nullptr) {
      if (done) done();  // closed already
      return;
    }
    if (closing_) {
      // A second close: its callback runs after the first one's.
      auto first = std::move(close_cb_);
      close_cb_ = [first = std::move(first), done = std::move(done)] {
        if (first) first();
        if (done) done();
      };
      return;
    }
    closing_ = true;
    close_cb_ = std::move(done);
    for (Worker* w : {&writer_, &reader_}) {
      std::lock_guard lock(w->mu);
      w->stop = true;
      w->cv.notify_all();
    }
  }

  const Histogram* commit_seconds() const override { return &commit_seconds_; }
  StoreStats stats() const override {
    StoreStats s;
    s.commits = commits_.load();
    s.writes = writes_.load();
    s.failed_commits = failed_commits_.load();
    s.largest_batch = largest_batch_.load();
    s.slowest_commit_us = slowest_commit_us_.load();
    s.slowest_writer_checkpoint_us = slowest_writer_checkpoint_us_.load();
    s.pending_writes = pending_writes_.load();
    return s;
  }

 private:
  static std::function<void(Result<Unit>)> done_cb(DoneCallback done) {
    if (!done) return nullptr;
    return [done = std::move(done)](Result<Unit> r) { done(r.status()); };
  }

  template <typename T>
  void write(std::function<Result<T>(Conn&)> fn, std::function<void(Result<T>)> cb) {
    auto op = std::make_unique<FnOp<T>>(std::move(fn), std::move(cb));
    if (closing_) {
      reject(std::move(op));
      return;
    }
    pending_writes_.fetch_add(1);
    std::lock_guard lock(writer_.mu);
    writer_.queue.push_back(std::move(op));
    writer_.cv.notify_one();
  }

  template <typename T>
  void read(std::function<Result<T>(Conn&)> fn, std::function<void(Result<T>)> cb) {
    auto op = std::make_unique<FnOp<T>>(std::move(fn), std::move(cb));
    if (closing_) {
      reject(std::move(op));
      return;
    }
    std::lock_guard lock(reader_.mu);
    reader_.queue.push_back(std::move(op));
    reader_.cv.notify_one();
  }

  // A write to one member row: `sql` has ?1 = room row id, ?2 = user row id
  // and whatever `bind` adds; no row changed means the user is no member.
  template <typename Bind>
  void member_update(std::string room, std::string user, const char* sql, Bind bind, DoneCallback done) {
    write<Unit>(
        [room = std::move(room), user = std::move(user), sql, bind](Conn& c) -> Result<Unit> {
          auto rid = writer_rid(c, room);
          if (!rid.ok()) return rid.status();
          Status not_member = Status::not_found("'" + user + "' is not a member of room '" + room + "'");
          auto uid = existing_uid(c, user);
          if (!uid.ok()) return uid.status().is_not_found() ? not_member : uid.status();
          SqliteQuery q(c, sql);
          q.bind(1, *rid).bind(2, *uid);
          bind(q);
          HUT_RETURN_IF_ERROR(q.run());
          if (c.changes() == 0) return not_member;
          return Unit{};
        },
        done_cb(std::move(done)));
  }

  template <typename T>
  void reject(Status status, std::function<void(Result<T>)> cb) {
    auto op = std::make_unique<FnOp<T>>(nullptr, std::move(cb));
    op->fail(std::move(status));
    complete_later(std::move(op));
  }

  void reject(std::unique_ptr<Op> op) {
    op->fail(Status::failed_precondition("the store is closed"));
    complete_later(std::move(op));
  }

  // Runs op->finish() on the loop thread, from the loop; directly once the
  // store is closed (there is no handle left to wake the loop).
  void complete_later(std::unique_ptr<Op> op) {
    if (closed_) {
      op->finish();
      return;
    }
    {
      std::lock_guard lock(done_mu_);
      done_.push_back(std::move(op));
    }
    uv_async_send(async_);
  }

  // Worker threads hand finished operations to the loop thread here.
  void hand_back(std::vector<std::unique_ptr<Op>>& ops, bool writes) {
    {
      std::lock_guard lock(done_mu_);
      for (auto& op : ops) done_.push_back(std::move(op));
      if (writes) done_writes_ += ops.size();
    }
    ops.clear();
    uv_async_send(async_);
  }

  Histogram commit_seconds_;

  void writer_main() {
    Conn& c = *writer_.conn;
    std::vector<std::unique_ptr<Op>> batch;
    for (;;) {
      {
        std::unique_lock lock(writer_.mu);
        writer_.cv.wait(lock, [&] { return writer_.stop || !writer_.queue.empty(); });
        if (writer_.queue.empty()) break;
        while (!writer_.queue.empty() && batch.size() < options_.max_batch) {
          batch.push_back(std::move(writer_.queue.front()));
          writer_.queue.pop_front();
        }
      }
      uint64_t start = uv_hrtime();
      run_batch(c, batch);
      uint64_t took = uv_hrtime() - start;
      raise_to(slowest_commit_us_, took / 1000);
      commit_seconds_.observe_ns(took);
      hand_back(batch, true);
      if (c.wal_frames >= kInlineCheckpointFrames) {
        // PASSIVE: copies what no reader still needs, never waits for one.
        start = uv_hrtime();
        sqlite3_wal_checkpoint_v2(c.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        raise_to(slowest_writer_checkpoint_us_, (uv_hrtime() - start) / 1000);
        c.wal_frames = 0;
      } else if (c.wal_frames >= kCheckpointFrames) {
        std::lock_guard lock(checkpointer_.mu);
        checkpoint_wanted_ = true;
        checkpointer_.cv.notify_one();
      }
    }
    finish_thread(writer_exited_);
  }

  // Runs every write of the batch in one transaction, each inside a savepoint
  // so that one failing write leaves the others in.
  void run_batch(Conn& c, std::vector<std::unique_ptr<Op>>& batch) {
    Status s = SqliteQuery(c, "BEGIN IMMEDIATE").run();
    if (!s.ok()) {
      fail_batch(c, batch, s);
      return;
    }
    for (auto& op : batch) {
      s = SqliteQuery(c, "SAVEPOINT w").run();
      if (!s.ok()) break;
      op->run(c);
      if (sqlite3_get_autocommit(c.db())) {
        // SQLite rolled the whole transaction back (disk full, I/O error).
        s = Status::io_error(std::string("store: the transaction was rolled back: ") +
                             sqlite3_errmsg(c.db()));
        break;
      }
      if (op->failed()) {
        c.clear_caches();
        s = SqliteQuery(c, "ROLLBACK TO w").run();
        if (s.ok()) s = SqliteQuery(c, "RELEASE w").run();
      } else {
        s = SqliteQuery(c, "RELEASE w").run();
      }
      if (!s.ok()) break;
    }
    if (s.ok()) s = SqliteQuery(c, "COMMIT").run();
    if (!s.ok()) {
      fail_batch(c, batch, s);
      return;
    }
    commits_.fetch_add(1);
    writes_.fetch_add(batch.size());
    raise_to(largest_batch_, batch.size());
  }

  static void raise_to(std::atomic<uint64_t>& max, uint64_t value) {
    uint64_t prev = max.load();
    while (value > prev && !max.compare_exchange_weak(prev, value)) {
    }
  }

  void fail_batch(Conn& c, std::vector<std::unique_ptr<Op>>& batch, const Status& s) {
    if (!sqlite3_get_autocommit(c.db())) (void)c.exec("ROLLBACK");
    c.clear_caches();
    failed_commits_.fetch_add(1);
    log_printf(LogLevel::kError, "store", "a write transaction of %zu writes failed: %s", batch.size(),
               s.to_string().c_str());
    for (auto& op : batch) op->fail(s);
  }

  void reader_main() {
    Conn& c = *reader_.conn;
    std::vector<std::unique_ptr<Op>> done;
    for (;;) {
      std::unique_ptr<Op> op;
      {
        std::unique_lock lock(reader_.mu);
        reader_.cv.wait(lock, [&] { return reader_.stop || !reader_.queue.empty(); });
        if (reader_.queue.empty()) break;
        op = std::move(reader_.queue.front());
        reader_.queue.pop_front();
      }
      // One read transaction: the statements of one read see one snapshot.
      Status s = c.exec("BEGIN");
      if (s.ok()) {
        op->run(c);
        s = c.exec("COMMIT");
      }
      if (!s.ok()) {
        if (!sqlite3_get_autocommit(c.db())) (void)c.exec("ROLLBACK");
        op->fail(s);
      }
      done.push_back(std::move(op));
      hand_back(done, false);
    }
    finish_thread(reader_exited_);
  }

  // Copies the WAL into the database file whenever the writer asks, so that
  // neither a commit nor the acknowledgements after it wait for a checkpoint.
  void checkpointer_main() {
    Conn& c = *checkpointer_.conn;
    std::unique_lock lock(checkpointer_.mu);
    for (;;) {
      checkpointer_.cv.wait(lock, [&] { return checkpointer_.stop || checkpoint_wanted_; });
      if (checkpointer_.stop) break;
      checkpoint_wanted_ = false;
      lock.unlock();
      // PASSIVE: copies what no reader still needs, never waits for one.
      sqlite3_wal_checkpoint_v2(c.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      lock.lock();
      checkpointer_.cv.wait_for(lock, kCheckpointPause, [&] { return checkpointer_.stop; });
    }
  }

  void finish_thread(bool& exited) {
    {
      std::lock_guard lock(done_mu_);
      exited = true;
    }
    uv_async_send(async_);
  }

  // Loop thread: runs the callbacks of finished operations in order, and
  // finishes close() once both threads are done.
  void on_async() {
    for (;;) {
      std::deque<std::unique_ptr<Op>> ready;
      bool both_exited = false;
      size_t writes_done = 0;
      {
        std::lock_guard lock(done_mu_);
        ready.swap(done_);
        writes_done = done_writes_;
        done_writes_ = 0;
        both_exited = writer_exited_ && reader_exited_;
      }
      pending_writes_.fetch_sub(writes_done);
      for (auto& op : ready) op->finish();
      if (!ready.empty()) continue;  // callbacks may have queued more
      if (both_exited && closing_ && !closed_) {
        join_threads();
        closed_ = true;
        uv_close(reinterpret_cast<uv_handle_t*>(async_), on_async_closed);
      }
      return;
    }
  }

  // Frees the handle, then finishes close() unless the store is gone.
  static void on_async_closed(uv_handle_t* h) {
    auto* self = static_cast<SqliteStore*>(h->data);
    delete reinterpret_cast<uv_async_t*>(h);
    if (self == nullptr) return;
    self->async_ = nullptr;
    auto cb = std::move(self->close_cb_);
    if (cb) cb();
  }

  void stop_and_join() {
    for (Worker* w : {&writer_, &reader_}) {
      std::lock_guard lock(w->mu);
      w->stop = true;
      w->cv.notify_all();
    }
    join_threads();
  }

  void join_threads() {
    if (writer_.thread.joinable()) writer_.thread.join();
    if (reader_.thread.joinable()) reader_.thread.join();
    {
      std::lock_guard lock(checkpointer_.mu);
      checkpointer_.stop = true;
      checkpointer_.cv.notify_all();
    }
    if (checkpointer_.thread.joinable()) checkpointer_.thread.join();
    checkpointer_.conn.reset();
    writer_.conn.reset();
    reader_.conn.reset();
    loop_reader_.reset();
    threads_joined_ = true;
  }

  uv_loop_t* loop_;
  std::string path_;
  StoreOptions options_;
  uv_async_t* async_ = nullptr;  // owned; freed by its close callback

  Worker writer_;
  Worker reader_;
  Worker checkpointer_;  // its queue stays empty
  // kv_get_now()'s read-only connection; loop thread only.
  std::unique_ptr<Conn> loop_reader_;
  bool checkpoint_wanted_ = false;  // guarded by checkpointer_.mu

  std::mutex done_mu_;
  std::deque<std::unique_ptr<Op>> done_;  // guarded by done_mu_
  size_t done_writes_ = 0;                // guarded by done_mu_
  bool writer_exited_ = false;            // guarded by done_mu_
  bool reader_exited_ = false;            // guarded by done_mu_

  // Loop thread only.
  bool closing_ = false;
  bool closed_ = false;
  bool threads_joined_ = false;
  std::function<void()> close_cb_;

  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> failed_commits_{0};
  std::atomic<uint64_t> largest_batch_{0};
  std::atomic<uint64_t> slowest_commit_us_{0};
  std::atomic<uint64_t> slowest_writer_checkpoint_us_{0};
  std::atomic<uint64_t> pending_writes_{0};
};

}  // namespace

std::span<const SqliteMigration> sqlite_store_migrations() { return kMigrations; }

SqliteSchema sqlite_store_schema() { return SqliteSchema{kMigrations, kSqliteApplicationId, "store"}; }

Result<std::unique_ptr<Store>> open_sqlite_store(uv_loop_t* loop, const std::string& path,
                                                 const StoreOptions& options) {
  // Durable: WAL, so readers never wait for the writer, and every commit on
  // disk before the writes it holds are acknowledged.
  auto writer = Conn::connect(path, Conn::Mode::kDurableWrite, options.busy_timeout_ms);
  if (!writer.ok()) return writer.status();
  Conn& w = **writer;
  HUT_RETURN_IF_ERROR(w.exec("PRAGMA temp_store = MEMORY"));
  HUT_RETURN_IF_ERROR(w.exec("PRAGMA journal_size_limit = 67108864"));
  // The writer checkpoints by itself after it handed a batch back (see
  // writer_main), so that no acknowledgement waits for a checkpoint.
  sqlite3_wal_hook(w.db(), &Conn::on_wal_commit, &w);
  Status migrated = sqlite_migrate(w.db(), sqlite_store_schema());
  if (!migrated.ok()) return with_context(migrated, "store " + path + ": ");
  auto reader = Conn::connect(path, Conn::Mode::kRead, options.busy_timeout_ms);
  if (!reader.ok()) return reader.status();
  auto checkpointer = Conn::connect(path, Conn::Mode::kDurableWrite, options.busy_timeout_ms);
  if (!checkpointer.ok()) return checkpointer.status();
  // The loop thread's point reads must not wait long for a lock (WAL readers
  // wait only in rare moments, such as a recovery by another process).
  auto loop_reader = Conn::connect(path, Conn::Mode::kRead, kLoopReadBusyMs);
  if (!loop_reader.ok()) return loop_reader.status();
  auto store = std::make_unique<SqliteStore>(loop, path, options);
  HUT_RETURN_IF_ERROR(store->start(std::move(*writer), std::move(*reader), std::move(*checkpointer),
                                   std::move(*loop_reader)));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hut
