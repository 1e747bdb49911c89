// The SQLite implementation of hut::Store: one database file in WAL mode,
// one writer thread that group-commits, one reader thread with a read-only
// connection. Nothing of SQLite's dialect leaks through store.h.
#ifndef HUTOPIA_STORE_SQLITE_STORE_H_
#define HUTOPIA_STORE_SQLITE_STORE_H_

#include <memory>
#include <span>
#include <string>

#include "store/sqlite_migrate.h"
#include "store/store.h"

namespace hut {

// Opens (creating when missing) the SQLite store at `path`; the directory
// must exist. See open_store().
Result<std::unique_ptr<Store>> open_sqlite_store(uv_loop_t* loop, const std::string& path,
                                                 const StoreOptions& options);

// The schema of this build, oldest step first.
std::span<const SqliteMigration> sqlite_store_migrations();

// The store's schema: its steps, its application_id, its name in messages.
// open_sqlite_store() brings a file to it with sqlite_migrate().
SqliteSchema sqlite_store_schema();

// The application_id of a Hutopia store file ("HUT1").
inline constexpr int kSqliteApplicationId = 0x48555431;

}  // namespace hut

#endif  // HUTOPIA_STORE_SQLITE_STORE_H_
