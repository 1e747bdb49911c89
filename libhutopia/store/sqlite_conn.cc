#include "store/sqlite_conn.h"

#include <sqlite3.h>

namespace hut::sqlite {

Result<std::unique_ptr<Conn>> Conn::connect(const std::string& path, Mode mode, int busy_ms) {
  auto conn = std::make_unique<Conn>();
  SqliteOpenOptions options;
  options.read_only = mode == Mode::kRead;
  options.durable = mode == Mode::kDurableWrite;
  options.busy_timeout_ms = busy_ms;
  HUT_RETURN_IF_ERROR(conn->open(path, options));
  return conn;
}

void Conn::watch_wal() {
  sqlite3_wal_hook(
      db(),
      [](void* self, sqlite3*, const char*, int frames) {
        static_cast<Conn*>(self)->wal_frames = frames;
        return SQLITE_OK;
      },
      this);
}

}  // namespace hut::sqlite
