// hut::Store on SQLite: the shared SQL store (sql_store.h) on SQLite
// connections (sqlite_conn.cc), opening the file (sqlite_db.cc) at the newest
// schema (sqlite_schema.cc, sqlite_migrate.cc).
#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <uv.h>

#include "store/sql_store.h"
#include "store/sqlite_conn.h"
#include "store/sqlite_kv.h"

namespace hut {
namespace {

using sqlite::Conn;

// How long kv_get_now() (on the loop thread) waits for a lock, in ms.
constexpr int kLoopReadBusyMs = 50;

// The shared SQL store with what is SQLite's own: reading the state and
// plugin values on connections of their own, and the import of older
// key-value files.
class SqliteStore final : public store::SqlStore<Conn> {
 public:
  SqliteStore(uv_loop_t* loop, std::string path, const StoreOptions& options)
      : SqlStore(loop, options.max_batch), path_(std::move(path)), options_(options) {}

  Status start(std::unique_ptr<Conn> writer, std::unique_ptr<Conn> reader, std::unique_ptr<Conn> checkpointer,
               std::unique_ptr<Conn> loop_reader) {
    loop_reader_ = std::move(loop_reader);
    return SqlStore::start(std::move(writer), std::move(reader), std::move(checkpointer));
  }

  Result<StoreState> load_state() override {
    auto conn = Conn::connect(path_, Conn::Mode::kRead, options_.busy_timeout_ms);
    if (!conn.ok()) return conn.status();
    return sql::load_state(**conn);
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
    SqlStore::close(std::move(done));
  }

 private:
  std::string path_;
  StoreOptions options_;
  // kv_get_now()'s read-only connection; loop thread only.
  std::unique_ptr<Conn> loop_reader_;
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
