#include "relay/relay_db.h"

#include <sys/stat.h>

#include <iterator>

namespace hut::relay {

namespace {

// Migrations, in order; PRAGMA user_version counts those applied.
const char* const kMigrations[] = {
    "CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " password_hash TEXT NOT NULL, avatar_type TEXT, avatar BLOB, created_ms INTEGER NOT NULL);"
    "CREATE TABLE sessions (hash BLOB PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE "
    "CASCADE,"
    " expires_ms INTEGER NOT NULL);"
    "CREATE INDEX sessions_expiry ON sessions(expires_ms);"
    "CREATE TABLE spaces (id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL,"
    " owner_id TEXT NOT NULL REFERENCES users(id), created_ms INTEGER NOT NULL);",
    // The space address each user last confirmed on the login page.
    "CREATE TABLE confirmations (user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " space_id TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE, url TEXT NOT NULL,"
    " confirmed_ms INTEGER NOT NULL, PRIMARY KEY (user_id, space_id));"
    "CREATE INDEX spaces_owner ON spaces(owner_id);",
};

Status exec(sqlite3* db, const std::string& sql, const std::string& what) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK) return Status();
  std::string m = err ? err : sqlite3_errmsg(db);
  sqlite3_free(err);
  return Status::io_error(what + ": " + m);
}

}  // namespace

RelayDb::~RelayDb() {
  if (db_) sqlite3_close_v2(db_);
}

Status RelayDb::open(const std::string& path) {
  int rc = sqlite3_open_v2(path.c_str(), &db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) return Status::io_error("cannot open " + path + ": " + sqlite3_errstr(rc));
  chmod(path.c_str(), 0600);
  sqlite3_busy_timeout(db_, 5000);
  HUT_RETURN_IF_ERROR(
      exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", path));
  return migrate(path);
}

int RelayDb::version() {
  Stmt v(db_, "PRAGMA user_version");
  return (v.ok() && v.step() == SQLITE_ROW) ? static_cast<int>(v.col_int(0)) : 0;
}

Status RelayDb::migrate(const std::string& path) {
  const int known = static_cast<int>(std::size(kMigrations));
  const int at = version();
  if (at > known)
    return Status::failed_precondition(path + ": schema version " + std::to_string(at) +
                                       " is newer than this relay knows (" + std::to_string(known) + ")");
  for (int i = at; i < known; ++i) {
    std::string sql =
        std::string("BEGIN;") + kMigrations[i] + "PRAGMA user_version=" + std::to_string(i + 1) + ";COMMIT;";
    Status st = exec(db_, sql, path + ": migration " + std::to_string(i + 1));
    if (!st.ok()) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return st;
    }
  }
  return Status();
}

Stmt::Stmt(sqlite3* db, const char* sql) {
  if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
}

Stmt::~Stmt() { sqlite3_finalize(s_); }

void Stmt::text(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

void Stmt::blob(int i, std::string_view v) {
  sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

void Stmt::int64(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }

int Stmt::step() { return s_ ? sqlite3_step(s_) : SQLITE_MISUSE; }

std::string Stmt::col_text(int i) {
  const unsigned char* t = sqlite3_column_text(s_, i);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s_, i)))
           : std::string();
}

std::string Stmt::col_blob(int i) {
  const void* b = sqlite3_column_blob(s_, i);
  return b ? std::string(static_cast<const char*>(b), static_cast<size_t>(sqlite3_column_bytes(s_, i)))
           : std::string();
}

int64_t Stmt::col_int(int i) { return sqlite3_column_int64(s_, i); }

}  // namespace hut::relay
