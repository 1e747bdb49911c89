#include "store/sqlite_db.h"

#include <sqlite3.h>

#include "util/table.h"

namespace hut {

Status sqlite_status(int rc, std::string_view what, sqlite3* db) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return Status::already_exists(msg);
      return Status::invalid_argument(msg);
    case SQLITE_FULL:
      return Status::resource_exhausted(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::unavailable(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::corruption(msg);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Status::io_error(msg);
    default:
      return Status::internal(msg);
  }
}

// The codes with_context keeps; any other becomes an internal error.
constexpr std::pair<Status::Code, Status (*)(std::string_view)> kContextCodes[] = {
    {Status::Code::kInvalidArgument, &Status::invalid_argument},
    {Status::Code::kNotFound, &Status::not_found},
    {Status::Code::kAlreadyExists, &Status::already_exists},
    {Status::Code::kFailedPrecondition, &Status::failed_precondition},
    {Status::Code::kUnavailable, &Status::unavailable},
    {Status::Code::kIOError, &Status::io_error},
    {Status::Code::kCorruption, &Status::corruption},
    {Status::Code::kResourceExhausted, &Status::resource_exhausted},
};

Status with_context(const Status& s, const std::string& prefix) {
  if (s.ok()) return s;
  std::string msg = prefix + std::string(s.message());
  return util::second_of(kContextCodes, s.code()).value_or(&Status::internal)(msg);
}

Status sqlite_exec(sqlite3* db, const char* sql, std::string_view what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status();
  std::string msg(what);
  msg += ": ";
  msg += err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return sqlite_status(rc, msg, nullptr);
}

Result<int64_t> sqlite_int(sqlite3* db, const char* sql, std::string_view what) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return sqlite_status(rc, what, db);
  rc = sqlite3_step(stmt);
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  Status s = rc == SQLITE_ROW ? Status() : sqlite_status(rc == SQLITE_DONE ? SQLITE_ERROR : rc, what, db);
  sqlite3_finalize(stmt);
  if (!s.ok()) return s;
  return v;
}

// ---------------------------------------------------------------------------

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  if (db_) sqlite3_close_v2(db_);
}

Status SqliteDb::open(const std::string& path, const SqliteOpenOptions& options) {
  if (db_ != nullptr) return Status::internal("the " + options.name + " is open already");
  name_ = options.name;
  int flags = (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              (options.serialized ? SQLITE_OPEN_FULLMUTEX : SQLITE_OPEN_NOMUTEX) | SQLITE_OPEN_EXRESCODE;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) return sqlite_status(rc, "cannot open the " + name_ + " " + path, db_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, options.busy_timeout_ms);
  HUT_RETURN_IF_ERROR(exec("PRAGMA foreign_keys = ON"));
  if (options.durable && !options.read_only) {
    HUT_RETURN_IF_ERROR(with_context(use_wal(), path + ": "));
    HUT_RETURN_IF_ERROR(exec("PRAGMA synchronous = FULL"));
  }
  return Status();
}

Status SqliteDb::exec(const char* sql) { return sqlite_exec(db_, sql, name_); }

Status SqliteDb::use_wal() {
  SqliteQuery q(*this, "PRAGMA journal_mode = WAL");
  if (q.step() && q.str(0) == "wal") return q.drain();
  return q.no_row(Status::io_error("the " + name_ + " cannot use WAL mode"));
}

sqlite3_stmt* SqliteDb::prepare(const char* sql, Status* status) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    *status = sqlite_status(rc, name_ + ": cannot prepare a statement", db_);
    return nullptr;
  }
  stmts_.emplace(sql, stmt);
  return stmt;
}

int64_t SqliteDb::changes() const { return sqlite3_changes64(db_); }

bool SqliteDb::in_transaction() const { return db_ != nullptr && !sqlite3_get_autocommit(db_); }

void SqliteDb::rollback_if_open() {
  if (in_transaction()) (void)exec("ROLLBACK");
}

// ---------------------------------------------------------------------------

SqliteQuery::SqliteQuery(SqliteDb& db, const char* sql) : db_(db) { stmt_ = db.prepare(sql, &status_); }

SqliteQuery::~SqliteQuery() {
  if (stmt_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

void SqliteQuery::set(int i, const BindValue& v) {
  if (!stmt_) return;
  switch (v.kind) {
    case BindValue::Kind::kNull:
      check(sqlite3_bind_null(stmt_, i));
      break;
    case BindValue::Kind::kInt:
      check(sqlite3_bind_int64(stmt_, i, v.num));
      break;
    case BindValue::Kind::kText:
      check(sqlite3_bind_text64(stmt_, i, v.bytes.data(), v.bytes.size(), SQLITE_STATIC, SQLITE_UTF8));
      break;
    case BindValue::Kind::kBlob:
      check(sqlite3_bind_blob64(stmt_, i, v.bytes.data(), v.bytes.size(), SQLITE_STATIC));
      break;
  }
}

bool SqliteQuery::step() {
  if (!status_.ok()) return false;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) status_ = sqlite_status(rc, db_.name(), db_.db());
  return false;
}

int64_t SqliteQuery::i64(int col) const { return sqlite3_column_int64(stmt_, col); }

bool SqliteQuery::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

std::string SqliteQuery::str(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

std::string SqliteQuery::blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

void SqliteQuery::check(int rc) {
  if (rc != SQLITE_OK && status_.ok()) status_ = sqlite_status(rc, db_.name() + ": bind", db_.db());
}

// ---------------------------------------------------------------------------

SqliteTransaction::~SqliteTransaction() {
  if (open_) db_.rollback_if_open();
}

Status SqliteTransaction::begin(Kind kind) {
  if (open_) return Status::internal("a transaction is open already");
  HUT_RETURN_IF_ERROR(db_.exec(kind == Kind::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN"));
  open_ = true;
  return Status();
}

Status SqliteTransaction::commit() {
  if (!open_) return Status::internal("no transaction to commit");
  Status s = db_.exec("COMMIT");
  if (s.ok()) open_ = false;
  return s;
}

}  // namespace hut
