// The durable store of the chat rooms: users (a cache of what tokens said),
// rooms, members with roles and mutes, messages with a per-room seq, read
// markers and the plugins' key-value data.
//
// A Store is opened from a URL (`sqlite://<path>`, or `postgres://...` for
// PostgreSQL) and bound to one libuv loop.
//
// Threads: every method except load_state() and import_plugin_kv() is called
// on the loop thread and never blocks it (kv_get_now() is one indexed read).
// Writes are queued to one writer thread that commits them in groups (every
// write queued at that moment, one transaction); their callbacks run
// afterwards on the loop thread, in submission order, only once the
// transaction that holds them is durable. Reads run on a reader thread with a
// connection of their own and complete on the loop thread as well. A read sees
// every write whose callback ran before the read was submitted; whether it
// sees writes still in flight is not defined.
//
// Ownership: the caller owns the Store. Callbacks are owned by the Store until
// they ran (or until the Store is destroyed, which drops those not yet run).
// End of life: call close() and wait for its callback, then destroy the Store.
#ifndef HUTOPIA_STORE_STORE_H_
#define HUTOPIA_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hutopia/status.h"
#include "util/metrics.h"

typedef struct uv_loop_s uv_loop_t;

namespace hut {

enum class Role : int { kMember = 0, kModerator = 1, kMaster = 2 };

// "member", "moderator", "master".
std::string_view role_name(Role role);
// false for anything else.
bool parse_role(std::string_view name, Role* out);

// A mute with no end: MemberRecord::mute_until holds this value.
inline constexpr int64_t kMuteForever = std::numeric_limits<int64_t>::max();

struct UserRecord {
  std::string id;
  std::string name;
  std::string avatar;  // empty: none
};

struct RoomRecord {
  std::string id;
  std::string topic;
  bool is_private = false;
  int64_t created_ts = 0;
  uint64_t last_seq = 0;  // the seq of the newest message, 0 in an empty room
  bool mute_all = false;
  // A direct-message room has a key naming its two users (see dm_key()); it
  // is empty for every other room.
  std::string dm_key;
  bool is_dm() const { return !dm_key.empty(); }
  // The bus user who created the room (for the per-user room quota); empty
  // for rooms of the management API, direct-message rooms and older rooms.
  std::string creator;
};

struct MemberRecord {
  std::string room;
  UserRecord user;  // name and avatar from the user cache
  Role role = Role::kMember;
  // nullopt: not muted; kMuteForever: muted with no end; otherwise the ts the
  // mute ends at (a past value means the mute is over).
  std::optional<int64_t> mute_until;
  int64_t joined_ts = 0;
};

// What a room keeps about a user who is not (or no longer) a member: a mute
// that outlives leave and join, and a ban.
struct SanctionRecord {
  std::string room;
  std::string user;
  std::optional<int64_t> mute_until;  // as MemberRecord::mute_until
  bool banned = false;
};

struct MessageRecord {
  std::string room;
  uint64_t seq = 0;
  int64_t ts = 0;
  UserRecord from;  // as the user cache knows them now
  std::string text;
  std::string data_json;  // empty: no data
  int64_t edited_ts = 0;  // 0: never edited
};

struct ReadMarker {
  std::string room;
  std::string user;
  uint64_t seq = 0;
};

// A message named by its room and seq.
struct MessageRef {
  std::string room;
  uint64_t seq = 0;
};

// Everything the rooms layer keeps in memory, read once at start-up.
struct StoreState {
  std::vector<RoomRecord> rooms;
  std::vector<MemberRecord> members;
  std::vector<ReadMarker> read_markers;
  // The deleted messages, by room then seq (for exact unread counts).
  std::vector<MessageRef> deleted;
  // Mutes of users who left, and bans, by room then user.
  std::vector<SanctionRecord> sanctions;
  // Every user the space has seen (said hello, or named as a member).
  std::vector<UserRecord> users;
};

struct PostRequest {
  std::string room;
  UserRecord from;  // also refreshes the user cache
  std::string text;
  std::string data_json;  // empty: no data; otherwise JSON text, stored as given
  int64_t ts = 0;         // 0: the store takes the time it writes the message
};

struct PostResult {
  uint64_t seq = 0;
  int64_t ts = 0;
};

struct HistoryPage {
  std::vector<MessageRecord> messages;  // oldest first
  bool more = false;                    // older (history_after: newer) messages exist
};

struct DmResult {
  RoomRecord room;
  bool created = false;  // false: the pair's room existed already
};

struct RoomUnread {
  std::string room;
  uint64_t unread = 0;
};

// Counters for tests, benchmarks and metrics. Any thread.
struct StoreStats {
  uint64_t commits = 0;         // write transactions committed
  uint64_t writes = 0;          // writes that ran in committed transactions
  uint64_t failed_commits = 0;  // transactions that could not commit
  uint64_t largest_batch = 0;   // most writes in one transaction
  // The longest write transaction (its writes and COMMIT with its fsync), and
  // the longest checkpoint the writer ran itself, in microseconds.
  uint64_t slowest_commit_us = 0;
  uint64_t slowest_writer_checkpoint_us = 0;
  uint64_t pending_writes = 0;  // queued or running, callbacks not yet run
};

struct StoreOptions {
  // Most writes in one transaction; a larger queue is committed in several.
  size_t max_batch = 8192;
  // How long SQLite waits for a lock held by another process, in ms.
  int busy_timeout_ms = 5000;
};

class Store {
 public:
  using DoneCallback = std::function<void(Status)>;
  template <typename T>
  using Callback = std::function<void(Result<T>)>;

  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Rooms, members, mutes, last_seq, read markers and the seqs of deleted
  // messages, read synchronously. For start-up, before the loop serves; may be
  // called from any thread.
  virtual Result<StoreState> load_state() = 0;

  // --- Writes. Each callback runs on the loop thread after the commit. ---

  // Stores the user cache entry (id, name, avatar).
  virtual void put_user(UserRecord user, DoneCallback done) = 0;
  // Creates a room with its first members (their user cache entries are
  // refreshed when a name is given). room.last_seq and room.dm_key are ignored.
  // kAlreadyExists when a room of that id exists.
  virtual void create_room(RoomRecord room, std::vector<MemberRecord> members, DoneCallback done) = 0;
  // Removes a room with its members, messages and read markers. kNotFound.
  virtual void delete_room(std::string room, DoneCallback done) = 0;
  // The private two-member room of users a and b (in either order), created
  // with id `new_room_id` and both as members when the pair has none yet.
  virtual void open_dm(UserRecord a, UserRecord b, std::string new_room_id, int64_t ts,
                       Callback<DmResult> done) = 0;
  virtual void set_topic(std::string room, std::string topic, DoneCallback done) = 0;
  virtual void set_mute_all(std::string room, bool on, DoneCallback done) = 0;

  // Adds a member or, when they are one, replaces role, mute and joined_ts.
  // kNotFound for a missing room.
  virtual void put_member(MemberRecord member, DoneCallback done) = 0;
  // kNotFound when the user is not a member. A mute the member had is kept
  // (as a sanction) in the same transaction, for when they join again.
  virtual void remove_member(std::string room, std::string user, DoneCallback done) = 0;
  // Bans a user from a room (removing them from it when they are a member,
  // their mute kept as remove_member() does), or lifts the ban. kNotFound for
  // a missing room, and when lifting a ban that is not there.
  virtual void set_ban(std::string room, std::string user, bool banned, DoneCallback done) = 0;
  virtual void set_role(std::string room, std::string user, Role role, DoneCallback done) = 0;
  // nullopt unmutes. kNotFound when the user is not a member.
  virtual void set_mute(std::string room, std::string user, std::optional<int64_t> until,
                        DoneCallback done) = 0;

  // Appends a message: the room's next seq (posts to one room get consecutive
  // seqs in submission order), and moves the author's read marker to it in
  // the same transaction. kNotFound for a missing room.
  virtual void post(PostRequest request, Callback<PostResult> done) = 0;
  // Replaces a message's text; the result is its edited_ts (`edited_ts`, or
  // now when 0). When `author` is not empty the message must be theirs
  // (kPermissionDenied otherwise). kNotFound for a missing or deleted message.
  virtual void edit(std::string room, uint64_t seq, std::string text, int64_t edited_ts, std::string author,
                    Callback<int64_t> done) = 0;
  // Deletes a message for good (its text and data are erased); same checks
  // as edit().
  virtual void delete_message(std::string room, uint64_t seq, std::string author, DoneCallback done) = 0;
  // Moves the user's read marker to `seq` unless it is further already (it
  // never moves back; seq is capped at the room's last_seq). The result is
  // the user's unread count afterwards. kNotFound for a missing room.
  virtual void mark_read(std::string room, std::string user, uint64_t seq, Callback<uint64_t> done) = 0;

  // Stores a plugin's value under a key (any bytes).
  virtual void kv_put(std::string plugin, std::string key, std::string value, DoneCallback done) = 0;
  // kNotFound when the key holds nothing.
  virtual void kv_delete(std::string plugin, std::string key, DoneCallback done) = 0;

  // Stores the hash of a resume credential of `user` (id, name, avatar),
  // good until `expires_ts` (ms). The user's expired credentials and all but
  // their newest 32 are dropped in the same transaction.
  virtual void put_resume(std::string hash, UserRecord user, int64_t expires_ts, DoneCallback done) = 0;
  // Uses up the credential whose hash is `hash` and, in the same transaction,
  // stores `new_hash` for the same user until `new_expires_ts`. The result is
  // the user kept with it. kNotFound when the hash is unknown, used already or
  // expired at `now` (ms); nothing is stored then.
  virtual void redeem_resume(std::string hash, int64_t now, std::string new_hash, int64_t new_expires_ts,
                             Callback<UserRecord> done) = 0;

  // --- Reads. Each callback runs on the loop thread. ---

  // Up to `limit` (1..200) messages with seq < before_seq (0: the newest),
  // oldest first; deleted messages are left out. kNotFound for a missing room.
  virtual void history(std::string room, uint64_t before_seq, int limit, Callback<HistoryPage> done) = 0;
  // Up to `limit` (1..200) messages with seq > after_seq, oldest first;
  // `more` means newer ones exist beyond the page. kNotFound for a missing room.
  virtual void history_after(std::string room, uint64_t after_seq, int limit, Callback<HistoryPage> done) = 0;
  // One message; kNotFound when missing or deleted.
  virtual void get_message(std::string room, uint64_t seq, Callback<MessageRecord> done) = 0;
  virtual void list_rooms(Callback<std::vector<RoomRecord>> done) = 0;
  virtual void get_room(std::string room, Callback<RoomRecord> done) = 0;
  virtual void members(std::string room, Callback<std::vector<MemberRecord>> done) = 0;
  // One member of the room; kNotFound when the user is not one or the room
  // is missing.
  virtual void member(std::string room, std::string user, Callback<MemberRecord> done) = 0;
  // The room's sanctions (kept mutes of non-members, bans), by user id.
  virtual void sanctions(std::string room, Callback<std::vector<SanctionRecord>> done) = 0;
  // The room's read markers, by user id.
  virtual void read_markers(std::string room, Callback<std::vector<ReadMarker>> done) = 0;
  // Messages after the user's read marker that are not deleted.
  virtual void unread(std::string room, std::string user, Callback<uint64_t> done) = 0;
  // The unread count of every room the user is a member of.
  virtual void unread_counts(std::string user, Callback<std::vector<RoomUnread>> done) = 0;
  // kNotFound when the key holds nothing.
  virtual void kv_get(std::string plugin, std::string key, Callback<std::string> done) = 0;

  // --- For the plugin runtime, whose key-value ABI is synchronous. ---

  // The one read that runs on the loop thread and answers at once: a
  // primary-key lookup of one plugin value, on a read-only connection used by
  // this method alone (WAL lets it read while the writer commits; it waits at
  // most a few milliseconds for a lock). It sees every write whose callback
  // ran; whether it sees writes still in flight is not defined. kNotFound
  // when the key holds nothing; `value` may be null to test presence only.
  // kFailedPrecondition once close() was called.
  virtual Status kv_get_now(std::string_view plugin, std::string_view key, std::string* value) = 0;
  // A store other processes write too (PostgreSQL, shared by the nodes of a
  // cluster): `written` runs on the loop after each kv_put or kv_delete of
  // this store commits (empty: none), and kv_reload reads a value another
  // process wrote so that kv_get_now answers it. A store of this process's
  // own has nothing to tell and nothing to read again.
  virtual void set_kv_written(
      std::function<void(const std::string& plugin, const std::string& key)> written) {
    (void)written;
  }
  virtual void kv_reload(std::string plugin, std::string key) {
    (void)plugin;
    (void)key;
  }
  // Every value read again (change notes were lost), on the same terms.
  virtual void kv_reload_all() {}
  // Copies the rows of the key-value file of older versions (an SQLite file
  // with a table plugin_kv(plugin, key, value)) into the store, in one
  // transaction; a key the store holds already keeps the store's value. The
  // result is the number of rows added. kNotFound when there is no such file;
  // the file is left as it was (its WAL, if any, is folded into it). For
  // start-up, before the loop serves: it runs on the calling thread, on a
  // connection of its own.
  virtual Result<uint64_t> import_plugin_kv(const std::string& path) = 0;

  // Commits every write queued so far, stops the threads and then calls
  // `done` on the loop thread. Writes and reads submitted afterwards fail with
  // kFailedPrecondition.
  virtual void close(std::function<void()> done) = 0;

  virtual StoreStats stats() const = 0;
  // The duration of each write transaction (its writes and the COMMIT with
  // its fsync); nullptr where the store does not measure it. Any thread.
  virtual const Histogram* commit_seconds() const { return nullptr; }

 protected:
  Store() = default;
};

// A store URL read: PostgreSQL (`postgres://...` or `postgresql://...`,
// handed to libpq whole) or SQLite (`sqlite://<path>`, the file's path).
// kInvalidArgument for a URL with no scheme or an SQLite one with no path,
// kNotSupported for another scheme. Shared by the space's store and the
// relay's database.
struct StoreUrl {
  bool postgres = false;
  std::string path;  // SQLite only
};
Result<StoreUrl> parse_store_url(std::string_view url);

// Opens the store that `url` names, creating it (and its directory) when
// missing and bringing its schema up to date. `sqlite://<path>`, or
// `postgres://...` / `postgresql://...` (libpq's URL; its PG* environment
// fills in what the URL leaves out; the database must exist); other schemes
// give kNotSupported. Runs on the calling thread
// (before the loop serves); the Store then belongs to `loop`.
Result<std::unique_ptr<Store>> open_store(uv_loop_t* loop, std::string_view url,
                                          const StoreOptions& options = {});

// The key of the direct-message room of two users, the same in either order.
std::string dm_key(std::string_view user_a, std::string_view user_b);

}  // namespace hut

#endif  // HUTOPIA_STORE_STORE_H_
