// SQLite connection and query helpers shared by every database of the
// library (the space's store, the relay's accounts): a connection opened with
// the house settings and a cache of prepared statements, one execution of a
// statement with binding and stepping whose errors are values, and a
// transaction that rolls back unless committed. Internal: nothing of SQLite
// leaks through a public header.
#ifndef HUTOPIA_STORE_SQLITE_DB_H_
#define HUTOPIA_STORE_SQLITE_DB_H_

#include <hutopia/status.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/query_base.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hut {

// The Status for SQLite result code `rc`: `what`, a colon and SQLite's message
// (of `db` when given, of `rc` otherwise). Constraint violations on a key are
// kAlreadyExists, a full disk kResourceExhausted, a lock kUnavailable, a
// damaged file kCorruption, file troubles kIOError.
Status sqlite_status(int rc, std::string_view what, sqlite3* db);

// The same error with `prefix` before its message (ok stays ok).
Status with_context(const Status& s, const std::string& prefix);

// Runs `sql` (one or more statements, no result rows wanted) on `db`; an
// error reads "<what>: <SQLite's message>".
Status sqlite_exec(sqlite3* db, const char* sql, std::string_view what = "store");

// The integer in the first column of the first row of `sql` (a PRAGMA or a
// count); an error when there is no row.
Result<int64_t> sqlite_int(sqlite3* db, const char* sql, std::string_view what = "store");

struct SqliteOpenOptions {
  bool read_only = false;  // else read-write, created when missing
  int busy_timeout_ms = 5000;
  // Serialized mode: the connection may be used by several threads (SQLite
  // locks it). Without it, one thread at a time uses the connection.
  bool serialized = false;
  // WAL mode (readers never wait for the writer) and synchronous = FULL (a
  // commit is on disk, the WAL fsynced, before it returns). Read-write only.
  bool durable = false;
  // What the database is, for error messages ("store", "relay database").
  std::string name = "store";
};

// One connection with its prepared statements; closes both when destroyed.
// Foreign keys are enforced and result codes are extended.
class SqliteDb {
 public:
  SqliteDb() = default;
  virtual ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  Status open(const std::string& path, const SqliteOpenOptions& options);

  sqlite3* db() const { return db_; }
  const std::string& name() const { return name_; }
  Status exec(const char* sql);
  // Puts the file in WAL mode; an error when SQLite keeps another mode.
  Status use_wal();

  // The prepared statement of `sql` (a string literal: the cache is keyed by
  // its address). Null with `*status` set when it does not prepare.
  sqlite3_stmt* prepare(const char* sql, Status* status);

  // Rows changed by the last statement.
  int64_t changes() const;
  // True inside an explicit transaction.
  bool in_transaction() const;
  // Rolls back the open transaction, if any (errors are dropped: a failed
  // rollback leaves nothing more to undo).
  void rollback_if_open();

 private:
  sqlite3* db_ = nullptr;
  std::string name_ = "store";
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;
};

// One execution of a cached statement; resets it when it goes out of scope.
// The first failing bind or step is kept in status() and stops the rest, so a
// chain of binds is checked once.
class SqliteQuery : public QueryBase<SqliteQuery> {
 public:
  SqliteQuery(SqliteDb& db, const char* sql);
  ~SqliteQuery();

  // True with a row, false when done; errors in status().
  bool step();

  int64_t i64(int col) const;
  std::string str(int col) const;
  std::string blob(int col) const;

 private:
  friend class QueryBase<SqliteQuery>;
  void set(int i, const BindValue& v);
  bool is_null(int col) const;
  void check(int rc);
  SqliteDb& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// An explicit transaction: begin() starts it, commit() ends it, and one still
// open when the object goes out of scope is rolled back.
class SqliteTransaction {
 public:
  enum class Kind { kDeferred, kImmediate };
  explicit SqliteTransaction(SqliteDb& db) : db_(db) {}
  ~SqliteTransaction();
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  Status begin(Kind kind = Kind::kDeferred);
  Status commit();

 private:
  SqliteDb& db_;
  bool open_ = false;
};

}  // namespace hut

#endif  // HUTOPIA_STORE_SQLITE_DB_H_
