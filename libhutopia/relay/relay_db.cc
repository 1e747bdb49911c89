#include "relay/relay_db.h"

#include <sys/stat.h>

#include "store/pg_migrate.h"
#include "store/store.h"

namespace hut::relay {

namespace {

// Files written before the application_id was set carry 0, which the
// migration runner accepts. Written in SQLite's dialect; pg_migrate rewrites
// the types for PostgreSQL.
const SqliteMigration kMigrations[] = {
    {1,
     "CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
     " password_hash TEXT NOT NULL, avatar_type TEXT, avatar BLOB, created_ms INTEGER NOT NULL);"
     "CREATE TABLE sessions (hash BLOB PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE "
     "CASCADE,"
     " expires_ms INTEGER NOT NULL);"
     "CREATE INDEX sessions_expiry ON sessions(expires_ms);"
     "CREATE TABLE spaces (id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL,"
     " owner_id TEXT NOT NULL REFERENCES users(id), created_ms INTEGER NOT NULL);"},
    // The space address each user last confirmed on the login page.
    {2,
     "CREATE TABLE confirmations (user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     " space_id TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE, url TEXT NOT NULL,"
     " confirmed_ms INTEGER NOT NULL, PRIMARY KEY (user_id, space_id));"
     "CREATE INDEX spaces_owner ON spaces(owner_id);"},
};

constexpr const char* kNoun = "relay database";

}  // namespace

SqliteSchema relay_schema() { return SqliteSchema{kMigrations, kRelayApplicationId, kNoun}; }

Status RelayDb::open(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  Result<StoreUrl> parsed = parse_store_url(url);
  if (!parsed.ok())
    return Status::invalid_argument("relay database URL '" + url +
                                    "': expected sqlite://<path> or postgres://...");
  if (parsed->postgres) {
    auto conn = pg::Conn::connect(url);
    if (!conn.ok()) return with_context(conn.status(), std::string(kNoun) + ": ");
    pg_ = std::move(*conn);
    return with_context(pg::migrate(*pg_, relay_schema(), kRelayVersionTable), std::string(kNoun) + ": ");
  }
  const std::string& path = parsed->path;
  SqliteOpenOptions options;
  options.durable = true;
  options.name = kNoun;
  HUT_RETURN_IF_ERROR(lite_.open(path, options));
  chmod(path.c_str(), 0600);
  return with_context(sqlite_migrate(lite_.db(), relay_schema()), path + ": ");
}

RelayDb::Locked RelayDb::lock() {
  std::unique_lock<std::mutex> hold(mu_);
  if (pg_) (void)pg_->ensure_open();
  return Locked{std::move(hold), pg_ ? nullptr : &lite_, pg_.get()};
}

RelayQuery::RelayQuery(const RelayDb::Locked& l, const char* sql) {
  if (l.pg != nullptr) {
    pg_.emplace(*l.pg, sql);
  } else {
    lite_.emplace(*l.lite, sql);
  }
}

void RelayQuery::set(int i, const BindValue& v) {
  if (!status_.ok()) return;
  status_ = with([&](auto& q) {
    switch (v.kind) {
      case BindValue::Kind::kNull:
        q.bind_null(i);
        break;
      case BindValue::Kind::kInt:
        q.bind(i, v.num);
        break;
      case BindValue::Kind::kText:
        q.bind(i, v.bytes);
        break;
      case BindValue::Kind::kBlob:
        q.bind_blob(i, v.bytes);
        break;
    }
    return q.status();
  });
}

bool RelayQuery::step() {
  if (!status_.ok()) return false;
  bool row = with([](auto& q) { return q.step(); });
  status_ = with([](auto& q) { return q.status(); });
  return row;
}

}  // namespace hut::relay
