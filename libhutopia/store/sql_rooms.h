// The SQL of rooms, users, members and sanctions.
#ifndef HUTOPIA_STORE_SQL_ROOMS_H_
#define HUTOPIA_STORE_SQL_ROOMS_H_

#include <ctime>

#include "store/sql.h"

namespace hut::sql {

// The room's row id and last_seq, read without the cache.
template <typename Conn>
Result<std::pair<int64_t, uint64_t>> lookup_room(Conn& c, const std::string& room);
// Writer: the room's row id, cached.
template <typename Conn>
Result<int64_t> writer_rid(Conn& c, const std::string& room);
// Writer: the user's row id. With a name, the cache entry (name, avatar) is
// refreshed when it differs; without one, a missing user is added with an
// empty name.
template <typename Conn>
Result<int64_t> writer_uid(Conn& c, const UserRecord& user);

template <typename Q>
RoomRecord read_room(const Q& q) {
  RoomRecord r;
  r.id = q.str(0);
  r.topic = q.str(1);
  r.is_private = q.i64(2) != 0;
  r.created_ts = q.i64(3);
  r.last_seq = static_cast<uint64_t>(q.i64(4));
  r.mute_all = q.i64(5) != 0;
  r.dm_key = q.str(6);
  return r;
}

// Columns: room id, user id, name, avatar, role, mute_until, joined_ts.
template <typename Q>
MemberRecord read_member(const Q& q) {
  MemberRecord m;
  m.room = q.str(0);
  m.user.id = q.str(1);
  m.user.name = q.str(2);
  m.user.avatar = q.str(3);
  if (!parse_role(q.str(4), &m.role)) m.role = Role::kMember;
  m.mute_until = q.opt_i64(5);
  m.joined_ts = q.i64(6);
  return m;
}

inline Status not_member(const std::string& room, const std::string& user) {
  return Status::not_found("'" + user + "' is not a member of room '" + room + "'");
}

// The row id of a user that must exist already (no insert).
template <typename Conn>
Result<int64_t> existing_uid(Conn& c, const std::string& user) {
  auto it = c.users.find(user);
  if (it != c.users.end()) return it->second.uid;
  Query<Conn> q(c, "SELECT uid FROM users WHERE id = ?1");
  q.bind(1, user);
  if (q.step()) return q.i64(0);
  return q.no_row(Status::not_found("no user '" + user + "'"));
}

template <typename Conn>
Status upsert_member(Conn& c, int64_t rid, const MemberRecord& m) {
  auto uid = writer_uid(c, m.user);
  if (!uid.ok()) return uid.status();
  Query<Conn> q(
      c,
      "INSERT INTO members (rid, uid, role, mute_until, joined_ts) VALUES (?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT (rid, uid) DO UPDATE SET role = excluded.role, mute_until = excluded.mute_until, "
      "joined_ts = excluded.joined_ts");
  return q.bind(1, rid)
      .bind(2, *uid)
      .bind(3, role_name(m.role))
      .bind(4, m.mute_until)
      .bind(5, m.joined_ts)
      .run();
}

template <typename Conn>
Result<int64_t> insert_room(Conn& c, const RoomRecord& room, const std::string& key) {
  if (room.id.empty()) return Status::invalid_argument("empty room id");
  {
    Query<Conn> q(c, "SELECT 1 FROM rooms WHERE id = ?1");
    q.bind(1, room.id);
    if (q.step()) return Status::already_exists("room '" + room.id + "' exists");
    HUT_RETURN_IF_ERROR(q.status());
  }
  Query<Conn> q(c,
                "INSERT INTO rooms (id, topic, private, created_ts, mute_all, dm_key, creator) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING rid");
  q.bind(1, room.id)
      .bind(2, room.topic)
      .bind(3, int64_t{room.is_private ? 1 : 0})
      .bind(4, room.created_ts ? room.created_ts : wall_ms())
      .bind(5, int64_t{room.mute_all ? 1 : 0})
      .bind_or_null(6, key)
      .bind_or_null(7, room.creator);
  if (!q.step()) return q.no_row(Status::internal("room insert returned no row"));
  int64_t rid = q.i64(0);
  c.rids[room.id] = rid;
  return rid;
}

// Removes a member, keeping their mute (or its absence) in `sanctions` so
// that leaving and joining again does not end it. false: not a member.
template <typename Conn>
Result<bool> remove_keeping_mute(Conn& c, int64_t rid, const std::string& user) {
  auto uid = existing_uid(c, user);
  if (!uid.ok()) return uid.status().is_not_found() ? Result<bool>(false) : Result<bool>(uid.status());
  std::optional<int64_t> mute;
  {
    Query<Conn> q(c, "DELETE FROM members WHERE rid = ?1 AND uid = ?2 RETURNING mute_until");
    q.bind(1, rid).bind(2, *uid);
    if (!q.step()) {
      HUT_RETURN_IF_ERROR(q.status());
      return false;
    }
    mute = q.opt_i64(0);
    HUT_RETURN_IF_ERROR(q.drain());
  }
  if (mute.has_value()) {
    Query<Conn> q(c,
                  "INSERT INTO sanctions (rid, user_id, mute_until) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (rid, user_id) DO UPDATE SET mute_until = excluded.mute_until");
    HUT_RETURN_IF_ERROR(q.bind(1, rid).bind(2, user).bind(3, mute).run());
  } else {
    Query<Conn> q(c, "UPDATE sanctions SET mute_until = NULL WHERE rid = ?1 AND user_id = ?2");
    HUT_RETURN_IF_ERROR(q.bind(1, rid).bind(2, user).run());
    Query<Conn> d(c, "DELETE FROM sanctions WHERE rid = ?1 AND user_id = ?2 AND banned = 0");
    HUT_RETURN_IF_ERROR(d.bind(1, rid).bind(2, user).run());
  }
  return true;
}

// A write to one member row: `sql` has ?1 = room row id, ?2 = user row id
// and ?3 = the new value; no row changed means the user is no member.
template <typename Conn, typename Value>
Result<Unit> member_update(Conn& c, const std::string& room, const std::string& user, const char* sql,
                           Value value) {
  auto rid = writer_rid(c, room);
  if (!rid.ok()) return rid.status();
  auto uid = existing_uid(c, user);
  if (!uid.ok()) return uid.status().is_not_found() ? not_member(room, user) : uid.status();
  Query<Conn> q(c, sql);
  HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, *uid).bind(3, value).run());
  if (c.changes() == 0) return not_member(room, user);
  return Unit{};
}

// An UPDATE of one column of a room row by its id (?1); ?2 = the new value.
template <typename Conn, typename Value>
Result<Unit> room_update(Conn& c, const std::string& room, const char* sql, Value value) {
  Query<Conn> q(c, sql);
  HUT_RETURN_IF_ERROR(q.bind(1, room).bind(2, value).run());
  if (c.changes() == 0) return room_missing(room);
  return Unit{};
}

template <typename Conn>
Result<std::pair<int64_t, uint64_t>> lookup_room(Conn& c, const std::string& room) {
  Query<Conn> q(c, "SELECT rid, last_seq FROM rooms WHERE id = ?1");
  q.bind(1, room);
  if (q.step()) return std::make_pair(q.i64(0), static_cast<uint64_t>(q.i64(1)));
  return q.no_row(room_missing(room));
}

template <typename Conn>
Result<int64_t> writer_rid(Conn& c, const std::string& room) {
  auto it = c.rids.find(room);
  if (it != c.rids.end()) return it->second;
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  c.rids.emplace(room, found->first);
  return found->first;
}

template <typename Conn>
Result<int64_t> writer_uid(Conn& c, const UserRecord& user) {
  if (user.id.empty()) return Status::invalid_argument("empty user id");
  auto it = c.users.find(user.id);
  if (it != c.users.end() &&
      (user.name.empty() || (it->second.name == user.name && it->second.avatar == user.avatar))) {
    return it->second.uid;
  }
  if (!user.name.empty()) {
    Query<Conn> q(c,
                  "INSERT INTO users (id, name, avatar) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET "
                  "name = excluded.name, avatar = excluded.avatar RETURNING uid");
    q.bind(1, user.id).bind(2, user.name).bind_or_null(3, user.avatar);
    if (!q.step()) return q.no_row(Status::internal("user upsert returned no row"));
    int64_t uid = q.i64(0);
    c.users[user.id] = RowCaches::CachedUser{uid, user.name, user.avatar};
    return uid;
  }
  {
    Query<Conn> ins(c, "INSERT INTO users (id) VALUES (?1) ON CONFLICT (id) DO NOTHING");
    HUT_RETURN_IF_ERROR(ins.bind(1, user.id).run());
  }
  Query<Conn> q(c, "SELECT uid, name, avatar FROM users WHERE id = ?1");
  q.bind(1, user.id);
  if (!q.step()) return q.no_row(Status::internal("user vanished"));
  int64_t uid = q.i64(0);
  c.users[user.id] = RowCaches::CachedUser{uid, q.str(1), q.str(2)};
  return uid;
}

template <typename Conn>
Result<StoreState> load_state(Conn& c) {
  typename Conn::Transaction txn(c);
  HUT_RETURN_IF_ERROR(txn.begin());
  StoreState state;
  {
    Query<Conn> q(c,
                  "SELECT id, topic, private, created_ts, last_seq, mute_all, dm_key, creator FROM rooms "
                  "ORDER BY id");
    while (q.step()) {
      state.rooms.push_back(read_room(q));
      state.rooms.back().creator = q.str(7);
    }
    HUT_RETURN_IF_ERROR(q.status());
  }
  {
    Query<Conn> q(c,
                  "SELECT r.id, s.user_id, s.mute_until, s.banned FROM sanctions s JOIN rooms r ON r.rid = "
                  "s.rid ORDER BY r.id, s.user_id");
    while (q.step()) {
      SanctionRecord sr;
      sr.room = q.str(0);
      sr.user = q.str(1);
      sr.mute_until = q.opt_i64(2);
      sr.banned = q.i64(3) != 0;
      state.sanctions.push_back(std::move(sr));
    }
    HUT_RETURN_IF_ERROR(q.status());
  }
  {
    Query<Conn> q(c, "SELECT id, name, avatar FROM users ORDER BY id");
    while (q.step()) state.users.push_back(UserRecord{q.str(0), q.str(1), q.str(2)});
    HUT_RETURN_IF_ERROR(q.status());
  }
  {
    Query<Conn> q(
        c,
        "SELECT r.id, u.id, u.name, u.avatar, m.role, m.mute_until, m.joined_ts FROM members m "
        "JOIN rooms r ON r.rid = m.rid JOIN users u ON u.uid = m.uid ORDER BY r.id, m.joined_ts, u.id");
    while (q.step()) state.members.push_back(read_member(q));
    HUT_RETURN_IF_ERROR(q.status());
  }
  {
    Query<Conn> q(c,
                  "SELECT r.id, u.id, k.seq FROM read_markers k JOIN rooms r ON r.rid = k.rid "
                  "JOIN users u ON u.uid = k.uid ORDER BY r.id, u.id");
    while (q.step()) {
      state.read_markers.push_back(ReadMarker{q.str(0), q.str(1), static_cast<uint64_t>(q.i64(2))});
    }
    HUT_RETURN_IF_ERROR(q.status());
  }
  {
    // The partial index messages_deleted holds exactly these rows.
    Query<Conn> q(c,
                  "SELECT r.id, m.seq FROM messages m JOIN rooms r ON r.rid = m.rid WHERE m.deleted = 1 "
                  "ORDER BY r.id, m.seq");
    while (q.step()) state.deleted.push_back(MessageRef{q.str(0), static_cast<uint64_t>(q.i64(1))});
    HUT_RETURN_IF_ERROR(q.status());
  }
  HUT_RETURN_IF_ERROR(txn.commit());
  return state;
}

template <typename Conn>
Result<Unit> put_user(Conn& c, const UserRecord& user) {
  if (user.name.empty()) return Status::invalid_argument("a user needs a name");
  auto uid = writer_uid(c, user);
  if (!uid.ok()) return uid.status();
  return Unit{};
}

template <typename Conn>
Result<Unit> create_room(Conn& c, const RoomRecord& room, const std::vector<MemberRecord>& members) {
  auto rid = insert_room(c, room, "");
  if (!rid.ok()) return rid.status();
  for (const auto& m : members) HUT_RETURN_IF_ERROR(upsert_member(c, *rid, m));
  return Unit{};
}

template <typename Conn>
Result<Unit> delete_room(Conn& c, const std::string& room) {
  auto rid = writer_rid(c, room);
  if (!rid.ok()) return rid.status();
  Query<Conn> q(c, "DELETE FROM rooms WHERE rid = ?1");
  HUT_RETURN_IF_ERROR(q.bind(1, *rid).run());
  c.rids.erase(room);
  return Unit{};
}

template <typename Conn>
Result<DmResult> open_dm(Conn& c, const UserRecord& a, const UserRecord& b, const std::string& new_room_id,
                         int64_t ts) {
  std::string key = dm_key(a.id, b.id);
  {
    Query<Conn> q(
        c,
        "SELECT id, topic, private, created_ts, last_seq, mute_all, dm_key FROM rooms WHERE dm_key = "
        "?1");
    q.bind(1, key);
    if (q.step()) return DmResult{read_room(q), false};
    HUT_RETURN_IF_ERROR(q.status());
  }
  RoomRecord room;
  room.id = new_room_id;
  room.is_private = true;
  room.created_ts = ts ? ts : wall_ms();
  room.dm_key = key;
  auto rid = insert_room(c, room, key);
  if (!rid.ok()) return rid.status();
  for (const UserRecord* u : {&a, &b}) {
    MemberRecord m;
    m.user = *u;
    m.joined_ts = room.created_ts;
    HUT_RETURN_IF_ERROR(upsert_member(c, *rid, m));
  }
  return DmResult{std::move(room), true};
}

template <typename Conn>
Result<Unit> set_topic(Conn& c, const std::string& room, const std::string& topic) {
  return room_update(c, room, "UPDATE rooms SET topic = ?2 WHERE id = ?1", std::string_view(topic));
}

template <typename Conn>
Result<Unit> set_mute_all(Conn& c, const std::string& room, bool on) {
  return room_update(c, room, "UPDATE rooms SET mute_all = ?2 WHERE id = ?1", int64_t{on ? 1 : 0});
}

template <typename Conn>
Result<Unit> put_member(Conn& c, const MemberRecord& member) {
  auto rid = writer_rid(c, member.room);
  if (!rid.ok()) return rid.status();
  HUT_RETURN_IF_ERROR(upsert_member(c, *rid, member));
  return Unit{};
}

template <typename Conn>
Result<Unit> remove_member(Conn& c, const std::string& room, const std::string& user) {
  auto rid = writer_rid(c, room);
  if (!rid.ok()) return rid.status();
  auto removed = remove_keeping_mute(c, *rid, user);
  if (!removed.ok()) return removed.status();
  if (!*removed) return not_member(room, user);
  return Unit{};
}

template <typename Conn>
Result<Unit> set_ban(Conn& c, const std::string& room, const std::string& user, bool banned) {
  if (user.empty()) return Status::invalid_argument("empty user id");
  auto rid = writer_rid(c, room);
  if (!rid.ok()) return rid.status();
  if (banned) {
    auto removed = remove_keeping_mute(c, *rid, user);
    if (!removed.ok()) return removed.status();
    Query<Conn> q(c,
                  "INSERT INTO sanctions (rid, user_id, banned) VALUES (?1, ?2, 1) "
                  "ON CONFLICT (rid, user_id) DO UPDATE SET banned = 1");
    HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, user).run());
    return Unit{};
  }
  {
    Query<Conn> q(c, "UPDATE sanctions SET banned = 0 WHERE rid = ?1 AND user_id = ?2 AND banned = 1");
    HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, user).run());
    if (c.changes() == 0) return Status::not_found("'" + user + "' is not banned from room '" + room + "'");
  }
  Query<Conn> q(c, "DELETE FROM sanctions WHERE rid = ?1 AND user_id = ?2 AND mute_until IS NULL");
  HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, user).run());
  return Unit{};
}

template <typename Conn>
Result<Unit> set_role(Conn& c, const std::string& room, const std::string& user, Role role) {
  return member_update(c, room, user, "UPDATE members SET role = ?3 WHERE rid = ?1 AND uid = ?2",
                       role_name(role));
}

template <typename Conn>
Result<Unit> set_mute(Conn& c, const std::string& room, const std::string& user,
                      std::optional<int64_t> until) {
  return member_update(c, room, user, "UPDATE members SET mute_until = ?3 WHERE rid = ?1 AND uid = ?2",
                       until);
}

template <typename Conn>
Result<std::vector<RoomRecord>> list_rooms(Conn& c) {
  std::vector<RoomRecord> rooms;
  Query<Conn> q(c,
                "SELECT id, topic, private, created_ts, last_seq, mute_all, dm_key FROM rooms ORDER BY id");
  while (q.step()) rooms.push_back(read_room(q));
  HUT_RETURN_IF_ERROR(q.status());
  return rooms;
}

template <typename Conn>
Result<RoomRecord> get_room(Conn& c, const std::string& room) {
  Query<Conn> q(c,
                "SELECT id, topic, private, created_ts, last_seq, mute_all, dm_key FROM rooms WHERE id = ?1");
  q.bind(1, room);
  if (q.step()) return read_room(q);
  return q.no_row(room_missing(room));
}

template <typename Conn>
Result<std::vector<SanctionRecord>> sanctions(Conn& c, const std::string& room) {
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  std::vector<SanctionRecord> out;
  Query<Conn> q(c, "SELECT user_id, mute_until, banned FROM sanctions WHERE rid = ?1 ORDER BY user_id");
  q.bind(1, found->first);
  while (q.step()) {
    SanctionRecord sr;
    sr.room = room;
    sr.user = q.str(0);
    sr.mute_until = q.opt_i64(1);
    sr.banned = q.i64(2) != 0;
    out.push_back(std::move(sr));
  }
  HUT_RETURN_IF_ERROR(q.status());
  return out;
}

template <typename Conn>
Result<std::vector<ReadMarker>> read_markers(Conn& c, const std::string& room) {
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  std::vector<ReadMarker> out;
  Query<Conn> q(c,
                "SELECT u.id, k.seq FROM read_markers k JOIN users u ON u.uid = k.uid WHERE k.rid = ?1 "
                "ORDER BY u.id");
  q.bind(1, found->first);
  while (q.step()) out.push_back(ReadMarker{room, q.str(0), static_cast<uint64_t>(q.i64(1))});
  HUT_RETURN_IF_ERROR(q.status());
  return out;
}

template <typename Conn>
Result<std::vector<MemberRecord>> members(Conn& c, const std::string& room) {
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  std::vector<MemberRecord> out;
  Query<Conn> q(c,
                "SELECT ?2, u.id, u.name, u.avatar, m.role, m.mute_until, m.joined_ts FROM members m "
                "JOIN users u ON u.uid = m.uid WHERE m.rid = ?1 ORDER BY m.joined_ts, u.id");
  q.bind(1, found->first).bind(2, room);
  while (q.step()) out.push_back(read_member(q));
  HUT_RETURN_IF_ERROR(q.status());
  return out;
}

template <typename Conn>
Result<MemberRecord> member(Conn& c, const std::string& room, const std::string& user) {
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  Query<Conn> q(c,
                "SELECT ?2, u.id, u.name, u.avatar, m.role, m.mute_until, m.joined_ts FROM members m "
                "JOIN users u ON u.uid = m.uid WHERE m.rid = ?1 AND u.id = ?3");
  q.bind(1, found->first).bind(2, room).bind(3, user);
  if (q.step()) return read_member(q);
  return q.no_row(Status::not_found("'" + user + "' is not a member of '" + room + "'"));
}

}  // namespace hut::sql

#endif  // HUTOPIA_STORE_SQL_ROOMS_H_
