#include "plugins/kv_store.h"

namespace hut {
namespace {

// Resets a statement when the scope ends, so it never holds a read lock.
class StmtReset {
 public:
  explicit StmtReset(sqlite3_stmt* s) : s_(s) {}
  ~StmtReset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StmtReset(const StmtReset&) = delete;
  StmtReset& operator=(const StmtReset&) = delete;

 private:
  sqlite3_stmt* s_;
};

Status sqlite_error(sqlite3* db, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += sqlite3_errmsg(db);
  return Status::io_error(msg);
}

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

}  // namespace

Result<std::unique_ptr<KvStore>> KvStore::open(const std::string& path) {
  std::unique_ptr<KvStore> kv(new KvStore());
  int rc = sqlite3_open_v2(path.c_str(), &kv->db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open " + path + ": " + (kv->db_ ? sqlite3_errmsg(kv->db_) : sqlite3_errstr(rc));
    return Status::io_error(msg);
  }
  sqlite3_busy_timeout(kv->db_, 2000);
  const char* setup =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS plugin_kv ("
      " plugin TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
      " PRIMARY KEY (plugin, key)) WITHOUT ROWID;";
  if (sqlite3_exec(kv->db_, setup, nullptr, nullptr, nullptr) != SQLITE_OK)
    return sqlite_error(kv->db_, "cannot set up " + path);
  if (sqlite3_prepare_v3(kv->db_, "SELECT value FROM plugin_kv WHERE plugin = ?1 AND key = ?2", -1,
                         SQLITE_PREPARE_PERSISTENT, &kv->get_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(kv->db_, "INSERT OR REPLACE INTO plugin_kv (plugin, key, value) VALUES (?1, ?2, ?3)",
                         -1, SQLITE_PREPARE_PERSISTENT, &kv->put_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(kv->db_, "DELETE FROM plugin_kv WHERE plugin = ?1 AND key = ?2", -1,
                         SQLITE_PREPARE_PERSISTENT, &kv->del_, nullptr) != SQLITE_OK)
    return sqlite_error(kv->db_, "cannot prepare the plugin store");
  return kv;
}

KvStore::~KvStore() {
  sqlite3_finalize(get_);
  sqlite3_finalize(put_);
  sqlite3_finalize(del_);
  sqlite3_close_v2(db_);
}

Status KvStore::get(std::string_view plugin, std::string_view key, std::string* value) {
  StmtReset reset(get_);
  bind_text(get_, 1, plugin);
  bind_text(get_, 2, key);
  int rc = sqlite3_step(get_);
  if (rc == SQLITE_DONE) return Status::not_found("no such key");
  if (rc != SQLITE_ROW) return sqlite_error(db_, "plugin store read");
  const void* blob = sqlite3_column_blob(get_, 0);
  int n = sqlite3_column_bytes(get_, 0);
  value->assign(static_cast<const char*>(blob), blob ? static_cast<size_t>(n) : 0);
  return Status::ok_status();
}

Status KvStore::put(std::string_view plugin, std::string_view key, std::string_view value) {
  StmtReset reset(put_);
  bind_text(put_, 1, plugin);
  bind_text(put_, 2, key);
  // A zero-length blob with a non-null pointer stores an empty value, not NULL.
  static const char kEmpty = 0;
  sqlite3_bind_blob(put_, 3, value.empty() ? &kEmpty : value.data(), static_cast<int>(value.size()),
                    SQLITE_STATIC);
  if (sqlite3_step(put_) != SQLITE_DONE) return sqlite_error(db_, "plugin store write");
  return Status::ok_status();
}

Status KvStore::erase(std::string_view plugin, std::string_view key) {
  StmtReset reset(del_);
  bind_text(del_, 1, plugin);
  bind_text(del_, 2, key);
  if (sqlite3_step(del_) != SQLITE_DONE) return sqlite_error(db_, "plugin store delete");
  if (sqlite3_changes(db_) == 0) return Status::not_found("no such key");
  return Status::ok_status();
}

}  // namespace hut
