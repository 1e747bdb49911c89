// What only the SQLite store does with plugin key-values (see sqlite_kv.cc).
// Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_SQLITE_KV_H_
#define HUTOPIA_STORE_SQLITE_KV_H_

#include <string>
#include <string_view>

#include "store/sqlite_conn.h"

namespace hut::sqlite {

// A point read outside any transaction (the loop thread's connection): the
// value into *value, or only whether the key exists when value is null.
Status kv_get_now(Conn& c, std::string_view plugin, std::string_view key, std::string* value);
// Copies the plugin_kv rows of the SQLite file `file` that `c`'s database
// lacks; the number added.
Result<uint64_t> import_plugin_kv(Conn& c, const std::string& file);

}  // namespace hut::sqlite

#endif  // HUTOPIA_STORE_SQLITE_KV_H_
