// The per-plugin key-value store: one SQLite file (<data_dir>/plugins.db) in
// WAL mode, one table keyed by (plugin, key). A plugin's data outlives its
// instance, so a reloaded plugin finds it again.
//
// Writes commit on the calling thread with synchronous=NORMAL (WAL), which
// costs no fsync per commit; moving KV writes off the loop, batched with the
// room log, belongs to the store part (see docs/plugins.md).
//
// Ownership: the runtime owns the store. Thread: one thread at a time (the
// loop thread).
#ifndef HUTOPIA_PLUGINS_KV_STORE_H_
#define HUTOPIA_PLUGINS_KV_STORE_H_

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>

#include <hutopia/status.h>

namespace hut {

class KvStore {
 public:
  // Opens (creating) the database file at `path`.
  static Result<std::unique_ptr<KvStore>> open(const std::string& path);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // kNotFound when the key is absent.
  Status get(std::string_view plugin, std::string_view key, std::string* value);
  Status put(std::string_view plugin, std::string_view key, std::string_view value);
  // kNotFound when the key was absent.
  Status erase(std::string_view plugin, std::string_view key);

 private:
  KvStore() = default;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
  sqlite3_stmt* del_ = nullptr;
};

}  // namespace hut

#endif  // HUTOPIA_PLUGINS_KV_STORE_H_
