#include "store/sqlite_migrate.h"

#include <string>

#include "store/sqlite_db.h"

namespace hut {
namespace {

// One migration step under an immediate transaction. Sets *done when the file
// is at the newest version already.
Status migrate_step(sqlite3* db, const SqliteSchema& schema, bool* done) {
  const std::string noun = schema.noun;
  HUT_RETURN_IF_ERROR(sqlite_exec(db, "BEGIN IMMEDIATE", noun));
  auto fail = [&](Status s) {
    (void)sqlite_exec(db, "ROLLBACK", noun);
    return s;
  };
  auto version = sqlite_int(db, "PRAGMA user_version", noun);
  if (!version.ok()) return fail(version.status());
  auto app = sqlite_int(db, "PRAGMA application_id", noun);
  if (!app.ok()) return fail(app.status());
  int64_t newest = static_cast<int64_t>(schema.steps.size());
  if (*app != 0 && *app != schema.application_id) {
    return fail(Status::failed_precondition("the file is not a Hutopia " + noun + " (its application_id is " +
                                            std::to_string(*app) + ")"));
  }
  if (*version == 0) {
    auto tables = sqlite_int(db, "SELECT count(*) FROM sqlite_schema", noun);
    if (!tables.ok()) return fail(tables.status());
    if (*tables != 0) {
      return fail(
          Status::failed_precondition("the file is not a Hutopia " + noun + " (it holds other tables)"));
    }
  }
  if (*version > newest) {
    return fail(
        Status::failed_precondition("the " + noun + "'s schema version " + std::to_string(*version) +
                                    " is newer than this build knows (" + std::to_string(newest) +
                                    "); it was written by a newer Hutopia: upgrade Hutopia to open it"));
  }
  if (*version == newest) {
    *done = true;
    return sqlite_exec(db, "COMMIT", noun);
  }
  const SqliteMigration& m = schema.steps[static_cast<size_t>(*version)];
  if (m.version != *version + 1)
    return fail(Status::internal("the " + noun + "'s migrations are out of order"));
  Status s = sqlite_exec(db, m.sql, noun);
  if (!s.ok()) {
    return fail(Status::internal(noun + " schema migration to version " + std::to_string(m.version) +
                                 " failed: " + std::string(s.message())));
  }
  std::string set = "PRAGMA user_version = " + std::to_string(m.version);
  if (schema.application_id != 0) set += "; PRAGMA application_id = " + std::to_string(schema.application_id);
  s = sqlite_exec(db, set.c_str(), noun);
  if (!s.ok()) return fail(s);
  return sqlite_exec(db, "COMMIT", noun);
}

}  // namespace

Status sqlite_migrate(sqlite3* db, const SqliteSchema& schema) {
  for (size_t steps = 0; steps <= schema.steps.size(); ++steps) {
    bool done = false;
    HUT_RETURN_IF_ERROR(migrate_step(db, schema, &done));
    if (done) return Status();
  }
  return Status::internal(std::string(schema.noun) + " schema migration did not reach the newest version");
}

}  // namespace hut
