// The SQL of messages and read markers.
#ifndef HUTOPIA_STORE_SQL_MESSAGES_H_
#define HUTOPIA_STORE_SQL_MESSAGES_H_

#include <algorithm>
#include <limits>

#include "store/sql.h"
#include "store/sql_rooms.h"

namespace hut::sql {

// The columns read_message() reads, from messages m joined to users u.
#define HUT_MESSAGE_COLUMNS "SELECT m.seq, m.ts, u.id, u.name, u.avatar, m.text, m.data, m.edited_ts "

template <typename Q>
MessageRecord read_message(const Q& q, const std::string& room) {
  MessageRecord m;
  m.room = room;
  m.seq = static_cast<uint64_t>(q.i64(0));
  m.ts = q.i64(1);
  m.from.id = q.str(2);
  m.from.name = q.str(3);
  m.from.avatar = q.str(4);
  m.text = q.str(5);
  m.data_json = q.str(6);
  m.edited_ts = q.opt_i64(7).value_or(0);
  return m;
}

inline Status no_message(uint64_t seq, const std::string& room) {
  return Status::not_found("no message " + std::to_string(seq) + " in room '" + room + "'");
}

// Deleted messages of a room after `seq` (by the partial index).
template <typename Conn>
Result<uint64_t> deleted_after(Conn& c, int64_t rid, uint64_t seq) {
  Query<Conn> q(c, "SELECT count(*) FROM messages WHERE rid = ?1 AND seq > ?2 AND deleted = 1");
  q.bind(1, rid).bind(2, static_cast<int64_t>(seq));
  if (q.step()) return static_cast<uint64_t>(q.i64(0));
  return q.no_row(Status::internal("count returned no row"));
}

// Messages after the read marker that are not deleted.
template <typename Conn>
Result<uint64_t> unread_after(Conn& c, int64_t rid, uint64_t last_seq, uint64_t marker) {
  auto deleted = deleted_after(c, rid, marker);
  if (!deleted.ok()) return deleted.status();
  return last_seq - marker - *deleted;
}

// The author check of edit and delete: the message must exist, not be
// deleted, and be `author`'s when that is not empty. The room's row id.
template <typename Conn>
Result<int64_t> check_message(Conn& c, const std::string& room, uint64_t seq, const std::string& author) {
  auto rid = writer_rid(c, room);
  if (!rid.ok()) return rid.status();
  Query<Conn> q(c,
                "SELECT u.id, m.deleted FROM messages m JOIN users u ON u.uid = m.uid "
                "WHERE m.rid = ?1 AND m.seq = ?2");
  q.bind(1, *rid).bind(2, static_cast<int64_t>(seq));
  if (!q.step()) return q.no_row(no_message(seq, room));
  if (q.i64(1) != 0)
    return Status::not_found("message " + std::to_string(seq) + " in room '" + room + "' is deleted");
  if (!author.empty() && q.str(0) != author) {
    return Status::permission_denied("message " + std::to_string(seq) + " is not by " + author);
  }
  return *rid;
}

// One post in three statements (where WITH takes writes, post_many does it
// in one). `fresh`: the room's row id is looked up, not taken from the cache.
template <typename Conn>
Result<PostResult> post(Conn& c, const PostRequest& req, bool fresh = false) {
  if (fresh) c.rids.erase(req.room);
  auto rid = writer_rid(c, req.room);
  if (!rid.ok()) return rid.status();
  auto uid = writer_uid(c, req.from);
  if (!uid.ok()) return uid.status();
  PostResult out;
  out.ts = req.ts ? req.ts : wall_ms();
  {
    Query<Conn> q(c, "UPDATE rooms SET last_seq = last_seq + 1 WHERE rid = ?1 RETURNING last_seq");
    q.bind(1, *rid);
    if (!q.step()) return q.no_row(room_missing(req.room));
    out.seq = static_cast<uint64_t>(q.i64(0));
  }
  {
    Query<Conn> q(c, "INSERT INTO messages (rid, seq, ts, uid, text, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    q.bind(1, *rid)
        .bind(2, static_cast<int64_t>(out.seq))
        .bind(3, out.ts)
        .bind(4, *uid)
        .bind(5, req.text)
        .bind_or_null(6, req.data_json);
    HUT_RETURN_IF_ERROR(q.run());
  }
  {
    Query<Conn> q(c,
                  "INSERT INTO read_markers (rid, uid, seq) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (rid, uid) DO UPDATE SET seq = CASE WHEN excluded.seq > read_markers.seq THEN "
                  "excluded.seq ELSE read_markers.seq END");
    HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, *uid).bind(3, static_cast<int64_t>(out.seq)).run());
  }
  return out;
}

// Array literals of PostgreSQL's text form, for unnest().
inline void append_array_item(std::string* out, int64_t v) {
  out->push_back(out->size() > 1 ? ',' : '{');
  out->append(std::to_string(v));
}
inline void append_array_item(std::string* out, const std::string* v) {
  out->push_back(out->size() > 1 ? ',' : '{');
  if (v == nullptr) {
    out->append("NULL");
    return;
  }
  out->push_back('"');
  for (char ch : *v) {
    if (ch == '"' || ch == '\\') out->push_back('\\');
    out->push_back(ch);
  }
  out->push_back('"');
}
inline std::string end_array(std::string s) { return s.empty() ? std::string("{}") : s + "}"; }

// Several posts in one statement (for a database whose WITH takes writes):
// each room's seq moves once by its number of posts, which take consecutive
// seqs in the order given. (*out)[i] is post i's result: a missing room or
// an unknown poster fails that post alone. The Status is the statement's:
// when it fails, the transaction needs rolling back and *out says nothing.
template <typename Conn>
Status post_many(Conn& c, const std::vector<PostRequest>& reqs, std::vector<Result<PostResult>>* out) {
  out->assign(reqs.size(), Result<PostResult>(Status::internal("post not written")));
  std::string rids, tss, uids, texts, datas;
  std::vector<size_t> sent;  // index in reqs of each array row
  for (size_t i = 0; i < reqs.size(); ++i) {
    const PostRequest& req = reqs[i];
    auto rid = writer_rid(c, req.room);
    if (!rid.ok()) {
      (*out)[i] = rid.status();
      continue;
    }
    auto uid = writer_uid(c, req.from);
    if (!uid.ok()) {
      (*out)[i] = uid.status();
      continue;
    }
    PostResult r;
    r.ts = req.ts ? req.ts : wall_ms();
    (*out)[i] = r;
    append_array_item(&rids, *rid);
    append_array_item(&tss, r.ts);
    append_array_item(&uids, *uid);
    append_array_item(&texts, &req.text);
    append_array_item(&datas, req.data_json.empty() ? nullptr : &req.data_json);
    sent.push_back(i);
  }
  if (sent.empty()) return Status();
  Query<Conn> q(
      c,
      "WITH p AS (SELECT * FROM unnest(?1::bigint[], ?2::bigint[], ?3::bigint[], ?4::text[], ?5::text[]) "
      "WITH ORDINALITY AS t(rid, ts, uid, text, data, n)), "
      "c AS (SELECT rid, count(*) AS k FROM p GROUP BY rid), "
      "r AS (UPDATE rooms SET last_seq = rooms.last_seq + c.k FROM c WHERE rooms.rid = c.rid "
      "RETURNING rooms.rid, rooms.last_seq - c.k AS base), "
      "s AS (SELECT p.*, r.base + row_number() OVER (PARTITION BY p.rid ORDER BY p.n) AS seq "
      "FROM p JOIN r ON r.rid = p.rid), "
      "m AS (INSERT INTO messages (rid, seq, ts, uid, text, data) "
      "SELECT rid, seq, ts, uid, text, data FROM s), "
      "k AS (INSERT INTO read_markers (rid, uid, seq) SELECT rid, uid, max(seq) FROM s GROUP BY rid, uid "
      "ON CONFLICT (rid, uid) DO UPDATE SET seq = GREATEST(read_markers.seq, excluded.seq)) "
      "SELECT n, seq FROM s");
  q.bind(1, end_array(std::move(rids)))
      .bind(2, end_array(std::move(tss)))
      .bind(3, end_array(std::move(uids)))
      .bind(4, end_array(std::move(texts)))
      .bind(5, end_array(std::move(datas)));
  std::vector<bool> stored(sent.size(), false);
  while (q.step()) {
    int64_t n = q.i64(0);
    if (n < 1 || static_cast<size_t>(n) > sent.size()) continue;
    (*out)[sent[static_cast<size_t>(n) - 1]]->seq = static_cast<uint64_t>(q.i64(1));
    stored[static_cast<size_t>(n) - 1] = true;
  }
  HUT_RETURN_IF_ERROR(q.status());
  // No seq came back for a room whose cached row id is stale (another
  // process deleted the room, and maybe created it again under a new row
  // id): those posts look the room up again, one by one.
  for (size_t j = 0; j < sent.size(); ++j) {
    if (stored[j]) continue;
    (*out)[sent[j]] = post(c, reqs[sent[j]], true);
    const Status& s = (*out)[sent[j]].status();
    if (!s.ok() && !s.is_not_found()) return s;
  }
  return Status();
}

template <typename Conn>
Result<int64_t> edit(Conn& c, const std::string& room, uint64_t seq, const std::string& text,
                     int64_t edited_ts, const std::string& author) {
  auto rid = check_message(c, room, seq, author);
  if (!rid.ok()) return rid.status();
  int64_t when = edited_ts ? edited_ts : wall_ms();
  Query<Conn> q(c, "UPDATE messages SET text = ?3, edited_ts = ?4 WHERE rid = ?1 AND seq = ?2");
  HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, static_cast<int64_t>(seq)).bind(3, text).bind(4, when).run());
  return when;
}

template <typename Conn>
Result<Unit> delete_message(Conn& c, const std::string& room, uint64_t seq, const std::string& author) {
  auto rid = check_message(c, room, seq, author);
  if (!rid.ok()) return rid.status();
  Query<Conn> q(c,
                "UPDATE messages SET deleted = 1, text = '', data = NULL, edited_ts = NULL "
                "WHERE rid = ?1 AND seq = ?2");
  HUT_RETURN_IF_ERROR(q.bind(1, *rid).bind(2, static_cast<int64_t>(seq)).run());
  return Unit{};
}

template <typename Conn>
Result<uint64_t> mark_read(Conn& c, const std::string& room, const std::string& user, uint64_t seq) {
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  auto [rid, last_seq] = *found;
  auto uid = writer_uid(c, UserRecord{user, "", ""});
  if (!uid.ok()) return uid.status();
  Query<Conn> q(c,
                "INSERT INTO read_markers (rid, uid, seq) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (rid, uid) DO UPDATE SET seq = CASE WHEN excluded.seq > read_markers.seq THEN "
                "excluded.seq ELSE read_markers.seq END RETURNING seq");
  q.bind(1, rid).bind(2, *uid).bind(3, static_cast<int64_t>(std::min(seq, last_seq)));
  if (!q.step()) return q.no_row(Status::internal("marker upsert returned no row"));
  return unread_after(c, rid, last_seq, static_cast<uint64_t>(q.i64(0)));
}

template <typename Conn>
Result<HistoryPage> history(Conn& c, const std::string& room, uint64_t cursor, int limit, bool forward) {
  static constexpr uint64_t kNewest = std::numeric_limits<int64_t>::max();
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  HistoryPage page;
  Query<Conn> q(c, forward ? HUT_MESSAGE_COLUMNS
                       "FROM messages m JOIN users u ON u.uid = m.uid "
                       "WHERE m.rid = ?1 AND m.seq > ?2 AND m.deleted = 0 ORDER BY m.seq ASC LIMIT ?3"
                           : HUT_MESSAGE_COLUMNS
                       "FROM messages m JOIN users u ON u.uid = m.uid "
                       "WHERE m.rid = ?1 AND m.seq < ?2 AND m.deleted = 0 ORDER BY m.seq DESC LIMIT ?3");
  uint64_t bound = forward ? std::min(cursor, kNewest) : (cursor == 0 ? kNewest : std::min(cursor, kNewest));
  q.bind(1, found->first).bind(2, static_cast<int64_t>(bound)).bind(3, int64_t{limit} + 1);
  while (q.step()) {
    if (static_cast<int>(page.messages.size()) == limit) {
      page.more = true;
      break;
    }
    page.messages.push_back(read_message(q, room));
  }
  HUT_RETURN_IF_ERROR(q.status());
  if (!forward) std::reverse(page.messages.begin(), page.messages.end());
  return page;
}

template <typename Conn>
Result<MessageRecord> get_message(Conn& c, const std::string& room, uint64_t seq) {
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  Query<Conn> q(c, HUT_MESSAGE_COLUMNS
                "FROM messages m JOIN users u ON u.uid = m.uid "
                "WHERE m.rid = ?1 AND m.seq = ?2 AND m.deleted = 0");
  q.bind(1, found->first).bind(2, static_cast<int64_t>(seq));
  if (q.step()) return read_message(q, room);
  return q.no_row(no_message(seq, room));
}

template <typename Conn>
Result<uint64_t> unread(Conn& c, const std::string& room, const std::string& user) {
  auto found = lookup_room(c, room);
  if (!found.ok()) return found.status();
  auto [rid, last_seq] = *found;
  uint64_t marker = 0;
  {
    Query<Conn> q(c,
                  "SELECT k.seq FROM read_markers k JOIN users u ON u.uid = k.uid "
                  "WHERE k.rid = ?1 AND u.id = ?2");
    q.bind(1, rid).bind(2, user);
    if (q.step()) marker = static_cast<uint64_t>(q.i64(0));
    HUT_RETURN_IF_ERROR(q.status());
  }
  return unread_after(c, rid, last_seq, marker);
}

template <typename Conn>
Result<std::vector<RoomUnread>> unread_counts(Conn& c, const std::string& user) {
  std::vector<RoomUnread> out;
  Query<Conn> q(c,
                "SELECT r.id, r.last_seq - COALESCE(k.seq, 0) - "
                "(SELECT count(*) FROM messages d WHERE d.rid = r.rid AND d.seq > COALESCE(k.seq, 0) "
                "AND d.deleted = 1) "
                "FROM users u JOIN members m ON m.uid = u.uid JOIN rooms r ON r.rid = m.rid "
                "LEFT JOIN read_markers k ON k.rid = m.rid AND k.uid = m.uid "
                "WHERE u.id = ?1 ORDER BY r.id");
  q.bind(1, user);
  while (q.step()) out.push_back(RoomUnread{q.str(0), static_cast<uint64_t>(q.i64(1))});
  HUT_RETURN_IF_ERROR(q.status());
  return out;
}

#undef HUT_MESSAGE_COLUMNS

}  // namespace hut::sql

#endif  // HUTOPIA_STORE_SQL_MESSAGES_H_
