// Every SQL statement of the SQLite store, as functions that run on one
// connection inside the transaction the executor opened: rooms, users,
// members and sanctions (sqlite_rooms.cc), messages and read markers
// (sqlite_messages.cc), plugin key-values (sqlite_kv.cc) and resume
// credentials (sqlite_resume.cc). Writes run on the writer's connection and
// use its caches; reads on the reader's. Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_SQLITE_SQL_H_
#define HUTOPIA_STORE_SQLITE_SQL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/sqlite_conn.h"
#include "store/store.h"
#include "util/clock.h"

namespace hut::sqlite {

// Rows written without a time get wall_ms() (util/clock.h).
using hut::wall_ms;

// --- Rooms, users, members, sanctions (sqlite_rooms.cc) ---

Status room_missing(std::string_view room);
// The room's row id and last_seq, read without the cache.
Result<std::pair<int64_t, uint64_t>> lookup_room(Conn& c, const std::string& room);
// Writer: the room's row id, cached.
Result<int64_t> writer_rid(Conn& c, const std::string& room);
// Writer: the user's row id. With a name, the cache entry (name, avatar) is
// refreshed when it differs; without one, a missing user is added with an
// empty name.
Result<int64_t> writer_uid(Conn& c, const UserRecord& user);

// The whole state the rooms load at start, in one read transaction.
Result<StoreState> load_state(Conn& c);
Result<Unit> put_user(Conn& c, const UserRecord& user);
Result<Unit> create_room(Conn& c, const RoomRecord& room, const std::vector<MemberRecord>& members);
Result<Unit> delete_room(Conn& c, const std::string& room);
Result<DmResult> open_dm(Conn& c, const UserRecord& a, const UserRecord& b, const std::string& new_room_id,
                         int64_t ts);
Result<Unit> set_topic(Conn& c, const std::string& room, const std::string& topic);
Result<Unit> set_mute_all(Conn& c, const std::string& room, bool on);
Result<Unit> put_member(Conn& c, const MemberRecord& member);
Result<Unit> remove_member(Conn& c, const std::string& room, const std::string& user);
Result<Unit> set_ban(Conn& c, const std::string& room, const std::string& user, bool banned);
Result<Unit> set_role(Conn& c, const std::string& room, const std::string& user, Role role);
Result<Unit> set_mute(Conn& c, const std::string& room, const std::string& user,
                      std::optional<int64_t> until);
Result<std::vector<RoomRecord>> list_rooms(Conn& c);
Result<RoomRecord> get_room(Conn& c, const std::string& room);
Result<std::vector<MemberRecord>> members(Conn& c, const std::string& room);

// --- Messages and read markers (sqlite_messages.cc) ---

Result<PostResult> post(Conn& c, const PostRequest& req);
Result<int64_t> edit(Conn& c, const std::string& room, uint64_t seq, const std::string& text,
                     int64_t edited_ts, const std::string& author);
Result<Unit> delete_message(Conn& c, const std::string& room, uint64_t seq, const std::string& author);
Result<uint64_t> mark_read(Conn& c, const std::string& room, const std::string& user, uint64_t seq);
// A page of up to `limit` messages before `cursor` (0: the newest), or after
// it when `forward`.
Result<HistoryPage> history(Conn& c, const std::string& room, uint64_t cursor, int limit, bool forward);
Result<MessageRecord> get_message(Conn& c, const std::string& room, uint64_t seq);
Result<uint64_t> unread(Conn& c, const std::string& room, const std::string& user);
Result<std::vector<RoomUnread>> unread_counts(Conn& c, const std::string& user);

// --- Plugin key-values (sqlite_kv.cc) ---

Result<Unit> kv_put(Conn& c, const std::string& plugin, const std::string& key, const std::string& value);
Result<Unit> kv_delete(Conn& c, const std::string& plugin, const std::string& key);
Result<std::string> kv_get(Conn& c, const std::string& plugin, const std::string& key);
// A point read outside any transaction (the loop thread's connection): the
// value into *value, or only whether the key exists when value is null.
Status kv_get_now(Conn& c, std::string_view plugin, std::string_view key, std::string* value);
// Copies the plugin_kv rows of the SQLite file `file` that `c`'s database
// lacks; the number added.
Result<uint64_t> import_plugin_kv(Conn& c, const std::string& file);

// --- Resume credentials (sqlite_resume.cc) ---

Result<Unit> put_resume(Conn& c, const std::string& hash, const UserRecord& user, int64_t expires_ts);
Result<UserRecord> redeem_resume(Conn& c, const std::string& hash, int64_t now, const std::string& new_hash,
                                 int64_t new_expires_ts);

}  // namespace hut::sqlite

#endif  // HUTOPIA_STORE_SQLITE_SQL_H_
