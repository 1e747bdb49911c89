// The relay's database: a SQLite file (<data_dir>/relay.db, WAL, mode 0600)
// or a PostgreSQL database ([store] url = "postgres://..."), which several
// relays may share as replicas. One schema for both (the SQLite steps, run in
// PostgreSQL's dialect by store/pg_migrate), one connection behind a mutex,
// and RelayQuery: one statement, written once with ?N parameters, run on
// whichever connection the relay has.
//
// Thread safety: route handlers run on pool threads; each holds the
// connection through lock() for the statements of one step. Every call
// blocks, and none runs on the loop.
// Ownership: the relay owns its RelayDb; a Locked borrows the connection for
// its scope, a RelayQuery borrows a Locked.
#ifndef HUTOPIA_RELAY_RELAY_DB_H_
#define HUTOPIA_RELAY_RELAY_DB_H_

#include <hutopia/status.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "store/pg_conn.h"
#include "store/sqlite_db.h"
#include "store/sqlite_migrate.h"

namespace hut::relay {

// PRAGMA application_id of a relay database ("HUTR").
inline constexpr int kRelayApplicationId = 0x48555452;
// The table of a PostgreSQL database that holds the relay schema's version.
inline constexpr const char* kRelayVersionTable = "hut_relay_schema";

// The relay's schema: its migrations, oldest first.
SqliteSchema relay_schema();

class RelayDb {
 public:
  // The connection, held for one scope: one of the two is set.
  struct Locked {
    std::unique_lock<std::mutex> hold;
    SqliteDb* lite;
    pg::Conn* pg;
  };

  // Opens `url` (sqlite://<path>, or postgres://... with libpq's PG*
  // environment filling what it leaves out), creating the file or the tables
  // when missing, and applies the migrations it has not had yet. A file of
  // another kind, or a database of a newer schema, is refused.
  Status open(const std::string& url);
  // With PostgreSQL, connects again first when the connection broke (a
  // failure then shows in the statements' status).
  Locked lock();

 private:
  std::mutex mu_;
  SqliteDb lite_;
  std::unique_ptr<pg::Conn> pg_;
};

// One execution of a statement on the locked connection, with the calls of
// SqliteQuery and pg::Query: binds, then step() or run(); the first failing
// call kept in status().
class RelayQuery : public QueryBase<RelayQuery> {
  // Calls `f` with the query that runs (defined first: the readers below
  // deduce their types from it).
  template <class F>
  decltype(auto) with(F&& f) const {
    return pg_ ? f(*pg_) : f(*lite_);
  }

 public:
  RelayQuery(const RelayDb::Locked& l, const char* sql);

  bool step();
  // The readers of the query that runs.
  int64_t i64(int col) const {
    return with([col](auto& q) { return q.i64(col); });
  }
  std::string str(int col) const {
    return with([col](auto& q) { return q.str(col); });
  }
  std::string blob(int col) const {
    return with([col](auto& q) { return q.blob(col); });
  }

 private:
  friend class QueryBase<RelayQuery>;
  void set(int i, const BindValue& v);
  bool is_null(int col) const {
    return with([col](auto& q) { return !q.opt_i64(col).has_value(); });
  }

  // mutable: the readers are const, while with() hands out one (non-const)
  // reference type for both queries.
  mutable std::optional<SqliteQuery> lite_;
  mutable std::optional<pg::Query> pg_;
};

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_RELAY_DB_H_
