// The schema of the SQLite store, one migration step a version. A new
// version is a new step at the end; a step once released never changes.
#include "store/sqlite_store.h"

namespace hut {
namespace {

constexpr SqliteMigration kMigrations[] = {
    {1, R"sql(
CREATE TABLE users (
  uid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  avatar TEXT
);
CREATE TABLE rooms (
  rid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL DEFAULT '',
  private INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1)),
  created_ts INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
  mute_all INTEGER NOT NULL DEFAULT 0 CHECK (mute_all IN (0, 1)),
  dm_key TEXT UNIQUE
);
CREATE TABLE members (
  rid INTEGER NOT NULL REFERENCES rooms(rid) ON DELETE CASCADE,
  uid INTEGER NOT NULL REFERENCES users(uid),
  role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'moderator', 'master')),
  mute_until INTEGER,
  joined_ts INTEGER NOT NULL,
  PRIMARY KEY (rid, uid)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(uid);
CREATE TABLE messages (
  rid INTEGER NOT NULL REFERENCES rooms(rid) ON DELETE CASCADE,
  seq INTEGER NOT NULL CHECK (seq >= 1),
  ts INTEGER NOT NULL,
  uid INTEGER NOT NULL REFERENCES users(uid),
  text TEXT NOT NULL,
  data TEXT,
  edited_ts INTEGER,
  deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
  PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX messages_deleted ON messages(rid, seq) WHERE deleted = 1;
CREATE TABLE read_markers (
  rid INTEGER NOT NULL REFERENCES rooms(rid) ON DELETE CASCADE,
  uid INTEGER NOT NULL REFERENCES users(uid),
  seq INTEGER NOT NULL CHECK (seq >= 0),
  PRIMARY KEY (rid, uid)
) WITHOUT ROWID;
CREATE TABLE plugin_kv (
  plugin TEXT NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (plugin, key)
) WITHOUT ROWID;
)sql"},
    {2, R"sql(
CREATE TABLE resume (
  hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  name TEXT NOT NULL,
  avatar TEXT,
  expires_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX resume_by_user ON resume(user_id, expires_ts);
)sql"},
    {3, R"sql(
CREATE TABLE sanctions (
  rid INTEGER NOT NULL REFERENCES rooms(rid) ON DELETE CASCADE,
  user_id TEXT NOT NULL,
  mute_until INTEGER,
  banned INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
  PRIMARY KEY (rid, user_id)
) WITHOUT ROWID;
ALTER TABLE rooms ADD COLUMN creator TEXT;
)sql"},
};

}  // namespace

std::span<const SqliteMigration> sqlite_store_migrations() { return kMigrations; }

SqliteSchema sqlite_store_schema() { return SqliteSchema{kMigrations, kSqliteApplicationId, "store"}; }

}  // namespace hut
