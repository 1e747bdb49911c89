// The SQLite implementation of hut::Store: one database file in WAL mode,
// one writer thread that group-commits, one reader thread with a read-only
// connection. Every SQL statement of the project's store lives in
// sqlite_store.cc; nothing of SQLite's dialect leaks through store.h.
#ifndef HUTOPIA_STORE_SQLITE_STORE_H_
#define HUTOPIA_STORE_SQLITE_STORE_H_

#include <memory>
#include <span>
#include <string>

#include "store/store.h"

struct sqlite3;

namespace hut {

// Opens (creating when missing) the SQLite store at `path`; the directory
// must exist. See open_store().
Result<std::unique_ptr<Store>> open_sqlite_store(uv_loop_t* loop, const std::string& path,
                                                 const StoreOptions& options);

// One step of the schema: `sql` brings a database of version `version - 1`
// to `version`.
struct SqliteMigration {
  int version;
  const char* sql;
};

// The schema of this build, oldest step first.
std::span<const SqliteMigration> sqlite_store_migrations();

// Brings the database to the last version of `migrations`, each step in one
// transaction that also records the new version (PRAGMA user_version). Refuses
// with kFailedPrecondition a database newer than the list or one that is not
// a Hutopia store. Exposed for the tests; open_sqlite_store() calls it.
Status sqlite_migrate(sqlite3* db, std::span<const SqliteMigration> migrations);

// The application_id of a Hutopia store file ("HUT1").
inline constexpr int kSqliteApplicationId = 0x48555431;

}  // namespace hut

#endif  // HUTOPIA_STORE_SQLITE_STORE_H_
