// The relay's SQLite database (<data_dir>/relay.db, WAL): the connection,
// its migrations, and a prepared statement with one owner.
//
// Thread safety: one connection guarded by a mutex; callers (thread-pool
// jobs) hold mutex() around every statement they run.
// Ownership: the relay owns its RelayDb; a Stmt belongs to the scope that
// made it and is finalized when it ends.
#ifndef HUTOPIA_RELAY_RELAY_DB_H_
#define HUTOPIA_RELAY_RELAY_DB_H_

#include <hutopia/status.h>
#include <sqlite3.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace hut::relay {

class RelayDb {
 public:
  RelayDb() = default;
  ~RelayDb();
  RelayDb(const RelayDb&) = delete;
  RelayDb& operator=(const RelayDb&) = delete;

  // Opens (or creates, mode 0600) the file and applies the migrations it
  // has not had yet (PRAGMA user_version counts them).
  Status open(const std::string& path);
  sqlite3* db() const { return db_; }
  std::mutex& mutex() { return mu_; }
  // The schema version the file is at.
  int version();

 private:
  Status migrate(const std::string& path);
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

// A prepared statement. ok() is false when the SQL did not prepare.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return s_ != nullptr; }
  void text(int i, std::string_view v);
  void blob(int i, std::string_view v);
  void int64(int i, int64_t v);
  // SQLITE_ROW, SQLITE_DONE or an error code (SQLITE_MISUSE when !ok()).
  int step();
  std::string col_text(int i);
  std::string col_blob(int i);
  int64_t col_int(int i);

 private:
  sqlite3_stmt* s_ = nullptr;
};

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_RELAY_DB_H_
