#include "store/sqlite_conn.h"

#include <sqlite3.h>
#include <uv.h>

namespace hut::sqlite {
namespace {

// The WAL size (in pages) past which the checkpoint thread is woken (SQLite's
// own default), and the size past which the writer checkpoints by itself.
// Under a steady stream of commits the checkpoint thread never catches up with
// the last frame, so the WAL would never start over and would keep growing;
// the writer's own checkpoint finds most frames copied already, and the WAL
// starts over at its next transaction.
constexpr int kCheckpointFrames = 1000;
constexpr int kInlineCheckpointFrames = 4000;

// PASSIVE: copies what no reader still needs, never waits for one.
void checkpoint(sqlite3* db) {
  sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

}  // namespace

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

Status Conn::begin_batch() { return SqliteQuery(*this, "BEGIN IMMEDIATE").run(); }

Status Conn::savepoint() { return SqliteQuery(*this, "SAVEPOINT w").run(); }

Status Conn::release(bool keep) {
  if (!keep) {
    clear_caches();
    HUT_RETURN_IF_ERROR(SqliteQuery(*this, "ROLLBACK TO w").run());
  }
  return SqliteQuery(*this, "RELEASE w").run();
}

Status Conn::still_open() {
  if (in_transaction()) return Status();
  // SQLite rolled the whole transaction back (disk full, I/O error).
  return Status::io_error(std::string("store: the transaction was rolled back: ") + sqlite3_errmsg(db()));
}

Status Conn::commit() { return SqliteQuery(*this, "COMMIT").run(); }

void Conn::abandon() {
  rollback_if_open();
  clear_caches();
}

Status Conn::begin_read() { return exec("BEGIN"); }

Status Conn::end_read() { return exec("COMMIT"); }

uint64_t Conn::after_batch(bool* wake_maintenance) {
  *wake_maintenance = false;
  if (wal_frames >= kInlineCheckpointFrames) {
    uint64_t start = uv_hrtime();
    checkpoint(db());
    wal_frames = 0;
    return (uv_hrtime() - start) / 1000;
  }
  *wake_maintenance = wal_frames >= kCheckpointFrames;
  return 0;
}

void Conn::maintain() { checkpoint(db()); }

}  // namespace hut::sqlite
