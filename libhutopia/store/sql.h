// The SQL of the store, written once for SQLite and PostgreSQL: function
// templates over a connection type Conn that run inside the transaction the
// executor opened. Rooms, users, members and sanctions (sql_rooms.h),
// messages and read markers (sql_messages.h), plugin key-values (sql_kv.h)
// and resume credentials (sql_resume.h). Writes run on the writer's
// connection and use its caches; reads on the reader's.
//
// Conn provides: `Query` (a statement run with ?N parameters: bind, step,
// run, drain, status, no_row, i64, opt_i64, str, blob), `Transaction`
// (begin, commit), changes() (rows changed by the last statement), the
// RowCaches below, kStaleResumeSql (the one statement whose dialects differ)
// and kWritesInWith (whether a statement's WITH may hold INSERTs and UPDATEs,
// which lets a post be one statement). Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_SQL_H_
#define HUTOPIA_STORE_SQL_H_

#include <cstdint>
#include <string>
#include <unordered_map>

#include "store/store.h"
#include "util/clock.h"

namespace hut::sql {

// Rows written without a time get wall_ms() (util/clock.h).
using hut::wall_ms;

// The result of a write that returns nothing.
struct Unit {};

// Writer-thread caches of room and user row ids. Dropped whenever a write is
// rolled back, since the rows they name may have gone with it.
struct RowCaches {
  std::unordered_map<std::string, int64_t> rids;
  struct CachedUser {
    int64_t uid;
    std::string name;
    std::string avatar;
  };
  std::unordered_map<std::string, CachedUser> users;
  void clear_caches() {
    rids.clear();
    users.clear();
  }
};

// A query of connection type Conn.
template <typename Conn>
using Query = typename Conn::Query;

inline Status room_missing(std::string_view room) {
  return Status::not_found("no room '" + std::string(room) + "'");
}

}  // namespace hut::sql

#endif  // HUTOPIA_STORE_SQL_H_
