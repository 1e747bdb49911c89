#include "backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

namespace hut::daemon {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLockName = ".lock";

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

Result<Db> open_db(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK)
    return Status::io_error("cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

Result<std::string> single_text(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK)
    return Status::io_error(std::string(sql) + ": " + sqlite3_errmsg(db));
  std::string out;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return Status::io_error(std::string(sql) + ": " + sqlite3_errmsg(db));
  return out;
}

// integrity_check says "ok", and the application id is the expected one.
Status check_database(const std::string& path, int application_id) {
  Result<Db> db = open_db(path, SQLITE_OPEN_READONLY);
  if (!db.ok()) return db.status();
  Result<std::string> integrity = single_text(db->get(), "PRAGMA integrity_check");
  if (!integrity.ok()) return integrity.status();
  if (*integrity != "ok") return Status::failed_precondition(path + " is damaged: " + *integrity);
  if (application_id != 0) {
    Result<std::string> app = single_text(db->get(), "PRAGMA application_id");
    if (!app.ok()) return app.status();
    if (*app != std::to_string(application_id))
      return Status::failed_precondition(path + " is not a database of this daemon (application_id " + *app +
                                         ")");
  }
  return Status();
}

bool is_database_file(const fs::path& rel, const std::string& db_name) {
  std::string n = rel.string();
  return n == db_name || n == db_name + "-wal" || n == db_name + "-shm" || n == db_name + "-journal" ||
         n == kLockName;
}

Status fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error("cannot open " + path + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::io_error("cannot fsync " + path + ": " + std::strerror(errno));
  return Status();
}

// Copies every regular file under `from` to `to` (same relative paths),
// private (0600 files, 0700 folders), except those `skip` names.
template <typename Skip>
Status copy_files(const fs::path& from, const fs::path& to, Skip skip) {
  std::error_code ec;
  if (!fs::exists(from, ec)) return Status();
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    fs::path rel = fs::relative(it->path(), from, ec);
    if (ec) break;
    if (skip(rel)) continue;
    fs::path dest = to / rel;
    if (it->is_directory(ec)) {
      fs::create_directories(dest, ec);
      if (!ec) fs::permissions(dest, fs::perms::owner_all, ec);
    } else if (it->is_regular_file(ec)) {
      fs::create_directories(dest.parent_path(), ec);
      if (!ec) fs::copy_file(it->path(), dest, fs::copy_options::overwrite_existing, ec);
      if (!ec) fs::permissions(dest, fs::perms::owner_read | fs::perms::owner_write, ec);
    }
    if (ec) return Status::io_error("cannot copy " + it->path().string() + ": " + ec.message());
  }
  if (ec) return Status::io_error("cannot read " + from.string() + ": " + ec.message());
  return Status();
}

}  // namespace

Status lock_data_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::io_error("cannot create " + dir + ": " + std::strerror(errno));
  std::string path = dir + "/" + kLockName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return Status::failed_precondition("another process (a running daemon?) uses " + dir);
    return Status::io_error("cannot lock " + path + ": " + std::strerror(err));
  }
  return Status();  // fd stays open: the lock lasts as long as the process
}

Status backup(const DataDir& data, const std::string& out) {
  std::error_code ec;
  if (fs::exists(out, ec)) return Status::already_exists(out + " exists; a backup goes into a new folder");
  if (!fs::exists(data.database, ec)) return Status::not_found("no database at " + data.database);
  fs::create_directories(out, ec);
  if (ec) return Status::io_error("cannot create " + out + ": " + ec.message());
  fs::permissions(out, fs::perms::owner_all, ec);
  const std::string db_name = fs::path(data.database).filename().string();
  const std::string copy = out + "/" + db_name;

  // The online backup: one step copies a consistent snapshot while the
  // daemon goes on writing through the WAL.
  Result<Db> src = open_db(data.database, SQLITE_OPEN_READONLY);
  if (!src.ok()) return src.status();
  Result<Db> dst = open_db(copy, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!dst.ok()) return dst.status();
  sqlite3_backup* b = sqlite3_backup_init(dst->get(), "main", src->get(), "main");
  if (!b) return Status::io_error("cannot start the backup: " + std::string(sqlite3_errmsg(dst->get())));
  int rc;
  do {
    rc = sqlite3_backup_step(b, -1);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(50);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE)
    return Status::io_error("backup of " + data.database + " failed: " + sqlite3_errstr(rc));
  dst.value().reset();
  src.value().reset();
  ::chmod(copy.c_str(), 0600);
  HUT_RETURN_IF_ERROR(check_database(copy, data.application_id));

  // Everything else of the data dir; the database itself is already there.
  fs::path db_rel = fs::path(data.database).lexically_relative(data.dir);
  HUT_RETURN_IF_ERROR(copy_files(data.dir, out, [&](const fs::path& rel) {
    return is_database_file(rel, db_rel.string()) || is_database_file(rel, db_name);
  }));
  return fsync_path(copy);
}

Status restore(const DataDir& data, const std::string& in) {
  const std::string db_name = fs::path(data.database).filename().string();
  const std::string source = in + "/" + db_name;
  std::error_code ec;
  if (!fs::exists(source, ec))
    return Status::not_found(in + " holds no " + db_name + ": not a backup of this daemon");
  HUT_RETURN_IF_ERROR(check_database(source, data.application_id));
  // Refused while a daemon runs on the data dir; the lock is then ours
  // until this process exits, so none starts meanwhile.
  HUT_RETURN_IF_ERROR(lock_data_dir(data.dir));

  HUT_RETURN_IF_ERROR(
      copy_files(in, data.dir, [&](const fs::path& rel) { return is_database_file(rel, db_name); }));
  fs::create_directories(fs::path(data.database).parent_path(), ec);
  const std::string tmp = data.database + ".restoring";
  fs::copy_file(source, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::io_error("cannot copy " + source + ": " + ec.message());
  ::chmod(tmp.c_str(), 0600);
  HUT_RETURN_IF_ERROR(fsync_path(tmp));
  for (const char* suffix : {"-wal", "-shm", "-journal"}) fs::remove(data.database + suffix, ec);
  if (::rename(tmp.c_str(), data.database.c_str()) != 0)
    return Status::io_error("cannot put " + data.database + " in place: " + std::strerror(errno));
  return fsync_path(fs::path(data.database).parent_path().string());
}

}  // namespace hut::daemon
