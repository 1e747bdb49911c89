// Backup and restore of a daemon's data dir, shared by spaced and relayd.
//
// A backup is a folder: the SQLite database copied with SQLite's online
// backup API (a consistent snapshot, taken while the daemon runs and writes),
// beside a copy of every other file of the data dir (the relay's keys, the
// chat plugin's files, ...). A restore puts such a folder back into a data
// dir; it is refused while a daemon holds the data dir's lock, so it never
// replaces a database under a running daemon.
#ifndef HUTOPIA_DAEMONS_COMMON_BACKUP_H_
#define HUTOPIA_DAEMONS_COMMON_BACKUP_H_

#include <string>

#include <hutopia/status.h>

namespace hut::daemon {

// The lock a running daemon holds on its data dir (an flock(2) on
// <dir>/.lock, made with the dir if missing, mode 0700). Held until the
// process exits; the fd is left open on purpose. Fails with
// failed_precondition when another process holds it.
Status lock_data_dir(const std::string& dir);

struct DataDir {
  std::string dir;       // the data dir
  std::string database;  // the SQLite file, inside dir or elsewhere
  int application_id;    // PRAGMA application_id a restored database must carry (0: any)
};

// Copies `data` into the new folder `out` (which must not exist yet):
// out/<database file name> and every other file of the data dir under its own
// relative path. The database's -wal, -shm and -journal files and the lock are
// left out. The copy is checked with PRAGMA integrity_check.
Status backup(const DataDir& data, const std::string& out);

// Restores the folder `in` (made by backup()) into `data`: checks the
// database (integrity and application id), refuses while the data dir is
// locked by a running daemon, then copies the other files and puts the
// database in place atomically (a temporary file, fsync, rename), removing
// the old database's -wal and -shm.
Status restore(const DataDir& data, const std::string& in);

}  // namespace hut::daemon

#endif  // HUTOPIA_DAEMONS_COMMON_BACKUP_H_
