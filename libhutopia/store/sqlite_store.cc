// hut::Store on SQLite: ties the executor (sqlite_executor.cc) to the SQL of
// each operation (sqlite_sql.h) and opens the file (sqlite_db.cc) at the
// newest schema (sqlite_schema.cc, sqlite_migrate.cc).
#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <uv.h>

#include "store/sqlite_executor.h"
#include "store/sqlite_sql.h"

namespace hut {
namespace {

using sqlite::Conn;
using sqlite::Unit;

// How long kv_get_now() (on the loop thread) waits for a lock, in ms.
constexpr int kLoopReadBusyMs = 50;
// Most messages in one history page.
constexpr int kMaxHistoryPage = 200;

// Methods run on the loop thread; each queues its SQL to the executor.
class SqliteStore final : public Store {
 public:
  SqliteStore(uv_loop_t* loop, std::string path, const StoreOptions& options)
      : path_(std::move(path)), options_(options), executor_(loop, options.max_batch) {}

  Status start(std::unique_ptr<Conn> writer, std::unique_ptr<Conn> reader, std::unique_ptr<Conn> checkpointer,
               std::unique_ptr<Conn> loop_reader) {
    loop_reader_ = std::move(loop_reader);
    return executor_.start(std::move(writer), std::move(reader), std::move(checkpointer));
  }

  Result<StoreState> load_state() override {
    auto conn = Conn::connect(path_, Conn::Mode::kRead, options_.busy_timeout_ms);
    if (!conn.ok()) return conn.status();
    return sqlite::load_state(**conn);
  }

  // --- Writes ---

  void put_user(UserRecord user, DoneCallback done) override {
    write([user = std::move(user)](Conn& c) { return sqlite::put_user(c, user); }, std::move(done));
  }

  void create_room(RoomRecord room, std::vector<MemberRecord> members, DoneCallback done) override {
    write([room = std::move(room),
           members = std::move(members)](Conn& c) { return sqlite::create_room(c, room, members); },
          std::move(done));
  }

  void delete_room(std::string room, DoneCallback done) override {
    write([room = std::move(room)](Conn& c) { return sqlite::delete_room(c, room); }, std::move(done));
  }

  void open_dm(UserRecord a, UserRecord b, std::string new_room_id, int64_t ts,
               Callback<DmResult> done) override {
    executor_.write<DmResult>([a = std::move(a), b = std::move(b), id = std::move(new_room_id),
                               ts](Conn& c) { return sqlite::open_dm(c, a, b, id, ts); },
                              std::move(done));
  }

  void set_topic(std::string room, std::string topic, DoneCallback done) override {
    write([room = std::move(room),
           topic = std::move(topic)](Conn& c) { return sqlite::set_topic(c, room, topic); },
          std::move(done));
  }

  void set_mute_all(std::string room, bool on, DoneCallback done) override {
    write([room = std::move(room), on](Conn& c) { return sqlite::set_mute_all(c, room, on); },
          std::move(done));
  }

  void put_member(MemberRecord member, DoneCallback done) override {
    write([member = std::move(member)](Conn& c) { return sqlite::put_member(c, member); }, std::move(done));
  }

  void remove_member(std::string room, std::string user, DoneCallback done) override {
    write([room = std::move(room),
           user = std::move(user)](Conn& c) { return sqlite::remove_member(c, room, user); },
          std::move(done));
  }

  void set_ban(std::string room, std::string user, bool banned, DoneCallback done) override {
    write([room = std::move(room), user = std::move(user),
           banned](Conn& c) { return sqlite::set_ban(c, room, user, banned); },
          std::move(done));
  }

  void set_role(std::string room, std::string user, Role role, DoneCallback done) override {
    write([room = std::move(room), user = std::move(user),
           role](Conn& c) { return sqlite::set_role(c, room, user, role); },
          std::move(done));
  }

  void set_mute(std::string room, std::string user, std::optional<int64_t> until,
                DoneCallback done) override {
    write([room = std::move(room), user = std::move(user),
           until](Conn& c) { return sqlite::set_mute(c, room, user, until); },
          std::move(done));
  }

  void post(PostRequest request, Callback<PostResult> done) override {
    executor_.write<PostResult>([req = std::move(request)](Conn& c) { return sqlite::post(c, req); },
                                std::move(done));
  }

  void edit(std::string room, uint64_t seq, std::string text, int64_t edited_ts, std::string author,
            Callback<int64_t> done) override {
    executor_.write<int64_t>(
        [room = std::move(room), seq, text = std::move(text), edited_ts,
         author = std::move(author)](Conn& c) { return sqlite::edit(c, room, seq, text, edited_ts, author); },
        std::move(done));
  }

  void delete_message(std::string room, uint64_t seq, std::string author, DoneCallback done) override {
    write([room = std::move(room), seq,
           author = std::move(author)](Conn& c) { return sqlite::delete_message(c, room, seq, author); },
          std::move(done));
  }

  void mark_read(std::string room, std::string user, uint64_t seq, Callback<uint64_t> done) override {
    executor_.write<uint64_t>([room = std::move(room), user = std::move(user),
                               seq](Conn& c) { return sqlite::mark_read(c, room, user, seq); },
                              std::move(done));
  }

  void kv_put(std::string plugin, std::string key, std::string value, DoneCallback done) override {
    write([plugin = std::move(plugin), key = std::move(key),
           value = std::move(value)](Conn& c) { return sqlite::kv_put(c, plugin, key, value); },
          std::move(done));
  }

  void kv_delete(std::string plugin, std::string key, DoneCallback done) override {
    write([plugin = std::move(plugin),
           key = std::move(key)](Conn& c) { return sqlite::kv_delete(c, plugin, key); },
          std::move(done));
  }

  void put_resume(std::string hash, UserRecord user, int64_t expires_ts, DoneCallback done) override {
    write([hash = std::move(hash), user = std::move(user),
           expires_ts](Conn& c) { return sqlite::put_resume(c, hash, user, expires_ts); },
          std::move(done));
  }

  void redeem_resume(std::string hash, int64_t now, std::string new_hash, int64_t new_expires_ts,
                     Callback<UserRecord> done) override {
    executor_.write<UserRecord>(
        [hash = std::move(hash), now, new_hash = std::move(new_hash), new_expires_ts](Conn& c) {
          return sqlite::redeem_resume(c, hash, now, new_hash, new_expires_ts);
        },
        std::move(done));
  }

  // --- Reads ---

  void history(std::string room, uint64_t before_seq, int limit, Callback<HistoryPage> done) override {
    page(std::move(room), before_seq, limit, false, std::move(done));
  }

  void history_after(std::string room, uint64_t after_seq, int limit, Callback<HistoryPage> done) override {
    page(std::move(room), after_seq, limit, true, std::move(done));
  }

  void get_message(std::string room, uint64_t seq, Callback<MessageRecord> done) override {
    executor_.read<MessageRecord>(
        [room = std::move(room), seq](Conn& c) { return sqlite::get_message(c, room, seq); },
        std::move(done));
  }

  void list_rooms(Callback<std::vector<RoomRecord>> done) override {
    executor_.read<std::vector<RoomRecord>>([](Conn& c) { return sqlite::list_rooms(c); }, std::move(done));
  }

  void get_room(std::string room, Callback<RoomRecord> done) override {
    executor_.read<RoomRecord>([room = std::move(room)](Conn& c) { return sqlite::get_room(c, room); },
                               std::move(done));
  }

  void members(std::string room, Callback<std::vector<MemberRecord>> done) override {
    executor_.read<std::vector<MemberRecord>>(
        [room = std::move(room)](Conn& c) { return sqlite::members(c, room); }, std::move(done));
  }

  void unread(std::string room, std::string user, Callback<uint64_t> done) override {
    executor_.read<uint64_t>(
        [room = std::move(room), user = std::move(user)](Conn& c) { return sqlite::unread(c, room, user); },
        std::move(done));
  }

  void unread_counts(std::string user, Callback<std::vector<RoomUnread>> done) override {
    executor_.read<std::vector<RoomUnread>>(
        [user = std::move(user)](Conn& c) { return sqlite::unread_counts(c, user); }, std::move(done));
  }

  void kv_get(std::string plugin, std::string key, Callback<std::string> done) override {
    executor_.read<std::string>([plugin = std::move(plugin),
                                 key = std::move(key)](Conn& c) { return sqlite::kv_get(c, plugin, key); },
                                std::move(done));
  }

  // --- For the plugin runtime ---

  Status kv_get_now(std::string_view plugin, std::string_view key, std::string* value) override {
    if (executor_.closing() || loop_reader_ == nullptr)
      return Status::failed_precondition("the store is closed");
    return sqlite::kv_get_now(*loop_reader_, plugin, key, value);
  }

  Result<uint64_t> import_plugin_kv(const std::string& file) override {
    auto conn = Conn::connect(path_, Conn::Mode::kDurableWrite, options_.busy_timeout_ms);
    if (!conn.ok()) return conn.status();
    return sqlite::import_plugin_kv(**conn, file);
  }

  // --- Life ---

  void close(std::function<void()> done) override {
    loop_reader_.reset();
    executor_.close(std::move(done));
  }

  const Histogram* commit_seconds() const override { return executor_.commit_seconds(); }
  StoreStats stats() const override { return executor_.stats(); }

 private:
  // A write whose result is only its status.
  void write(std::function<Result<Unit>(Conn&)> fn, DoneCallback done) {
    std::function<void(Result<Unit>)> cb;
    if (done) cb = [done = std::move(done)](Result<Unit> r) { done(r.status()); };
    executor_.write<Unit>(std::move(fn), std::move(cb));
  }

  void page(std::string room, uint64_t cursor, int limit, bool forward, Callback<HistoryPage> done) {
    if (limit < 1 || limit > kMaxHistoryPage) {
      executor_.reject<HistoryPage>(Status::invalid_argument("history limit must be 1..200"),
                                    std::move(done));
      return;
    }
    executor_.read<HistoryPage>([room = std::move(room), cursor, limit, forward](
                                    Conn& c) { return sqlite::history(c, room, cursor, limit, forward); },
                                std::move(done));
  }

  std::string path_;
  StoreOptions options_;
  // kv_get_now()'s read-only connection; loop thread only.
  std::unique_ptr<Conn> loop_reader_;
  sqlite::Executor executor_;
};

}  // namespace

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
  // Executor::writer_main), so that no acknowledgement waits for a checkpoint.
  w.watch_wal();
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
