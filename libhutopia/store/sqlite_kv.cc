// The SQL of the plugins' key-value rows.
#include <filesystem>

#include "store/sqlite_sql.h"

namespace hut::sqlite {
namespace {

Status no_key(std::string_view plugin, std::string_view key) {
  return Status::not_found("plugin " + std::string(plugin) + " holds no key '" + std::string(key) + "'");
}

}  // namespace

Result<Unit> kv_put(Conn& c, const std::string& plugin, const std::string& key, const std::string& value) {
  SqliteQuery q(c,
                "INSERT INTO plugin_kv (plugin, key, value) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value");
  HUT_RETURN_IF_ERROR(q.bind(1, plugin).bind(2, key).bind_blob(3, value).run());
  return Unit{};
}

Result<Unit> kv_delete(Conn& c, const std::string& plugin, const std::string& key) {
  SqliteQuery q(c, "DELETE FROM plugin_kv WHERE plugin = ?1 AND key = ?2");
  HUT_RETURN_IF_ERROR(q.bind(1, plugin).bind(2, key).run());
  if (c.changes() == 0) return no_key(plugin, key);
  return Unit{};
}

Result<std::string> kv_get(Conn& c, const std::string& plugin, const std::string& key) {
  std::string value;
  HUT_RETURN_IF_ERROR(kv_get_now(c, plugin, key, &value));
  return value;
}

Status kv_get_now(Conn& c, std::string_view plugin, std::string_view key, std::string* value) {
  // Two statements: a presence test does not read the value. Outside a
  // transaction, the query's reset ends its read, so the next call sees newer
  // commits.
  SqliteQuery q(c, value != nullptr ? "SELECT value FROM plugin_kv WHERE plugin = ?1 AND key = ?2"
                                    : "SELECT 1 FROM plugin_kv WHERE plugin = ?1 AND key = ?2");
  q.bind(1, plugin).bind(2, key);
  if (q.step()) {
    if (value != nullptr) *value = q.blob(0);
    return Status();
  }
  return q.no_row(no_key(plugin, key));
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
