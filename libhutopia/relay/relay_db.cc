#include "relay/relay_db.h"

#include <sys/stat.h>

namespace hut::relay {

namespace {

// Files written before the application_id was set carry 0, which the
// migration runner accepts.
const SqliteMigration kMigrations[] = {
    {1,
     "CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
     " password_hash TEXT NOT NULL, avatar_type TEXT, avatar BLOB, created_ms INTEGER NOT NULL);"
     "CREATE TABLE sessions (hash BLOB PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE "
     "CASCADE,"
     " expires_ms INTEGER NOT NULL);"
     "CREATE INDEX sessions_expiry ON sessions(expires_ms);"
     "CREATE TABLE spaces (id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL,"
     " owner_id TEXT NOT NULL REFERENCES users(id), created_ms INTEGER NOT NULL);"},
    // The space address each user last confirmed on the login page.
    {2,
     "CREATE TABLE confirmations (user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     " space_id TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE, url TEXT NOT NULL,"
     " confirmed_ms INTEGER NOT NULL, PRIMARY KEY (user_id, space_id));"
     "CREATE INDEX spaces_owner ON spaces(owner_id);"},
};

}  // namespace

SqliteSchema relay_schema() { return SqliteSchema{kMigrations, kRelayApplicationId, "relay database"}; }

Status RelayDb::open(const std::string& path) {
  SqliteOpenOptions options;
  options.durable = true;
  options.name = "relay database";
  std::lock_guard<std::mutex> lock(mu_);
  HUT_RETURN_IF_ERROR(db_.open(path, options));
  chmod(path.c_str(), 0600);
  return with_context(sqlite_migrate(db_.db(), relay_schema()), path + ": ");
}

}  // namespace hut::relay
