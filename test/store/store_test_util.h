// A store on a real SQLite file in a temporary directory, with a loop to run
// its callbacks on and helpers that wait (bounded in time) for one.
#ifndef HUTOPIA_TEST_STORE_STORE_TEST_UTIL_H_
#define HUTOPIA_TEST_STORE_STORE_TEST_UTIL_H_

#include <sqlite3.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "store/store.h"
#include "test_util.h"

namespace hut::test {

class StoreFixture {
 public:
  StoreFixture() {
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
  std::string url() const { return "sqlite://" + path(); }
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
    bool closed = false;
    store_->close([&] { closed = true; });
    bool ok = run_until([&] { return closed; });
    store_.reset();
    return ok;
  }

 private:
  TempDir dir_;
  uv_loop_t loop_{};
  uv_timer_t tick_{};
  std::unique_ptr<Store> store_;
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
