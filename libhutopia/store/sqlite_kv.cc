// The key-value SQL only the SQLite store has: the loop thread's point read
// and the import of the older versions' key-value file.
#include <filesystem>

#include "store/sql_kv.h"
#include "store/sqlite_kv.h"

namespace hut::sqlite {

Status kv_get_now(Conn& c, std::string_view plugin, std::string_view key, std::string* value) {
  // Outside a transaction, the query's reset ends its read, so the next call
  // sees newer commits.
  return sql::kv_read(c, plugin, key, value);
}

Result<uint64_t> import_plugin_kv(Conn& c, const std::string& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return Status::not_found("no file " + file);
  {
    // `c` is read-write, so that SQLite folds a WAL left by a crash into the
    // file before it is read.
    SqliteQuery q(c, "ATTACH DATABASE ?1 AS old");
    HUT_RETURN_IF_ERROR(with_context(q.bind(1, file).run(), "cannot open " + file + ": "));
  }
  {
    SqliteQuery q(c, "SELECT count(*) FROM old.sqlite_schema WHERE type = 'table' AND name = 'plugin_kv'");
    if (!q.step()) return with_context(q.status(), "cannot read " + file + ": ");
    if (q.i64(0) == 0) return uint64_t{0};  // an older version that never stored a value
  }
  SqliteTransaction txn(c);
  Status s = txn.begin(SqliteTransaction::Kind::kImmediate);
  uint64_t added = 0;
  if (s.ok()) {
    SqliteQuery q(c,
                  "INSERT INTO main.plugin_kv (plugin, key, value) "
                  "SELECT plugin, key, value FROM old.plugin_kv WHERE true "
                  "ON CONFLICT (plugin, key) DO NOTHING");
    s = q.run();
    if (s.ok()) added = static_cast<uint64_t>(c.changes());
  }
  if (s.ok()) s = txn.commit();
  if (!s.ok()) return with_context(s, "cannot import " + file + ": ");
  return added;
}

}  // namespace hut::sqlite
