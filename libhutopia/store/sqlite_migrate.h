// The schema migration runner of the library's SQLite databases: a list of
// steps, the version applied kept in PRAGMA user_version, the kind of file in
// PRAGMA application_id, and a file newer than the list refused.
#ifndef HUTOPIA_STORE_SQLITE_MIGRATE_H_
#define HUTOPIA_STORE_SQLITE_MIGRATE_H_

#include <hutopia/status.h>

#include <span>

struct sqlite3;

namespace hut {

// One step of a schema: `sql` brings a database of version `version - 1` to
// `version`.
struct SqliteMigration {
  int version;
  const char* sql;
};

// The schema of one kind of database.
struct SqliteSchema {
  std::span<const SqliteMigration> steps;  // oldest first, versions 1, 2, ...
  // Written to PRAGMA application_id; a file with another non-zero id is
  // refused. 0: none is written or checked.
  int application_id = 0;
  // What the file is, for messages: "store" gives "the file is not a
  // Hutopia store", "the store's schema version 4 is newer than...".
  const char* noun = "store";
};

// Brings the database to the last version of `schema`, each step in one
// immediate transaction that also records the new version, so two processes
// never migrate one file at once and a failed step leaves the file at the
// version before it. Refuses with kFailedPrecondition a file newer than the
// list, one of another application_id, and one of version 0 that holds
// tables already (a file of something else).
Status sqlite_migrate(sqlite3* db, const SqliteSchema& schema);

}  // namespace hut

#endif  // HUTOPIA_STORE_SQLITE_MIGRATE_H_
