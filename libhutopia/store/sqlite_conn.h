// A connection of the SQLite store: the shared connection (sqlite_db.h) with
// the writer thread's caches of row ids and the frame count of its WAL hook.
// Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_SQLITE_CONN_H_
#define HUTOPIA_STORE_SQLITE_CONN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "store/sqlite_db.h"

namespace hut::sqlite {

// The result of a write that returns nothing.
struct Unit {};

// Used by one thread at a time.
class Conn : public SqliteDb {
 public:
  enum class Mode { kRead, kWrite, kDurableWrite };
  static Result<std::unique_ptr<Conn>> connect(const std::string& path, Mode mode, int busy_ms);

  // Makes the connection count the WAL's frames after each commit into
  // wal_frames (the writer checkpoints by them).
  void watch_wal();
  // Frames in the WAL after the last commit (set by the WAL hook).
  int wal_frames = 0;

  // Writer-thread caches of room and user row ids. Dropped whenever a write
  // is rolled back, since the rows they name may have gone with it.
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

}  // namespace hut::sqlite

#endif  // HUTOPIA_STORE_SQLITE_CONN_H_
