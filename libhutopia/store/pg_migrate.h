// The migration runner of the PostgreSQL store, on the SQLite store's steps
// (sqlite_schema.cc) in PostgreSQL's dialect: the version applied kept in the
// table hut_schema, each step run under an advisory lock
// so that two processes never migrate one database at once, and a database
// newer than this build refused. Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_PG_MIGRATE_H_
#define HUTOPIA_STORE_PG_MIGRATE_H_

#include "store/pg_conn.h"
#include "store/sqlite_migrate.h"

namespace hut::pg {

// Brings the database to the newest version of `schema` (the SQLite steps,
// run in PostgreSQL's dialect), each step in one transaction that also
// records the new version in `version_table` (one such table per kind of
// data, so a space's store and a relay may share a database).
// kFailedPrecondition for a database whose version is newer than this build
// knows.
Status migrate(Conn& c, const SqliteSchema& schema, const char* version_table);
// The space's store (sqlite_store_migrations), its version in hut_schema.
Status migrate(Conn& c);

}  // namespace hut::pg

#endif  // HUTOPIA_STORE_PG_MIGRATE_H_
