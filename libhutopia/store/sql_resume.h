// The SQL of resume credentials (hashes of the secrets that let a session
// come back without a new token).
#ifndef HUTOPIA_STORE_SQL_RESUME_H_
#define HUTOPIA_STORE_SQL_RESUME_H_

#include "store/sql.h"

namespace hut::sql {

// Credentials kept per user: the newest ones.
constexpr int64_t kResumePerUser = 32;

// Stores a credential's hash and drops the user's expired ones and all but
// the newest kResumePerUser.
template <typename Conn>
Status insert_resume(Conn& c, const std::string& hash, const UserRecord& user, int64_t expires_ts) {
  {
    Query<Conn> q(c,
                  "INSERT INTO resume (hash, user_id, name, avatar, expires_ts) VALUES (?1, ?2, ?3, ?4, ?5)");
    HUT_RETURN_IF_ERROR(q.bind(1, hash)
                            .bind(2, user.id)
                            .bind(3, user.name)
                            .bind_or_null(4, user.avatar)
                            .bind(5, expires_ts)
                            .run());
  }
  Query<Conn> q(c, Conn::kStaleResumeSql);
  return q.bind(1, user.id).bind(2, wall_ms()).bind(3, kResumePerUser).run();
}

template <typename Conn>
Result<Unit> put_resume(Conn& c, const std::string& hash, const UserRecord& user, int64_t expires_ts) {
  HUT_RETURN_IF_ERROR(insert_resume(c, hash, user, expires_ts));
  return Unit{};
}

template <typename Conn>
Result<UserRecord> redeem_resume(Conn& c, const std::string& hash, int64_t now, const std::string& new_hash,
                                 int64_t new_expires_ts) {
  UserRecord user;
  int64_t expires = 0;
  {
    Query<Conn> q(c, "DELETE FROM resume WHERE hash = ?1 RETURNING user_id, name, avatar, expires_ts");
    q.bind(1, hash);
    if (!q.step()) return q.no_row(Status::not_found("unknown or used resume credential"));
    user.id = q.str(0);
    user.name = q.str(1);
    user.avatar = q.str(2);
    expires = q.i64(3);
    HUT_RETURN_IF_ERROR(q.drain());
  }
  if (expires <= now) return Status::not_found("expired resume credential");
  HUT_RETURN_IF_ERROR(insert_resume(c, new_hash, user, new_expires_ts));
  return user;
}

}  // namespace hut::sql

#endif  // HUTOPIA_STORE_SQL_RESUME_H_
