// The relay's SQLite database (<data_dir>/relay.db, WAL, mode 0600): its
// schema, and the library's connection (store/sqlite_db.h) behind a mutex.
//
// Thread safety: route handlers run on pool threads; each holds the
// connection through lock() for the statements of one step.
// Ownership: the relay owns its RelayDb; a Locked borrows the connection for
// its scope.
#ifndef HUTOPIA_RELAY_RELAY_DB_H_
#define HUTOPIA_RELAY_RELAY_DB_H_

#include <hutopia/status.h>

#include <mutex>
#include <string>

#include "store/sqlite_db.h"
#include "store/sqlite_migrate.h"

namespace hut::relay {

// PRAGMA application_id of a relay database ("HUTR").
inline constexpr int kRelayApplicationId = 0x48555452;

// The relay's schema: its migrations, oldest first.
SqliteSchema relay_schema();

class RelayDb {
 public:
  // The connection, held for one scope.
  struct Locked {
    std::unique_lock<std::mutex> hold;
    SqliteDb& db;
  };

  // Opens (or creates) the file and applies the migrations it has not had
  // yet. A file of another kind, or of a newer schema, is refused.
  Status open(const std::string& path);
  Locked lock() { return Locked{std::unique_lock<std::mutex>(mu_), db_}; }

 private:
  std::mutex mu_;
  SqliteDb db_;
};

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_RELAY_DB_H_
