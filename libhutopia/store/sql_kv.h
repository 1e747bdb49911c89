// The SQL of the plugins' key-value rows.
#ifndef HUTOPIA_STORE_SQL_KV_H_
#define HUTOPIA_STORE_SQL_KV_H_

#include "store/sql.h"

namespace hut::sql {

inline Status no_key(std::string_view plugin, std::string_view key) {
  return Status::not_found("plugin " + std::string(plugin) + " holds no key '" + std::string(key) + "'");
}

template <typename Conn>
Result<Unit> kv_put(Conn& c, const std::string& plugin, const std::string& key, const std::string& value) {
  Query<Conn> q(c,
                "INSERT INTO plugin_kv (plugin, key, value) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value");
  HUT_RETURN_IF_ERROR(q.bind(1, plugin).bind(2, key).bind_blob(3, value).run());
  return Unit{};
}

template <typename Conn>
Result<Unit> kv_delete(Conn& c, const std::string& plugin, const std::string& key) {
  Query<Conn> q(c, "DELETE FROM plugin_kv WHERE plugin = ?1 AND key = ?2");
  HUT_RETURN_IF_ERROR(q.bind(1, plugin).bind(2, key).run());
  if (c.changes() == 0) return no_key(plugin, key);
  return Unit{};
}

// The value into *value, or only whether the key exists when value is null.
template <typename Conn>
Status kv_read(Conn& c, std::string_view plugin, std::string_view key, std::string* value) {
  // Two statements: a presence test does not read the value.
  Query<Conn> q(c, value != nullptr ? "SELECT value FROM plugin_kv WHERE plugin = ?1 AND key = ?2"
                                    : "SELECT 1 FROM plugin_kv WHERE plugin = ?1 AND key = ?2");
  q.bind(1, plugin).bind(2, key);
  if (q.step()) {
    if (value != nullptr) *value = q.blob(0);
    return Status();
  }
  return q.no_row(no_key(plugin, key));
}

template <typename Conn>
Result<std::string> kv_get(Conn& c, const std::string& plugin, const std::string& key) {
  std::string value;
  HUT_RETURN_IF_ERROR(kv_read(c, plugin, key, &value));
  return value;
}

}  // namespace hut::sql

#endif  // HUTOPIA_STORE_SQL_KV_H_
