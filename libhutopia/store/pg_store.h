// The PostgreSQL implementation of hut::Store: the shared SQL store
// (sql_store.h) on libpq connections (pg_conn.h), one writer thread that
// group-commits and one reader thread, each with its own connection, so that
// no libpq call runs on the loop. Several processes may share one database:
// seq is taken from the room's row (UPDATE ... RETURNING) inside the
// transaction, which locks the row until the commit.
#ifndef HUTOPIA_STORE_PG_STORE_H_
#define HUTOPIA_STORE_PG_STORE_H_

#include <memory>
#include <string>

#include "store/store.h"

namespace hut {

// Opens the store in the PostgreSQL database `conninfo` names (a
// postgres:// URL, or key=value words; libpq's PG* environment fills in what
// it leaves out) and brings its schema up to date. See open_store().
Result<std::unique_ptr<Store>> open_pg_store(uv_loop_t* loop, const std::string& conninfo,
                                             const StoreOptions& options);

}  // namespace hut

#endif  // HUTOPIA_STORE_PG_STORE_H_
