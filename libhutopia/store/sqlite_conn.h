// A connection of the SQLite store: the shared connection (sqlite_db.h) as
// the executor drives it (executor.h), with the writer thread's caches of row
// ids (sql.h) and the frame count of its WAL hook.
// Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_SQLITE_CONN_H_
#define HUTOPIA_STORE_SQLITE_CONN_H_

#include <cstdint>
#include <memory>
#include <string>

#include "store/executor.h"
#include "store/sql.h"
#include "store/sqlite_db.h"

namespace hut::sqlite {

using sql::Unit;

// Used by one thread at a time.
class Conn : public SqliteDb, public store::WorkerConn, public sql::RowCaches {
 public:
  using Query = SqliteQuery;
  using Transaction = SqliteTransaction;
  // The resume credentials of user ?1 to drop: expired at ?2, or past the
  // newest ?3.
  static constexpr const char* kStaleResumeSql =
      "DELETE FROM resume WHERE user_id = ?1 AND (expires_ts <= ?2 OR hash IN (SELECT hash FROM resume "
      "WHERE user_id = ?1 ORDER BY expires_ts DESC LIMIT -1 OFFSET ?3))";
  // SQLite has no INSERT or UPDATE inside WITH: a post is three statements.
  static constexpr bool kWritesInWith = false;

  enum class Mode { kRead, kWrite, kDurableWrite };
  static Result<std::unique_ptr<Conn>> connect(const std::string& path, Mode mode, int busy_ms);

  // Makes the connection count the WAL's frames after each commit into
  // wal_frames (the writer checkpoints by them).
  void watch_wal();
  // Frames in the WAL after the last commit (set by the WAL hook).
  int wal_frames = 0;

  // store::WorkerConn
  Status begin_batch() override;
  Status savepoint() override;
  Status release(bool keep) override;
  Status still_open() override;
  Status commit() override;
  void abandon() override;
  Status begin_read() override;
  Status end_read() override;
  uint64_t after_batch(bool* wake_maintenance) override;
  void maintain() override;
};

}  // namespace hut::sqlite

#endif  // HUTOPIA_STORE_SQLITE_CONN_H_
