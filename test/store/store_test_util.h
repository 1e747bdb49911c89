// A store on a real SQLite file in a temporary directory, or in a fresh
// database of a real PostgreSQL server (pg_server.h), with a loop to run its
// callbacks on and helpers that wait (bounded in time) for one.
#ifndef HUTOPIA_TEST_STORE_STORE_TEST_UTIL_H_
#define HUTOPIA_TEST_STORE_STORE_TEST_UTIL_H_

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "pg_server.h"
#include "store/store.h"
#include "test_util.h"

namespace hut::test {

enum class Backend { kSqlite, kPostgres };

// The backends as types, for TEST_CASE_TEMPLATE.
struct OnSqlite {
  static constexpr Backend kBackend = Backend::kSqlite;
};
struct OnPostgres {
  static constexpr Backend kBackend = Backend::kPostgres;
};

class StoreFixture {
 public:
  explicit StoreFixture(Backend backend = Backend::kSqlite) : backend_(backend) {
    if (backend == Backend::kPostgres) {
      PgServer* pg = PgServer::get();
      if (pg == nullptr) {
        MESSAGE("skipped on PostgreSQL: " << PgServer::why());
      } else {
        pg_url_ = pg->new_database();
      }
    }
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &tick_);
    // A tick keeps uv_run(UV_RUN_ONCE) from sleeping past a deadline.
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 5, 5);
    uv_unref(reinterpret_cast<uv_handle_t*>(&tick_));
  }
  ~StoreFixture() {
    if (store_) close_store();
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  StoreFixture(const StoreFixture&) = delete;
  StoreFixture& operator=(const StoreFixture&) = delete;

  uv_loop_t* loop() { return &loop_; }
  std::string path() const { return dir_.file("space.db"); }
  std::string url() const { return backend_ == Backend::kSqlite ? "sqlite://" + path() : pg_url_; }
  Backend backend() const { return backend_; }
  // False when the backend cannot run here (a test then returns at once).
  bool available() const { return backend_ == Backend::kSqlite || !pg_url_.empty(); }
  Store& store() { return *store_; }

  Status open(const StoreOptions& options = {}) {
    auto opened = open_store(&loop_, url(), options);
    if (!opened.ok()) return opened.status();
    store_ = std::move(*opened);
    return Status();
  }

  // Runs the loop until `done` holds or `seconds` pass; false on timeout.
  bool run_until(const std::function<bool()>& done, double seconds = 20) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    uv_ref(reinterpret_cast<uv_handle_t*>(&tick_));
    while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    uv_unref(reinterpret_cast<uv_handle_t*>(&tick_));
    return done();
  }

  // Starts an operation with a callback and waits for its result.
  template <typename T>
  Result<T> wait(const std::function<void(Store::Callback<T>)>& start) {
    std::unique_ptr<Result<T>> out;
    start([&](Result<T> r) { out = std::make_unique<Result<T>>(std::move(r)); });
    if (!run_until([&] { return out != nullptr; })) return Status::unavailable("timed out");
    return std::move(*out);
  }
  Status wait_done(const std::function<void(Store::DoneCallback)>& start) {
    std::optional<Status> out;
    start([&](Status s) { out.emplace(std::move(s)); });
    if (!run_until([&] { return out.has_value(); })) return Status::unavailable("timed out");
    return std::move(*out);
  }

  // close() and wait for its callback, then destroy the store.
  bool close_store() {
    bool ok = close(*store_);
    store_.reset();
    return ok;
  }
  // close() of a store on this loop (the fixture's, or another opened on
  // loop()) and wait for its callback; false when it did not come.
  bool close(Store& store) {
    bool closed = false;
    store.close([&] { closed = true; });
    return run_until([&] { return closed; });
  }

 private:
  Backend backend_;
  std::string pg_url_;
  TempDir dir_;
  uv_loop_t loop_{};
  uv_timer_t tick_{};
  std::unique_ptr<Store> store_;
};

// A second, independent connection to the fixture's database, as another
// program would open it: the first column of the first row of a query.
class RawSql {
 public:
  explicit RawSql(const StoreFixture& f) : url_(f.backend() == Backend::kPostgres ? f.url() : "") {
    if (url_.empty()) sqlite3_open_v2(f.path().c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
  }
  ~RawSql() {
    if (db_ != nullptr) sqlite3_close(db_);
  }
  RawSql(const RawSql&) = delete;
  RawSql& operator=(const RawSql&) = delete;

  int64_t integer(const std::string& sql) {
    std::string v = text(sql);
    return v == "<no row>" || v == "<null>" || v.empty() ? -1 : std::stoll(v);
  }
  std::string text(const std::string& sql) {
    std::string v = "<no row>";
    if (!url_.empty()) {
      auto out = PgServer::get()->query(url_, sql);
      if (out && !out->empty()) v = out->substr(0, out->find('\n'));
      return v;
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* p = sqlite3_column_text(stmt, 0);
      v = p ? reinterpret_cast<const char*>(p) : "<null>";
    }
    sqlite3_finalize(stmt);
    return v;
  }

 private:
  std::string url_;
  sqlite3* db_ = nullptr;
};

// Writes a key-value file as versions before the store kept the plugins'
// data did (<data_dir>/plugins.db: WAL mode, synchronous NORMAL, one table),
// with the same SQL they ran. `rows` are (plugin, key, value). With
// `leave_wal`, the connection does not checkpoint when it closes, so the rows
// stay in the -wal file beside it, as after a crash. False on any error.
inline bool write_old_plugins_db(const std::string& path,
                                 const std::vector<std::tuple<std::string, std::string, std::string>>& rows,
                                 bool leave_wal = false) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(db);
    return false;
  }
  bool ok = sqlite3_exec(db,
                         "PRAGMA journal_mode=WAL;"
                         "PRAGMA synchronous=NORMAL;"
                         "CREATE TABLE IF NOT EXISTS plugin_kv ("
                         " plugin TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
                         " PRIMARY KEY (plugin, key)) WITHOUT ROWID;",
                         nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_stmt* put = nullptr;
  ok = ok &&
       sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO plugin_kv (plugin, key, value) VALUES (?1, ?2, ?3)", -1,
                          &put, nullptr) == SQLITE_OK;
  static const char kEmpty = 0;
  for (const auto& [plugin, key, value] : rows) {
    if (!ok) break;
    sqlite3_bind_text(put, 1, plugin.data(), static_cast<int>(plugin.size()), SQLITE_STATIC);
    sqlite3_bind_text(put, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    sqlite3_bind_blob(put, 3, value.empty() ? &kEmpty : value.data(), static_cast<int>(value.size()),
                      SQLITE_STATIC);
    ok = sqlite3_step(put) == SQLITE_DONE;
    sqlite3_reset(put);
  }
  sqlite3_finalize(put);
  if (leave_wal) {
    int on = 0;
    ok = ok && sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &on) == SQLITE_OK && on == 1;
  }
  return sqlite3_close(db) == SQLITE_OK && ok;
}

}  // namespace hut::test

#endif  // HUTOPIA_TEST_STORE_STORE_TEST_UTIL_H_
